namespace FmriGlm.Core

open System
open System.Numerics
open System.Threading.Tasks

/// <summary>Settings of <c>Permutation.permutedOls</c>; names and defaults are nilearn's
/// <c>non_parametric_inference</c> ones.</summary>
type PermutationOptions =
    {
        /// Number of permutations or sign flips (nilearn <c>n_perm</c>, default 10000); 0 gives the t map only.
        NPerm: int
        /// Test |t| (both signs) instead of t (nilearn <c>two_sided_test</c>, default false).
        TwoSidedTest: bool
        /// Add a constant confound unless the tested variate is the intercept (nilearn <c>model_intercept</c>, default true).
        ModelIntercept: bool
        /// Cluster-forming threshold as a p value (nilearn <c>threshold</c>); enables cluster-size and cluster-mass FWE.
        Threshold: float option
        /// Threshold-free cluster enhancement and its FWE p values (nilearn <c>tfce</c>, default false).
        Tfce: bool
        /// Seed (nilearn <c>random_state</c>). Permutation k draws from its own stream derived from (seed, k), so the
        /// result does not depend on <c>Threads</c>; the streams are not numpy's, so results match nilearn's in
        /// distribution only.
        RandomState: int
        /// Threads used.
        Threads: int
        /// Sign flipping only: run every one of the 2ⁿ sign flips (identity included) instead of <c>NPerm</c>
        /// random ones, giving the exact permutation p values #{flips with max ≥ observed} / 2ⁿ (not in nilearn).
        AllSignFlips: bool
    }

/// <summary>Defaults of <see cref="PermutationOptions"/>.</summary>
module PermutationOptions =
    /// nilearn's defaults: 10000 one-sided permutations with an intercept, no clusters, no TFCE, seed 0, every core.
    let defaults =
        { NPerm = 10000
          TwoSidedTest = false
          ModelIntercept = true
          Threshold = None
          Tfce = false
          RandomState = 0
          Threads = Environment.ProcessorCount
          AllSignFlips = false }

/// <summary>Where the masked voxels sit in the 3D grid, for cluster and TFCE inference.</summary>
type MaskedGrid =
    {
        /// The grid.
        Shape: GridShape
        /// Fortran index in the grid of each masked voxel, in the order of the data's voxels.
        Voxels: int[]
    }

/// <summary>Cluster-size and cluster-mass FWE inference at a cluster-forming threshold (nilearn's "size",
/// "logp_max_size", "mass", "logp_max_mass").</summary>
type ClusterInference =
    {
        /// The cluster-forming threshold on t (t quantile of the p threshold).
        ThresholdT: float
        /// Size (voxels) of the cluster each voxel belongs to, 0 outside clusters.
        Size: float[]
        /// −log10 FWE p value of each voxel's cluster size.
        LogPMaxSize: float[]
        /// Largest cluster size of each permutation.
        H0MaxSize: float[]
        /// Mass Σ(|t| − threshold) of the cluster each voxel belongs to, 0 outside clusters.
        Mass: float[]
        /// −log10 FWE p value of each voxel's cluster mass.
        LogPMaxMass: float[]
        /// Largest cluster mass of each permutation.
        H0MaxMass: float[]
    }

/// <summary>TFCE FWE inference (nilearn's "tfce", "logp_max_tfce").</summary>
type TfceInference =
    {
        /// TFCE value of each voxel (E = 0.5, H = 2, 100 steps, as nilearn and fslmaths).
        Tfce: float[]
        /// −log10 FWE p value from the maximum |TFCE| of each permutation.
        LogPMaxTfce: float[]
        /// Largest |TFCE| of each permutation.
        H0MaxTfce: float[]
    }

/// <summary>What <c>Permutation.permutedOls</c> returns, one value per masked voxel.</summary>
type PermutationResult =
    {
        /// t statistic of the tested variate (NaN where a voxel's data are all 0).
        T: float[]
        /// −log10 voxel-level FWE p value from the max-t distribution (nilearn "logp_max_t").
        LogPMaxT: float[]
        /// Largest t (|t| if two-sided) of each permutation (nilearn "h0_max_t", in permutation order).
        H0MaxT: float[]
        /// True when the signs were flipped (intercept test), false when the rows were permuted.
        SignFlipping: bool
        /// Permutations run.
        Permutations: int
        /// Cluster inference, when a threshold was given.
        Clusters: ClusterInference option
        /// TFCE inference, when asked for.
        Tfce: TfceInference option
        /// What nilearn would warn about, in words.
        Warnings: string list
    }

/// <summary>nilearn's <c>permuted_ols</c> (Freedman &amp; Lane 1983 scheme; Winkler et al. 2014, NeuroImage
/// 92:381–397) for one tested variate: t by OLS after removing the confounds, max-type FWE over voxels, cluster
/// size/mass and TFCE (Smith &amp; Nichols 2009, NeuroImage 44:83–98).</summary>
module Permutation =

    /// Permutations per work item: fixed, so the work split (and so the result) does not depend on threads.
    let private blockSize = 32

    /// Voxels per tile of the dot-product kernel.
    let private tileVoxels = 512

    let private lanes = Vector<float>.Count

    /// Student t inverse survival function (scipy.stats.t.isf) by bisection on the log tails.
    let internal tIsf (dof: float) (p: float) : float =
        if not (p > 0.0 && p < 1.0) then
            invalidArg (nameof p) $"p must lie in (0, 1), not {p}"

        let logP = Math.Log p
        let logSf t = let struct (s, _) = Numerics.tLogTails dof t in s
        let mutable lo = -1.0
        let mutable hi = 1.0

        while logSf lo < logP do
            lo <- lo * 2.0

        while logSf hi > logP do
            hi <- hi * 2.0

        let mutable iterations = 0

        while iterations < 200 && hi - lo > 0.0 do
            let mid = 0.5 * (lo + hi)

            if mid = lo || mid = hi then
                iterations <- 200
            else
                if logSf mid > logP then lo <- mid else hi <- mid
                iterations <- iterations + 1

        0.5 * (lo + hi)

    /// SplitMix64 (Steele et al. 2014): the stream of permutation k starts from a hash of (seed, k).
    [<Struct>]
    type private SplitMix =
        val mutable State: uint64
        new(seed: int, k: int64) = { State = (uint64 (uint32 seed) <<< 32) ^^^ (uint64 k * 0x9E3779B97F4A7C15UL) ^^^ 0xD1B54A32D192ED03UL }

        member r.Next() =
            r.State <- r.State + 0x9E3779B97F4A7C15UL
            let mutable z = r.State
            z <- (z ^^^ (z >>> 30)) * 0xBF58476D1CE4E5B9UL
            z <- (z ^^^ (z >>> 27)) * 0x94D049BB133111EBUL
            z ^^^ (z >>> 31)

    /// scipy.ndimage.label's 6-connectivity on a few voxels: union-find over the listed grid indices.
    /// Returns the root (index into the list) of each listed voxel. `position` is a grid-sized scratch array
    /// holding −1 everywhere, and is left that way.
    let private labelListed (shape: GridShape) (position: int[]) (grid: ResizeArray<int>) (positive: ResizeArray<bool>) =
        let m = grid.Count
        let parent = Array.init m id

        let rec find (a: int) =
            let mutable r = a

            while parent[r] <> r do
                parent[r] <- parent[parent[r]]
                r <- parent[r]

            r

        for q in 0 .. m - 1 do
            position[grid[q]] <- q

        let sx, sy = shape.X, shape.X * shape.Y

        for q in 0 .. m - 1 do
            let g = grid[q]
            let i = g % shape.X
            let j = (g / shape.X) % shape.Y
            let k = g / sy

            let join (h: int) =
                let p = position[h]

                if p >= 0 && positive[p] = positive[q] then
                    let a, b = find p, find q
                    if a <> b then parent[max a b] <- min a b

            if i > 0 then join (g - 1)
            if j > 0 then join (g - sx)
            if k > 0 then join (g - sy)

        for q in 0 .. m - 1 do
            position[grid[q]] <- -1

        Array.init m find

    /// Largest cluster size and mass among the listed supra-threshold voxels (t values given).
    let private maxSizeAndMass shape position (grid: ResizeArray<int>) (t: ResizeArray<float>) (positive: ResizeArray<bool>) threshold =
        if grid.Count = 0 then
            struct (0.0, 0.0)
        else
            let roots = labelListed shape position grid positive
            let size = Array.zeroCreate<float> grid.Count
            let mass = Array.zeroCreate<float> grid.Count

            for q in 0 .. grid.Count - 1 do
                size[roots[q]] <- size[roots[q]] + 1.0
                mass[roots[q]] <- mass[roots[q]] + (abs t[q] - threshold)

            struct (Array.max size, Array.max mass)

    /// <summary>TFCE of a t map on the grid (zeros outside the mask), as nilearn's <c>calculate_tfce</c> with
    /// E = 0.5, H = 2 and dh = "auto": 100 thresholds from max/100 to max (max of |t| when two-sided); at each,
    /// every 6-connected cluster of voxels at or above it adds sign·extent^0.5·threshold² to its voxels (no ·dh,
    /// as fslmaths).</summary>
    let tfceMap (shape: GridShape) (twoSided: bool) (volume: float[]) : float[] =
        let result = Array.zeroCreate<float> volume.Length

        let maxScore =
            volume
            |> Array.fold (fun m x -> if Double.IsNaN x then m else max m (if twoSided then abs x else x)) Double.NegativeInfinity

        if Double.IsFinite maxScore then
            // numpy.linspace(0, max, 101)[1:]: i·(max/100), the last one exactly max
            let step = maxScore / 100.0
            let thresholds = Array.init 100 (fun s -> if s = 99 then maxScore else float (s + 1) * step)

            for sign in (if twoSided then [ -1.0; 1.0 ] else [ 1.0 ]) do
                let temp = volume |> Array.map (fun x -> sign * x)

                for h in thresholds do
                    for v in 0 .. temp.Length - 1 do
                        if temp[v] < h then temp[v] <- 0.0

                    let alive = temp |> Array.map (fun x -> x <> 0.0 && not (Double.IsNaN x))
                    let labels, count = Clusters.label shape alive

                    if count > 0 then
                        let counts = Array.zeroCreate<int> (count + 1)

                        for l in labels do
                            counts[l] <- counts[l] + 1

                        let h2 = h * h

                        for v in 0 .. labels.Length - 1 do
                            if labels[v] > 0 then
                                result[v] <- result[v] + sign * sqrt (float counts[labels[v]]) * h2

        result

    /// nilearn's null_to_p(alternative="larger"): #{null ≥ value}/N, clipped to [1/N, 1 − 1/N].
    let private nullToP (sortedNull: float[]) (value: float) =
        let n = sortedNull.Length
        let mutable lo = 0
        let mutable hi = n

        while lo < hi do
            let mid = (lo + hi) / 2
            if sortedNull[mid] < value then lo <- mid + 1 else hi <- mid

        let p = 1.0 - float lo / float n
        let smallest = max Numerics.eps (1.0 / float n)
        max smallest (min p (1.0 - smallest))

    /// Number of null values strictly below each observed value (the "rank" of nilearn's permuted_ols).
    let private ranksBelow (sortedNull: float[]) (value: float) =
        let mutable lo = 0
        let mutable hi = sortedNull.Length

        while lo < hi do
            let mid = (lo + hi) / 2
            if sortedNull[mid] < value then lo <- mid + 1 else hi <- mid

        lo

    /// out[r·tile + j] = Σᵢ w[r·n + i] · y[i·stride + v0 + j] for r &lt; rows (a multiple of 4), j &lt; tile
    /// (a multiple of 2·lanes): 4 rows × 2 vectors of accumulators, fused multiply-adds.
    let private kernel (w: float[]) (rows: int) (n: int) (y: float[]) (stride: int) (v0: int) (tile: int) (out: float[]) =
        let mutable r = 0

        while r < rows do
            let w0, w1, w2, w3 = r * n, (r + 1) * n, (r + 2) * n, (r + 3) * n
            let mutable j = 0

            while j < tile do
                let mutable a0 = Vector<float>.Zero
                let mutable a1 = Vector<float>.Zero
                let mutable b0 = Vector<float>.Zero
                let mutable b1 = Vector<float>.Zero
                let mutable c0 = Vector<float>.Zero
                let mutable c1 = Vector<float>.Zero
                let mutable d0 = Vector<float>.Zero
                let mutable d1 = Vector<float>.Zero

                for i in 0 .. n - 1 do
                    let at = i * stride + v0 + j
                    let y0 = Vector<float>(y, at)
                    let y1 = Vector<float>(y, at + lanes)
                    let s0 = Vector<float>(w[w0 + i])
                    let s1 = Vector<float>(w[w1 + i])
                    let s2 = Vector<float>(w[w2 + i])
                    let s3 = Vector<float>(w[w3 + i])
                    a0 <- Vector.FusedMultiplyAdd(y0, s0, a0)
                    a1 <- Vector.FusedMultiplyAdd(y1, s0, a1)
                    b0 <- Vector.FusedMultiplyAdd(y0, s1, b0)
                    b1 <- Vector.FusedMultiplyAdd(y1, s1, b1)
                    c0 <- Vector.FusedMultiplyAdd(y0, s2, c0)
                    c1 <- Vector.FusedMultiplyAdd(y1, s2, c1)
                    d0 <- Vector.FusedMultiplyAdd(y0, s3, d0)
                    d1 <- Vector.FusedMultiplyAdd(y1, s3, d1)

                a0.CopyTo(out, r * tile + j)
                a1.CopyTo(out, r * tile + j + lanes)
                b0.CopyTo(out, (r + 1) * tile + j)
                b1.CopyTo(out, (r + 1) * tile + j + lanes)
                c0.CopyTo(out, (r + 2) * tile + j)
                c1.CopyTo(out, (r + 2) * tile + j + lanes)
                d0.CopyTo(out, (r + 3) * tile + j)
                d1.CopyTo(out, (r + 3) * tile + j + lanes)
                j <- j + 2 * lanes

            r <- r + 4

    /// Working memory of one thread: weights, kernel output, per-permutation maxima and supra-threshold voxels.
    type private Scratch =
        { W: float[]
          Out: float[]
          Max: float[]
          Grid: ResizeArray<int>[]
          Values: ResizeArray<float>[]
          Signs: ResizeArray<bool>[]
          Full: float[][]
          Position: int[] }

    /// numpy's float32 sum along a contiguous axis: pairwise summation (8 accumulators up to 128 values, halves
    /// beyond), every step rounded to float32. Matching it matters: nilearn normalises float32 maps in float32 and
    /// t amplifies the rounding of the norm.
    let rec private pairwise32 (a: float32[]) (start: int) (count: int) : float32 =
        if count < 8 then
            let mutable r = 0.0f

            for i in start .. start + count - 1 do
                r <- r + a[i]

            r
        elif count <= 128 then
            let acc = Array.init 8 (fun j -> a[start + j])
            let mutable i = 8

            while i < count - count % 8 do
                for j in 0..7 do
                    acc[j] <- acc[j] + a[start + i + j]

                i <- i + 8

            let mutable r = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))

            while i < count do
                r <- r + a[start + i]
                i <- i + 1

            r
        else
            let half = count / 2 - (count / 2) % 8
            pairwise32 a start half + pairwise32 a (start + half) (count - half)

    /// nilearn's normalize_matrix_on_axis on a float32 column: y / sqrt(Σ y²), all in float32.
    let private normalizeFloat32 (y: float32[]) =
        let squares = y |> Array.map (fun a -> a * a)
        let norm = sqrt (pairwise32 squares 0 squares.Length)
        y |> Array.map (fun a -> float (a / norm))

    let private normalize (v: float[]) =
        let norm = sqrt (Array.sumBy (fun x -> x * x) v)
        v |> Array.map (fun x -> x / norm)

    /// Columns of U (thin SVD) whose singular value exceeds 1e-12 (nilearn orthonormalize_matrix).
    let private orthonormalize (m: float[,]) : float[][] =
        let a = MathNet.Numerics.LinearAlgebra.Matrix<float>.Build.DenseOfArray m
        let svd = a.Svd(true)
        let s = svd.S

        [| for c in 0 .. min (Array2D.length2 m) s.Count - 1 do
               if s[c] > 1e-12 then
                   yield svd.U.Column(c).ToArray() |]

    let private residualize (z: float[][]) (v: float[]) =
        let r = Array.copy v

        for zk in z do
            let mutable d = 0.0

            for i in 0 .. v.Length - 1 do
                d <- d + zk[i] * v[i]

            for i in 0 .. v.Length - 1 do
                r[i] <- r[i] - d * zk[i]

        r

    /// <summary>nilearn's <c>permuted_ols</c> for one tested variate, with its choices: the test is a sign-flipping
    /// one when the tested variate is constant or when the confounds hold exactly one constant column (the
    /// latter then stays a confound); several constant columns are dropped and one intercept is modelled; with
    /// <c>ModelIntercept</c> a constant confound is added unless the test is an intercept test. Targets and
    /// tested variate are normalised and the confounds (orthonormalised by SVD) regressed out; then
    /// t = b·√((dof − 1)/(1 − a² − b²)), b the correlation with the tested variate, a² the squared correlations
    /// with the confounds, dof = subjects − confounds. Voxel-level FWE p = (1 + #{max ≥ t})/(1 + NPerm); cluster
    /// and TFCE p values as nilearn's <c>null_to_p</c> and ranks.</summary>
    /// <param name="options">Permutations, sidedness, threshold, TFCE, seed, threads.</param>
    /// <param name="grid">Where the voxels sit; needed for a threshold or TFCE.</param>
    /// <param name="tested">Tested variate, one value per subject (design · contrast).</param>
    /// <param name="confounds">Subjects × confounds, or None.</param>
    /// <param name="data">Subjects × voxels, column-major (voxel v's subjects at <c>v·subjects</c>).</param>
    /// <exception cref="System.ArgumentException">Sizes disagree, or a threshold/TFCE is asked for without a grid.</exception>
    let permutedOls
        (options: PermutationOptions)
        (grid: MaskedGrid option)
        (tested: float[])
        (confounds: float[,] option)
        (data: VoxelData)
        : PermutationResult =
        let n = tested.Length

        let length =
            match data with
            | Float64 a -> a.Length
            | Float32 a -> a.Length

        if n < 2 then invalidArg (nameof tested) "needs at least 2 subjects"
        if length % n <> 0 then invalidArg (nameof data) $"{length} values are not voxels × {n} subjects"
        let voxels = length / n

        if options.NPerm < 0 then invalidArg (nameof options) $"NPerm must not be negative, not {options.NPerm}"

        match confounds with
        | Some c when Array2D.length1 c <> n -> invalidArg (nameof confounds) $"{Array2D.length1 c} rows for {n} subjects"
        | _ -> ()

        match options.Threshold with
        | Some p when not (p > 0.0 && p < 1.0) -> invalidArg (nameof options) $"threshold must be a p value in (0, 1), not {p}"
        | _ -> ()

        let gridOrFail () =
            match grid with
            | Some g when g.Voxels.Length = voxels -> g
            | Some g -> invalidArg (nameof grid) $"{g.Voxels.Length} grid positions for {voxels} voxels"
            | None -> invalidArg (nameof grid) "a threshold or TFCE needs the voxels' grid"

        let warnings = ResizeArray<string>()

        // --- nilearn's intercept detection and confound handling ---
        let distinct (v: float seq) = v |> Seq.distinct |> Seq.length
        let mutable interceptTest = distinct tested = 1
        let mutable modelIntercept = options.ModelIntercept

        let mutable confoundColumns =
            match confounds with
            | None -> [||]
            | Some c -> Array.init (Array2D.length2 c) (fun k -> Array.init n (fun i -> c[i, k]))

        let constants = confoundColumns |> Array.indexed |> Array.filter (fun (_, c) -> distinct c = 1) |> Array.map fst

        if (interceptTest && constants.Length = 1) || constants.Length > 1 then
            confoundColumns <- confoundColumns |> Array.indexed |> Array.filter (fun (k, _) -> not (Array.contains k constants)) |> Array.map snd
            warnings.Add "Multiple columns across \"confounding_vars\" and/or \"target_vars\" are constant. Only one will be used as intercept."
            modelIntercept <- true

        if not interceptTest && constants.Length = 1 then interceptTest <- true

        if modelIntercept && not interceptTest then
            confoundColumns <- Array.append confoundColumns [| Array.create n 1.0 |]

        let nCovars = confoundColumns.Length

        let z =
            if nCovars = 0 then [||]
            else orthonormalize (Array2D.init n nCovars (fun i k -> confoundColumns[k][i]))

        let c = z.Length
        let x = if c = 0 then normalize tested else tested |> normalize |> residualize z |> normalize
        let dofFactor = float (n - c) - 1.0

        // --- targets: normalised, confounds regressed out, normalised again; all-zero voxels are left out ---
        let value (v: int) (i: int) =
            match data with
            | Float64 a -> a[v * n + i]
            | Float32 a -> float a[v * n + i]

        let columns = Array.zeroCreate<float[]> voxels
        let valid = Array.zeroCreate<bool> voxels

        Parallel.For(0, voxels, ParallelOptions(MaxDegreeOfParallelism = max 1 options.Threads), fun v ->
            // nilearn normalises the masked data in their dtype: float32 maps are normalised in float32
            let normalized =
                match data with
                | Float32 a -> normalizeFloat32 (Array.sub a (v * n) n)
                | Float64 _ ->
                    let y = Array.init n (value v)
                    let norm = sqrt (Array.sumBy (fun a -> a * a) y)
                    y |> Array.map (fun a -> a / norm)

            if c = 0 then
                if Array.forall Double.IsFinite normalized then
                    columns[v] <- normalized
                    valid[v] <- true
            else if Array.forall Double.IsFinite normalized then
                let r = residualize z normalized
                let rn = sqrt (Array.sumBy (fun a -> a * a) r)

                if rn > 0.0 then
                    columns[v] <- r |> Array.map (fun a -> a / rn)
                    valid[v] <- true)
        |> ignore

        if Array.exists not valid then
            warnings.Add "Some descriptors in 'target_vars' have zeros across all samples. These descriptors will be ignored during null distribution generation."

        let used = [| for v in 0 .. voxels - 1 do if valid[v] then yield v |]
        let m = used.Length
        let step = 2 * lanes
        let stride = max step ((m + step - 1) / step * step)
        // subject-major: y[i·stride + u] is subject i of used voxel u; padding voxels are 0
        let y = Array.zeroCreate<float> (n * stride)

        for u in 0 .. m - 1 do
            let col = columns[used[u]]

            for i in 0 .. n - 1 do
                y[i * stride + u] <- col[i]

        let rowsPerPerm = 1 + c
        let fast = c = 0

        let toT (b: float) (a2: float) = b * sqrt (dofFactor / (1.0 - a2 - b * b))

        // weights of permutation k: rows (x, z₁ … z_c) flipped or shuffled, padded to a multiple of 4 rows
        let fillWeights (k: int64) (identity: bool) (w: float[]) (offset: int) =
            let signs = Array.create n 1.0
            let order = Array.init n id

            if not identity then
                if options.AllSignFlips then
                    for i in 0 .. n - 1 do
                        if (k >>> i) &&& 1L = 1L then signs[i] <- -1.0
                elif interceptTest then
                    let mutable rng = SplitMix(options.RandomState, k)
                    let mutable bits = 0UL

                    for i in 0 .. n - 1 do
                        if i % 64 = 0 then bits <- rng.Next()
                        if (bits >>> (i % 64)) &&& 1UL = 1UL then signs[i] <- -1.0
                else
                    let mutable rng = SplitMix(options.RandomState, k)

                    for i in n - 1 .. -1 .. 1 do
                        let j = int (rng.Next() % uint64 (i + 1))
                        let t = order[i]
                        order[i] <- order[j]
                        order[j] <- t

            for i in 0 .. n - 1 do
                w[offset + i] <- signs[i] * x[order[i]]

            for kk in 0 .. c - 1 do
                for i in 0 .. n - 1 do
                    w[offset + (1 + kk) * n + i] <- signs[i] * z[kk][order[i]]

        // --- observed t through the same kernel as the permutations (the identity then reproduces it exactly) ---
        let runRows (w: float[]) (rows: int) (perTile: int -> int -> float[] -> unit) (out: float[]) =
            let mutable v0 = 0

            while v0 < stride do
                let tile = min tileVoxels (stride - v0)
                kernel w rows n y stride v0 tile out
                perTile v0 tile out
                v0 <- v0 + tile

        let padRows r = (r + 3) / 4 * 4
        let observedB = Array.zeroCreate<float> m
        let observedA2 = Array.zeroCreate<float> m

        do
            let rows = padRows rowsPerPerm
            let w = Array.zeroCreate<float> (rows * n)
            fillWeights 0L true w 0

            runRows w rows (fun v0 tile out ->
                for j in 0 .. min tile (m - v0) - 1 do
                    observedB[v0 + j] <- out[j]
                    let mutable a2 = 0.0

                    for kk in 1..c do
                        a2 <- a2 + out[kk * tile + j] * out[kk * tile + j]

                    observedA2[v0 + j] <- a2) (Array.zeroCreate (rows * tileVoxels))

        let tUsed = Array.init m (fun u -> toT observedB[u] observedA2[u])
        let t = Array.create voxels nan

        for u in 0 .. m - 1 do
            t[used[u]] <- tUsed[u]

        let thresholdT =
            options.Threshold
            |> Option.map (fun p ->
                let dof = float (n - (1 + nCovars))
                if options.TwoSidedTest then tIsf dof (p / 2.0) else tIsf dof p)

        let needGrid = thresholdT.IsSome || options.Tfce
        let g = if needGrid then Some(gridOrFail ()) else None

        let toVolume (values: float[]) =
            let gr = g.Value
            let volume = Array.zeroCreate<float> gr.Shape.Count

            for v in 0 .. voxels - 1 do
                volume[gr.Voxels[v]] <- values[v]

            volume

        let ofVolume (volume: float[]) = g.Value.Voxels |> Array.map (fun i -> volume[i])

        let tfceObserved =
            if options.Tfce then
                // nilearn labels the t map with NaNs set to 0 by inverse_transform of finite values only
                Some(tfceMap g.Value.Shape options.TwoSidedTest (toVolume (t |> Array.map (fun a -> if Double.IsNaN a then 0.0 else a))) |> ofVolume)
            else
                None

        let nPerm =
            if options.AllSignFlips then
                if not interceptTest then invalidArg (nameof options) "AllSignFlips needs a sign-flipping (intercept) test"
                if n > 30 then invalidArg (nameof options) $"AllSignFlips enumerates 2^{n} flips: at most 30 subjects"
                1 <<< n
            else
                options.NPerm

        let h0T = Array.zeroCreate<float> nPerm
        let h0Size = Array.zeroCreate<float> (if thresholdT.IsSome then nPerm else 0)
        let h0Mass = Array.zeroCreate<float> (if thresholdT.IsSome then nPerm else 0)
        let h0Tfce = Array.zeroCreate<float> (if options.Tfce then nPerm else 0)
        let blocks = (nPerm + blockSize - 1) / blockSize
        let two = options.TwoSidedTest
        // in the fast path (no confounds) t is increasing in b: compare b with the threshold's b
        let bThreshold = thresholdT |> Option.map (fun th -> th / sqrt (dofFactor + th * th))

        Parallel.For(
            0,
            blocks,
            ParallelOptions(MaxDegreeOfParallelism = max 1 options.Threads),
            (fun () ->
                let perms = blockSize
                let rows = padRows (perms * rowsPerPerm)

                { W = Array.zeroCreate<float> (rows * n)
                  Out = Array.zeroCreate<float> (rows * tileVoxels)
                  Max = Array.zeroCreate<float> perms
                  Grid = Array.init perms (fun _ -> ResizeArray<int>())
                  Values = Array.init perms (fun _ -> ResizeArray<float>())
                  Signs = Array.init perms (fun _ -> ResizeArray<bool>())
                  Full = (if options.Tfce then Array.init perms (fun _ -> Array.zeroCreate<float> m) else [||])
                  Position = (if needGrid then Array.create g.Value.Shape.Count -1 else [||]) }),
            (fun block (_: ParallelLoopState) (s: Scratch) ->
                let first = block * blockSize
                let count = min blockSize (nPerm - first)
                Array.Clear s.W

                for p in 0 .. count - 1 do
                    let k = int64 (first + p)
                    fillWeights k false s.W (p * rowsPerPerm * n)
                    s.Max[p] <- Double.NegativeInfinity
                    s.Grid[p].Clear()
                    s.Values[p].Clear()
                    s.Signs[p].Clear()

                let rows = padRows (count * rowsPerPerm)

                runRows s.W rows (fun v0 tile out ->
                    let valid = min tile (m - v0)

                    for p in 0 .. count - 1 do
                        let mutable best = s.Max[p]

                        if fast then
                            let row = p * tile
                            // one vectorised pass: running maximum, and a scalar look only at vectors holding a
                            // supra-threshold value (rare under the null)
                            let bt = defaultArg bThreshold Double.PositiveInfinity
                            let btv = Vector<float>(bt)
                            let mutable bestV = Vector<float>(Double.NegativeInfinity)
                            let whole = valid / lanes * lanes
                            let mutable j = 0

                            let visit (j: int) =
                                let b = out[row + j]

                                if b > bt || (two && -b > bt) then
                                    s.Grid[p].Add(g.Value.Voxels[used[v0 + j]])
                                    s.Values[p].Add(toT b 0.0)
                                    s.Signs[p].Add(b > 0.0)

                            while j < whole do
                                let raw = Vector<float>(out, row + j)
                                let v = if two then Vector.Abs raw else raw
                                bestV <- Vector.Max(bestV, v)
                                if Vector.GreaterThanAny(v, btv) then
                                    for q in j .. j + lanes - 1 do
                                        visit q

                                j <- j + lanes

                            for q in 0 .. lanes - 1 do
                                if bestV[q] > best then best <- bestV[q]

                            for q in whole .. valid - 1 do
                                let b = out[row + q]
                                let b = if two then abs b else b
                                if b > best then best <- b
                                visit q

                            if options.Tfce then
                                for j in 0 .. valid - 1 do
                                    s.Full[p][v0 + j] <- toT out[row + j] 0.0
                        else
                            let row = p * rowsPerPerm * tile

                            for j in 0 .. valid - 1 do
                                let b = out[row + j]
                                let mutable a2 = 0.0

                                for kk in 1..c do
                                    let a = out[row + kk * tile + j]
                                    a2 <- a2 + a * a

                                let tv = toT b a2
                                let score = if two then abs tv else tv
                                if score > best then best <- score

                                match thresholdT with
                                | Some th when tv > th || (two && -tv > th) ->
                                    s.Grid[p].Add(g.Value.Voxels[used[v0 + j]])
                                    s.Values[p].Add tv
                                    s.Signs[p].Add(tv > 0.0)
                                | _ -> ()

                                if options.Tfce then s.Full[p][v0 + j] <- tv

                        s.Max[p] <- best) s.Out

                for p in 0 .. count - 1 do
                    let k = first + p
                    h0T[k] <- (if fast then (if Double.IsNegativeInfinity s.Max[p] then nan else toT s.Max[p] 0.0) else s.Max[p])

                    match thresholdT with
                    | Some th ->
                        let struct (size, mass) = maxSizeAndMass g.Value.Shape s.Position s.Grid[p] s.Values[p] s.Signs[p] th
                        h0Size[k] <- size
                        h0Mass[k] <- mass
                    | None -> ()

                    if options.Tfce then
                        let full = Array.create voxels 0.0

                        for u in 0 .. m - 1 do
                            full[used[u]] <- s.Full[p][u]

                        let tf = tfceMap g.Value.Shape two (toVolume full)
                        h0Tfce[k] <- tf |> Array.fold (fun a v -> max a (abs v)) 0.0

                s),
            (fun (_: Scratch) -> ())
        )
        |> ignore

        // --- p values ---
        let exact = options.AllSignFlips

        let fwe (sortedNull: float[]) (observed: float) =
            if Double.IsNaN observed || nPerm = 0 then
                0.0
            else
                let below = ranksBelow sortedNull observed
                let p = if exact then float (nPerm - below) / float nPerm else float (nPerm + 1 - below) / float (nPerm + 1)
                -Math.Log10 p

        // The permutations' t and the observed t come from the same kernel and the same formula, so the identity
        // (among all 2ⁿ sign flips) reproduces the observed maximum bit for bit and counts as "≥".
        let logPMaxT =
            let sorted = Array.sort h0T
            t |> Array.map (fun tv -> fwe sorted (if two then abs tv else tv))

        let clusters =
            thresholdT
            |> Option.map (fun th ->
                let shape = g.Value.Shape
                let volume = toVolume (t |> Array.map (fun a -> if Double.IsNaN a then 0.0 else a))
                let above = volume |> Array.map (fun a -> a > th)
                let labels, count = Clusters.label shape above

                let labels, count =
                    if two then
                        let negative, negativeCount = Clusters.label shape (volume |> Array.map (fun a -> a < -th))
                        Array.map2 (fun p q -> if p > 0 then p + negativeCount else q) labels negative, count + negativeCount
                    else
                        labels, count

                let size = Array.zeroCreate<float> (count + 1)
                let mass = Array.zeroCreate<float> (count + 1)

                for v in 0 .. volume.Length - 1 do
                    let l = labels[v]

                    if l > 0 then
                        size[l] <- size[l] + 1.0
                        mass[l] <- mass[l] + (abs volume[v] - th)

                let sortedSize = Array.sort h0Size
                let sortedMass = Array.sort h0Mass
                let pOf sorted (values: float[]) l = if nPerm = 0 then 0.0 else -Math.Log10(nullToP sorted values[l])

                let perVoxel f = g.Value.Voxels |> Array.map (fun gi -> f labels[gi])

                { ThresholdT = th
                  Size = perVoxel (fun l -> size[l])
                  LogPMaxSize = perVoxel (pOf sortedSize size)
                  H0MaxSize = h0Size
                  Mass = perVoxel (fun l -> mass[l])
                  LogPMaxMass = perVoxel (pOf sortedMass mass)
                  H0MaxMass = h0Mass })

        let tfce =
            tfceObserved
            |> Option.map (fun observed ->
                let sorted = Array.sort h0Tfce

                { Tfce = observed
                  LogPMaxTfce = observed |> Array.map (fun v -> fwe sorted (abs v))
                  H0MaxTfce = h0Tfce })

        { T = t
          LogPMaxT = logPMaxT
          H0MaxT = h0T
          SignFlipping = interceptTest
          Permutations = nPerm
          Clusters = clusters
          Tfce = tfce
          Warnings = List.ofSeq warnings }

    /// <summary>nilearn's <c>non_parametric_inference</c> on arrays: the tested variate is design · contrast (one
    /// row), the design columns the contrast leaves at 0 are the confounds, then <see cref="permutedOls"/>.</summary>
    /// <exception cref="GlmInputException">The contrast is not one row over the design's columns, or the design's
    /// row count differs from the number of maps.</exception>
    let nonParametricInference
        (options: PermutationOptions)
        (grid: MaskedGrid option)
        (design: DesignMatrix)
        (contrast: SecondLevelContrast)
        (data: VoxelData)
        : PermutationResult =
        let weights = SecondLevel.contrastWeights design contrast
        let rows, columns = Array2D.length1 design.Values, Array2D.length2 design.Values

        if Array2D.length1 weights <> 1 then
            raise (GlmInputException("second_level_contrast", $"non_parametric_inference tests one contrast row, not {Array2D.length1 weights}"))

        let length =
            match data with
            | Float64 a -> a.Length
            | Float32 a -> a.Length

        if length % rows <> 0 then
            raise (GlmInputException("design_matrix", $"{rows} rows do not match the maps ({length} values)"))

        let tested = Array.init rows (fun r -> Seq.sum (seq { for c in 0 .. columns - 1 -> design.Values[r, c] * weights[0, c] }))
        let kept = [| for c in 0 .. columns - 1 do if weights[0, c] = 0.0 then yield c |]

        let confounds =
            if kept.Length = 0 then None
            else Some(Array2D.init rows kept.Length (fun r k -> design.Values[r, kept[k]]))

        permutedOls options grid tested confounds data
