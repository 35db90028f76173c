module FmriGlm.Core.Tests.TablesTests

open System
open System.IO
open Expecto
open FsCheck
open FsCheck.FSharp
open FmriGlm.Core
open FmriGlm.Core.Tests.TestHelpers

let private tempFile (text: string) =
    let path =
        Path.Combine(Path.GetTempPath(), $"fmriglm-tables-{Guid.NewGuid():N}.tsv")

    File.WriteAllText(path, text)
    path

let private expectInputError (text: string) (fragment: string) =
    let path = tempFile text

    try
        try
            Tables.readEvents path |> ignore
            failtest "no GlmInputException"
        with :? GlmInputException as e ->
            Expect.stringContains e.Message path "names the file"
            Expect.stringContains e.Message fragment "names line and column"
    finally
        File.Delete path

let private finiteFloat =
    Gen.elements
        [ 0.0
          1.0
          -1.5
          Math.PI
          1e-300
          -2.5e300
          0.1 + 0.2
          Double.Epsilon
          123456789.123456789 ]

/// A numeric column of a table that also has text columns (Tsv.column parses every column as numbers).
let private numericColumn (file: string) (name: string) =
    let header, rows = Tsv.read file
    let j = Array.findIndex ((=) name) header

    rows
    |> Array.map (fun r -> Double.Parse(r[j], Globalization.CultureInfo.InvariantCulture))

[<Tests>]
let tests =
    testList
        "Tables"
        [ testList
              "reference inputs"
              [ for case' in
                    Reference.cases "design"
                    |> Array.filter (fun c -> File.Exists(Reference.path "design" c "events.tsv")) do
                    testCase $"readEvents gives events.tsv's onset and duration cells as invariant doubles and its trial_type cells as they are ({case'}, exact)"
                    <| fun () ->
                        let file = Reference.path "design" case' "events.tsv"
                        let events, warnings = Tables.readEvents file
                        let header, rows = Tsv.read file
                        Close.all { absolute = 0.0; relative = 0.0 } events.Onsets (numericColumn file "onset") "onset"

                        Close.all
                            { absolute = 0.0; relative = 0.0 }
                            events.Durations
                            (numericColumn file "duration")
                            "duration"

                        match Array.tryFindIndex ((=) "trial_type") header with
                        | Some j ->
                            Expect.sequenceEqual events.TrialTypes (rows |> Array.map (fun r -> r[j])) "trial_type"
                        | None ->
                            Expect.contains warnings Tables.MissingTrialType "warning"
                            Expect.allEqual events.TrialTypes "dummy" "dummy condition"
                for case' in Reference.cases "design" do
                    testCase $"design_matrix.tsv round-trips through readDesign/writeDesign ({case'}, exact)"
                    <| fun () ->
                        let design = Tables.readDesign (Reference.path "design" case' "design_matrix.tsv")

                        let path =
                            Path.Combine(Path.GetTempPath(), $"fmriglm-design-{Guid.NewGuid():N}.tsv")

                        try
                            Tables.writeDesign path design
                            let back = Tables.readDesign path
                            Expect.sequenceEqual back.ColumnNames design.ColumnNames "names"
                            Close.matrix { absolute = 0.0; relative = 0.0 } back.Values design.Values case'
                        finally
                            File.Delete path ]
          testList
              "laws"
              [ testProperty "designToTsv then readDesign is the identity on doubles (exact, R format)"
                <| Prop.forAll
                    (Arb.fromGen (
                        Gen.listOfLength
                            12
                            (Gen.oneof
                                [ finiteFloat
                                  Gen.choose (-1000000, 1000000) |> Gen.map (fun i -> float i / 7.0) ])
                    ))
                    (fun values ->
                        let design =
                            { ColumnNames = [| "a"; "b"; "c" |]
                              Values = Array2D.init 4 3 (fun i j -> values[i * 3 + j]) }

                        let path = tempFile (Tables.designToTsv design)

                        try
                            let back = Tables.readDesign path
                            back.ColumnNames = design.ColumnNames && back.Values = design.Values
                        finally
                            File.Delete path)
                testCase "confounds: n/a cells are NaN and columns come in the order asked"
                <| fun () ->
                    let path = tempFile "csf\tglobal_signal\ttrans_x\nn/a\t1.5\t0.25\n2\t3\t-1\n"

                    try
                        let names, values = Tables.readConfounds path (Some [| "trans_x"; "csf" |])
                        Expect.sequenceEqual names [| "trans_x"; "csf" |] "names"
                        Expect.equal values[0, 0] 0.25 "trans_x row 1"
                        Expect.isTrue (Double.IsNaN values[0, 1]) "n/a is NaN"
                        Expect.equal values[1, 1] 2.0 "csf row 2"
                    finally
                        File.Delete path
                testCase "CRLF line ends, a UTF-8 BOM and an extra column: read, with an UnexpectedColumns warning"
                <| fun () ->
                    let path =
                        Path.Combine(Path.GetTempPath(), $"fmriglm-tables-{Guid.NewGuid():N}.tsv")

                    let text = "onset\tduration\ttrial_type\tresponse_time\r\n1.5\t2\tface\tn/a\r\n"
                    File.WriteAllText(path, text, Text.UTF8Encoding(true))

                    try
                        let events, warnings = Tables.readEvents path
                        Expect.equal events.Onsets [| 1.5 |] "onset"
                        Expect.equal events.TrialTypes [| "face" |] "trial_type"
                        Expect.equal warnings [ Tables.UnexpectedColumns [ "response_time" ] ] "warning"
                    finally
                        File.Delete path ]
          testList
              "errors"
              [ testCase "missing onset column names the file"
                <| fun () -> expectInputError "duration\ttrial_type\n1\ta\n" "no 'onset' column"
                testCase "missing duration column names the file"
                <| fun () -> expectInputError "onset\ttrial_type\n1\ta\n" "no 'duration' column"
                testCase "non-numeric onset names line and column"
                <| fun () -> expectInputError "onset\tduration\n1\t2\nsoon\t2\n" "line 3, column 'onset'"
                testCase "n/a onset names line and column"
                <| fun () -> expectInputError "onset\tduration\nn/a\t2\n" "line 2, column 'onset'"
                testCase "n/a duration names line and column"
                <| fun () -> expectInputError "onset\tduration\n1\tn/a\n" "line 2, column 'duration'"
                testCase "negative duration names line, column and value"
                <| fun () ->
                    expectInputError "onset\tduration\n1\t2\n5\t-3\n" "line 3, column 'duration': negative duration -3"
                testCase "unknown confound column names the file and the column"
                <| fun () ->
                    let path = tempFile "csf\n1\n"

                    try
                        Expect.throwsT<GlmInputException>
                            (fun () -> Tables.readConfounds path (Some [| "wm" |]) |> ignore)
                            "unknown column"
                    finally
                        File.Delete path ] ]
