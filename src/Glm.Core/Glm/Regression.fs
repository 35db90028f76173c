namespace FmriGlm.Core

open System
open System.Globalization
open System.Numerics.Tensors
open System.Runtime.InteropServices
open System.Runtime.Intrinsics
open System.Threading.Tasks

/// <summary>Noise model of the GLM (nilearn <c>run_glm(noise_model=...)</c>).</summary>
type NoiseModel =
    /// Ordinary least squares, nilearn "ols".
    | Ols
    /// nilearn "arN": AR(1) estimates truncated to a grid of <c>bins</c> levels, AR(N ≥ 2) estimates clustered
    /// with k-means into <c>bins</c> clusters; one whitened refit per level or cluster.
    | Ar of order: int
    /// AR(1) with each voxel whitened by its own, unquantised Yule-Walker estimate (not in nilearn). Costs one
    /// pseudo-inverse and a regressors × regressors covariance per voxel.
    | Ar1Exact
    /// nipy's GeneralLinearModel(model="ar1", steps=bins): ρ = Σ r_t r_{t−1} / Σ r_t² on the OLS residuals, not
    /// demeaned, truncated to the grid of <c>bins</c> levels.
    | NipyAr1
    /// AR(1) with the bias of residual autocorrelations removed (Worsley et al. 2002, NeuroImage 15:1–15): the
    /// expected lag-0 and lag-1 sums of the OLS residuals R·ε are solved for the noise's own, through traces of
    /// the residual-forming matrix R = I − X·pinv(X); then binned to <c>bins</c> levels as nilearn does. Not in
    /// nilearn: its Yule-Walker estimate on residuals is biased towards 0, so its AR(1) under-whitens.
    | Ar1BiasCorrected

/// <summary>Settings of a GLM fit; names and defaults are nilearn's where it has them.</summary>
type GlmOptions =
    {
        /// Noise model (nilearn <c>noise_model</c>, default "ar1").
        NoiseModel: NoiseModel
        /// Number of AR(1) grid levels or AR(N) clusters (nilearn <c>bins</c>, default 100).
        Bins: int
        /// Seed of the k-means clustering of AR(N ≥ 2) coefficients (nilearn <c>random_state</c>).
        RandomState: int
        /// Voxels per chunk: each chunk is copied voxel-major (voxels × scans float64) into a pooled buffer per
        /// thread, so working memory is that copy plus a few scan-length buffers per thread.
        ChunkVoxels: int
        /// Threads used (chunks run in parallel; the results do not depend on this number).
        Threads: int
        /// Keep residuals, predicted values, whitened residuals and R² (nilearn <c>minimize_memory=False</c>).
        KeepDiagnostics: bool
        /// AR(1) only: scale the first whitened scan by √(1 − ρ²) (Prais-Winsten), so that it has the innovation
        /// variance like every other scan. nilearn leaves it unscaled (false, the default, for parity).
        ScaleFirstScan: bool
    }

/// <summary>Defaults of <see cref="GlmOptions"/>.</summary>
module GlmOptions =
    /// nilearn's defaults: AR(1), 100 bins, seed 0; chunks of 256 voxels on every core; no diagnostics.
    let defaults =
        { NoiseModel = Ar 1
          Bins = 100
          RandomState = 0
          ChunkVoxels = 256
          Threads = Environment.ProcessorCount
          KeepDiagnostics = false
          ScaleFirstScan = false }

/// <summary>Voxel time series, scans × voxels, column-major: voxel v's series is
/// <c>data[v*scans .. v*scans + scans - 1]</c>.</summary>
type VoxelData =
    /// float64 values (reference parity, tests).
    | Float64 of float[]
    /// float32 values (stored BOLD data); converted to float64 one voxel at a time.
    | Float32 of float32[]

/// <summary>The model fitted to the voxels carrying one label (nilearn's RegressionResults for that label).</summary>
type LabelModel =
    {
        /// The label as nilearn spells it: str of the binned AR(1) coefficient ("0.52"), the rounded cluster
        /// centre joined by "_" for AR(N), "0.0" for OLS.
        Label: string
        /// AR coefficients of the whitening filter (empty for OLS).
        Rho: float[]
        /// pinv(Xw)·pinv(Xw)ᵀ, regressors × regressors (nilearn <c>normalized_cov_beta</c>).
        NormalizedCovariance: float[,]
    }

/// <summary>Residuals and fitted values per voxel, kept on request (nilearn <c>minimize_memory=False</c>).</summary>
type GlmDiagnostics =
    {
        /// Y − predicted, scans × voxels column-major (Y unwhitened, as nilearn).
        Residuals: float[]
        /// Whitened design · θ, scans × voxels column-major (nilearn <c>predicted</c>).
        Predicted: float[]
        /// Whitened Y − whitened design · θ, scans × voxels column-major.
        WhitenedResiduals: float[]
        /// var(predicted) / var(whitened Y) per voxel (nilearn <c>r_square</c>).
        RSquare: float[]
    }

/// <summary>A fitted GLM (nilearn run_glm's labels and results): one label per voxel, one model per label.</summary>
type GlmFit =
    {
        /// Number of scans (time points).
        Scans: int
        /// Number of voxels.
        Voxels: int
        /// Number of design columns.
        Regressors: int
        /// Index into <c>Models</c> of each voxel's label.
        Labels: int[]
        /// One model per distinct label, labels sorted as numpy.unique sorts them.
        Models: LabelModel[]
        /// θ, regressors × voxels column-major: voxel v's betas are <c>Betas[v*Regressors ..]</c>.
        Betas: float[]
        /// Residual variance per voxel: sum of squared whitened residuals / (scans − columns) (nilearn's choice).
        Dispersion: float[]
        /// Sum of squared whitened residuals per voxel (SSE).
        Sse: float[]
        /// Log likelihood per voxel with σ² = SSE / scans (nilearn <c>logL</c>).
        LogLikelihood: float[]
        /// Raw Yule-Walker AR coefficients, order × voxels column-major (empty for OLS).
        ArCoefficients: float[]
        /// Scans (nilearn <c>df_total</c>).
        DfTotal: int
        /// Numerical rank of the unwhitened design, tol = sum|X|·eps (nilearn <c>df_model</c>).
        DfModel: int
        /// DfTotal − DfModel (nilearn <c>df_residuals</c>, the contrasts' degrees of freedom).
        DfResiduals: float
        /// Residuals, predicted values and R² when asked for; None otherwise.
        Diagnostics: GlmDiagnostics option
    }

    /// <summary>The label of voxel v as nilearn spells it.</summary>
    member f.LabelOf(v: int) = f.Models[f.Labels[v]].Label
    /// <summary>Mean squared error per voxel, SSE / df_residuals (nilearn <c>MSE</c>).</summary>
    member f.Mse = f.Sse |> Array.map (fun s -> s / f.DfResiduals)

/// <summary>Fitting the GLM Y = Xβ + ε at every voxel, as nilearn's <c>run_glm</c>.</summary>
module Regression =

    /// <summary>nilearn's spelling of a noise model ("ols", "ar1", "ar2", …); the extras that nilearn lacks are
    /// "ar1-exact", "ar1-corrected" and "nipy-ar1".</summary>
    let noiseModelName (model: NoiseModel) : string =
        match model with
        | Ols -> "ols"
        | Ar p -> $"ar{p}"
        | Ar1Exact -> "ar1-exact"
        | Ar1BiasCorrected -> "ar1-corrected"
        | NipyAr1 -> "nipy-ar1"

    /// <summary>Parses a noise model as <c>noiseModelName</c> spells it (its inverse): nilearn's "ols", "ar1", "ar2", …
    /// (case-insensitive, surrounding blanks ignored) and the extras "ar1-exact", "ar1-corrected", "nipy-ar1".</summary>
    /// <returns>The model, or an error naming what is accepted.</returns>
    let parseNoiseModel (text: string) : Result<NoiseModel, string> =
        let t = if isNull text then "" else text.Trim().ToLowerInvariant()

        match t with
        | "ols" -> Ok Ols
        | "ar1-exact" -> Ok Ar1Exact
        | "ar1-corrected" -> Ok Ar1BiasCorrected
        | "nipy-ar1" -> Ok NipyAr1
        | _ when t.StartsWith "ar" && t.Length > 2 && t.Length < 6 && Seq.forall Char.IsDigit t[2..] && int t[2..] >= 1 ->
            Ok(Ar(int t[2..]))
        | _ -> Error $"'{text}' is not a noise model: use ols, ar1, ar2, …, ar1-exact, ar1-corrected or nipy-ar1"

    /// Whitened design, its pseudo-inverse and covariance for one AR filter.
    type private Prepared =
        {
            Rho: float[]
            /// Factor of the first whitened scan (1, or √(1 − ρ²) with ScaleFirstScan).
            FirstScale: float
            /// Whitened design, row-major (scan t's regressors at t*regressors).
            XwRows: float[]
            /// pinv(Xw), row-major (row j at j*scans).
            P: float[]
            Covariance: float[,]
        }

    /// nilearn's ARModel.whiten: w[t] = x[t] − Σ_k ρ_k x[t − k] for t ≥ k; the first rows are not rescaled.
    let private whitenInto (rho: float[]) (firstScale: float) (x: ReadOnlySpan<float>) (w: Span<float>) =
        x.CopyTo w

        if x.Length > 0 then
            w[0] <- firstScale * x[0]

        for k in 1 .. rho.Length do
            let r = rho[k - 1]

            for t in k .. x.Length - 1 do
                w[t] <- w[t] - r * x[t - k]

    let private prepare (scaleFirst: bool) (x: float[,]) (rho: float[]) : Prepared =
        let firstScale =
            if scaleFirst && rho.Length = 1 && abs rho[0] < 1.0 then
                sqrt (1.0 - rho[0] * rho[0])
            else
                1.0

        let n, p = Array2D.length1 x, Array2D.length2 x
        let xw = Array2D.zeroCreate n p
        let col = Array.zeroCreate n
        let wcol = Array.zeroCreate n

        for j in 0 .. p - 1 do
            for t in 0 .. n - 1 do
                col[t] <- x[t, j]

            whitenInto rho firstScale (ReadOnlySpan col) (Span wcol)

            for t in 0 .. n - 1 do
                xw[t, j] <- wcol[t]

        let pinv = Numerics.pinv xw

        { Rho = rho
          FirstScale = firstScale
          XwRows = Array.init (n * p) (fun k -> xw[k / p, k % p])
          P = Array.init (p * n) (fun k -> pinv[k / n, k % n])
          Covariance = Numerics.multiplyTransposed pinv pinv }

    /// Python's str of a float64 (shortest round trip, "0.0" not "0", "1e-05" not "1E-05"): nilearn's labels.
    let internal pythonRepr (x: float) : string =
        if Double.IsNaN x then
            "nan"
        elif Double.IsPositiveInfinity x then
            "inf"
        elif Double.IsNegativeInfinity x then
            "-inf"
        else
            let s = x.ToString("R", CultureInfo.InvariantCulture)
            // .NET writes "1E-05" where Python writes "1e-05"; both use two exponent digits at least.
            if s.Contains "E" then s.Replace("E", "e")
            elif s.Contains "." then s
            else s + ".0"

    /// Lanes of a group: four voxels are fitted side by side, one per SIMD lane of a Vector256.
    [<Literal>]
    let private Lanes = 4

    /// Work buffers of one group of voxels, one Vector256 (a value per lane) per scan or regressor.
    type private GroupWork =
        { Y: Vector256<float>[]
          W: Vector256<float>[]
          R: Vector256<float>[]
          B: Vector256<float>[] }

    let private newGroupWork (scans: int) (p: int) =
        { Y = Array.zeroCreate scans
          W = Array.zeroCreate scans
          R = Array.zeroCreate scans
          B = Array.zeroCreate p }

    /// The lanes of a Vector256 array seen as scalars: lane k of element t is at t·Lanes + k.
    let private lanes (a: Vector256<float>[]) : Span<float> =
        MemoryMarshal.Cast<Vector256<float>, float>(Span a)

    /// Loads the series of voxels order[start .. start + count − 1] from a chunk's voxel-major copy (voxel v at
    /// (v − first)·scans) into the lanes of y; unused lanes are 0.
    let private loadGroup
        (local: float[])
        (first: int)
        (scans: int)
        (order: int[])
        (start: int)
        (count: int)
        (y: Vector256<float>[])
        =
        let ys = lanes y

        for k in 0 .. Lanes - 1 do
            if k < count then
                let o = (order[start + k] - first) * scans

                for t in 0 .. scans - 1 do
                    ys[t * Lanes + k] <- local[o + t]
            else
                for t in 0 .. scans - 1 do
                    ys[t * Lanes + k] <- 0.0

    /// Copies the series of voxels first .. first + count − 1 into local, voxel-major, as float64. Voxel-major
    /// data hold voxel v's series at v·scans; time-major data hold scan t's values of every voxel at t·stride, as
    /// a NIfTI run streams them (each scan's values of the chunk are read as one contiguous run).
    let private copyChunk
        (data: VoxelData)
        (timeMajor: bool)
        (stride: int)
        (scans: int)
        (first: int)
        (count: int)
        (local: float[])
        =
        match data, timeMajor with
        | Float64 a, false -> Array.blit a (first * scans) local 0 (count * scans)
        | Float32 a, false ->
            for k in 0 .. count * scans - 1 do
                local[k] <- float a[first * scans + k]
        | Float64 a, true ->
            for t in 0 .. scans - 1 do
                let o = t * stride + first

                for i in 0 .. count - 1 do
                    local[i * scans + t] <- a[o + i]
        | Float32 a, true ->
            for t in 0 .. scans - 1 do
                let o = t * stride + first

                for i in 0 .. count - 1 do
                    local[i * scans + t] <- float a[o + i]

    /// Fits the voxels of one group under one model: whitened data (nilearn's ARModel.whiten), betas pinv(Xw)·w,
    /// whitened residuals. Each lane runs the scalar loop of its voxel, summing over scans in scan order, so a
    /// voxel's results do not depend on the voxels that share its group (nor on the thread count).
    let private fitGroup (m: Prepared) (p: int) (g: GroupWork) =
        let n = g.Y.Length
        let y, w, r, b = g.Y, g.W, g.R, g.B
        let pinv, xRows = m.P, m.XwRows
        Array.blit y 0 w 0 n

        if n > 0 then
            w[0] <- Vector256.Create(m.FirstScale) * y[0]

        for k in 1 .. m.Rho.Length do
            let rho = Vector256.Create(m.Rho[k - 1])

            for t in k .. n - 1 do
                w[t] <- w[t] - rho * y[t - k]

        // betas, four regressors at a time so that each whitened scan is loaded once for four sums
        let mutable j = 0

        while j + 3 < p do
            let mutable a0 = Vector256<float>.Zero
            let mutable a1 = Vector256<float>.Zero
            let mutable a2 = Vector256<float>.Zero
            let mutable a3 = Vector256<float>.Zero
            let r0, r1, r2, r3 = j * n, (j + 1) * n, (j + 2) * n, (j + 3) * n

            for t in 0 .. n - 1 do
                let wt = w[t]
                a0 <- a0 + Vector256.Create(pinv[r0 + t]) * wt
                a1 <- a1 + Vector256.Create(pinv[r1 + t]) * wt
                a2 <- a2 + Vector256.Create(pinv[r2 + t]) * wt
                a3 <- a3 + Vector256.Create(pinv[r3 + t]) * wt

            b[j] <- a0
            b[j + 1] <- a1
            b[j + 2] <- a2
            b[j + 3] <- a3
            j <- j + 4

        while j < p do
            let mutable a = Vector256<float>.Zero
            let row = j * n

            for t in 0 .. n - 1 do
                a <- a + Vector256.Create(pinv[row + t]) * w[t]

            b[j] <- a
            j <- j + 1

        // residuals w − Xw·b, the regressors subtracted in column order at every scan
        for t in 0 .. n - 1 do
            let mutable acc = w[t]
            let row = t * p

            for j in 0 .. p - 1 do
                acc <- acc - Vector256.Create(xRows[row + j]) * b[j]

            r[t] <- acc

    /// Runs onGroup over every voxel in groups of up to four voxels that share a key (and so a model): the voxels
    /// are cut into chunks of ChunkVoxels, copied voxel-major into a pooled buffer, sorted by key within the chunk
    /// (ascending voxels within a key) and grouped; chunks run on parallel threads and each group writes only its
    /// own voxels' slots. Results do not depend on the grouping, hence not on the chunk size or thread count.
    let private forEachGroup
        (options: GlmOptions)
        (copy: int -> int -> float[] -> unit)
        (voxels: int)
        (scans: int)
        (p: int)
        (key: int -> int)
        (model: int -> Prepared)
        (onGroup: int[] -> int -> int -> GroupWork -> unit)
        =
        let chunk = max Lanes options.ChunkVoxels
        let chunks = (voxels + chunk - 1) / chunk
        let po = ParallelOptions(MaxDegreeOfParallelism = max 1 options.Threads)

        Parallel.For(
            0,
            chunks,
            po,
            fun c ->
                let first = c * chunk
                let count = min voxels (first + chunk) - first
                let local = Buffers.ArrayPool<float>.Shared.Rent(count * scans)

                try
                    copy first count local
                    let work = newGroupWork scans p
                    let order = Array.init count (fun i -> first + i) |> Array.sortBy (fun v -> struct (key v, v))
                    let mutable start = 0

                    while start < count do
                        let k = key order[start]
                        let mutable size = 1

                        while size < Lanes && start + size < count && key order[start + size] = k do
                            size <- size + 1

                        loadGroup local first scans order start size work.Y
                        fitGroup (model order[start]) p work
                        onGroup order start size work
                        start <- start + size
                finally
                    Buffers.ArrayPool<float>.Shared.Return local
        )
        |> ignore

    /// Per-voxel sums from which nilearn's Yule-Walker estimate follows once the grand mean is known: the
    /// voxel mean μ, and for each lag k, Σ e_t e_{t+k}, Σ_{t<n−k} e_t, Σ_{t≥k} e_t with e = r − μ; for the
    /// lanes of a group at once, into dest (width values per lane, lane-major).
    let private lagSums (order: int) (r: Vector256<float>[]) (dest: Vector256<float>[]) =
        let n = r.Length
        let mutable s = Vector256<float>.Zero

        for t in 0 .. n - 1 do
            s <- s + r[t]

        let mu = s / Vector256.Create(float n)
        dest[0] <- mu

        for k in 0..order do
            let mutable c = Vector256<float>.Zero
            let mutable head = Vector256<float>.Zero
            let mutable tail = Vector256<float>.Zero

            for t in 0 .. n - 1 - k do
                let e0 = r[t] - mu
                let ek = r[t + k] - mu
                c <- c + e0 * ek
                head <- head + e0
                tail <- tail + ek

            dest[1 + 3 * k] <- c
            dest[2 + 3 * k] <- head
            dest[3 + 3 * k] <- tail

    /// nilearn's _yule_walker from the lag sums: centre on the grand mean m of all residuals, divide lag k by
    /// (n − k)·n, solve the Toeplitz system.
    let private yuleWalker (order: int) (n: int) (grandMean: float) (sums: float[]) (offset: int) : float[] =
        let d = sums[offset] - grandMean

        let r =
            Array.init (order + 1) (fun k ->
                let c, head, tail =
                    sums[offset + 1 + 3 * k], sums[offset + 2 + 3 * k], sums[offset + 3 + 3 * k]

                let nk = float (n - k)
                (c + d * (head + tail) + nk * d * d) / (nk * float n))
        // A voxel whose residuals all equal the grand mean (a constant voxel outside the brain) has no
        // autocorrelation to estimate; nilearn returns NaN there, we return 0 (no whitening).
        if r[0] = 0.0 then
            Array.zeroCreate order
        else
            Numerics.yuleWalkerSolve r

    /// k-means (k-means++ seeding with greedy local trials, Lloyd iterations, best of nInit) of points
    /// (count × dim, row-major); returns the centre index of each point and the centres. Deterministic in seed.
    let internal kMeans (seed: int) (k: int) (nInit: int) (dim: int) (points: float[]) : int[] * float[] =
        let count = points.Length / dim

        let dist2 (a: float[]) ai (b: float[]) bi =
            let mutable s = 0.0

            for j in 0 .. dim - 1 do
                let d = a[ai * dim + j] - b[bi * dim + j]
                s <- s + d * d

            s

        let variance =
            Array.init dim (fun j ->
                let xs = Array.init count (fun i -> points[i * dim + j])
                let m = Array.average xs
                xs |> Array.averageBy (fun x -> (x - m) * (x - m)))
            |> Array.average

        let tol = 1e-4 * variance
        let rng = Random seed
        let trials = 2 + int (log (float k))

        let run () =
            let centres = Array.zeroCreate (k * dim)
            let first = rng.Next count
            Array.blit points (first * dim) centres 0 dim
            let closest = Array.init count (fun i -> dist2 points i centres 0)

            for c in 1 .. k - 1 do
                let total = Array.sum closest
                let mutable bestPot = infinity
                let mutable best = 0
                let mutable bestClosest = closest

                for _ in 1..trials do
                    let target = rng.NextDouble() * total
                    let mutable acc = 0.0
                    let mutable pick = count - 1
                    let mutable found = false

                    for i in 0 .. count - 1 do
                        if not found then
                            acc <- acc + closest[i]

                            if acc > target then
                                pick <- i
                                found <- true

                    let cand = Array.init count (fun i -> min closest[i] (dist2 points i points pick))
                    let pot = Array.sum cand

                    if pot < bestPot then
                        bestPot <- pot
                        best <- pick
                        bestClosest <- cand

                Array.blit points (best * dim) centres (c * dim) dim
                Array.blit bestClosest 0 closest 0 count

            let assign = Array.zeroCreate count

            // Each point to its nearest centre (the first on ties, as scikit-learn's Lloyd step).
            let assignNearest () =
                for i in 0 .. count - 1 do
                    let mutable bd = infinity

                    for c in 0 .. k - 1 do
                        let d = dist2 points i centres c

                        if d < bd then
                            bd <- d
                            assign[i] <- c

            let mutable shift = infinity
            let mutable iter = 0

            while shift > tol && iter < 300 do
                assignNearest ()

                let sums = Array.zeroCreate (k * dim)
                let counts = Array.zeroCreate k

                for i in 0 .. count - 1 do
                    counts[assign[i]] <- counts[assign[i]] + 1

                    for j in 0 .. dim - 1 do
                        sums[assign[i] * dim + j] <- sums[assign[i] * dim + j] + points[i * dim + j]

                shift <- 0.0

                for c in 0 .. k - 1 do
                    if counts[c] > 0 then
                        for j in 0 .. dim - 1 do
                            let nc = sums[c * dim + j] / float counts[c]
                            shift <- shift + (nc - centres[c * dim + j]) ** 2.0
                            centres[c * dim + j] <- nc

                iter <- iter + 1

            assignNearest ()

            let inertia =
                Array.init count (fun i -> dist2 points i centres assign[i]) |> Array.sum

            inertia, assign, centres

        let runs = Array.init (max 1 nInit) (fun _ -> run ())
        let _, assign, centres = runs |> Array.minBy (fun (inertia, _, _) -> inertia)
        assign, centres

    /// tr R, tr(D·R) and tr(D·R·D·R) for the residual-forming matrix R = I − X·pinv(X) and the symmetric lag-1
    /// matrix D (ones beside the diagonal), as Worsley et al. (2002) correct residual autocorrelations.
    let private residualTraces (x: float[,]) =
        let n = Array2D.length1 x
        let h = Numerics.multiply x (Numerics.pinv x)
        let r = Array2D.init n n (fun i j -> (if i = j then 1.0 else 0.0) - h[i, j])

        let dr =
            Array2D.init n n (fun i j ->
                (if i > 0 then r[i - 1, j] else 0.0) + (if i < n - 1 then r[i + 1, j] else 0.0))

        let mutable trR = 0.0
        let mutable trDR = 0.0
        let mutable trDRDR = 0.0

        for i in 0 .. n - 1 do
            trR <- trR + r[i, i]
            trDR <- trDR + dr[i, i]

            for j in 0 .. n - 1 do
                trDRDR <- trDRDR + dr[i, j] * dr[j, i]

        struct (trR, trDR, trDRDR)

    /// numpy.round(x, 2): half to even on x·100.
    let private round2 (x: float) =
        Math.Round(x * 100.0, MidpointRounding.ToEven) / 100.0

    let private dataLength (data: VoxelData) =
        match data with
        | Float64 a -> a.Length
        | Float32 a -> a.Length

    /// Validates shapes; voxel data must hold scans × voxels values.
    let private checkShapes (design: float[,]) (data: VoxelData) =
        let n = Array2D.length1 design
        let length = dataLength data

        if n = 0 || Array2D.length2 design = 0 then
            invalidArg (nameof design) "the design has no rows or no columns"

        if length % n <> 0 then
            invalidArg (nameof data) $"{length} values are not a whole number of {n}-scan voxel series"

        length / n

    /// The fit of the first `voxels` series of data (the rest of the array is ignored), voxel-major (as fit) or
    /// time-major (scan t's values of the voxels at t·voxels): FirstLevel reads a run volume by volume into a
    /// time-major store sized for the candidate voxels and compacts the masked ones to its front.
    let internal fitPrefix
        (options: GlmOptions)
        (design: float[,])
        (data: VoxelData)
        (timeMajor: bool)
        (voxels: int)
        : GlmFit =
        let n, p = Array2D.length1 design, Array2D.length2 design
        let copy = copyChunk data timeMajor voxels n
        let length = dataLength data

        if voxels < 0 || int64 voxels * int64 n > int64 length then
            invalidArg (nameof voxels) $"{voxels} voxels of {n} scans need more than the {length} values given"

        if options.Bins < 1 then
            invalidArg (nameof options) $"bins must be at least 1, not {options.Bins}"

        let order =
            match options.NoiseModel with
            | Ols -> 0
            | Ar o when o >= 1 -> o
            | Ar o -> invalidArg (nameof options) $"the AR order must be at least 1, not {o}"
            | Ar1Exact
            | NipyAr1
            | Ar1BiasCorrected -> 1

        if order > 0 && n <= order then
            invalidArg (nameof design) $"{n} scans are too few for an AR({order}) model"

        let mutable sumAbs = 0.0

        for t in 0 .. n - 1 do
            for j in 0 .. p - 1 do
                sumAbs <- sumAbs + abs design[t, j]

        let dfModel = Numerics.matrixRank (sumAbs * Numerics.eps) design
        let dfResiduals = float (n - dfModel)

        if options.ScaleFirstScan && order > 1 then
            invalidArg (nameof options) "ScaleFirstScan applies to AR(1) models only"

        let prepare = prepare options.ScaleFirstScan
        let ols = prepare design [||]
        let betas = Array.zeroCreate (p * voxels)
        let dispersion = Array.zeroCreate voxels
        let sse = Array.zeroCreate voxels
        let logL = Array.zeroCreate voxels

        let diagnostics =
            if options.KeepDiagnostics then
                Some
                    { Residuals = Array.zeroCreate (n * voxels)
                      Predicted = Array.zeroCreate (n * voxels)
                      WhitenedResiduals = Array.zeroCreate (n * voxels)
                      RSquare = Array.zeroCreate voxels }
            else
                None

        // Stores the fit of the voxels order[start .. start + count − 1] (one per lane).
        let record (order: int[]) (start: int) (count: int) (work: GroupWork) =
            let bs = lanes work.B
            let ys = lanes work.Y
            let ws = lanes work.W
            let rs = lanes work.R

            for k in 0 .. count - 1 do
                let v = order[start + k]

                for j in 0 .. p - 1 do
                    betas[v * p + j] <- bs[j * Lanes + k]

                let mutable s = 0.0

                for t in 0 .. n - 1 do
                    let e = rs[t * Lanes + k]
                    s <- s + e * e

                sse[v] <- s
                // nilearn divides by n − n_columns here, although df_residuals uses the rank.
                dispersion[v] <- s / float (n - p)
                logL[v] <- -0.5 * float n * (Math.Log(2.0 * Math.PI * s / float n) + 1.0)

                match diagnostics with
                | Some d ->
                    let mutable meanP = 0.0
                    let mutable meanW = 0.0

                    for t in 0 .. n - 1 do
                        let wt = ws[t * Lanes + k]
                        let pred = wt - rs[t * Lanes + k]
                        d.Predicted[v * n + t] <- pred
                        d.Residuals[v * n + t] <- ys[t * Lanes + k] - pred
                        d.WhitenedResiduals[v * n + t] <- rs[t * Lanes + k]
                        meanP <- meanP + pred
                        meanW <- meanW + wt

                    meanP <- meanP / float n
                    meanW <- meanW / float n
                    let mutable varP = 0.0
                    let mutable varW = 0.0

                    for t in 0 .. n - 1 do
                        varP <- varP + (d.Predicted[v * n + t] - meanP) ** 2.0
                        varW <- varW + (ws[t * Lanes + k] - meanW) ** 2.0

                    d.RSquare[v] <- varP / varW
                | None -> ()

        let result labels models arCoefficients =
            { Scans = n
              Voxels = voxels
              Regressors = p
              Labels = labels
              Models = models
              Betas = betas
              Dispersion = dispersion
              Sse = sse
              LogLikelihood = logL
              ArCoefficients = arCoefficients
              DfTotal = n
              DfModel = dfModel
              DfResiduals = dfResiduals
              Diagnostics = diagnostics }

        if order = 0 then
            forEachGroup options copy voxels n p (fun _ -> 0) (fun _ -> ols) record

            result
                (Array.zeroCreate voxels)
                [| { Label = "0.0"
                     Rho = [||]
                     NormalizedCovariance = ols.Covariance } |]
                [||]
        else
            // Pass 1: OLS residuals reduced to lag sums per voxel (no residual array is kept).
            let width = 1 + 3 * (order + 1)
            let sums = Array.zeroCreate (width * voxels)

            forEachGroup options copy voxels n p (fun _ -> 0) (fun _ -> ols) (fun voxelOrder start count work ->
                let dest = Array.zeroCreate<Vector256<float>> width
                lagSums order work.R dest
                let ds = lanes dest

                for k in 0 .. count - 1 do
                    let v = voxelOrder[start + k]

                    for i in 0 .. width - 1 do
                        sums[v * width + i] <- ds[i * Lanes + k])
            // The grand mean of all residuals, summed in voxel order whatever the threads.
            let mutable total = 0.0

            for v in 0 .. voxels - 1 do
                total <- total + sums[v * width]

            let grandMean = total / float voxels
            let raw = Array.zeroCreate (order * voxels)
            let traces = lazy (residualTraces design)

            for v in 0 .. voxels - 1 do
                match options.NoiseModel with
                | Ar1BiasCorrected ->
                    let o = v * width
                    let mu = sums[o]

                    let lag k =
                        sums[o + 1 + 3 * k]
                        + mu * (sums[o + 2 + 3 * k] + sums[o + 3 + 3 * k])
                        + float (n - k) * mu * mu
                    // E[e'e] = c0·tr R + c1·tr(D R), E[e'De] = c0·tr(D R) + c1·tr(D R D R), D the symmetric lag-1
                    // matrix (e'De = 2 Σ e_t e_{t+1}); solved for (c0, c1), ρ = c1/c0.
                    let struct (m00, m01, m11) = traces.Value
                    let s0, s1 = lag 0, 2.0 * lag 1
                    let det = m00 * m11 - m01 * m01
                    let c0 = (m11 * s0 - m01 * s1) / det
                    let c1 = (m00 * s1 - m01 * s0) / det
                    raw[v] <- if c0 = 0.0 then 0.0 else c1 / c0
                | NipyAr1 ->
                    // Sums of r_t r_{t+k} without demeaning: the lag sums re-centred on 0.
                    let o = v * width
                    let mu = sums[o]

                    let lag k =
                        sums[o + 1 + 3 * k]
                        + mu * (sums[o + 2 + 3 * k] + sums[o + 3 + 3 * k])
                        + float (n - k) * mu * mu

                    raw[v] <- if lag 0 = 0.0 then 0.0 else lag 1 / lag 0
                | _ ->
                    let rho = yuleWalker order n grandMean sums (v * width)
                    Array.blit rho 0 raw (v * order) order
            // Per voxel: the coefficients used and the label.
            let used, labelText =
                match options.NoiseModel with
                | Ar1Exact -> raw, Array.init voxels (fun v -> pythonRepr raw[v])
                | NipyAr1
                | Ar1BiasCorrected
                | Ar 1 ->
                    let bins = float options.Bins
                    let q = raw |> Array.map (fun r -> float (int (r * bins)) * 1.0 / bins)
                    q, q |> Array.map pythonRepr
                | Ols
                | Ar _ ->
                    let k = min options.Bins voxels

                    let assign, centres =
                        if k = voxels then
                            Array.init voxels id, Array.copy raw
                        else
                            kMeans options.RandomState k 10 order raw

                    let centreLabel c =
                        String.Join("_", Array.init order (fun j -> pythonRepr (round2 centres[c * order + j])))

                    let used =
                        Array.init (order * voxels) (fun i -> centres[assign[i / order] * order + i % order])

                    used, Array.init voxels (fun v -> centreLabel assign[v])

            let distinct =
                labelText
                |> Array.distinct
                |> Array.sortWith (fun a b -> String.CompareOrdinal(a, b))

            let index = distinct |> Array.mapi (fun i l -> l, i) |> dict
            let labels = labelText |> Array.map (fun l -> index[l])
            // nilearn fits each label with the coefficients of the first voxel carrying it.
            let firstVoxel = Array.create distinct.Length -1

            for v in voxels - 1 .. -1 .. 0 do
                firstVoxel[labels[v]] <- v

            let rhoOf l =
                Array.sub used (firstVoxel[l] * order) order

            let covariances = Array.zeroCreate distinct.Length

            let modelOf =
                match options.NoiseModel with
                | Ar1Exact ->
                    // One filter per voxel: prepared where the voxel is fitted and dropped after it; only the
                    // regressors × regressors covariance is kept (each label slot is written by its own voxels).
                    fun v ->
                        let m = prepare design (rhoOf labels[v])
                        covariances[labels[v]] <- m.Covariance
                        m
                | _ ->
                    // one pseudo-inverse per label, labels on parallel threads (each writes its own slot)
                    let prepared = Array.zeroCreate distinct.Length

                    Parallel.For(
                        0,
                        distinct.Length,
                        ParallelOptions(MaxDegreeOfParallelism = max 1 options.Threads),
                        fun l -> prepared[l] <- prepare design (rhoOf l)
                    )
                    |> ignore

                    prepared |> Array.iteri (fun l m -> covariances[l] <- m.Covariance)
                    fun v -> prepared[labels[v]]

            // groups of up to four voxels under the same model (one voxel per group for ar1-exact)
            let key =
                match options.NoiseModel with
                | Ar1Exact -> id
                | _ -> fun v -> labels[v]

            forEachGroup options copy voxels n p key modelOf record

            let models =
                Array.init distinct.Length (fun l ->
                    { Label = distinct[l]
                      Rho = rhoOf l
                      NormalizedCovariance = covariances[l] })

            result labels models raw

    /// <summary>Fits the GLM at every voxel as nilearn's <c>run_glm(Y, X, noise_model, bins, random_state)</c>.</summary>
    /// <param name="options">Noise model, bins, seed, chunking and threads (<see cref="GlmOptions.defaults"/>).</param>
    /// <param name="design">X, scans × regressors.</param>
    /// <param name="data">Y, scans × voxels column-major, float64 or float32.</param>
    /// <returns>Labels, one model per label, betas, dispersion and degrees of freedom per voxel.</returns>
    /// <exception cref="System.ArgumentException">Shapes disagree, or the AR order or bins is below 1.</exception>
    let fit (options: GlmOptions) (design: float[,]) (data: VoxelData) : GlmFit =
        fitPrefix options design data false (checkShapes design data)
