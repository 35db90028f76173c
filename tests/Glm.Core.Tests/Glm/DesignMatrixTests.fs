module FmriGlm.Core.Tests.DesignMatrixTests

open System.IO
open System.Text.Json
open Expecto
open FsCheck
open FsCheck.FSharp
open MathNet.Numerics.LinearAlgebra
open FmriGlm.Core
open FmriGlm.Core.Hrf
open FmriGlm.Core.Tests.TestHelpers

let private config =
    { FsCheckConfig.defaultConfig with
        maxTest = 30 }

let private tryProp (inputs: JsonElement) (name: string) =
    match inputs.TryGetProperty name with
    | true, v -> Some v
    | _ -> None

/// The make_first_level_design_matrix call of a design case, as our options (absent keys take nilearn's defaults).
let firstLevelOptions (case': string) : FirstLevelDesignOptions =
    let p = Reference.parameters "design" case'
    let inputs = p.GetProperty("inputs")

    let call =
        p.GetProperty("calls").EnumerateArray() |> Seq.head |> (fun c -> c.GetString())

    let delays =
        tryProp inputs "fir_delays"
        |> Option.map (fun d -> [| for x in d.EnumerateArray() -> x.GetInt32() |])
        |> Option.defaultValue [| 0 |]

    let hrf =
        match tryProp inputs "hrf_model" with
        | None -> Glover
        | Some m when m.ValueKind = JsonValueKind.Null -> NoHrf
        | Some m ->
            match Hrf.parse delays (m.GetString()) with
            | Ok h -> h
            | Error _ -> failtest "hrf_model"

    let drift =
        match tryProp inputs "drift_model" with
        | Some m when m.ValueKind = JsonValueKind.Null -> NoDrift
        | Some m when m.GetString() = "polynomial" ->
            Polynomial(
                tryProp inputs "drift_order"
                |> Option.map (fun o -> o.GetInt32())
                |> Option.defaultValue 1
            )
        | _ ->
            Cosine(
                tryProp inputs "high_pass"
                |> Option.map (fun h -> h.GetDouble())
                |> Option.defaultValue 0.01
            )

    let addRegsFile = Reference.path "design" case' "add_regs.tsv"

    let addRegs, addNames =
        if File.Exists addRegsFile then
            let header, _ = Tsv.columns addRegsFile

            let names =
                if call.Contains "add_regs_dataframe" then
                    Some header
                else
                    tryProp inputs "add_reg_names"
                    |> Option.map (fun n -> [| for x in n.EnumerateArray() -> x.GetString() |])

            Some(Tsv.matrix addRegsFile), names
        else
            None, None

    { HrfModel = hrf
      DriftModel = drift
      AddRegs = addRegs
      AddRegNames = addNames
      MinOnset =
        tryProp inputs "min_onset"
        |> Option.map (fun m -> m.GetDouble())
        |> Option.defaultValue -24.0
      Oversampling =
        tryProp inputs "oversampling"
        |> Option.map (fun o -> o.GetInt32())
        |> Option.defaultValue 50 }

/// The design of a case as our code makes it, with its warnings.
let makeCase (case': string) : DesignMatrix * DesignWarning list =
    let inputs = (Reference.parameters "design" case').GetProperty("inputs")

    if case'.StartsWith "second-level" then
        let labels =
            [| for l in inputs.GetProperty("subjects_label").EnumerateArray() -> l.GetString() |]

        let file = Reference.path "design" case' "confounds.tsv"

        let covariates =
            if File.Exists file then
                let header, rows = Tsv.read file
                let names = header |> Array.filter ((<>) "subject_label")

                Some
                    { SubjectLabels = rows |> Array.map (fun r -> r[0])
                      Names = names
                      Columns =
                        names
                        |> Array.map (fun name ->
                            let j = Array.findIndex ((=) name) header
                            rows |> Array.map (fun r -> float r[j])) }
            else
                None

        DesignMatrix.makeSecondLevel labels covariates
    else
        let frames =
            Tsv.column (Reference.path "design" case' "frame_times.tsv") "frame_times"

        let eventsFile = Reference.path "design" case' "events.tsv"

        let events =
            if File.Exists eventsFile then
                Some(fst (Tables.readEvents eventsFile))
            else
                None

        DesignMatrix.makeFirstLevel frames events (firstLevelOptions case')

let private regularFrames (n: int) (tr: float) = Array.init n (fun i -> float i * tr)

let private orthonormal (columns: float[][]) (tolerance: float) =
    if columns.Length = 0 then
        true
    else
        let m = Matrix<float>.Build.DenseOfColumnArrays columns
        let g = m.TransposeThisAndMultiply m

        (g - Matrix<float>.Build.DenseIdentity columns.Length).Enumerate()
        |> Seq.forall (fun v -> abs v <= tolerance)

/// k conditions, each with 1–3 blocks in its own time slot, so no two conditions overlap.
let private nonOverlappingEvents =
    gen {
        let! k = Gen.choose (1, 4)
        let! blocks = Gen.listOfLength k (Gen.choose (1, 3))
        let! length = Gen.choose (2, 8)

        let events =
            [| for c in 0 .. k - 1 do
                   for b in 0 .. blocks[c] - 1 ->
                       let onset = float ((b * k + c) * 20 + 4)
                       onset, float length, $"cond{c}" |]

        return
            { Onsets = events |> Array.map (fun (o, _, _) -> o)
              Durations = events |> Array.map (fun (_, d, _) -> d)
              TrialTypes = events |> Array.map (fun (_, _, t) -> t)
              Modulations = Array.create events.Length 1.0 }
    }

let private expectInputError (f: unit -> unit) (fragment: string) =
    try
        f ()
        failtest "no GlmInputException"
    with :? GlmInputException as e ->
        Expect.stringContains e.Message fragment "message names the input"

let private simpleEvents =
    { Onsets = [| 10.0; 30.0 |]
      Durations = [| 2.0; 2.0 |]
      TrialTypes = [| "a"; "b" |]
      Modulations = [| 1.0; 1.0 |] }

[<Tests>]
let tests =
    testList
        "DesignMatrix"
        [ testList
              "parity"
              [ for case' in Reference.cases "design" do
                    testCase
                        $"columns, order and values = nilearn 0.13.1 make_*_level_design_matrix ({case'}, params.json tolerance)"
                    <| fun () ->
                        let design, _ = makeCase case'
                        let file = Reference.path "design" case' "design_matrix.tsv"
                        let header, _ = Tsv.columns file
                        Expect.sequenceEqual design.ColumnNames header "column names and order"

                        Close.matrix
                            (HrfTests.toleranceOf "design" case' "design_matrix.tsv")
                            design.Values
                            (Tsv.matrix file)
                            case'

                    testCase $"warnings about duplicates, early onsets and singularity = nilearn 0.13.1's ({case'})"
                    <| fun () ->
                        let _, warnings = makeCase case'

                        let nilearn =
                            [ for w in (Reference.parameters "design" case').GetProperty("warnings").EnumerateArray() ->
                                  w.GetString() ]

                        let has (text: string) =
                            nilearn |> List.exists (fun w -> w.Contains text)

                        let ours f = warnings |> List.exists f

                        Expect.equal
                            (ours (function
                                | DuplicatedEventsSummed _ -> true
                                | _ -> false))
                            (has "Duplicated events")
                            "duplicated events"

                        Expect.equal
                            (ours (function
                                | OnsetsBeforeMinOnset _ -> true
                                | _ -> false))
                            (has "earlier than")
                            "early onsets"

                        Expect.equal
                            (ours (function
                                | SingularRegularized _ -> true
                                | _ -> false))
                            (has "regularizing")
                            "full_rank"

                        Expect.equal
                            (ours (function
                                | SingularDesign _ -> true
                                | _ -> false))
                            (has "singular. Aberrant")
                            "second level singular"

                        Expect.equal
                            (ours (function
                                | NullDuration _ -> true
                                | _ -> false))
                            (has "null duration")
                            "null duration" ]
          testList
              "laws"
              [ testPropertyWithConfig config "cosine drift columns are orthonormal (|CᵀC − I| ≤ 1e-10)"
                <| Prop.forAll
                    (Arb.fromGen (Gen.zip3 (Gen.choose (10, 300)) (Gen.choose (5, 30)) (Gen.choose (1, 50))))
                    (fun (n, tr10, hp1000) ->
                        let frames = regularFrames n (float tr10 / 10.0)
                        let columns = DesignMatrix.cosineDrift (float hp1000 / 1000.0) frames
                        orthonormal columns[.. columns.Length - 2] 1e-10)
                testPropertyWithConfig
                    config
                    "polynomial drift columns are mutually orthogonal (|⟨a, b⟩| ≤ 1e-10·|a||b|)"
                <| Prop.forAll (Arb.fromGen (Gen.zip (Gen.choose (10, 200)) (Gen.choose (0, 4)))) (fun (n, order) ->
                    let columns = DesignMatrix.polynomialDrift order (regularFrames n 2.0)

                    let dot (a: float[]) (b: float[]) =
                        Array.fold2 (fun s x y -> s + x * y) 0.0 a b

                    Seq.forall
                        (fun (i, j) ->
                            i = j
                            || abs (dot columns[i] columns[j])
                               <= 1e-10 * sqrt (dot columns[i] columns[i] * dot columns[j] columns[j]))
                        (Seq.allPairs [ 0..order ] [ 0..order ]))
                testPropertyWithConfig
                    config
                    "the design has full column rank for non-overlapping conditions (glover, cosine 0.01 Hz)"
                <| Prop.forAll (Arb.fromGen nonOverlappingEvents) (fun events ->
                    let design, _ =
                        DesignMatrix.makeFirstLevel
                            (regularFrames 150 2.0)
                            (Some events)
                            { DesignMatrix.defaults with
                                Oversampling = 10 }

                    let check = DesignMatrix.check design
                    check.Rank = check.Columns)
                testPropertyWithConfig config "VIF is 1 for mutually orthogonal centred columns (atol 1e-9)"
                <| Prop.forAll (Arb.fromGen (Gen.zip (Gen.choose (20, 120)) (Gen.choose (1, 6)))) (fun (n, k) ->
                    let columns = DesignMatrix.cosineDrift 0.5 (regularFrames n 2.0)
                    let k = min k (columns.Length - 1)

                    let design =
                        { ColumnNames = Array.init k string
                          Values = Array2D.init n k (fun i j -> columns[j][i]) }

                    (DesignMatrix.check design).VarianceInflation
                    |> Array.forall (fun v -> abs (v - 1.0) <= 1e-9))
                testCase "a column twice another's has rank one less and infinite VIF (check)"
                <| fun () ->
                    let frames = regularFrames 60 2.0

                    let design, _ =
                        DesignMatrix.makeFirstLevel
                            frames
                            (Some simpleEvents)
                            { DesignMatrix.defaults with
                                DriftModel = NoDrift }

                    let a = DesignMatrix.column design 0

                    let doubled =
                        { ColumnNames = Array.append design.ColumnNames [| "twice_a" |]
                          Values = Array2D.init 60 4 (fun i j -> if j < 3 then design.Values[i, j] else 2.0 * a[i]) }

                    let check = DesignMatrix.check doubled
                    Expect.equal check.Rank 3 "rank"

                    Expect.isTrue
                        (System.Double.IsPositiveInfinity check.VarianceInflation[3]
                         || check.VarianceInflation[3] > 1e10)
                        "VIF of the copy"

                    Expect.isTrue (System.Double.IsNaN check.VarianceInflation[2]) "constant column has no VIF"
                    Expect.isNonEmpty check.Warnings "warnings"
                testCase
                    "duplicated events: one merged, modulations summed (design equals the single event with modulation 2)"
                <| fun () ->
                    let frames = regularFrames 60 2.0

                    let dup =
                        { Onsets = [| 10.0; 10.0 |]
                          Durations = [| 2.0; 2.0 |]
                          TrialTypes = [| "a"; "a" |]
                          Modulations = [| 1.0; 1.0 |] }

                    let single =
                        { Onsets = [| 10.0 |]
                          Durations = [| 2.0 |]
                          TrialTypes = [| "a" |]
                          Modulations = [| 2.0 |] }

                    let d1, w = DesignMatrix.makeFirstLevel frames (Some dup) DesignMatrix.defaults
                    let d2, _ = DesignMatrix.makeFirstLevel frames (Some single) DesignMatrix.defaults
                    Expect.contains w (DuplicatedEventsSummed 1) "warning"
                    Close.matrix { absolute = 1e-15; relative = 0.0 } d1.Values d2.Values "design" ]
          testList
              "conditions"
              [ testCase "conditions sort by code point (numpy.unique of strings): B < a < a10 < a2"
                <| fun () ->
                    let events =
                        { Onsets = Array.zeroCreate 4
                          Durations = Array.zeroCreate 4
                          TrialTypes = [| "a2"; "a"; "B"; "a10" |]
                          Modulations = Array.create 4 1.0 }

                    Expect.equal (DesignMatrix.conditions events) [| "B"; "a"; "a10"; "a2" |] "order"
                testCase "all-numeric trial types sort numerically, as pandas reads them as numbers: 2 < 10"
                <| fun () ->
                    let events =
                        { Onsets = Array.zeroCreate 3
                          Durations = Array.zeroCreate 3
                          TrialTypes = [| "10"; "2"; "1.5" |]
                          Modulations = Array.create 3 1.0 }

                    Expect.equal (DesignMatrix.conditions events) [| "1.5"; "2"; "10" |] "order" ]
          testList
              "errors"
              [ testCase "decreasing frame times are a contract violation (ArgumentException)"
                <| fun () ->
                    Expect.throwsT<System.ArgumentException>
                        (fun () -> DesignMatrix.makeFirstLevel [| 0.0; 2.0; 1.0 |] None DesignMatrix.defaults |> ignore)
                        "frame times"
                testCase "negative duration names the event and the duration column"
                <| fun () ->
                    expectInputError
                        (fun () ->
                            DesignMatrix.makeFirstLevel
                                (regularFrames 20 2.0)
                                (Some
                                    { simpleEvents with
                                        Durations = [| 1.0; -1.0 |] })
                                DesignMatrix.defaults
                            |> ignore)
                        "event 2, column 'duration'"
                testCase "NaN onset names the event and the onset column"
                <| fun () ->
                    expectInputError
                        (fun () ->
                            DesignMatrix.makeFirstLevel
                                (regularFrames 20 2.0)
                                (Some
                                    { simpleEvents with
                                        Onsets = [| nan; 1.0 |] })
                                DesignMatrix.defaults
                            |> ignore)
                        "event 1, column 'onset'"
                testCase "add_reg_names of the wrong length names add_reg_names"
                <| fun () ->
                    expectInputError
                        (fun () ->
                            DesignMatrix.makeFirstLevel
                                (regularFrames 20 2.0)
                                None
                                { DesignMatrix.defaults with
                                    AddRegs = Some(Array2D.create 20 2 1.0)
                                    AddRegNames = Some [| "x" |] }
                            |> ignore)
                        "add_reg_names"
                testCase "add_regs with the wrong number of rows names add_regs"
                <| fun () ->
                    expectInputError
                        (fun () ->
                            DesignMatrix.makeFirstLevel
                                (regularFrames 20 2.0)
                                None
                                { DesignMatrix.defaults with
                                    AddRegs = Some(Array2D.create 19 1 1.0) }
                            |> ignore)
                        "add_regs"
                testCase "an add_regs name equal to a condition is a duplicate column"
                <| fun () ->
                    expectInputError
                        (fun () ->
                            DesignMatrix.makeFirstLevel
                                (regularFrames 20 2.0)
                                (Some simpleEvents)
                                { DesignMatrix.defaults with
                                    AddRegs = Some(Array2D.create 20 1 1.0)
                                    AddRegNames = Some [| "a" |] }
                            |> ignore)
                        "not unique"
                testCase "second level: a subject without covariates is named"
                <| fun () ->
                    expectInputError
                        (fun () ->
                            DesignMatrix.makeSecondLevel
                                [| "sub-01"; "sub-02" |]
                                (Some
                                    { SubjectLabels = [| "sub-01" |]
                                      Names = [| "age" |]
                                      Columns = [| [| 30.0 |] |] })
                            |> ignore)
                        "sub-02" ] ]
