module FmriGlm.Core.Tests.MixedEffectsTests

open System
open System.IO
open System.Text.Json
open Expecto
open FsCheck
open FsCheck.FSharp
open FmriGlm.Core
open FmriGlm.Core.Tests.TestHelpers

let private config = { FsCheckConfig.defaultConfig with maxTest = 100 }

let private file case' name = Reference.path "mfx" case' name
let private matrixOf case' name = Tsv.matrix (file case' name)
let private intInput case' (name: string) = (Reference.parameters "mfx" case').GetProperty("inputs").GetProperty(name).GetInt32()

/// Compares one column of a reference TSV with its params.json tolerance (the column's own, else the file's).
let private compare case' name (column: string) (actual: float[]) =
    Close.all (Tolerance.forColumn "mfx" case' name column) actual (Tsv.column (file case' name) column) $"{case'} {name} {column}"

/// A model_*.tsv: beta_r per regressor, V2 and log_like per test.
let private compareModel case' name (model: MixedEffectsFit) (y: float[,]) (v1: float[,]) =
    for r in 0 .. Array2D.length1 model.Beta - 1 do
        compare case' name $"beta_{r}" model.Beta[r, *]

    compare case' name "V2" model.V2
    compare case' name "log_like" (MixedEffects.logLike model y v1)

let private mfxCases =
    [ "one-sample-niter1"; "one-sample-niter5"; "one-sample-niter20"; "covariate-column0"; "covariate-column1"; "zero-first-level-variance" ]

let private twoLevelCases =
    [ "two_level_glm-niter1"; "two_level_glm-niter10"; "two_level_glm-niter1-zero-variance"; "two_level_glm-niter10-zero-variance" ]

/// Subjects × voxels, column-major flat (the layout of SecondLevel.fit), from a subjects × voxels matrix.
let private flat (m: float[,]) =
    Array.init m.Length (fun k -> m[k % Array2D.length1 m, k / Array2D.length1 m])

let private designOf (x: float[,]) =
    { ColumnNames = Array.init (Array2D.length2 x) (fun c -> if c = 0 then "intercept" else $"c{c}"); Values = x }

/// 4 to 15 subjects × 1 to 4 voxels of effects in [−3, 3] with spread, and a covariate (or none).
let private studies =
    gen {
        let! n = Gen.choose (4, 15)
        let! v = Gen.choose (1, 4)
        let! values = Gen.arrayOfLength (n * v) (Gen.choose (-3000, 3000) |> Gen.map (fun i -> float i / 1000.0))
        let! covariate = Gen.arrayOfLength n (Gen.choose (-1000, 1000) |> Gen.map (fun i -> float i / 500.0))
        let! withCovariate = Gen.elements [ false; true ]

        let x =
            if withCovariate then Array2D.init n 2 (fun i c -> if c = 0 then 1.0 else covariate[i])
            else Array2D.create n 1 1.0

        return x, Array2D.init n v (fun i j -> values[j * n + i])
    }
    |> Gen.filter (fun (x, y) ->
        let spread (a: float[]) = Array.max a - Array.min a
        (Array2D.length2 x = 1 || spread x[*, 1] > 0.5)
        && [ 0 .. Array2D.length2 y - 1 ] |> List.forall (fun j -> spread y[*, j] > 0.1))
    |> Arb.fromGen

/// The GlmInputException a call raises (fails the test if it raises none).
let private raises (f: unit -> unit) : GlmInputException =
    try
        f ()
        failtest "expected GlmInputException"
    with :? GlmInputException as e ->
        e

let private near (tolerance: float) (a: float) (b: float) = abs (a - b) <= tolerance * max 1.0 (abs b)

/// Deterministic standard normal draws (Box–Muller on System.Random with a seed).
let private normals (seed: int) =
    let random = Random seed
    fun () -> sqrt (-2.0 * log (1.0 - random.NextDouble())) * cos (2.0 * Math.PI * random.NextDouble())

/// The central 99% interval of Binomial(trials, p), as counts, from its exact probabilities.
let private binomialInterval99 (trials: int) (p: float) =
    let logPmf = Array.zeroCreate (trials + 1)

    for k in 1..trials do
        logPmf[k] <- logPmf[k - 1] + log (float (trials - k + 1)) - log (float k) + log p - log (1.0 - p)

    let top = Array.max logPmf
    let pmf = logPmf |> Array.map (fun l -> exp (l - top))
    let total = Array.sum pmf
    let cdf = Array.scan (+) 0.0 pmf |> Array.tail |> Array.map (fun c -> c / total)
    let lower = cdf |> Array.findIndex (fun c -> c >= 0.005)
    let upper = cdf |> Array.findIndex (fun c -> c >= 0.995)
    lower, upper

/// Null studies: 20 subjects, first-level variances log-uniform over [0.1, 10] (varying per subject and voxel),
/// between-subject variance 1, true effect 0. Returns the one-sided p values of the one-sample "mfx" contrast.
let private nullPValues (studies: int) (voxels: int) =
    let draw = normals 20261202
    let random = Random 15
    let n = 20
    let design = designOf (Array2D.create n 1 1.0)

    [| for _ in 1..studies do
           let v1 = Array.init (n * voxels) (fun _ -> 10.0 ** (2.0 * random.NextDouble() - 1.0))
           let y = v1 |> Array.map (fun v -> draw () * sqrt (v + 1.0))
           let fit = MixedEffects.fitSecondLevel 5 design (Float64 y) (Float64 v1)
           yield! (MixedEffects.computeContrast fit SecondLevelContrast.Default).PValue |]

[<Tests>]
let tests =
    testList "MixedEffects" [
        testList "parity" [
            for case' in mfxCases do
                testCase $"mfxStat (t, f, var, effect) and both MixedEffectsModel fits = nipy 0.5.0 mfx_stat ({case'}, params.json tolerances: rtol 1e-9 atol 1e-12, t rtol 1e-7 atol 1e-6)" <| fun () ->
                    let y, v1, x = matrixOf case' "Y.tsv", matrixOf case' "V1.tsv", matrixOf case' "X.tsv"
                    let column, nIter = intInput case' "column", intInput case' "n_iter"
                    let s = MixedEffects.mfxStat y v1 x column nIter
                    compare case' "stats.tsv" "t" s.T
                    compare case' "stats.tsv" "f" s.F
                    compare case' "stats.tsv" "var" s.Var
                    compare case' "stats.tsv" "effect" s.Effect
                    compareModel case' "model_full.tsv" (MixedEffects.mixedEffectsModel x nIter y v1) y v1
                    let x0 = Array2D.init (Array2D.length1 x) (Array2D.length2 x) (fun i c -> if c = column then 0.0 else x[i, c])
                    compareModel case' "model_null.tsv" (MixedEffects.mixedEffectsModel x0 nIter y v1) y v1

            for case' in twoLevelCases do
                testCase $"twoLevelGlm (beta, s2, dof) = nipy 0.5.0 two_level_glm ({case'}, params.json tolerances: rtol 1e-9 atol 1e-12, dof exact)" <| fun () ->
                    let y, v1, x = matrixOf case' "Y.tsv", matrixOf case' "V1.tsv", matrixOf case' "X.tsv"
                    let r = MixedEffects.twoLevelGlm y v1 x (intInput case' "niter")

                    for b in 0 .. Array2D.length1 r.Beta - 1 do
                        compare case' "result.tsv" $"beta_{b}" r.Beta[b, *]

                    compare case' "result.tsv" "s2" r.S2
                    let dof = JsonDocument.Parse(File.ReadAllText(file case' "expected.json")).RootElement.GetProperty("dof").GetDouble()
                    Expect.equal r.Dof dof "dof (exact)"

            testCase "oneSampleTtest, oneSampleFtest, twoSampleTtest, twoSampleFtest, tStat = nipy 0.5.0 wrappers (wrappers, params.json tolerance: rtol 1e-7 atol 1e-6)" <| fun () ->
                let case' = "wrappers"
                let y, v1 = matrixOf case' "Y.tsv", matrixOf case' "V1.tsv"
                let group = Tsv.column (file case' "group.tsv") "group"
                let nIter = intInput case' "n_iter"
                compare case' "stats.tsv" "one_sample_ttest" (MixedEffects.oneSampleTtest y v1 nIter)
                compare case' "stats.tsv" "one_sample_ftest" (MixedEffects.oneSampleFtest y v1 nIter)
                compare case' "stats.tsv" "two_sample_ttest" (MixedEffects.twoSampleTtest y v1 group nIter)
                compare case' "stats.tsv" "two_sample_ftest" (MixedEffects.twoSampleFtest y v1 group nIter)
                compare case' "stats.tsv" "t_stat" (MixedEffects.tStat y)
        ]
        testList "laws" [
            testPropertyWithConfig config "with zero first-level variances the mfx contrast (effect, variance, t, p, z) equals the OLS second level, and mfxStat's var is RSS/n (relative 1e-9)" <|
                Prop.forAll studies (fun (x, y) ->
                    let n = Array2D.length1 x
                    let design = designOf x
                    let zeros = Array.zeroCreate y.Length
                    let column = Array2D.length2 x - 1
                    let weights = SecondLevelContrast.Weights(Array.init (Array2D.length2 x) (fun c -> if c = column then 1.0 else 0.0))
                    let mfx = MixedEffects.computeContrast (MixedEffects.fitSecondLevel 5 design (Float64(flat y)) (Float64 zeros)) weights
                    let ols = SecondLevel.computeContrast (SecondLevel.fit 1 design (Float64(flat y))) weights (Some T)
                    let stat = MixedEffects.mfxStat y (Array2D.zeroCreate n (Array2D.length2 y)) x column 5
                    let olsFit = SecondLevel.fit 1 design (Float64(flat y))
                    let p = Array2D.length2 x
                    let unit c = SecondLevelContrast.Weights(Array.init p (fun k -> if k = c then 1.0 else 0.0))
                    let beta = Array.init p (fun c -> Contrast.effectSize (SecondLevel.computeContrast olsFit (unit c) (Some T)))

                    let rssOverN =
                        Array.init (Array2D.length2 y) (fun j ->
                            Array.init n (fun i -> y[i, j] - Array.sum (Array.init p (fun c -> x[i, c] * beta[c][j])))
                            |> Array.averageBy (fun r -> r * r))

                    let same (a: float[]) (b: float[]) = Array.forall2 (near 1e-9) a b

                    same mfx.EffectSize (Contrast.effectSize ols)
                    && same mfx.EffectVariance (Contrast.effectVariance ols)
                    && same mfx.Stat (Contrast.stat 0.0 ols)
                    && same mfx.PValue (Contrast.pValue 0.0 ols)
                    && same mfx.ZScore (Contrast.zScoreWith Nilearn 0.0 ols)
                    && same stat.Effect (Contrast.effectSize ols)
                    && same stat.Var rssOverN)

            testPropertyWithConfig config "with equal first-level variances and no between-subject variance the mfx contrast's effect and variance equal nilearn's fixed effects of the subjects (relative 1e-9)" <|
                fun (values: NormalFloat[]) (variance: PositiveInt) (count: PositiveInt) ->
                    let n = 2 + count.Get % 10
                    let voxels = max 1 values.Length
                    let v = float (1 + variance.Get % 50) / 10.0
                    // Every subject has the same effect at a voxel: the between-subject variance estimate is 0.
                    let effectAt j = if values.Length = 0 then 0.5 else max -1e3 (min 1e3 values[j].Get)
                    let y = Array2D.init n voxels (fun _ j -> effectAt j)
                    let v1 = Array2D.create n voxels v
                    let mfx = MixedEffects.computeContrast (MixedEffects.fitSecondLevel 5 (designOf (Array2D.create n 1 1.0)) (Float64(flat y)) (Float64(flat v1))) SecondLevelContrast.Default
                    let fixedEffects = Contrast.computeFixedEffects (Array.init n (fun i -> y[i, *])) (Array.init n (fun i -> v1[i, *])) [||] false
                    let same (a: float[]) (b: float[]) = Array.forall2 (near 1e-9) a b

                    same mfx.EffectSize fixedEffects.Effect && same mfx.EffectVariance fixedEffects.Variance

            testPropertyWithConfig config "the mfx contrast of a design column carries mfxStat's likelihood ratio f: t = sign(effect)·√((n − p)(exp(f/n) − 1)), effect = mfxStat's (relative 1e-9)" <|
                Prop.forAll studies (fun (x, y) ->
                    let n, p = Array2D.length1 x, Array2D.length2 x
                    let v1 = Array2D.init n (Array2D.length2 y) (fun i j -> 0.05 + float ((5 * i + j) % 7) / 3.0)
                    let column = p - 1
                    let weights = SecondLevelContrast.Weights(Array.init p (fun c -> if c = column then 1.0 else 0.0))
                    let maps = MixedEffects.computeContrast (MixedEffects.fitSecondLevel 5 (designOf x) (Float64(flat y)) (Float64(flat v1))) weights
                    let s = MixedEffects.mfxStat y v1 x column 5
                    let dof = float (n - p)
                    let expected = Array.map2 (fun f e -> float (sign e) * sqrt (dof * (exp (f / float n) - 1.0))) s.F s.Effect

                    Array.forall2 (near 1e-9) maps.EffectSize s.Effect && Array.forall2 (fun a b -> abs (a - b) <= 1e-9 * max 1.0 (abs b) + 1e-7) maps.Stat expected)

            testPropertyWithConfig config "the EM never lowers the log-likelihood (nipy's verbose check, slack 1e-9), and mfxStat's t² = f ≥ 0 (relative 1e-12)" <|
                Prop.forAll studies (fun (x, y) ->
                    let v1 = Array2D.init (Array2D.length1 y) (Array2D.length2 y) (fun i j -> 0.05 + float ((7 * i + 3 * j) % 11) / 5.0)
                    let likelihoods = [ for k in 0..8 -> MixedEffects.logLike (MixedEffects.mixedEffectsModel x k y v1) y v1 ]
                    let s = MixedEffects.mfxStat y v1 x 0 5

                    List.pairwise likelihoods |> List.forall (fun (a, b) -> Array.forall2 (fun p q -> q >= p - 1e-9 * max 1.0 (abs p)) a b)
                    && Array.forall2 (fun t f -> f >= 0.0 && abs (t * t - f) <= 1e-12 * max 1.0 f) s.T s.F)

            testCase "calibration: on 20,000 null voxels (400 studies × 50 voxels, 20 subjects, first-level variances log-uniform on [0.1, 10], seed fixed) the FPR at p < 0.05 is inside Binomial(20000, 0.05)'s central 99% interval" <| fun () ->
                let p = nullPValues 400 50
                let positives = p |> Array.filter (fun v -> v < 0.05) |> Array.length
                let lower, upper = binomialInterval99 p.Length 0.05
                printfn "mfx calibration: FPR %.4f (%d of %d), 99%% interval [%.4f, %.4f]" (float positives / float p.Length) positives p.Length (float lower / float p.Length) (float upper / float p.Length)
                Expect.isTrue (positives >= lower && positives <= upper) $"{positives} false positives of {p.Length}, outside [{lower}, {upper}]"
        ]
        testList "errors" [
            testCase "a negative first-level variance is refused, naming V1" <| fun () ->
                let y = Array2D.create 4 2 1.0
                let v1 = Array2D.init 4 2 (fun i j -> if i = 2 && j = 1 then -0.5 else 1.0)
                let e = raises (fun () -> MixedEffects.mfxStat y v1 (Array2D.create 4 1 1.0) 0 5 |> ignore)
                Expect.stringContains e.Message "V1" "names V1"
                Expect.stringContains e.Message "-0.5" "gives the value"

            testCase "Y and V1 of different shapes are refused, naming V1" <| fun () ->
                let e = raises (fun () -> MixedEffects.mixedEffectsModel (Array2D.create 4 1 1.0) 5 (Array2D.create 4 2 1.0) (Array2D.create 4 3 1.0) |> ignore)
                Expect.stringContains e.Message "V1" "names V1"

            testCase "a column outside X is refused, naming the column" <| fun () ->
                let e = raises (fun () -> MixedEffects.mfxStat (Array2D.create 4 2 1.0) (Array2D.create 4 2 1.0) (Array2D.create 4 1 1.0) 1 5 |> ignore)
                Expect.stringContains e.Message "column" "names the column"

            testCase "twoSampleFtest refuses labels differing from 0/1 in every position (as nipy), naming group; [0, 2] passes nipy's check" <| fun () ->
                let y, v1 = Array2D.init 4 1 (fun i _ -> float i), Array2D.create 4 1 0.5
                let e = raises (fun () -> MixedEffects.twoSampleFtest y v1 [| 1.0; 2.0; 1.0; 2.0 |] 5 |> ignore)
                Expect.stringContains e.Message "group" "names group"
                Expect.equal (MixedEffects.twoSampleFtest y v1 [| 0.0; 2.0; 0.0; 2.0 |] 5).Length 1 "[0, 2] accepted"

            testCase "twoLevelGlm with no more subjects than regressors is refused, naming X" <| fun () ->
                let e = raises (fun () -> MixedEffects.twoLevelGlm (Array2D.create 2 1 1.0) (Array2D.create 2 1 1.0) (Array2D.create 2 2 1.0) 3 |> ignore)
                Expect.stringContains e.Message "X" "names X"

            testCase "an F contrast with the mfx model is refused, naming the contrast" <| fun () ->
                let x = Array2D.init 6 2 (fun i c -> if c = 0 then 1.0 else float i)
                let fit = MixedEffects.fitSecondLevel 5 (designOf x) (Float64(Array.init 12 float)) (Float64(Array.create 12 1.0))
                let e = raises (fun () -> MixedEffects.computeContrast fit (SecondLevelContrast.WeightMatrix(array2D [ [ 1.0; 0.0 ]; [ 0.0; 1.0 ] ])) |> ignore)
                Expect.stringContains e.Message "second_level_contrast" "names the contrast"
        ]
    ]
