namespace FmriGlm.Core

open System

type MixedEffectsFit =
    { Beta: float[,]
      V2: float[]
      Fitted: float[,] }

type MfxStat =
    { T: float[]
      F: float[]
      Var: float[]
      Effect: float[] }

type TwoLevelGlm = { Beta: float[,]; S2: float[]; Dof: float }

type MixedEffectsSecondLevelFit =
    { Design: DesignMatrix
      NIter: int
      Model: MixedEffectsFit
      Effects: float[,]
      Variances: float[,] }

module MixedEffects =

    let private rows (a: float[,]) = Array2D.length1 a
    let private cols (a: float[,]) = Array2D.length2 a

    /// a · column t of b, as a new vector.
    let private times (a: float[,]) (b: float[]) =
        Array.init (rows a) (fun i ->
            let mutable s = 0.0

            for k in 0 .. cols a - 1 do
                s <- s + a[i, k] * b[k]

            s)

    let private mean (a: float[]) = Array.sum a / float a.Length

    /// nipy's check_arrays: same shapes, no negative variance.
    let private checkArrays (y: float[,]) (v1: float[,]) =
        if rows y <> rows v1 || cols y <> cols v1 then
            raise (GlmInputException("V1", $"shape {rows v1}×{cols v1} differs from Y's {rows y}×{cols y}"))

        for i in 0 .. rows v1 - 1 do
            for j in 0 .. cols v1 - 1 do
                if v1[i, j] < 0.0 then
                    raise (GlmInputException("V1", $"a negative variance has been provided ({v1[i, j]} at subject {i}, test {j})"))

    let private checkDesign (x: float[,]) (y: float[,]) =
        if rows x <> rows y then
            raise (GlmInputException("X", $"{rows x} rows for {rows y} samples: X and Y must have the same numbers of rows"))

    let tStat (y: float[,]) : float[] =
        let n = rows y

        Array.init (cols y) (fun j ->
            let c = y[*, j]
            let m = mean c
            let sd = sqrt (c |> Array.averageBy (fun v -> (v - m) * (v - m)))
            m / sd * sqrt (float (n - 1)))

    /// One test's EM (nipy's fit and _one_step): returns beta, V2 and X·beta.
    let private emOne (x: float[,]) (pinvX: float[,]) (nIter: int) (y: float[]) (v1: float[]) =
        let mutable beta = times pinvX y
        let mutable fitted = times x beta
        let mutable v2 = Array.map2 (fun a b -> (a - b) * (a - b)) y fitted |> mean
        let n = y.Length
        let expected = Array.zeroCreate n
        let cvar = Array.zeroCreate n

        for _ in 1..nIter do
            // E step: the posterior mean and variance of each subject's true effect.
            for i in 0 .. n - 1 do
                let prec = 1.0 / (v2 + v1[i])
                expected[i] <- prec * (v2 * y[i] + v1[i] * fitted[i])
                cvar[i] <- v1[i] * v2 * prec
            // M step.
            beta <- times pinvX expected
            fitted <- times x beta
            v2 <- (Array.map2 (fun a b -> (a - b) * (a - b)) expected fitted |> mean) + mean cvar

        beta, v2, fitted

    let private fitColumns (x: float[,]) (nIter: int) (n: int) (tests: int) (column: int -> float[] * float[]) =
        let pinvX = Numerics.pinv x
        let p = cols x
        let beta = Array2D.zeroCreate p tests
        let v2 = Array.zeroCreate tests
        let fitted = Array2D.zeroCreate n tests

        for j in 0 .. tests - 1 do
            let y, v1 = column j
            let b, s, f = emOne x pinvX nIter y v1
            v2[j] <- s

            for r in 0 .. p - 1 do
                beta[r, j] <- b[r]

            for i in 0 .. n - 1 do
                fitted[i, j] <- f[i]

        { Beta = beta; V2 = v2; Fitted = fitted }

    let mixedEffectsModel (x: float[,]) (nIter: int) (y: float[,]) (v1: float[,]) : MixedEffectsFit =
        checkDesign x y
        checkArrays y v1
        fitColumns x nIter (rows y) (cols y) (fun j -> y[*, j], v1[*, j])

    let logLike (model: MixedEffectsFit) (y: float[,]) (v1: float[,]) : float[] =
        checkArrays y v1
        let n = rows y

        Array.init (cols y) (fun j ->
            let mutable s = 0.0

            for i in 0 .. n - 1 do
                let total = model.V2[j] + v1[i, j]
                let r = y[i, j] - model.Fitted[i, j]
                s <- s + r * r / total + log total

            -0.5 * (s + log (2.0 * Math.PI) * float n))

    let mfxStat (y: float[,]) (v1: float[,]) (x: float[,]) (column: int) (nIter: int) : MfxStat =
        checkDesign x y

        if column < 0 || column >= cols x then
            raise (GlmInputException("column", $"{column} is not a column of X (it has {cols x})"))

        let x0 = Array2D.init (rows x) (cols x) (fun i c -> if c = column then 0.0 else x[i, c])
        let full = mixedEffectsModel x nIter y v1
        let null' = mixedEffectsModel x0 nIter y v1
        let f = Array.map2 (fun l1 l0 -> max 0.0 (2.0 * (l1 - l0))) (logLike full y v1) (logLike null' y v1)
        let effect = full.Beta[column, *]

        { T = Array.map2 (fun fv b -> sqrt fv * float (sign b)) f effect
          F = f
          Var = full.V2
          Effect = effect }

    let private ones (y: float[,]) = Array2D.create (rows y) 1 1.0

    let oneSampleTtest (y: float[,]) (v1: float[,]) (nIter: int) : float[] = (mfxStat y v1 (ones y) 0 nIter).T

    let oneSampleFtest (y: float[,]) (v1: float[,]) (nIter: int) : float[] = (mfxStat y v1 (ones y) 0 nIter).F

    let private twoSampleDesign (group: float[]) = Array2D.init group.Length 2 (fun i c -> if c = 0 then 1.0 else group[i])

    let twoSampleTtest (y: float[,]) (v1: float[,]) (group: float[]) (nIter: int) : float[] =
        (mfxStat y v1 (twoSampleDesign group) 1 nIter).T

    let twoSampleFtest (y: float[,]) (v1: float[,]) (group: float[]) (nIter: int) : float[] =
        if group.Length <> rows y then
            raise (GlmInputException("group", $"{group.Length} labels for {rows y} samples: the number of labels is not the number of samples"))

        // nipy: (np.unique(group) != [0, 1]).all(), where a length other than 2 compares as one mismatch
        // (one label broadcasts against both; three or more fail numpy's elementwise comparison, read as True).
        let unique = Array.distinct group |> Array.sort

        let refused =
            match unique with
            | [| u |] -> u <> 0.0 && u <> 1.0
            | [| a; b |] -> a <> 0.0 && b <> 1.0
            | _ -> true

        if refused then
            let labels = String.Join(", ", unique)
            raise (GlmInputException("group", $"labels {labels}: group should be composed only of zeros and ones"))

        (mfxStat y v1 (twoSampleDesign group) 1 nIter).F

    let twoLevelGlm (y: float[,]) (vy: float[,]) (x: float[,]) (niter: int) : TwoLevelGlm =
        let n, p, tests = rows x, cols x, cols y

        if n <= p then
            raise (GlmInputException("X", $"{n} rows for {p} regressors: too many regressors compared to data size"))

        checkDesign x y

        if rows vy <> n || cols vy <> tests then
            raise (GlmInputException("vy", $"shape {rows vy}×{cols vy} differs from y's {n}×{tests}"))

        let nonzero v = max v 1e-25
        let dof = float (n - p)
        let pinvX = Numerics.pinv x
        let beta = Array2D.zeroCreate p tests
        let s2 = Array.zeroCreate tests

        for j in 0 .. tests - 1 do
            let w1 = Array.init n (fun i -> 1.0 / nonzero vy[i, j])
            let mutable b = Array.zeroCreate p
            let mutable zfit = Array.zeroCreate n
            let mutable s = infinity

            for _ in 1..niter do
                let w2 = 1.0 / nonzero s
                let vz = w1 |> Array.map (fun w -> 1.0 / (w + w2))
                let z = Array.init n (fun i -> vz[i] * (w1[i] * y[i, j] + w2 * zfit[i]))
                b <- times pinvX z
                zfit <- times x b
                s <- (Array.init n (fun i -> (z[i] - zfit[i]) * (z[i] - zfit[i]) + vz[i]) |> Array.sum) / dof

            s2[j] <- s

            for r in 0 .. p - 1 do
                beta[r, j] <- b[r]

        { Beta = beta; S2 = s2; Dof = dof }

    let private values (data: VoxelData) =
        match data with
        | Float64 a -> a
        | Float32 a -> Array.map float a

    let fitSecondLevel (nIter: int) (design: DesignMatrix) (effects: VoxelData) (variances: VoxelData) =
        let x = design.Values
        let n, p = rows x, cols x
        let y = values effects
        let v1 = values variances

        if n < 2 || n <= p then
            raise (GlmInputException("design_matrix", $"{n} rows for {p} columns: a mixed-effects second level needs at least 2 subjects and more subjects than columns"))

        if y.Length % n <> 0 then
            raise (GlmInputException("design_matrix", $"{n} rows do not match the maps ({y.Length} values are not a whole number of voxels × {n} subjects)"))

        if v1.Length <> y.Length then
            raise (GlmInputException("variance maps", $"{v1.Length} values for the effect maps' {y.Length}"))

        let voxels = y.Length / n

        let check (what: string) (a: float[]) (negative: bool) =
            for k in 0 .. a.Length - 1 do
                if not (Double.IsFinite a[k]) || (negative && a[k] < 0.0) then
                    let kind = if negative then "finite non-negative" else "finite"
                    raise (GlmInputException($"{what} of subject {k % n + 1}, masked voxel {k / n}", $"value {a[k]} is not a {kind} number"))

        check "effect map" y false
        check "variance map" v1 true
        let model = fitColumns x nIter n voxels (fun v -> Array.sub y (v * n) n, Array.sub v1 (v * n) n)

        { Design = design
          NIter = nIter
          Model = model
          Effects = Array2D.init n voxels (fun i v -> y[v * n + i])
          Variances = Array2D.init n voxels (fun i v -> v1[v * n + i]) }

    /// c (Xᵀ W X)⁻¹ cᵀ per voxel, W = 1 / (V1 + scale·V2).
    let private glsVariance (fit: MixedEffectsSecondLevelFit) (c: float[]) (scale: float) =
        let x = fit.Design.Values
        let n, p = rows x, cols x

        Array.init fit.Model.V2.Length (fun v ->
            let gram = Array2D.zeroCreate p p

            for i in 0 .. n - 1 do
                let w = 1.0 / max (fit.Variances[i, v] + scale * fit.Model.V2[v]) 1e-250

                for a in 0 .. p - 1 do
                    for b in 0 .. p - 1 do
                        gram[a, b] <- gram[a, b] + w * x[i, a] * x[i, b]

            let inv = Numerics.pinv gram
            let mutable s = 0.0

            for a in 0 .. p - 1 do
                for b in 0 .. p - 1 do
                    s <- s + c[a] * inv[a, b] * c[b]

            s)

    /// X·(I − cᵀ(c cᵀ)⁻¹c): the design constrained to c·beta = 0; for a unit c, X with that column zeroed.
    let private nullDesign (x: float[,]) (c: float[]) =
        let p = c.Length
        let cc = Array.sumBy (fun w -> w * w) c
        let projector = Array2D.init p p (fun a b -> (if a = b then 1.0 else 0.0) - c[a] * c[b] / cc)
        Numerics.multiply x projector

    let computeContrast (fit: MixedEffectsSecondLevelFit) (contrast: SecondLevelContrast) : SecondLevelMaps =
        let weights = SecondLevel.contrastWeights fit.Design contrast

        if rows weights <> 1 then
            raise (GlmInputException("second_level_contrast", $"{rows weights} rows: the \"mfx\" model computes t contrasts (one row) only"))

        let x = fit.Design.Values
        let n, p = rows x, cols x
        let c = weights[0, *]

        if Array.forall ((=) 0.0) c then
            raise (GlmInputException("second_level_contrast", "all weights are 0"))

        let voxels = fit.Model.V2.Length
        let dof = float (n - p)
        let effect = Array.init voxels (fun v -> Array.fold2 (fun s w r -> s + w * fit.Model.Beta[r, v]) 0.0 c [| 0 .. p - 1 |])
        let nullModel = mixedEffectsModel (nullDesign x c) fit.NIter fit.Effects fit.Variances
        let l1 = logLike fit.Model fit.Effects fit.Variances
        let l0 = logLike nullModel fit.Effects fit.Variances
        // Under OLS (V1 = 0) the ratio is n·log(1 + t²/(n − p)) exactly; inverting it gives the t whose Student
        // distribution calibrates the ratio in small groups, where its χ²(1) limit is liberal (docs/mixed-effects.md).
        let t =
            Array.init voxels (fun v ->
                let f = max 0.0 (2.0 * (l1[v] - l0[v]))
                float (sign effect[v]) * sqrt (dof * Math.Exp(f / float n) - dof))

        let tails = Contrast.create T 1 dof t (Array.create voxels 1.0)

        { StatType = T
          ZScore = Contrast.zScoreWith Nilearn 0.0 tails
          Stat = t
          PValue = Contrast.pValue 0.0 tails
          EffectSize = effect
          // V2 is nipy's ML estimate (divided by n); n/(n − p) gives it the residual degrees of freedom, so that
          // V1 = 0 reproduces the OLS variance exactly.
          EffectVariance = glsVariance fit c (float n / dof)
          Dim = 1 }
