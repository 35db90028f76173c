namespace FmriGlm.Core

open System
open MathNet.Numerics

type RftField =
    | Gaussian
    | TStat of dfd: float
    | FStat of dfn: int * dfd: float
    | ChiSquared of dfn: int
    | Hotelling of dfd: float * k: int

type Smoothness =
    { FwhmVoxels: float[]
      FwhmMm: float[]
      Resels: float[]
      Lkcs: float[] }

type ClusterProbability =
    { P: float
      PerCluster: float
      ExpectedClusters: float
      ExpectedVoxelsPerCluster: float }

module RandomFieldTheory =

    let private fourLog2 = 4.0 * Math.Log 2.0

    // ---------------------------------------------------------------------------------------------------
    // Polynomials and search regions

    let binomial (n: float) (k: float) : float =
        if n <= k || n = 0.0 then 0.0
        elif k = 0.0 then 1.0
        else 1.0 / (SpecialFunctions.Beta(n - k + 1.0, k + 1.0) * (n + 1.0))

    /// Coefficients of the probabilists' Hermite polynomial He_n, highest power first (integers, exact).
    let private hermite (n: int) : float[] =
        // ascending coefficients through He_{m+1} = x He_m − m He_{m−1}
        let mutable previous = [| 1.0 |]
        let mutable current = [| 1.0 |]
        if n >= 1 then current <- [| 0.0; 1.0 |]
        for m in 1 .. n - 1 do
            let next = Array.zeroCreate (m + 2)
            for p in 0 .. m do next[p + 1] <- current[p]
            for p in 0 .. m - 1 do next[p] <- next[p] - float m * previous[p]
            previous <- current
            current <- next
        Array.rev current

    let q (dim: int) (dfd: float) : float[] =
        if dim <= 0 then invalidArg "dim" $"Q is defined only for dim > 0, got {dim}"
        let coeffs = hermite (dim - 1)
        if Double.IsFinite dfd then
            let m = dfd
            for l in 0 .. (dim - 1) / 2 do
                let f =
                    Math.Exp(
                        SpecialFunctions.GammaLn((m + 1.0) / 2.0)
                        - SpecialFunctions.GammaLn((m + 2.0 - float dim + 2.0 * float l) / 2.0)
                        - 0.5 * float (dim - 1 - 2 * l) * Math.Log(m / 2.0)
                    )
                coeffs[2 * l] <- coeffs[2 * l] * f
        coeffs

    let private horner (coeffs: float[]) (x: float) =
        let mutable acc = 0.0
        for c in coeffs do acc <- acc * x + c
        acc

    let rec muSphere (n: int) (j: int) (r: float) : float =
        if j >= n then 0.0
        elif j = n - 1 then 2.0 * Math.Pow(Math.PI, float n / 2.0) * Math.Pow(r, float (n - 1)) / SpecialFunctions.Gamma(float n / 2.0)
        elif (n - 1 - j) % 2 = 0 then
            2.0 * binomial (float (n - 1)) (float j) * muSphere n (n - 1) 1.0 * Math.Pow(r, float j) / muSphere (n - j) (n - j - 1) 1.0
        else 0.0

    let rec muBall (n: int) (j: int) (r: float) : float =
        if j > n then 0.0
        elif j = n then Math.Pow(Math.PI, float n / 2.0) * Math.Pow(r, float n) / SpecialFunctions.Gamma(float n / 2.0 + 1.0)
        else binomial (float n) (float j) * Math.Pow(r, float j) * muBall n n 1.0 / muBall (n - j) (n - j) 1.0

    let sphericalSearch (n: int) (r: float) : float[] = Array.init n (fun j -> muSphere n j r)

    let ballSearch (n: int) (r: float) : float[] = Array.init (n + 1) (fun j -> muBall n j r)

    let volume2ball (vol: float) (d: int) : float[] =
        if d > 0 then ballSearch d (Math.Pow(vol / muBall d d 1.0, 1.0 / float d)) else [| 1.0 |]

    let intrinsicVolumesProduct (a: float[]) (b: float[]) : float[] =
        Array.init (a.Length + b.Length - 1) (fun i ->
            let mutable s = 0.0
            for j in max 0 (i - b.Length + 1) .. min i (a.Length - 1) do s <- s + a[j] * b[i - j]
            s)

    let scaleSpace (region: float[]) (interval: float * float) (kappa: float) : float[] =
        let w1, w2 = interval
        // Siegmund & Worsley (1995), with Worsley's correction of the i + 2j − 1 = 0 term (a log ratio)
        let d = region.Length - 1
        let out = Array.zeroCreate (d + 2)
        out[0] <- region[0]
        for i in 1 .. d + 1 do
            if i < d + 1 then out[i] <- (1.0 / w1 + 1.0 / w2) * region[i] * 0.5
            for j in 0 .. (d - i + 1) / 2 do
                let denom = i + 2 * j - 1
                let f0 =
                    if denom = 0 then Math.Log(w2 / w1)
                    else (Math.Pow(w1, float (-i - 2 * j + 1)) - Math.Pow(w2, float (-i - 2 * j + 1))) / float denom
                let f =
                    f0 * Math.Pow(kappa, float (1 - 2 * j) / 2.0) * (if j % 2 = 0 then 1.0 else -1.0)
                    * SpecialFunctions.Factorial denom
                    / (float (1 - 2 * j) * Math.Pow(4.0 * Math.PI, float j) * SpecialFunctions.Factorial j
                       * SpecialFunctions.Factorial(i - 1))
                out[i] <- out[i] + region[denom] * f
        out

    // ---------------------------------------------------------------------------------------------------
    // EC densities: every field is a Gaussian cone (Taylor & Worsley 2008) with LKCs mu, dfd, a product region,
    // evaluated at a transform of the statistic.

    type private Cone = { Mu: float[]; Dfd: float; Product: float[]; Transform: float -> float }

    let private cone field =
        match field with
        | Gaussian -> { Mu = [| 1.0 |]; Dfd = infinity; Product = [| 1.0 |]; Transform = id }
        | TStat dfd -> { Mu = [| 1.0 |]; Dfd = dfd; Product = [| 1.0 |]; Transform = id }
        | FStat(dfn, dfd) -> { Mu = sphericalSearch dfn 1.0; Dfd = dfd; Product = [| 1.0 |]; Transform = fun x -> sqrt (x * float dfn) }
        | ChiSquared dfn -> { Mu = sphericalSearch dfn 1.0; Dfd = infinity; Product = [| 1.0 |]; Transform = sqrt }
        | Hotelling(dfd, k) -> { Mu = [| 1.0 |]; Dfd = dfd; Product = sphericalSearch k 1.0; Transform = sqrt }

    let private tailProbability dfd (y: float) =
        if Double.IsFinite dfd then
            let struct (logSf, _) = Numerics.tLogTails dfd y
            Math.Exp logSf
        else Numerics.normalSf y

    let private coneEc (c: Cone) (search: float[]) (y: float) =
        let region = intrinsicVolumesProduct search c.Product
        let finite = Double.IsFinite c.Dfd
        let base' = if finite then 1.0 + y * y / c.Dfd else 1.0
        let mutable sum = 0.0
        for k in 0 .. region.Length - 1 do
            if region[k] <> 0.0 then
                let mutable inner = 0.0
                for j in 0 .. c.Mu.Length - 1 do
                    if j + k > 0 && c.Mu[j] <> 0.0 then
                        let term = c.Mu[j] * Math.Pow(2.0 * Math.PI, -float j / 2.0) * horner (q (j + k) c.Dfd) y
                        inner <- inner + (if finite then term * Math.Pow(base', -float j / 2.0) else term)
                sum <- sum + region[k] * Math.Pow(2.0 * Math.PI, -float (k + 1) / 2.0) * inner
        let weight = if finite then Math.Pow(base', -(c.Dfd - 1.0) / 2.0) else Math.Exp(-y * y / 2.0)
        let tail = region[0] * c.Mu[0]
        sum * weight + (if tail <> 0.0 then tailProbability c.Dfd y * tail else 0.0)

    let expectedEc (field: RftField) (search: float[]) (x: float) : float =
        let c = cone field
        coneEc c search (c.Transform x)

    let pvalue (field: RftField) (search: float[]) (x: float) : float = expectedEc field search x

    let ecDensity (field: RftField) (dim: int) (x: float) : float =
        expectedEc field (Array.init (dim + 1) (fun d -> if d = dim then 1.0 else 0.0)) x

    let reselsToLkcs (resels: float[]) : float[] = resels |> Array.mapi (fun d r -> r * Math.Pow(fourLog2, float d / 2.0))

    let lkcsToResels (lkcs: float[]) : float[] = lkcs |> Array.mapi (fun d m -> m / Math.Pow(fourLog2, float d / 2.0))

    // ---------------------------------------------------------------------------------------------------
    // FWE p-values, thresholds and SPM's spm_P_RF

    let private poissonSf (atLeast: int) (mean: float) =
        // P(N ≥ c) for N ~ Poisson(mean)
        let mutable term = Math.Exp(-mean)
        let mutable cdf = 0.0
        for i in 0 .. atLeast - 1 do
            cdf <- cdf + term
            term <- term * mean / float (i + 1)
        max 0.0 (1.0 - cdf)

    let fwePValue (field: RftField) (lkcs: float[]) (x: float) : float =
        let em = lkcs |> Array.mapi (fun d mu -> mu * max (ecDensity field d x) Numerics.eps) |> Array.sum
        poissonSf 1 em

    let fweThreshold (field: RftField) (lkcs: float[]) (alpha: float) : float =
        if not (alpha > 0.0 && alpha < 1.0) then
            raise (GlmInputException("alpha", $"must be in (0, 1), got {alpha}"))
        let p = fwePValue field lkcs
        let mutable hi = 1.0
        while p hi > alpha do hi <- hi * 2.0
        // walk down to the last crossing from above, so a non-monotone low range cannot trap the bisection
        let step = hi / 2000.0
        let mutable lo = hi
        while lo > step && p (lo - step) <= alpha do lo <- lo - step
        let mutable a, b = lo - step, lo
        for _ in 1 .. 100 do
            let m = 0.5 * (a + b)
            if p m > alpha then a <- m else b <- m
        b

    let clusterProbability (field: RftField) (lkcs: float[]) (clusters: int) (kLkc: float) (u: float) : ClusterProbability =
        let lastNonZero = lkcs |> Array.findIndexBack (fun v -> v <> 0.0)
        let mu = lkcs[.. lastNonZero]
        let d = mu.Length - 1
        let rho = Array.init mu.Length (fun j -> max (ecDensity field j u) Numerics.eps)
        let em = Array.fold2 (fun s m r -> s + m * r) 0.0 mu rho
        let en = rho[0] / rho[d]
        let perCluster =
            if kLkc = 0.0 || d = 0 then 1.0
            else
                let beta = Math.Pow(SpecialFunctions.Gamma(float d / 2.0 + 1.0) / en, 2.0 / float d)
                Math.Exp(-beta * Math.Pow(kLkc, 2.0 / float d))
        { P = poissonSf clusters ((em + Numerics.eps) * perCluster)
          PerCluster = perCluster
          ExpectedClusters = em
          ExpectedVoxelsPerCluster = en }

    // ---------------------------------------------------------------------------------------------------
    // Intrinsic volumes of voxel sets (Taylor & Worsley 2007): the Kuhn triangulation of the grid, each cube of
    // 8 neighbouring voxel centres split into 6 tetrahedra along its main diagonal; a simplex counts when all its
    // vertices are in the mask. Simplices are attributed to their lowest vertex.

    // Cube-local vertex n = a + 2b + 4c at offset (a, b, c). Faces of the Kuhn simplices based at 0: chains of
    // bit-subsets.
    let private edges = [| for w in 1 .. 7 -> w |]
    let private triangles = [| for w in 1 .. 7 do for v in 1 .. 6 do if v <> w && (v &&& w) = v then yield (v, w) |]
    let private tetrahedra = [| for v in [ 1; 2; 4 ] do for w in 1 .. 6 do if (v &&& w) = v && v <> w then yield (v, w) |]

    let private dotDiff (g: float[,]) a b o = g[a, b] - g[a, o] - g[o, b] + g[o, o]

    let private edgeLength (g: float[,]) a b = sqrt (g[a, a] - 2.0 * g[a, b] + g[b, b])

    let private triangleArea (g: float[,]) a b c =
        let c00, c01, c11 = dotDiff g b b a, dotDiff g b c a, dotDiff g c c a
        let l = c00 * c11 - c01 * c01
        if l < 0.0 then 0.0 else sqrt l * 0.5

    let private halfPerimeter g a b c = 0.5 * (edgeLength g a b + edgeLength g a c + edgeLength g b c)

    let private tetVolume (g: float[,]) a b c d =
        let c00, c01, c02 = dotDiff g a a d, dotDiff g a b d, dotDiff g a c d
        let c11, c12, c22 = dotDiff g b b d, dotDiff g b c d, dotDiff g c c d
        let v2 = c00 * (c11 * c22 - c12 * c12) - c01 * (c01 * c22 - c02 * c12) + c02 * (c01 * c12 - c11 * c02)
        if v2 <= 0.0 then 0.0 else sqrt v2 / 6.0

    let private halfSurface g a b c d =
        0.5 * (triangleArea g a b c + triangleArea g a c d + triangleArea g b c d + triangleArea g a b d)

    /// (π − dihedral angle at edge s0s1) · length / 2π; t0, t1 the other two vertices.
    let private edgeExteriorAngle (g: float[,]) s0 s1 t0 t1 =
        let a00 = dotDiff g s1 s1 s0
        if a00 <= 0.0 then 0.0
        else
            let a11, a22 = dotDiff g t0 t0 s0, dotDiff g t1 t1 s0
            let a01, a02, a12 = dotDiff g s1 t0 s0, dotDiff g s1 t1 s0, dotDiff g t0 t1 s0
            let p0 = a11 - a01 * a01 / a00
            let p1 = a22 - a02 * a02 / a00
            let inner = a12 - a01 * a02 / a00
            let np = p0 * p1
            if np <= 0.0 then 0.0
            else
                let cos = inner / sqrt np
                let angle = if cos >= 1.0 then 0.0 elif cos <= -1.0 then Math.PI else Math.Acos cos
                (Math.PI - angle) * sqrt a00 / (2.0 * Math.PI)

    let private tetMeanWidth g a b c d =
        edgeExteriorAngle g a b c d + edgeExteriorAngle g a c b d + edgeExteriorAngle g a d b c
        + edgeExteriorAngle g b c a d + edgeExteriorAngle g b d a c + edgeExteriorAngle g c d a b

    /// LKCs [μ0..μ3] of the masked region of an (nx, ny, nz) grid, index i + nx (j + ny k), with the Gram
    /// matrix of the voxel coordinates given by dot. A grid with nz = 1 (or ny = nz = 1) gives the 2D (1D) values.
    let internal lipschitzKilling (nx: int, ny: int, nz: int) (inMask: int -> bool) (dot: int -> int -> float) (geometry: bool) =
        let g = Array2D.zeroCreate<float> 8 8
        let index = Array.zeroCreate<int> 8
        let present = Array.zeroCreate<bool> 8
        let mutable l0, l1, l2, l3 = 0.0, 0.0, 0.0, 0.0
        for k in 0 .. nz - 1 do
            for j in 0 .. ny - 1 do
                for i in 0 .. nx - 1 do
                    let origin = i + nx * (j + ny * k)
                    if inMask origin then
                        l0 <- l0 + 1.0
                        for n in 0 .. 7 do
                            let a, b, c = n &&& 1, (n >>> 1) &&& 1, (n >>> 2) &&& 1
                            let ok = i + a < nx && j + b < ny && k + c < nz
                            index[n] <- if ok then origin + a + nx * (b + ny * c) else -1
                            present[n] <- ok && inMask index[n]
                        if geometry then
                            for r in 0 .. 7 do
                                if present[r] then
                                    for s in 0 .. r do
                                        if present[s] then
                                            let v = dot index[r] index[s]
                                            g[r, s] <- v
                                            g[s, r] <- v
                        for w in edges do
                            if present[w] then
                                l0 <- l0 - 1.0
                                if geometry then l1 <- l1 + edgeLength g 0 w
                        for (v, w) in triangles do
                            if present[v] && present[w] then
                                l0 <- l0 + 1.0
                                if geometry then
                                    l2 <- l2 + triangleArea g 0 v w
                                    l1 <- l1 - halfPerimeter g 0 v w
                        for (v, w) in tetrahedra do
                            if present[v] && present[w] && present[7] then
                                l0 <- l0 - 1.0
                                if geometry then
                                    l3 <- l3 + tetVolume g 0 v w 7
                                    l2 <- l2 - halfSurface g 0 v w 7
                                    l1 <- l1 + tetMeanWidth g 0 v w 7
        [| l0; l1; l2; l3 |]

    let private coordinateDot (coords: float[][]) (a: int) (b: int) =
        let mutable s = 0.0
        for c in coords do s <- s + c[a] * c[b]
        s

    let private flatten3 (m: 'T[,,]) = Array.init m.Length (fun v -> let nx, ny = Array3D.length1 m, Array3D.length2 m in m[v % nx, (v / nx) % ny, v / (nx * ny)])
    let private flatten2 (m: 'T[,]) = Array.init m.Length (fun v -> let nx = Array2D.length1 m in m[v % nx, v / nx])

    let ec3d (mask: bool[,,]) : int =
        let flat = flatten3 mask
        let dims = Array3D.length1 mask, Array3D.length2 mask, Array3D.length3 mask
        let lkc = lipschitzKilling dims (fun v -> flat[v]) (fun _ _ -> 0.0) false
        int lkc[0]

    let ec2d (mask: bool[,]) : int =
        let flat = flatten2 mask
        let lkc = lipschitzKilling (Array2D.length1 mask, Array2D.length2 mask, 1) (fun v -> flat[v]) (fun _ _ -> 0.0) false
        int lkc[0]

    let ec1d (mask: bool[]) : float = (lipschitzKilling (mask.Length, 1, 1) (fun v -> mask[v]) (fun _ _ -> 0.0) false)[0]

    let private checkCoords (what: string) (count: int) (coords: float[][]) =
        if coords.Length = 0 then raise (GlmInputException("coords", "needs at least one coordinate"))
        for c in coords do
            if c.Length <> count then
                raise (GlmInputException("coords", $"shape of mask does not match coordinates ({what})"))

    let lips3d (coords: float[,,][]) (mask: bool[,,]) : float[] =
        let dims = Array3D.length1 mask, Array3D.length2 mask, Array3D.length3 mask
        for c in coords do
            if (Array3D.length1 c, Array3D.length2 c, Array3D.length3 c) <> dims then
                raise (GlmInputException("coords", "shape of mask does not match coordinates"))
        let flat = flatten3 mask
        let fc = coords |> Array.map flatten3
        checkCoords "3d" flat.Length fc
        lipschitzKilling dims (fun v -> flat[v]) (coordinateDot fc) true

    let lips2d (coords: float[,][]) (mask: bool[,]) : float[] =
        let dims = Array2D.length1 mask, Array2D.length2 mask
        for c in coords do
            if (Array2D.length1 c, Array2D.length2 c) <> dims then
                raise (GlmInputException("coords", "shape of mask does not match coordinates"))
        let flat = flatten2 mask
        let fc = coords |> Array.map flatten2
        checkCoords "2d" flat.Length fc
        (lipschitzKilling (fst dims, snd dims, 1) (fun v -> flat[v]) (coordinateDot fc) true)[..2]

    let lips1d (coords: float[][]) (mask: bool[]) : float[] =
        checkCoords "1d" mask.Length coords
        (lipschitzKilling (mask.Length, 1, 1) (fun v -> mask[v]) (coordinateDot coords) true)[..1]

    // ---------------------------------------------------------------------------------------------------
    // Image level: LKCs and smoothness of a mask on a GridShape (Fortran order)

    let private checkMask (shape: GridShape) (mask: bool[]) =
        if mask.Length <> shape.Count then
            raise (GlmInputException("mask", $"has {mask.Length} voxels, the grid {shape.X}x{shape.Y}x{shape.Z} has {shape.Count}"))
        if not (Array.exists id mask) then raise (GlmInputException("mask", "is empty"))

    let maskLkcs (shape: GridShape) (voxelSizes: float[]) (fwhm: float[]) (mask: bool[]) : float[] =
        checkMask shape mask
        if voxelSizes.Length <> 3 || fwhm.Length <> 3 then
            raise (GlmInputException("fwhm", "needs three voxel sizes and three FWHM values (i, j, k)"))
        if fwhm |> Array.exists (fun f -> not (f > 0.0 && Double.IsFinite f)) then
            raise (GlmInputException("fwhm", $"must be positive and finite, got {String.Join(',', fwhm)}"))
        // coordinates in units where the field has unit roughness: LKC_d = resels_d (4 ln 2)^{d/2}
        let scale = Array.init 3 (fun a -> voxelSizes[a] * sqrt fourLog2 / fwhm[a])
        let coordOf v =
            let i, j, k = v % shape.X, (v / shape.X) % shape.Y, v / (shape.X * shape.Y)
            float i * scale[0], float j * scale[1], float k * scale[2]
        let dot a b =
            let ai, aj, ak = coordOf a
            let bi, bj, bk = coordOf b
            ai * bi + aj * bj + ak * bk
        lipschitzKilling (shape.X, shape.Y, shape.Z) (fun v -> mask[v]) dot true

    let unitNormResiduals (residuals: float[][]) : float[][] =
        if residuals.Length < 2 then raise (GlmInputException("residuals", $"needs at least 2 volumes, got {residuals.Length}"))
        let n = residuals[0].Length
        if residuals |> Array.exists (fun r -> r.Length <> n) then raise (GlmInputException("residuals", "volumes differ in size"))
        let norm = Array.init n (fun v -> sqrt (residuals |> Array.sumBy (fun r -> r[v] * r[v])))
        residuals |> Array.map (fun r -> Array.init n (fun v -> if norm[v] > 0.0 then r[v] / norm[v] else 0.0))

    let residualLkcs (shape: GridShape) (mask: bool[]) (residuals: float[][]) : float[] =
        checkMask shape mask
        let u = unitNormResiduals residuals
        if u[0].Length <> shape.Count then raise (GlmInputException("residuals", "do not match the grid of the mask"))
        lipschitzKilling (shape.X, shape.Y, shape.Z) (fun v -> mask[v]) (coordinateDot u) true

    let estimateSmoothness (shape: GridShape) (voxelSizes: float[]) (mask: bool[]) (residuals: float[][]) : Smoothness =
        checkMask shape mask
        if voxelSizes.Length <> 3 then raise (GlmInputException("voxelSizes", "needs three values (i, j, k)"))
        let u = unitNormResiduals residuals
        if u[0].Length <> shape.Count then raise (GlmInputException("residuals", "do not match the grid of the mask"))
        let steps = [| 1; shape.X; shape.X * shape.Y |]
        let extent = [| shape.X; shape.Y; shape.Z |]
        let roughness =
            Array.init 3 (fun a ->
                let mutable sum, pairs = 0.0, 0
                for v in 0 .. shape.Count - 1 do
                    let coord = [| v % shape.X; (v / shape.X) % shape.Y; v / (shape.X * shape.Y) |]
                    if mask[v] && coord[a] + 1 < extent[a] && mask[v + steps[a]] then
                        let w = v + steps[a]
                        let mutable s = 0.0
                        for r in u do
                            let d = r[w] - r[v]
                            s <- s + d * d
                        sum <- sum + s
                        pairs <- pairs + 1
                if pairs = 0 then nan else sum / float pairs)
        // SPM (Kiebel et al. 1999): Λ_aa from the variance of the finite differences of the normalised residuals,
        // FWHM_a = √(4 ln 2 / Λ_aa) in voxels
        let fwhmVox = roughness |> Array.map (fun l -> sqrt (fourLog2 / l))
        let fwhmMm = Array.map2 (*) fwhmVox voxelSizes
        let lkcs = maskLkcs shape voxelSizes fwhmMm mask
        { FwhmVoxels = fwhmVox; FwhmMm = fwhmMm; Resels = lkcsToResels lkcs; Lkcs = lkcs }
