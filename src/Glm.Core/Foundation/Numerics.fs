/// Numerical building blocks of the GLM: numpy-compatible pseudo-inverse and rank, the incomplete beta function
/// with both tails kept precise, Student t / Fisher F / normal tails and their inverses, Yule-Walker estimates.
/// Internal: the public modules (Regression, Contrast) expose the meaning, not these helpers.
module internal FmriGlm.Core.Numerics

open System
open MathNet.Numerics
open MathNet.Numerics.LinearAlgebra

/// Machine epsilon of float64 (numpy.finfo(float64).eps).
let eps = 2.220446049250313e-16

/// Singular values of a rows × columns matrix, largest first.
let singularValues (a: float[,]) : float[] =
    let m = Matrix<float>.Build.DenseOfArray a
    m.Svd(false).S.ToArray()

/// Thin SVD A = U·diag(S)·Vᵀ with k = min(n, p) columns in U: a thin QR first, then the SVD of the small R, so that
/// a long run never forms MathNet's full n × n U (which made a 1000-scan design take seconds).
let thinSvd (a: Matrix<float>) : Matrix<float> * Vector<float> * Matrix<float> =
    // a non-finite or overflowing entry makes the SVD iterate without converging: refused before it starts
    if not (Double.IsFinite(a.Enumerate() |> Seq.sumBy (fun v -> v * v))) then
        raise (GlmInputException("design matrix", "has values that are not finite or too large for a regression (their squares overflow)"))

    if a.RowCount >= a.ColumnCount then
        let qr = a.QR(Factorization.QRMethod.Thin)
        let svd = qr.R.Svd(true)
        qr.Q * svd.U, svd.S, svd.VT
    else
        // Aᵀ = Q·R, Rᵀ = U·S·Vᵀ, so A = U·S·(Q·V)ᵀ.
        let qr = a.Transpose().QR(Factorization.QRMethod.Thin)
        let svd = qr.R.Transpose().Svd(true)
        svd.U, svd.S, (qr.Q * svd.VT.Transpose()).Transpose()

/// Moore–Penrose pseudo-inverse by SVD with numpy's cut-off (1e-15 × largest singular value).
let pinvMatrix (a: Matrix<float>) : Matrix<float> =
    let u, s, vt = thinSvd a
    let smax = if s.Count = 0 then 0.0 else s.Maximum()
    let cutoff = 1e-15 * smax
    let sInv = s.Map(fun v -> if v > cutoff then 1.0 / v else 0.0)

    vt.TransposeThisAndMultiply(Matrix<float>.Build.DiagonalOfDiagonalVector sInv)
    * u.Transpose()

/// Moore-Penrose pseudo-inverse (columns × rows) as numpy.linalg.pinv: singular values at or below
/// rcond·σmax with rcond = 1e-15 are treated as zero, so rank-deficient designs give minimum-norm solutions.
let pinv (a: float[,]) : float[,] =
    (pinvMatrix (Matrix<float>.Build.DenseOfArray a)).ToArray()

/// numpy.linalg.matrix_rank(a, tol): the number of singular values above tol.
let matrixRank (tol: float) (a: float[,]) : int =
    singularValues a |> Array.filter (fun s -> s > tol) |> Array.length

/// a · bᵀ for row-major matrices (a: n × k, b: m × k).
let multiplyTransposed (a: float[,]) (b: float[,]) : float[,] =
    let n, k, m = Array2D.length1 a, Array2D.length2 a, Array2D.length1 b

    Array2D.init n m (fun i j ->
        let mutable s = 0.0

        for t in 0 .. k - 1 do
            s <- s + a[i, t] * b[j, t]

        s)

/// a · b for row-major matrices.
let multiply (a: float[,]) (b: float[,]) : float[,] =
    let n, k, m = Array2D.length1 a, Array2D.length2 a, Array2D.length2 b

    Array2D.init n m (fun i j ->
        let mutable s = 0.0

        for t in 0 .. k - 1 do
            s <- s + a[i, t] * b[t, j]

        s)

/// The symmetric square root of the inverse of a symmetric positive definite matrix (scipy's sqrtm(inv(a))
/// for such matrices), through its eigendecomposition.
let inverseSqrtSymmetric (a: float[,]) : float[,] =
    let m = Matrix<float>.Build.DenseOfArray a
    let evd = m.Evd(Symmetricity.Symmetric)
    let v = evd.EigenVectors
    let values = evd.EigenValues |> Seq.map (fun c -> c.Real) |> Array.ofSeq
    let n = Array2D.length1 a

    Array2D.init n n (fun i j ->
        let mutable s = 0.0

        for k in 0 .. n - 1 do
            s <- s + v[i, k] * v[j, k] / sqrt values[k]

        s)

/// Inverse of a small symmetric positive definite matrix.
let inverse (a: float[,]) : float[,] =
    (Matrix<float>.Build.DenseOfArray a).Inverse().ToArray()

// ---------------------------------------------------------------------------------------------------------
// Log gamma and log beta with the cancellation of large arguments avoided.

/// log(1 + x), accurate for tiny x (.NET has no log1p): the rounding of 1 + x is corrected by x / (u − 1).
let log1p (x: float) : float =
    let u = 1.0 + x

    if u = 1.0 then x
    elif Double.IsInfinity u then Math.Log u
    else Math.Log u * x / (u - 1.0)

/// Stirling series correction log Γ(z) − [(z − ½) log z − z + ½ log 2π], for z ≥ 20.
let private stirlingCorrection (z: float) =
    let z2 = z * z

    (1.0 / 12.0 - (1.0 / 360.0 - (1.0 / 1260.0 - 1.0 / (1680.0 * z2)) / z2) / z2)
    / z

/// log B(a, b). When one argument is large, log Γ(a + b) − log Γ(a) comes from the Stirling series with log1p:
/// the difference of two huge log-gamma values would lose every digit (a t with 1e10 degrees of freedom).
let logBeta (a: float) (b: float) : float =
    let big, small = max a b, min a b

    if big < 20.0 then
        SpecialFunctions.GammaLn a + SpecialFunctions.GammaLn b
        - SpecialFunctions.GammaLn(a + b)
    else
        let s = big + small
        // log Γ(s) − log Γ(big) = (big − ½)·log1p(small/big) + small·log s − small + c(s) − c(big)
        let lgRatio =
            (big - 0.5) * log1p (small / big) + small * Math.Log s - small
            + stirlingCorrection s
            - stirlingCorrection big

        SpecialFunctions.GammaLn small - lgRatio

// ---------------------------------------------------------------------------------------------------------
// Regularised incomplete beta I_x(a, b), both tails, in logs.

/// log of x, given x and y = 1 − x computed independently: log1p(−y) where x is close to 1.
let private logOf (x: float) (y: float) =
    if x > 0.5 then log1p -y else Math.Log x

/// log I_x(a, b) by the continued fraction (modified Lentz), valid and fast for x < (a + 1)/(a + b + 2).
let private logBetaContinuedFraction (a: float) (b: float) (x: float) (y: float) : float =
    if x <= 0.0 then
        -infinity
    else
        let tiny = 1e-300
        let qab, qap, qam = a + b, a + 1.0, a - 1.0
        let mutable c = 1.0
        // 1 − (a+b)x/(a+1); near x = 1 (huge a) written through y to avoid the cancellation.
        let mutable d =
            if x < 0.5 then
                1.0 - qab * x / qap
            else
                (1.0 - b + qab * y) / qap

        if abs d < tiny then
            d <- tiny

        d <- 1.0 / d
        let mutable h = d
        let mutable m = 1
        let mutable converged = false

        while not converged && m < 10_000_000 do
            let fm = float m
            let m2 = 2.0 * fm
            let aa = fm * (b - fm) * x / ((qam + m2) * (a + m2))
            d <- 1.0 + aa * d

            if abs d < tiny then
                d <- tiny

            c <- 1.0 + aa / c

            if abs c < tiny then
                c <- tiny

            d <- 1.0 / d
            h <- h * d * c
            let aa = -(a + fm) * (qab + fm) * x / ((a + m2) * (qap + m2))
            d <- 1.0 + aa * d

            if abs d < tiny then
                d <- tiny

            c <- 1.0 + aa / c

            if abs c < tiny then
                c <- tiny

            d <- 1.0 / d
            let delta = d * c
            h <- h * delta

            if abs (delta - 1.0) < 1e-16 then
                converged <- true

            m <- m + 1

        a * logOf x y + b * logOf y x - logBeta a b - Math.Log a + Math.Log h

/// log I_x(a, b) (lower tail), with y = 1 − x given separately so that neither tail loses precision.
let logBetaLower (a: float) (b: float) (x: float) (y: float) : float =
    if Double.IsNaN x || Double.IsNaN y then
        nan
    elif x <= 0.0 then
        -infinity
    elif y <= 0.0 then
        0.0
    elif x < (a + 1.0) / (a + b + 2.0) then
        logBetaContinuedFraction a b x y
    else
        log1p (-Math.Exp(logBetaContinuedFraction b a y x))

/// log(1 − I_x(a, b)) (upper tail) = log I_y(b, a).
let logBetaUpper (a: float) (b: float) (x: float) (y: float) : float = logBetaLower b a y x

// ---------------------------------------------------------------------------------------------------------
// Distribution tails, in logs: log p (survival) and log q (distribution function), both precise.

/// log Φ(−z), the normal survival function, precise far beyond the float64 underflow of Φ(−z) itself.
let normalLogSf (z: float) : float =
    if z < 30.0 then
        Math.Log(0.5 * SpecialFunctions.Erfc(z / Math.Sqrt 2.0))
    else
        // Asymptotic (Mills ratio) series; at z ≥ 30 its terms beyond 1/z¹⁰ are below 1e-17.
        let w = 1.0 / (z * z)

        let series =
            1.0 - w * (1.0 - 3.0 * w * (1.0 - 5.0 * w * (1.0 - 7.0 * w * (1.0 - 9.0 * w))))

        -0.5 * z * z - Math.Log z - 0.5 * Math.Log(2.0 * Math.PI) + Math.Log series

/// Student t with dof degrees of freedom: struct (log sf, log cdf) at t (scipy.stats.t.sf / cdf).
let tLogTails (dof: float) (t: float) : struct (float * float) =
    if Double.IsNaN t then
        struct (nan, nan)
    elif t = 0.0 then
        struct (Math.Log 0.5, Math.Log 0.5)
    elif dof >= 1e5 then
        // Hill (1970, CACM algorithm 396) normalising transformation: the continued fraction converges slowly
        // and loses digits near its switch-over when dof/2 is huge; this is exact to O(dof⁻³).
        let a = dof - 0.5
        let b = 48.0 * a * a
        let z0 = Math.Sqrt(a * log1p (t * t / dof))
        let z2 = z0 * z0

        let z =
            z0 + (z2 + 3.0) * z0 / b
            - (((4.0 * z2 + 33.0) * z2 + 240.0) * z2 + 855.0) * z0
              / (10.0 * b * (b + 0.8 * z2 * z2 + 100.0))

        let logSmall = normalLogSf z
        let logLarge = log1p (-Math.Exp logSmall)

        if t > 0.0 then
            struct (logSmall, logLarge)
        else
            struct (logLarge, logSmall)
    else
        // x = ν/(ν + t²), y = t²/(ν + t²), through r = ν/t² so that t² overflowing to ∞ gives x = 0.
        let r = dof / (t * t)
        let x, y = r / (1.0 + r), 1.0 / (1.0 + r)
        let logSmall = Math.Log 0.5 + logBetaLower (dof / 2.0) 0.5 x y
        let logLarge = log1p (-Math.Exp logSmall)

        if t > 0.0 then
            struct (logSmall, logLarge)
        else
            struct (logLarge, logSmall)

/// Fisher F with (dfNum, dfDen) degrees of freedom: struct (log sf, log cdf) at f (scipy.stats.f.sf / cdf).
let fLogTails (dfNum: float) (dfDen: float) (f: float) : struct (float * float) =
    if Double.IsNaN f then
        struct (nan, nan)
    elif f <= 0.0 then
        struct (0.0, -infinity)
    else
        // x = d1·f/(d1·f + d2), y = d2/(d1·f + d2), through r = d2/(d1·f).
        let r = dfDen / (dfNum * f)
        let x, y = 1.0 / (1.0 + r), r / (1.0 + r)
        struct (logBetaUpper (dfNum / 2.0) (dfDen / 2.0) x y, logBetaLower (dfNum / 2.0) (dfDen / 2.0) x y)

let private logSqrt2Pi = 0.5 * Math.Log(2.0 * Math.PI)

/// Φ(z), the normal distribution function.
let normalCdf (z: float) : float =
    0.5 * SpecialFunctions.Erfc(-z / Math.Sqrt 2.0)

/// Φ(−z), the normal survival function.
let normalSf (z: float) : float =
    0.5 * SpecialFunctions.Erfc(z / Math.Sqrt 2.0)

/// Φ⁻¹(1 − p) (scipy.stats.norm.isf) for 0 < p < 1.
let normalIsf (p: float) : float =
    Math.Sqrt 2.0 * SpecialFunctions.ErfcInv(2.0 * p)

/// Φ⁻¹(1 − exp logP) for log p ≤ log ½: z ≥ 0, finite even when p underflows float64.
let normalIsfOfLog (logP: float) : float =
    if Double.IsNaN logP then
        nan
    elif Double.IsNegativeInfinity logP then
        infinity
    elif logP > -700.0 then
        normalIsf (Math.Exp logP)
    else
        // Newton on log Φ(−z) = logP; the derivative of log Φ(−z) is −φ(z)/Φ(−z).
        let mutable z = Math.Sqrt(-2.0 * logP)

        for _ in 1..30 do
            let lsf = normalLogSf z
            let slope = -Math.Exp(-0.5 * z * z - logSqrt2Pi - lsf)
            z <- z - (lsf - logP) / slope

        z

// ---------------------------------------------------------------------------------------------------------
// Yule-Walker

/// Solves the Toeplitz Yule-Walker system for AR coefficients from autocovariances r[0..order].
let yuleWalkerSolve (r: float[]) : float[] =
    let order = r.Length - 1

    if order = 1 then
        [| r[1] / r[0] |]
    else
        let t = Matrix<float>.Build.Dense(order, order, fun i j -> r[abs (i - j)])
        let rhs = Vector<float>.Build.Dense(order, fun i -> r[i + 1])
        t.Solve(rhs).ToArray()
