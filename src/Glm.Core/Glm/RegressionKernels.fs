namespace FmriGlm.Core

open System
open System.Runtime.InteropServices
open System.Runtime.Intrinsics

/// <summary>The per-voxel numerics of the GLM fit: whitened designs and their pseudo-inverses, and the SIMD
/// kernels that fit four voxels at once (one per lane of a Vector256) and reduce their residuals to lag sums.</summary>
module internal RegressionKernels =

    /// Whitened design, its pseudo-inverse and covariance for one AR filter.
    type Prepared =
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

    let prepare (scaleFirst: bool) (x: float[,]) (rho: float[]) : Prepared =
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

    /// Lanes of a group: four voxels are fitted side by side, one per SIMD lane of a Vector256.
    [<Literal>]
    let Lanes = 4

    /// Work buffers of one group of voxels, one Vector256 (a value per lane) per scan or regressor.
    type GroupWork =
        { Y: Vector256<float>[]
          W: Vector256<float>[]
          R: Vector256<float>[]
          B: Vector256<float>[] }

    let newGroupWork (scans: int) (p: int) =
        { Y = Array.zeroCreate scans
          W = Array.zeroCreate scans
          R = Array.zeroCreate scans
          B = Array.zeroCreate p }

    /// The lanes of a Vector256 array seen as scalars: lane k of element t is at t·Lanes + k.
    let lanes (a: Vector256<float>[]) : Span<float> =
        MemoryMarshal.Cast<Vector256<float>, float>(Span a)

    /// Fits the voxels of one group under one model: whitened data (nilearn's ARModel.whiten), betas pinv(Xw)·w,
    /// whitened residuals. Each lane runs the scalar loop of its voxel, summing over scans in scan order, so a
    /// voxel's results do not depend on the voxels that share its group (nor on the thread count).
    let fitGroup (m: Prepared) (p: int) (g: GroupWork) =
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

    /// Per-voxel sums from which nilearn's Yule-Walker estimate follows once the grand mean is known: the
    /// voxel mean μ, and for each lag k, Σ e_t e_{t+k}, Σ_{t<n−k} e_t, Σ_{t≥k} e_t with e = r − μ; for the
    /// lanes of a group at once, into dest (width values per lane, lane-major).
    let lagSums (order: int) (r: Vector256<float>[]) (dest: Vector256<float>[]) =
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
