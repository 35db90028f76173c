namespace FmriGlm.Core

open System
open System.Globalization

/// <summary>AR(p) noise estimates and the labels nilearn groups voxels by: Yule-Walker coefficients from
/// lag sums, the AR(1) grid, seeded k-means of AR(N) coefficients and nilearn's spelling of the labels.</summary>
module internal ArClustering =

    /// Python's str of a float64 (shortest round trip, "0.0" not "0", "1e-05" not "1E-05"): nilearn's labels.
    let pythonRepr (x: float) : string =
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
    let kMeans (seed: int) (k: int) (nInit: int) (dim: int) (points: float[]) : int[] * float[] =
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
    let internal round2 (x: float) =
        Math.Round(x * 100.0, MidpointRounding.ToEven) / 100.0

    /// Raw AR coefficients of every voxel, order × voxels column-major, from the lag sums of its OLS residuals
    /// (1 + 3·(order + 1) values per voxel, laid out as RegressionKernels.lagSums writes them): nilearn's
    /// Yule-Walker estimate, or for AR(1) nipy's undemeaned ratio or the bias-corrected estimate of Worsley et al.
    let arCoefficients (model: NoiseModel) (order: int) (design: float[,]) (voxels: int) (sums: float[]) : float[] =
        let n = Array2D.length1 design
        let width = 1 + 3 * (order + 1)
        // The grand mean of all residuals, summed in voxel order whatever the threads.
        let mutable total = 0.0

        for v in 0 .. voxels - 1 do
            total <- total + sums[v * width]

        let grandMean = total / float voxels
        let raw = Array.zeroCreate (order * voxels)
        let traces = lazy (residualTraces design)

        // Σ r_t r_{t+k} of voxel v without demeaning: its lag sums re-centred on 0.
        let uncentredLag v k =
            let o = v * width
            let mu = sums[o]

            sums[o + 1 + 3 * k]
            + mu * (sums[o + 2 + 3 * k] + sums[o + 3 + 3 * k])
            + float (n - k) * mu * mu

        for v in 0 .. voxels - 1 do
            match model with
            | Ar1BiasCorrected ->
                let lag = uncentredLag v
                // E[e'e] = c0·tr R + c1·tr(D R), E[e'De] = c0·tr(D R) + c1·tr(D R D R), D the symmetric lag-1
                // matrix (e'De = 2 Σ e_t e_{t+1}); solved for (c0, c1), ρ = c1/c0.
                let struct (m00, m01, m11) = traces.Value
                let s0, s1 = lag 0, 2.0 * lag 1
                let det = m00 * m11 - m01 * m01
                let c0 = (m11 * s0 - m01 * s1) / det
                let c1 = (m00 * s1 - m01 * s0) / det
                raw[v] <- if c0 = 0.0 then 0.0 else c1 / c0
            | NipyAr1 ->
                let lag = uncentredLag v
                raw[v] <- if lag 0 = 0.0 then 0.0 else lag 1 / lag 0
            | _ ->
                let rho = yuleWalker order n grandMean sums (v * width)
                Array.blit rho 0 raw (v * order) order

        raw

    /// Per voxel: the AR coefficients it is whitened with (order × voxels column-major) and its label as nilearn
    /// spells it: the raw estimate (ar1-exact), the estimate truncated to the grid of bins levels (AR(1)), or the
    /// k-means centre, seeded with randomState, of its cluster among min(bins, voxels) clusters (AR(N ≥ 2)).
    let voxelLabels
        (model: NoiseModel)
        (bins: int)
        (randomState: int)
        (order: int)
        (voxels: int)
        (raw: float[])
        : float[] * string[] =
        match model with
        | Ar1Exact -> raw, Array.init voxels (fun v -> pythonRepr raw[v])
        | NipyAr1
        | Ar1BiasCorrected
        | Ar 1 ->
            let levels = float bins
            let q = raw |> Array.map (fun r -> float (int (r * levels)) * 1.0 / levels)
            q, q |> Array.map pythonRepr
        | Ols
        | Ar _ ->
            let k = min bins voxels

            let assign, centres =
                if k = voxels then
                    Array.init voxels id, Array.copy raw
                else
                    kMeans randomState k 10 order raw

            let centreLabel c =
                String.Join("_", Array.init order (fun j -> pythonRepr (round2 centres[c * order + j])))

            let used =
                Array.init (order * voxels) (fun i -> centres[assign[i / order] * order + i % order])

            used, Array.init voxels (fun v -> centreLabel assign[v])
