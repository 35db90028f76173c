namespace FmriGlm.Core

open System
open System.Collections.Concurrent
open System.Numerics.Tensors
open System.Threading.Tasks

/// LSA and LSS on arrays (doc: BetaSeriesArrays.fsi). Notation: n scans, K trials T_1..T_K of the condition,
/// R = Σ T_k, A = [T_1..T_K, R], B the nuisance; trial t's LSS design is [T_t, R − T_t, B].
module BetaSeriesArrays =

    let private columns (x: float[,]) =
        Array.init (Array2D.length2 x) (fun j -> Array.init (Array2D.length1 x) (fun i -> x[i, j]))

    let private dot (a: float[]) (b: float[]) =
        TensorPrimitives.Dot(ReadOnlySpan a, ReadOnlySpan b)

    /// nilearn's AR(1) whitening W_ρ: w_0 = u_0 (first scan not rescaled), w_i = u_i − ρ·u_{i−1}.
    let private whiten (rho: float) (u: float[]) =
        Array.init u.Length (fun i -> if i = 0 then u[0] else u[i] - rho * u[i - 1])

    /// (L + L')u: the symmetric lag-1 operator, u'(L + L')v = Σ_{i≥1} (u_i v_{i−1} + u_{i−1} v_i).
    let private lagSymmetric (u: float[]) (dest: float[]) =
        let n = u.Length

        for i in 0 .. n - 1 do
            dest[i] <- (if i > 0 then u[i - 1] else 0.0) + (if i < n - 1 then u[i + 1] else 0.0)

    /// What every trial's two-column problem needs at one whitening level ρ (ρ = 0 is the OLS fit).
    type private Level =
        {
            Rho: float
            /// C = pinv(W B)·(W A), nuisance × (K + 1) row-major: the nuisance part of each A column.
            C: float[]
            /// Gram of the projected columns Ã = M_{WB}·W A: Ã_t'Ã_t, Ã_t'Ã_R per trial, Ã_R'Ã_R.
            Gtt: float[]
            GtR: float[]
            GRR: float
            /// Ã'(L + L')Ã entries as the Gram's (used at ρ = 0 for the residuals' lag-1 sum).
            Htt: float[]
            HtR: float[]
            HRR: float
        }

    /// The shared, voxel-independent part of one condition's LSS.
    type private Shared =
        {
            Scans: int
            Trials: int
            A: float[][]
            B: float[][]
            /// Rows of pinv(B): the OLS nuisance coefficients of a series.
            PinvB: float[][]
            ALast: float[]
            BLast: float[]
        }

    let private makeLevel (s: Shared) (rho: float) : Level =
        let n, k1, nb = s.Scans, s.A.Length, s.B.Length
        let wa = s.A |> Array.map (whiten rho)
        let wb = s.B |> Array.map (whiten rho)
        let pinv = Numerics.pinv (Array2D.init n nb (fun i j -> wb[j][i]))
        let c = Array.zeroCreate (nb * k1)

        for i in 0 .. nb - 1 do
            let row = Array.init n (fun t -> pinv[i, t])

            for j in 0 .. k1 - 1 do
                c[i * k1 + j] <- dot row wa[j]

        let projected =
            Array.init k1 (fun j ->
                let a = Array.copy wa[j]

                for i in 0 .. nb - 1 do
                    let f = c[i * k1 + j]
                    let b = wb[i]

                    for t in 0 .. n - 1 do
                        a[t] <- a[t] - f * b[t]

                a)

        let r = projected[k1 - 1]
        let lagged = projected |> Array.map (fun a -> let d = Array.zeroCreate n in lagSymmetric a d; d)
        let trials = s.Trials

        { Rho = rho
          C = c
          Gtt = Array.init trials (fun t -> dot projected[t] projected[t])
          GtR = Array.init trials (fun t -> dot projected[t] r)
          GRR = dot r r
          Htt = Array.init trials (fun t -> dot projected[t] lagged[t])
          HtR = Array.init trials (fun t -> dot projected[t] lagged[k1 - 1])
          HRR = dot r lagged[k1 - 1] }

    /// First coefficient, and the residual quantities, of trial t's problem in a level's projected space:
    /// columns [Ã_t, Ã_R − Ã_t] (only Ã_t for a single trial), right-hand side q (Ã'y for every A column).
    let inline private solveTrial (single: bool) (l: Level) (t: int) (q: float[]) (k: int) : struct (float * float) =
        if single then
            let b = q[t] / l.Gtt[t]
            struct (b, 0.0)
        else
            let g11 = l.Gtt[t]
            let g12 = l.GtR[t] - g11
            let g22 = l.GRR - 2.0 * l.GtR[t] + g11
            let h1 = q[t]
            let h2 = q[k] - q[t]
            let det = g11 * g22 - g12 * g12
            struct ((g22 * h1 - g12 * h2) / det, (g11 * h2 - g12 * h1) / det)

    let private checkShapes (trials: float[,]) (nuisance: float[,]) =
        let n = Array2D.length1 trials

        if Array2D.length2 trials < 1 then
            invalidArg (nameof trials) "at least one trial regressor is needed"

        if Array2D.length1 nuisance <> n then
            invalidArg (nameof nuisance) $"{Array2D.length1 nuisance} rows for the trials' {n} scans"

        if Array2D.length2 nuisance < 1 then
            invalidArg (nameof nuisance) "at least one nuisance column (the constant) is needed"

        if n <= Array2D.length2 nuisance + 2 then
            invalidArg (nameof trials) $"{n} scans are too few for {Array2D.length2 nuisance + 2} columns"

    let private dataVoxels (n: int) (data: VoxelData) =
        let length =
            match data with
            | Float64 a -> a.Length
            | Float32 a -> a.Length

        if length % n <> 0 then
            invalidArg (nameof data) $"{length} values are not a whole number of {n}-scan series"

        length / n

    /// AR(1) needs the constant in the design's span: residual means are then 0 and nilearn's centring on their
    /// grand mean changes nothing.
    let private checkConstant (trials: float[,]) (nuisance: float[,]) =
        let n, k, nb = Array2D.length1 trials, Array2D.length2 trials, Array2D.length2 nuisance
        let x = Array2D.init n (k + nb) (fun i j -> if j < k then trials[i, j] else nuisance[i, j - k])
        let pinv = Numerics.pinv x
        let coefficients = Array.init (k + nb) (fun j -> Seq.sum (seq { for i in 0 .. n - 1 -> pinv[j, i] }))
        let mutable residual = 0.0

        for i in 0 .. n - 1 do
            let mutable fitted = 0.0

            for j in 0 .. k + nb - 1 do
                fitted <- fitted + x[i, j] * coefficients[j]

            residual <- residual + (1.0 - fitted) ** 2.0

        if sqrt (residual / float n) > 1e-8 then
            invalidArg (nameof nuisance) "AR(1) LSS needs the constant in the design's span (as every first-level design has)"

    let lssPrefix
        (options: GlmOptions)
        (trials: float[,])
        (nuisance: float[,])
        (data: VoxelData)
        (timeMajor: bool)
        (voxels: int)
        : float[] =
        checkShapes trials nuisance
        let n, k = Array2D.length1 trials, Array2D.length2 trials

        let ar =
            match options.NoiseModel with
            | Ols -> false
            | Ar 1 -> true
            | m -> invalidArg (nameof options) $"LSS supports the ols and ar1 noise models, not {Regression.noiseModelName m}"

        if options.ScaleFirstScan then
            invalidArg (nameof options) "LSS does not support ScaleFirstScan"

        if options.Bins < 1 then
            invalidArg (nameof options) $"bins must be at least 1, not {options.Bins}"

        if ar then
            checkConstant trials nuisance

        let t = columns trials
        let r = Array.init n (fun i -> Array.sumBy (fun (c: float[]) -> c[i]) t)
        let a = Array.append t [| r |]
        let b = columns nuisance
        let pinvB = Numerics.pinv nuisance

        let shared =
            { Scans = n
              Trials = k
              A = a
              B = b
              PinvB = Array.init b.Length (fun i -> Array.init n (fun s -> pinvB[i, s]))
              ALast = a |> Array.map (fun c -> c[n - 1])
              BLast = b |> Array.map (fun c -> c[n - 1]) }

        let ols = makeLevel shared 0.0
        let levels = ConcurrentDictionary<int, Lazy<Level>>()
        levels[0] <- Lazy<Level>(fun () -> ols)
        let levelOf (key: int) =
            levels.GetOrAdd(key, fun key -> Lazy<Level>(fun () -> makeLevel shared (float key / float options.Bins))).Value

        let single = k = 1
        let k1, nb = k + 1, b.Length
        let betas = Array.zeroCreate (k * voxels)
        let chunk = max 1 options.ChunkVoxels
        let chunks = (voxels + chunk - 1) / chunk

        let body (c: int) =
            let first = c * chunk
            let count = min voxels (first + chunk) - first
            let series = Array.zeroCreate (count * n)
            ChunkedFit.copyChunk data timeMajor voxels n first count series
            let y = Array.zeroCreate n
            let yr = Array.zeroCreate n
            let zr = Array.zeroCreate n
            let ay = Array.zeroCreate k1
            let az = Array.zeroCreate k1
            let az0 = Array.zeroCreate k1
            let bz = Array.zeroCreate nb
            let beta = Array.zeroCreate nb
            // the right-hand sides Ã'W'W y of the levels this voxel's trials use (few: ρ moves little across trials)
            // this chunk's view of the shared levels, indexed by key + bins (no dictionary look-up per trial)
            let span = 2 * options.Bins + 1
            let local = Array.zeroCreate<Level> span

            let levelAt (key: int) =
                let i = key + options.Bins

                if i < 0 || i >= span then
                    levelOf key
                else
                    if isNull (box local[i]) then
                        local[i] <- levelOf key

                    local[i]

            let cachedKeys = ResizeArray<int>()
            let cachedQ = ResizeArray<float[]>()

            let rhsAt (key: int) (l: Level) (ylast: float) =
                let mutable found = -1

                for i in 0 .. cachedKeys.Count - 1 do
                    if cachedKeys[i] = key then
                        found <- i

                if found >= 0 then
                    cachedQ[found]
                else
                    let rho = l.Rho
                    // <B, y_r>_ρ with B'y_r = 0: −ρ·B'(L+L')y_r − ρ²·b_last·y_last
                    for i in 0 .. nb - 1 do
                        beta[i] <- -rho * bz[i] - rho * rho * shared.BLast[i] * ylast

                    let q = Array.zeroCreate k1

                    for j in 0 .. k1 - 1 do
                        let mutable s = ay[j] - rho * az[j] + rho * rho * (ay[j] - shared.ALast[j] * ylast)

                        for i in 0 .. nb - 1 do
                            s <- s - l.C[i * k1 + j] * beta[i]

                        q[j] <- s

                    cachedKeys.Add key
                    cachedQ.Add q
                    q

            for v in 0 .. count - 1 do
                Array.blit series (v * n) y 0 n
                // y_r = M_B y: the nuisance projected out once for every trial
                Array.blit y 0 yr 0 n

                for i in 0 .. nb - 1 do
                    let coefficient = dot shared.PinvB[i] y
                    let column = b[i]

                    for s in 0 .. n - 1 do
                        yr[s] <- yr[s] - coefficient * column[s]

                for j in 0 .. k1 - 1 do
                    ay[j] <- dot a[j] yr

                let voxel = first + v

                if not ar then
                    for trial in 0 .. k - 1 do
                        let struct (b0, _) = solveTrial single ols trial ay k
                        betas[voxel * k + trial] <- b0
                else
                    lagSymmetric yr zr

                    for j in 0 .. k1 - 1 do
                        az[j] <- dot a[j] zr

                    for i in 0 .. nb - 1 do
                        bz[i] <- dot b[i] zr

                    // Ã'(L+L')y_r at ρ = 0
                    for j in 0 .. k1 - 1 do
                        let mutable s = az[j]

                        for i in 0 .. nb - 1 do
                            s <- s - ols.C[i * k1 + j] * bz[i]

                        az0[j] <- s

                    let yy = dot yr yr
                    let yz = dot yr zr
                    let ylast = yr[n - 1]
                    cachedKeys.Clear()
                    cachedQ.Clear()

                    for trial in 0 .. k - 1 do
                        // OLS residuals r = y_r − X̃b of this trial's model, reduced to Σr² and Σ r_i r_{i−1}
                        let struct (b0, b1) = solveTrial single ols trial ay k

                        let s0, lag2 =
                            if single then
                                yy - b0 * ay[trial], yz - 2.0 * b0 * az0[trial] + b0 * b0 * ols.Htt[trial]
                            else
                                let h1, h2 = ay[trial], ay[k] - ay[trial]
                                let x1, x2 = az0[trial], az0[k] - az0[trial]
                                let htt = ols.Htt[trial]
                                let h12 = ols.HtR[trial] - htt
                                let h22 = ols.HRR - 2.0 * ols.HtR[trial] + htt

                                yy - b0 * h1 - b1 * h2,
                                yz - 2.0 * (b0 * x1 + b1 * x2) + b0 * b0 * htt + 2.0 * b0 * b1 * h12 + b1 * b1 * h22

                        // nilearn's Yule-Walker AR(1): (Σ r_i r_{i−1} / (n−1)) / (Σ r² / n), truncated to the bins
                        let rho = if s0 = 0.0 then 0.0 else 0.5 * lag2 * float n / (float (n - 1) * s0)
                        let key = int (rho * float options.Bins)
                        let level = levelAt key
                        let q = rhsAt key level ylast
                        let struct (w0, _) = solveTrial single level trial q k
                        betas[voxel * k + trial] <- w0

        Parallel.For(0, chunks, ParallelOptions(MaxDegreeOfParallelism = max 1 options.Threads), body)
        |> ignore

        betas

    let lss (options: GlmOptions) (trials: float[,]) (nuisance: float[,]) (data: VoxelData) : float[] =
        let n = Array2D.length1 trials
        lssPrefix options trials nuisance data false (dataVoxels n data)

    let lsa (options: GlmOptions) (trials: float[,]) (nuisance: float[,]) (data: VoxelData) : float[] =
        checkShapes trials nuisance
        let n, k, nb = Array2D.length1 trials, Array2D.length2 trials, Array2D.length2 nuisance
        let design = Array2D.init n (k + nb) (fun i j -> if j < k then trials[i, j] else nuisance[i, j - k])
        let fit = Regression.fit options design data
        let p = k + nb
        Array.init (k * fit.Voxels) (fun i -> fit.Betas[(i / k) * p + i % k])
