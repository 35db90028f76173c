module FmriGlm.Core.Tests.HrfTests

open System.Text.Json
open Expecto
open FsCheck
open FsCheck.FSharp
open FmriGlm.Core
open FmriGlm.Core.Hrf
open FmriGlm.Core.Tests.TestHelpers

let private config =
    { FsCheckConfig.defaultConfig with
        maxTest = 50 }

/// A case's tolerance for one file, from its params.json.
let toleranceOf (area: string) (case': string) (file: string) : Accuracy =
    let t = (Reference.parameters area case').GetProperty("tolerance").GetProperty(file)

    { absolute = t.GetProperty("atol").GetDouble()
      relative = t.GetProperty("rtol").GetDouble() }

let private hrfModelOf (inputs: JsonElement) =
    let delays =
        match inputs.GetProperty("fir_delays") with
        | d when d.ValueKind = JsonValueKind.Array -> [| for x in d.EnumerateArray() -> x.GetInt32() |]
        | _ -> [||]

    match inputs.GetProperty("hrf_model") with
    | m when m.ValueKind = JsonValueKind.Null -> NoHrf
    | m ->
        match Hrf.parse delays (m.GetString()) with
        | Ok model -> model
        | Error _ -> failtestf "unknown hrf_model %s" (m.GetString())

/// Frame times 0, tr, …: 24 / tr is an integer so that the oversampled grid step is exactly tr / oversampling.
let private tr = 2.0
/// Long enough that every response (onset ≤ 58 s, duration ≤ 8 s, shift ≤ 10 s, kernel 32 s) ends inside the run:
/// the derivative models orthogonalise over the whole run, so truncation at the end would break the shift law.
let private scans = 60
let private oversampling = 10
let private frameTimes = Array.init scans (fun i -> float i * tr)
let private dt = tr / float oversampling

/// Events whose onsets and ends fall half-way between samples of the fine grid, within the middle of the run.
let private conditionGen =
    gen {
        let! n = Gen.choose (1, 4)
        let! starts = Gen.listOfLength n (Gen.choose (0, 20 * oversampling))
        let! lengths = Gen.listOfLength n (Gen.choose (0, 4 * oversampling))
        let! amplitudes = Gen.listOfLength n (Gen.choose (-30, 30))

        return
            { Onsets = starts |> List.map (fun j -> (float j + 0.5) * dt + 10.0) |> Array.ofList
              Durations = lengths |> List.map (fun m -> float m * dt) |> Array.ofList
              Amplitudes = amplitudes |> List.map (fun a -> float a / 10.0) |> Array.ofList }
    }

let private scaleOf (xs: float[]) =
    xs |> Array.map abs |> Array.max |> max 1.0

[<Tests>]
let tests =
    testList
        "Hrf"
        [ testList
              "parity"
              [ for case' in Reference.cases "hrf" |> Array.filter (fun c -> c.StartsWith "kernels-") do
                    testCase
                        $"six kernels = nilearn 0.13.1 spm_hrf, glover_hrf and derivatives ({case'}, params.json tolerance)"
                    <| fun () ->
                        let inputs = (Reference.parameters "hrf" case').GetProperty("inputs")
                        let t = inputs.GetProperty("t_r").GetDouble()
                        let os = inputs.GetProperty("oversampling").GetInt32()
                        let len = inputs.GetProperty("time_length").GetDouble()
                        let onset = inputs.GetProperty("onset").GetDouble()
                        let file = Reference.path "hrf" case' "kernels.tsv"
                        let acc = toleranceOf "hrf" case' "kernels.tsv"

                        for name, f in
                            [ "spm_hrf", spmKernel
                              "glover_hrf", gloverKernel
                              "spm_time_derivative", spmTimeDerivative
                              "spm_dispersion_derivative", spmDispersionDerivative
                              "glover_time_derivative", gloverTimeDerivative
                              "glover_dispersion_derivative", gloverDispersionDerivative ] do
                            Close.all acc (f t os len onset) (Tsv.column file name) name
                for case' in
                    Reference.cases "hrf"
                    |> Array.filter (fun c -> c.StartsWith "compute_regressor-") do
                    testCase $"regressors and names = nilearn 0.13.1 compute_regressor ({case'}, params.json tolerance)"
                    <| fun () ->
                        let inputs = (Reference.parameters "hrf" case').GetProperty("inputs")
                        let model = hrfModelOf inputs
                        let frames = Tsv.column (Reference.path "hrf" case' "frame_times.tsv") "frame_times"
                        let cond = Reference.path "hrf" case' "exp_condition.tsv"

                        let condition =
                            { Onsets = Tsv.column cond "onset"
                              Durations = Tsv.column cond "duration"
                              Amplitudes = Tsv.column cond "amplitude" }

                        let regs =
                            computeRegressor
                                model
                                frames
                                (inputs.GetProperty("oversampling").GetInt32())
                                (inputs.GetProperty("min_onset").GetDouble())
                                condition

                        let header, expected = Tsv.columns (Reference.path "hrf" case' "regressors.tsv")

                        Expect.sequenceEqual
                            (regressorNames (inputs.GetProperty("con_id").GetString()) model)
                            header
                            "names"

                        let acc = toleranceOf "hrf" case' "regressors.tsv"

                        for j in 0 .. header.Length - 1 do
                            Close.all acc regs[j] expected[j] header[j] ]
          testList
              "laws"
              [ testCase "name is the inverse of parse: parse (name m) = m for every built-in model" <| fun () ->
                    for model in [ Spm; SpmDerivative; SpmDerivativeDispersion; Glover; GloverDerivative
                                   GloverDerivativeDispersion; Fir [| 0; 1; 2 |]; NoHrf ] do
                        match Hrf.parse [| 0; 1; 2 |] (Hrf.name model) with
                        | Ok parsed -> Expect.equal (Hrf.name parsed) (Hrf.name model) $"round trip of {Hrf.name model}"
                        | Error e -> failtest $"{Hrf.name model} does not parse: {e}"
                testPropertyWithConfig
                    config
                    "convolution is linear: regressor of A ∪ B = regressor A + regressor B (glover, spm, none; atol 1e-10 × scale)"
                <| Prop.forAll (Arb.fromGen (Gen.zip conditionGen conditionGen)) (fun (a, b) ->
                    let union =
                        { Onsets = Array.append a.Onsets b.Onsets
                          Durations = Array.append a.Durations b.Durations
                          Amplitudes = Array.append a.Amplitudes b.Amplitudes }

                    [ Glover; Spm; NoHrf ]
                    |> List.forall (fun m ->
                        let r x =
                            (computeRegressor m frameTimes oversampling -24.0 x)[0]

                        let ra, rb, rab = r a, r b, r union
                        let scale = scaleOf rab
                        Array.forall2 (fun s t -> abs (s - t) <= 1e-10 * scale) rab (Array.map2 (+) ra rb)))
                testPropertyWithConfig
                    config
                    "shifting onsets by k·TR shifts the regressor by k frames away from the edges (glover, spm + derivative, fir; atol 1e-9 × scale)"
                <| Prop.forAll (Arb.fromGen (Gen.zip conditionGen (Gen.choose (1, 5)))) (fun (c, k) ->
                    let shifted =
                        { c with
                            Onsets = c.Onsets |> Array.map (fun o -> o + float k * tr) }

                    [ Glover; SpmDerivative; Fir [| 0; 2 |] ]
                    |> List.forall (fun m ->
                        let r0 = computeRegressor m frameTimes oversampling -24.0 c
                        let r1 = computeRegressor m frameTimes oversampling -24.0 shifted

                        Array.forall2
                            (fun (x: float[]) (y: float[]) ->
                                let scale = scaleOf x
                                // scans k .. n − 1 of the shifted run are scans 0 .. n − 1 − k of the original
                                Seq.forall
                                    (fun i -> abs (y[i + k] - x[i]) <= 1e-9 * scale)
                                    (seq { 0 .. scans - 1 - k }))
                            r0
                            r1))
                testPropertyWithConfig
                    config
                    "derivative and dispersion columns are orthogonal to the main regressor (|⟨d, m⟩| ≤ 1e-9·|d||m|)"
                <| Prop.forAll (Arb.fromGen conditionGen) (fun c ->
                    [ SpmDerivativeDispersion; GloverDerivativeDispersion ]
                    |> List.forall (fun m ->
                        let r = computeRegressor m frameTimes oversampling -24.0 c

                        let dot (x: float[]) (y: float[]) =
                            Array.fold2 (fun s a b -> s + a * b) 0.0 x y

                        let norm x = sqrt (dot x x)

                        [ 1; 2 ]
                        |> List.forall (fun j -> abs (dot r[0] r[j]) <= 1e-9 * (norm r[0] * norm r[j] + 1e-300))))
                testPropertyWithConfig
                    config
                    "a Custom HRF that returns gloverKernel gives the Glover regressor exactly, named condition_name"
                <| Prop.forAll (Arb.fromGen conditionGen) (fun c ->
                    let custom = Custom("mine", gloverKernel)

                    regressorNames "face" custom = [ "face_mine" ]
                    && computeRegressor custom frameTimes oversampling -24.0 c = computeRegressor
                        Glover
                        frameTimes
                        oversampling
                        -24.0
                        c)
                testCase "parse accepts nilearn's spellings case-insensitively and names them back"
                <| fun () ->
                    for text, names in
                        [ "SPM", [ "c" ]
                          "Glover + Derivative", [ "c"; "c_derivative" ]
                          "glover + derivative + dispersion", [ "c"; "c_derivative"; "c_dispersion" ]
                          "fir", [ "c_delay_1"; "c_delay_4" ]
                          "none", [ "c" ] ] do
                        match Hrf.parse [| 1; 4 |] text with
                        | Ok m -> Expect.equal (regressorNames "c" m) names text
                        | Error _ -> failtestf "%s not parsed" text
                testProperty "SPM and Glover kernels sum to 1 (atol 1e-12)"
                <| Prop.forAll (Arb.fromGen (Gen.zip (Gen.choose (5, 30)) (Gen.choose (1, 20)))) (fun (t10, os) ->
                    let t = float t10 / 10.0

                    [ spmKernel; gloverKernel ]
                    |> List.forall (fun f -> abs (Array.sum (f t os 32.0 0.0) - 1.0) <= 1e-12)) ]
          testList
              "errors"
              [ testCase "an unknown hrf_model spelling returns the accepted spellings"
                <| fun () ->
                    match Hrf.parse [||] "spm + dispersion" with
                    | Error accepted -> Expect.contains accepted "spm + derivative + dispersion" "accepted list"
                    | Ok _ -> failtest "parsed an unknown model"
                testCase "oversampling 0 is a contract violation (ArgumentException)"
                <| fun () ->
                    Expect.throwsT<System.ArgumentException>
                        (fun () ->
                            computeRegressor
                                Glover
                                frameTimes
                                0
                                -24.0
                                { Onsets = [| 1.0 |]
                                  Durations = [| 1.0 |]
                                  Amplitudes = [| 1.0 |] }
                            |> ignore)
                        "oversampling 0" ] ]
