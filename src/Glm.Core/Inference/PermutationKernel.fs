namespace FmriGlm.Core

open System
open System.Numerics

/// <summary>The arithmetic under <c>Permutation.permutedOls</c>: the seeded streams of sign flips and
/// permutations, the dot-product kernel that scores every permutation of a block at once, nilearn's normalisation
/// and orthonormalisation of targets and confounds, the t quantile of the cluster-forming threshold and the ranks
/// of observed scores in a null distribution.</summary>
module internal PermutationKernel =

    /// Permutations per work item: fixed, so the work split (and so the result) does not depend on threads.
    let blockSize = 32

    /// Voxels per tile of the dot-product kernel.
    let tileVoxels = 512

    let lanes = Vector<float>.Count

    /// Student t inverse survival function (scipy.stats.t.isf) by bisection on the log tails.
    let tIsf (dof: float) (p: float) : float =
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
    type SplitMix =
        val mutable State: uint64
        new(seed: int, k: int64) = { State = (uint64 (uint32 seed) <<< 32) ^^^ (uint64 k * 0x9E3779B97F4A7C15UL) ^^^ 0xD1B54A32D192ED03UL }

        member r.Next() =
            r.State <- r.State + 0x9E3779B97F4A7C15UL
            let mutable z = r.State
            z <- (z ^^^ (z >>> 30)) * 0xBF58476D1CE4E5B9UL
            z <- (z ^^^ (z >>> 27)) * 0x94D049BB133111EBUL
            z ^^^ (z >>> 31)

    /// scipy.ndimage.label's 6-connectivity on a few voxels: union-find over the listed grid indices.

    /// Number of null values strictly below each observed value (the "rank" of nilearn's permuted_ols).
    let ranksBelow (sortedNull: float[]) (value: float) =
        let mutable lo = 0
        let mutable hi = sortedNull.Length

        while lo < hi do
            let mid = (lo + hi) / 2
            if sortedNull[mid] < value then lo <- mid + 1 else hi <- mid

        lo

    /// out[r·tile + j] = Σᵢ w[r·n + i] · y[i·stride + v0 + j] for r &lt; rows (a multiple of 4), j &lt; tile
    /// (a multiple of 2·lanes): 4 rows × 2 vectors of accumulators, fused multiply-adds.
    let kernel (w: float[]) (rows: int) (n: int) (y: float[]) (stride: int) (v0: int) (tile: int) (out: float[]) =
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


    /// t amplifies the rounding of the norm.
    let rec pairwise32 (a: float32[]) (start: int) (count: int) : float32 =
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
    let normalizeFloat32 (y: float32[]) =
        let squares = y |> Array.map (fun a -> a * a)
        let norm = sqrt (pairwise32 squares 0 squares.Length)
        y |> Array.map (fun a -> float (a / norm))

    let normalize (v: float[]) =
        let norm = sqrt (Array.sumBy (fun x -> x * x) v)
        v |> Array.map (fun x -> x / norm)

    /// Columns of U (thin SVD) whose singular value exceeds 1e-12 (nilearn orthonormalize_matrix).
    let orthonormalize (m: float[,]) : float[][] =
        let a = MathNet.Numerics.LinearAlgebra.Matrix<float>.Build.DenseOfArray m
        let svd = a.Svd(true)
        let s = svd.S

        [| for c in 0 .. min (Array2D.length2 m) s.Count - 1 do
               if s[c] > 1e-12 then
                   yield svd.U.Column(c).ToArray() |]

    let residualize (z: float[][]) (v: float[]) =
        let r = Array.copy v

        for zk in z do
            let mutable d = 0.0

            for i in 0 .. v.Length - 1 do
                d <- d + zk[i] * v[i]

            for i in 0 .. v.Length - 1 do
                r[i] <- r[i] - d * zk[i]

        r
