module FmriGlm.Core.Tests.ContrastTests

open System
open System.Text.RegularExpressions
open Expecto
open FsCheck
open FsCheck.FSharp
open FmriGlm.Core
open FmriGlm.Core.Tests.TestHelpers

let private area = "contrast"

/// Compares every expected column that has an actual counterpart, with the case's tolerance for that column.
let internal checkTable (area: string) (case': string) (file: string) (actual: (string * float[]) list) =
    let header, columns = Tsv.columns (Reference.path area case' file)
    let mutable compared = 0

    for name, values in actual do
        match Array.tryFindIndex ((=) name) header with
        | Some j ->
            compared <- compared + 1
            Close.all (Tolerance.forColumn area case' file name) values columns[j] $"{case'}/{file} {name}"
        | None -> ()

    Expect.isGreaterThan compared 0 $"{case'}/{file}: no column compared"

/// nilearn output columns of a contrast (effect columns only for one-row contrasts).
let internal nilearnColumns (c: Contrast) (baseline: float) =
    let s =
        match c with
        | Summary s -> s
        | Empty -> failwith "empty contrast"

    let effects =
        if s.Dim = 1 then
            [ "effect", s.Effect; "effect_size", s.Effect ]
        else
            List.init s.Dim (fun i -> $"effect_size_{i}", Array.sub s.Effect (i * s.Voxels) s.Voxels)

    effects
    @ [ "variance", s.Variance
        "effect_variance", s.Variance
        "stat", Contrast.stat baseline c
        "p_value", Contrast.pValue baseline c
        "one_minus_pvalue", Contrast.oneMinusPValue baseline c
        "z_score", Contrast.zScoreWith Nilearn baseline c ]

/// nipy output columns (stat, p_value, z_score with nipy's saturation).
let internal nipyColumns (c: Contrast) =
    [ "stat", Contrast.stat 0.0 c
      "p_value", Contrast.pValue 0.0 c
      "z_score", Contrast.zScoreWith Nipy 0.0 c ]

let private input (p: Text.Json.JsonElement) (name: string) =
    p.GetProperty("inputs").GetProperty(name).GetDouble()

/// A number of a case's expected.json.
let private expectedJson area case' (name: string) =
    use doc = Text.Json.JsonDocument.Parse(IO.File.ReadAllText(Reference.path area case' "expected.json"))
    doc.RootElement.GetProperty(name).GetDouble()

/// nilearn inputs: effect columns `<prefix>` or `<prefix>_k`, one variance column.
let private nilearnContrast statType (file: string) (effectPrefix: string) (varianceName: string) dof =
    let header, cols = Tsv.columns file
    let rx = Regex($"^{effectPrefix}(_\\d+)?$")

    let effects =
        [| for j in 0 .. header.Length - 1 do
               if rx.IsMatch header[j] then
                   yield cols[j] |]

    let variance = cols[Array.findIndex ((=) varianceName) header]
    Contrast.create statType effects.Length dof (Array.concat effects) variance

/// nipy inputs: effect_i and the full covariance variance_i_j per voxel.
let private nipyContrast statType (file: string) dof =
    let header, cols = Tsv.columns file
    let col name = cols[Array.findIndex ((=) name) header]
    let dim = header |> Array.filter (fun h -> h.StartsWith "effect_") |> Array.length
    let effect = Array.init dim (fun i -> col $"effect_{i}") |> Array.concat

    let variance =
        [| for i in 0 .. dim - 1 do
               for j in 0 .. dim - 1 do
                   yield col $"variance_{i}_{j}" |]
        |> Array.concat

    Contrast.create statType dim dof effect variance

let private statTypeOf (s: string) =
    match s with
    | "t" -> T
    | "F" -> F
    | "tmin-conjunction" -> TminConjunction
    | other -> failwith $"unknown stat type {other}"

let private parityCase (case': string) =
    let p = Reference.parameters area case'
    let file = Reference.path area case'

    match case' with
    | c when c.StartsWith "nilearn-t-dof" ->
        let con = nilearnContrast T (file "inputs.tsv") "effect" "variance" (input p "dof")
        checkTable area c "expected.tsv" (nilearnColumns con 0.0)
    | c when c.StartsWith "nilearn-F-dim" ->
        let con = nilearnContrast F (file "inputs.tsv") "effect" "variance" (input p "dof")
        checkTable area c "expected.tsv" (nilearnColumns con 0.0)
    | "nilearn-add-t"
    | "nilearn-add-F" as c ->
        let st = if c.EndsWith "t" then T else F
        let c1 = nilearnContrast st (file "inputs.tsv") "effect_1" "variance_1" (input p "dof_1")
        let c2 = nilearnContrast st (file "inputs.tsv") "effect_2" "variance_2" (input p "dof_2")
        let sum = c1 + c2
        checkTable area c "expected.tsv" (nilearnColumns sum 0.0)
        Expect.equal (Contrast.degreesOfFreedom sum) (expectedJson area c "dof") "dof of the sum (expected.json)"
    | "nilearn-baseline-0.5" as c ->
        let b = input p "baseline"
        let t = nilearnContrast T (file "inputs.tsv") "effect" "variance" (input p "dof")
        let f = nilearnContrast F (file "inputs.tsv") "effect_F" "variance" (input p "dof")
        checkTable area c "expected-t.tsv" (nilearnColumns t b)
        checkTable area c "expected-F.tsv" (nilearnColumns f b)
    | "nilearn-scalar-mul" as c ->
        let con = nilearnContrast T (file "inputs.tsv") "effect" "variance" (input p "dof")
        let scalars = p.GetProperty("inputs").GetProperty("scalars")
        let left, right = scalars[0].GetDouble() * con, con * scalars[1].GetDouble()
        checkTable area c "expected-left.tsv" (nilearnColumns left 0.0)
        checkTable area c "expected-right.tsv" (nilearnColumns right 0.0)
        Expect.equal (Contrast.degreesOfFreedom left) (expectedJson area c "left_dof") "dof of s * c (expected.json)"
        Expect.equal (Contrast.degreesOfFreedom right) (expectedJson area c "right_dof") "dof of c * s (expected.json)"
    | "nilearn-fixed-effect-contrast-runs" as c ->
        let fits =
            [ 1; 2 ]
            |> List.map (fun r ->
                let x = Tsv.matrix (file $"run-{r}_X.tsv")
                let y = Tsv.matrix (file $"run-{r}_Y.tsv")

                let data =
                    Array.init y.Length (fun k -> y[k % Array2D.length1 y, k / Array2D.length1 y])

                Regression.fit GlmOptions.defaults x (Float64 data))

        let t = [| [| 1.0; -1.0; 0.0; 0.0 |] |] |> array2D
        let f = array2D [ [ 1.0; 0.0; 0.0; 0.0 ]; [ 0.0; 1.0; 0.0; 0.0 ] ]

        let combined w st =
            fits |> List.map (fun fit -> Contrast.compute fit w st) |> Contrast.fixedEffects

        checkTable area c "expected-t.tsv" (nilearnColumns (combined t T) 0.0)
        checkTable area c "expected-F.tsv" (nilearnColumns (combined f F) 0.0)
    | c when c.StartsWith "nipy-add" ->
        let st =
            statTypeOf (p.GetProperty("inputs").GetProperty("contrast_type").GetString())

        let c1 = nipyContrast st (file "inputs-1.tsv") (input p "dof_1")
        let c2 = nipyContrast st (file "inputs-2.tsv") (input p "dof_2")
        checkTable area c "expected-sum.tsv" (nipyColumns (c1 + c2))
        checkTable area c "expected-left.tsv" (nipyColumns (2.5 * c1))
        checkTable area c "expected-right.tsv" (nipyColumns (c1 * 0.5))
    | c when c.StartsWith "nipy-glm" ->
        let model = p.GetProperty("inputs").GetProperty("model").GetString()
        let steps = p.GetProperty("inputs").GetProperty("steps").GetInt32()

        let fits =
            [ 1; 2 ]
            |> List.map (fun r ->
                let x = Tsv.matrix (file $"run-{r}_X.tsv")
                let y = Tsv.matrix (file $"run-{r}_Y.tsv")

                let data =
                    Array.init y.Length (fun k -> y[k % Array2D.length1 y, k / Array2D.length1 y])

                let noise = if model = "ar1" then NipyAr1 else Ols

                let fit =
                    Regression.fit
                        { GlmOptions.defaults with
                            NoiseModel = noise
                            Bins = steps }
                        x
                        (Float64 data)

                let fitFile = $"run-{r}_fit.tsv"

                let betas =
                    let header, _ = Tsv.columns (file fitFile)

                    header
                    |> Array.filter (fun h -> h.StartsWith "beta_")
                    |> Array.mapi (fun j h -> h, Array.init fit.Voxels (fun v -> fit.Betas[v * fit.Regressors + j]))
                    |> List.ofArray

                let labels =
                    Array.init fit.Voxels (fun v ->
                        fit.Models[fit.Labels[v]].Rho |> Array.tryHead |> Option.defaultValue 0.0)

                checkTable area c fitFile ([ "mse", fit.Mse; "label", labels ] @ betas)
                fit)

        let contrasts = p.GetProperty("inputs").GetProperty("contrasts")

        for name in [ "a-minus-b"; "F-ab"; "conj-ab" ] do
            let def = contrasts.GetProperty name
            let st = statTypeOf (def.GetProperty("contrast_type").GetString())
            let cv = def.GetProperty "con_val"

            let weights =
                if cv[0].ValueKind = Text.Json.JsonValueKind.Array then
                    array2D [ for row in cv.EnumerateArray() -> [ for x in row.EnumerateArray() -> x.GetDouble() ] ]
                else
                    array2D [ [ for x in cv.EnumerateArray() -> x.GetDouble() ] ]

            let cons =
                fits |> List.map (fun fit -> Contrast.computeWithCovariance fit weights st)

            cons
            |> List.iteri (fun i con -> checkTable area c $"run-{i + 1}_contrast-{name}.tsv" (nipyColumns con))

            checkTable area c $"ffx_contrast-{name}.tsv" (nipyColumns (List.sum cons))
    | c when c.StartsWith "nipy-" ->
        let st =
            if c.Contains "tmin" then TminConjunction
            elif c.Contains "-F-" then F
            else T

        let con = nipyContrast st (file "inputs.tsv") (input p "dof")
        checkTable area c "expected.tsv" (nipyColumns con)
    | c -> failwith $"no parity check written for contrast/{c}"

let private tsvCases =
    Reference.cases area
    |> Array.filter (fun c -> not (c.StartsWith "compute_fixed_effects"))

let private close (acc: Accuracy) (a: float[]) (b: float[]) =
    Array.length a = Array.length b
    && Array.forall2 (fun (x: float) y -> abs (x - y) <= acc.absolute + acc.relative * abs y) a b

let private contrastClose acc (a: Contrast) (b: Contrast) =
    match a, b with
    | Empty, Empty -> true
    | Summary x, Summary y ->
        x.StatType = y.StatType
        && x.Dof = y.Dof
        && close acc x.Effect y.Effect
        && close acc x.Variance y.Variance
    | _ -> false

let private rel1e12 = { absolute = 1e-300; relative = 1e-12 }

/// |l − r| ≤ 1e-12 · (|x| + |y| + |z|) element by element: the rounding bound of a three-term sum, which a plain
/// relative tolerance cannot give where the terms cancel.
let private withinSumBound (l: float[]) (r: float[]) (x: float[]) (y: float[]) (z: float[]) =
    Array.forall id (Array.init l.Length (fun i -> abs (l[i] - r[i]) <= 1e-12 * (abs x[i] + abs y[i] + abs z[i]) + 1e-300))

[<Tests>]
let tests =
    testList
        "Contrast"
        [ testList
              "parity"
              [ for c in tsvCases do
                    testCase $"nilearn 0.13.1 / nipy 0.5.0 Contrast: {c} (tolerances of its params.json)"
                    <| fun () -> parityCase c ]
          testList
              "laws"
              [ testProperty "+ is associative (within 1e-12 × (|a| + |b| + |c|) per voxel)"
                <| Prop.forAll GlmGenerators.threeContrastsOnOneGrid (fun (a, b, c) ->
                    match (a + b) + c, a + (b + c), a, b, c with
                    | Summary l, Summary r, Summary x, Summary y, Summary z ->
                        l.StatType = r.StatType
                        && l.Dof = r.Dof
                        && withinSumBound l.Effect r.Effect x.Effect y.Effect z.Effect
                        && withinSumBound l.Variance r.Variance x.Variance y.Variance z.Variance
                    | l, r, _, _, _ -> contrastClose rel1e12 l r)
                testProperty "+ is commutative (exact)"
                <| Prop.forAll GlmGenerators.threeContrastsOnOneGrid (fun (a, b, _) ->
                    contrastClose { absolute = 0.0; relative = 0.0 } (a + b) (b + a))
                testProperty "Contrast.Zero is the identity of + (exact)"
                <| Prop.forAll GlmGenerators.threeContrastsOnOneGrid (fun (a, _, _) ->
                    contrastClose { absolute = 0.0; relative = 0.0 } (a + Contrast.Zero) a
                    && contrastClose { absolute = 0.0; relative = 0.0 } (Contrast.Zero + a) a)
                testProperty "List.sum of runs times 1/n = computeFixedEffects (relative 1e-12)"
                <| Prop.forAll GlmGenerators.threeContrastsOnOneGrid (fun (a, b, c) ->
                    let runs = [ a; b; c ]
                    let folded = Contrast.fixedEffects runs

                    let fx =
                        Contrast.computeFixedEffects
                            (runs |> List.map Contrast.effectSize |> Array.ofList)
                            (runs |> List.map Contrast.effectVariance |> Array.ofList)
                            (runs |> List.map Contrast.degreesOfFreedom |> Array.ofList)
                            false

                    close rel1e12 (Contrast.effectSize folded) fx.Effect
                    && close rel1e12 (Contrast.effectVariance folded) fx.Variance
                    && close
                        rel1e12
                        (Contrast.stat
                            0.0
                            (Contrast.create T 1 (Contrast.degreesOfFreedom folded) fx.Effect fx.Variance))
                        fx.Stat)
                testProperty
                    "precision-weighted runs fold with + to computeFixedEffects(precision_weighted) (relative 1e-12)"
                <| Prop.forAll GlmGenerators.threeContrastsOnOneGrid (fun (a, b, c) ->
                    let runs = [ a; b; c ]

                    let folded =
                        runs
                        |> List.map Contrast.toPrecisionWeighted
                        |> List.sum
                        |> Contrast.ofPrecisionWeighted

                    let fx =
                        Contrast.computeFixedEffects
                            (runs |> List.map Contrast.effectSize |> Array.ofList)
                            (runs |> List.map Contrast.effectVariance |> Array.ofList)
                            (runs |> List.map Contrast.degreesOfFreedom |> Array.ofList)
                            true

                    close rel1e12 (Contrast.effectSize folded) fx.Effect
                    && close rel1e12 (Contrast.effectVariance folded) fx.Variance)
                testProperty
                    "log p = log Φ(−z) and log(1 − p) = log Φ(z) for t from −1e13 to 1e13, dof 4 to 1e10 (relative 1e-9)"
                <| Prop.forAll
                    (Gen.zip (Gen.choose (-3000, 13000)) (Gen.elements [ 4.0; 30.0; 100.0; 1e4; 1e10 ])
                     |> Gen.zip (Gen.elements [ -1.0; 1.0 ])
                     |> Gen.map (fun (sign, (u, dof)) -> sign * 10.0 ** (float u / 1000.0), dof)
                     |> Arb.fromGen)
                    (fun (t, dof) ->
                        let con = Contrast.create T 1 dof [| t |] [| 1.0 |]
                        let lp = (Contrast.logPValue 0.0 con)[0]
                        let lq = (Contrast.logOneMinusPValue 0.0 con)[0]
                        let z = (Contrast.zScore 0.0 con)[0]
                        let near (a: float) (e: float) = abs (a - e) <= 1e-9 * abs e + 1e-15
                        // The smaller tail carries the information: compare it in logs.
                        if z >= 0.0 then
                            near lp (Numerics.normalLogSf z)
                        else
                            near lq (Numerics.normalLogSf -z))
                testProperty
                    "an F contrast on one row is the square of the t contrast, same p two-sided (relative 1e-10)"
                <| Prop.forAll GlmGenerators.threeContrastsOnOneGrid (fun (a, _, _) ->
                    let t = Contrast.stat 0.0 a

                    let f =
                        Contrast.create
                            F
                            1
                            (Contrast.degreesOfFreedom a)
                            (Contrast.effectSize a)
                            (Contrast.effectVariance a)

                    let fs = Contrast.stat 0.0 f

                    let pt =
                        Contrast.pValue
                            0.0
                            (Contrast.create
                                T
                                1
                                (Contrast.degreesOfFreedom a)
                                (Array.map abs (Contrast.effectSize a))
                                (Contrast.effectVariance a))

                    let pf = Contrast.pValue 0.0 f

                    close { absolute = 1e-300; relative = 1e-10 } fs (t |> Array.map (fun x -> x * x))
                    && close { absolute = 1e-300; relative = 1e-9 } pf (pt |> Array.map (fun p -> 2.0 * p)))
                testProperty
                    "F(2, ν) p-value is the closed form (1 + 2F/ν)^(−ν/2), ν from 4 to 1e10, F from 1e-3 to 1e3 (log p relative 1e-8 for ν ≤ 1e6, 5e-7 at ν = 1e10)"
                <| Prop.forAll
                    (Gen.zip (Gen.choose (-3000, 3000)) (Gen.elements [ 4.0; 30.0; 1e3; 1e6; 1e10 ])
                     |> Arb.fromGen)
                    (fun (u, nu) ->
                        let f = 10.0 ** (float u / 1000.0)
                        let con = Contrast.create F 2 nu [| sqrt (2.0 * f); 0.0 |] [| 1.0 |]
                        let logP = (Contrast.logPValue 0.0 con)[0]
                        let exact = -(nu / 2.0) * Numerics.log1p (2.0 * f / nu)
                        // Measured over the whole F range: worst relative error of log p 2e-13 (ν = 4), 5e-11 (ν = 1e3),
                        // 2e-9 (ν = 1e6), 1.6e-7 (ν = 1e10): the incomplete beta's continued fraction loses digits as
                        // ν grows. The reference's own p tolerance is 1e-6.
                        let tolerance = if nu <= 1e6 then 1e-8 else 5e-7
                        abs (logP - exact) <= tolerance * abs exact + 1e-12)
                testProperty
                    "t(2) p-value is the closed form 1/(s(s + t)), s = √(2 + t²), for t from 1e-3 to 1e8 (relative 1e-9)"
                <| Prop.forAll (Gen.choose (-3000, 8000) |> Arb.fromGen) (fun u ->
                    let t = 10.0 ** (float u / 1000.0)
                    let p = (Contrast.pValue 0.0 (Contrast.create T 1 2.0 [| t |] [| 1.0 |]))[0]
                    let s = sqrt (2.0 + t * t)
                    let exact = 1.0 / (s * (s + t))
                    abs (p - exact) <= 1e-9 * exact)
                testProperty "s·c for s > 0 leaves stat, p and z unchanged (relative 1e-12)"
                <| Prop.forAll GlmGenerators.threeContrastsOnOneGrid (fun (a, _, _) ->
                    let b = 2.75 * a

                    close { absolute = 1e-300; relative = 1e-12 } (Contrast.stat 0.0 b) (Contrast.stat 0.0 a)
                    && close { absolute = 1e-300; relative = 1e-12 } (Contrast.pValue 0.0 b) (Contrast.pValue 0.0 a)
                    && close { absolute = 1e-12; relative = 1e-12 } (Contrast.zScore 0.0 b) (Contrast.zScore 0.0 a))
                testProperty "tmin-conjunction stat is the minimum of its rows' t statistics (exact)"
                <| Prop.forAll GlmGenerators.threeContrastsOnOneGrid (fun (a, b, _) ->
                    let n = (Contrast.effectSize a).Length
                    let va, vb = Contrast.effectVariance a, Contrast.effectVariance b
                    // Full 2 × 2 covariance per voxel with the rows' variances on the diagonal.
                    let cov = Array.concat [ va; Array.zeroCreate n; Array.zeroCreate n; vb ]

                    let conj =
                        Contrast.create
                            TminConjunction
                            2
                            10.0
                            (Array.append (Contrast.effectSize a) (Contrast.effectSize b))
                            cov

                    Contrast.stat 0.0 conj = Array.map2 min (Contrast.stat 0.0 a) (Contrast.stat 0.0 b))
                testProperty "nipy's F with covariance v·I equals nilearn's F with variance v (relative 1e-12)"
                <| Prop.forAll GlmGenerators.threeContrastsOnOneGrid (fun (a, b, _) ->
                    let n = (Contrast.effectSize a).Length
                    let v = Contrast.effectVariance a
                    let effect = Array.append (Contrast.effectSize a) (Contrast.effectSize b)
                    let nilearn = Contrast.create F 2 10.0 effect v

                    let nipy =
                        Contrast.create F 2 10.0 effect (Array.concat [ v; Array.zeroCreate n; Array.zeroCreate n; v ])

                    close { absolute = 1e-300; relative = 1e-12 } (Contrast.stat 0.0 nipy) (Contrast.stat 0.0 nilearn))
                testProperty "precision-weighted + is associative and commutative (within 1e-12 × (|a| + |b| + |c|) per voxel)"
                <| Prop.forAll GlmGenerators.threeContrastsOnOneGrid (fun (a, b, c) ->
                    let pa, pb, pc =
                        Contrast.toPrecisionWeighted a, Contrast.toPrecisionWeighted b, Contrast.toPrecisionWeighted c

                    let l, r = (pa + pb) + pc, pc + (pb + pa)

                    withinSumBound l.WeightedEffect r.WeightedEffect pa.WeightedEffect pb.WeightedEffect pc.WeightedEffect
                    && withinSumBound l.Precision r.Precision pa.Precision pb.Precision pc.Precision
                    && l.Dof = r.Dof
                    && (pa + PrecisionWeighted.Zero).Precision = pa.Precision)
                testCase "z is finite and monotone far beyond nilearn's clip (t = 1e11 … 1e13, dof 30)"
                <| fun () ->
                    let ts = [| 1e11; 1e12; 1e13 |]
                    let z = Contrast.zScore 0.0 (Contrast.create T 1 30.0 ts [| 1.0; 1.0; 1.0 |])
                    Expect.isTrue (z |> Array.forall Double.IsFinite) "finite"

                    Expect.isTrue
                        (z[0] < z[1] && z[1] < z[2] && z[0] > 37.1)
                        $"increasing beyond nilearn's 37.05: %A{z}"

                    let zNeg =
                        Contrast.zScore 0.0 (Contrast.create T 1 30.0 (Array.map (~-) ts) [| 1.0; 1.0; 1.0 |])

                    Expect.isTrue (Array.forall2 (fun a b -> a = -b) z zNeg) "antisymmetric" ]
          testList
              "errors"
              [ testCase "adding a t to an F contrast names both"
                <| fun () ->
                    let t = Contrast.create T 1 10.0 [| 1.0 |] [| 1.0 |]
                    let f = Contrast.create F 1 10.0 [| 1.0 |] [| 1.0 |]
                    try
                        t + f |> ignore
                        failtest "expected ArgumentException"
                    with :? ArgumentException as e ->
                        Expect.stringContains e.Message "a F contrast" "names the F contrast"
                        Expect.stringContains e.Message "a T contrast" "names the t contrast"
                testCase "adding contrasts over different voxel counts throws ArgumentException"
                <| fun () ->
                    let a = Contrast.create T 1 10.0 [| 1.0 |] [| 1.0 |]
                    let b = Contrast.create T 1 10.0 [| 1.0; 2.0 |] [| 1.0; 1.0 |]
                    Expect.throwsT<ArgumentException> (fun () -> a + b |> ignore) "voxels differ"
                testCase "statistics of Contrast.Zero throw InvalidOperationException"
                <| fun () ->
                    Expect.throwsT<InvalidOperationException>
                        (fun () -> Contrast.stat 0.0 Contrast.Zero |> ignore)
                        "zero" ] ]
