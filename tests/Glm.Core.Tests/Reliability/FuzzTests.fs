/// The safety promise as properties: for every input family, the only outcomes are a result or the project's
/// GlmInputException naming the input. The budget (cases per property) is FMRIGLM_FUZZ, default 200 in CI;
/// `./test.sh --fuzz 100000` runs a long campaign of these suites alone.
module FmriGlm.Core.Tests.FuzzTests

open System
open System.IO
open System.Text
open Expecto
open FsCheck
open FsCheck.FSharp
open FmriGlm.Core

/// Cases per property: FMRIGLM_FUZZ when set (a long campaign), else the CI budget.
let budget =
    match Int32.TryParse(Environment.GetEnvironmentVariable "FMRIGLM_FUZZ") with
    | true, n when n > 0 -> n
    | _ -> 200

let private config = { FsCheckConfig.defaultConfig with maxTest = budget }

let private withTempDirectory (f: string -> 'a) =
    let dir = Path.Combine(Path.GetTempPath(), $"fmriglm-fuzz-{Guid.NewGuid():N}")
    Directory.CreateDirectory dir |> ignore

    try
        f dir
    finally
        Directory.Delete(dir, true)

/// Runs f; a GlmInputException must name the file (its Input starts with the path); any other exception fails.
let private resultOrInputError (path: string) (f: unit -> unit) =
    try
        f ()
    with :? GlmInputException as e ->
        Expect.isTrue (e.Input.StartsWith path) $"the error names the file: '{e.Message}'"

/// The GlmInputException f raises; fails when it returns or raises anything else.
let private inputError (f: unit -> unit) : GlmInputException =
    try
        f ()
        failtest "expected GlmInputException, the call succeeded"
    with :? GlmInputException as e ->
        e

// ---- TSV tables: shapes and cells -------------------------------------------------------------------------------

let private cells =
    [| "1"; "0"; "-3.5"; "12"; "n/a"; ""; " "; "nan"; "inf"; "-inf"; "Infinity"; "1e300"; "-1e300"; "1e-320"; "1e400"
       "abc"; "faces"; "\""; "\"q\""; "a\"b"; "x y"; "\r"; "0x10"; "1,5"; "١"; "é"; String('7', 5000) |]

let private headers = [| "onset"; "duration"; "trial_type"; "modulation"; "subject_label"; "a"; ""; "onset"; "x y" |]

/// A table as bytes: a header drawn from BIDS names and others, rows of cells from the pool, optionally a BOM,
/// a missing final newline, a row with extra or missing cells, CRLF line ends or an invalid UTF-8 byte.
let private genTable =
    gen {
        let! columns = Gen.choose (0, 5)
        let! header = Gen.arrayOfLength columns (Gen.elements headers)
        let! rows = Gen.choose (0, 6)

        let! body =
            Gen.listOfLength rows (
                gen {
                    let! width = Gen.frequency [ 8, Gen.constant columns; 1, Gen.choose (0, columns + 2) ]
                    let! row = Gen.arrayOfLength width (Gen.elements cells)
                    return String.Join("\t", row)
                }
            )

        let! crlf = Gen.frequency [ 6, Gen.constant false; 1, Gen.constant true ]
        let! bom = Gen.frequency [ 6, Gen.constant false; 1, Gen.constant true ]
        let! finalNewline = ArbMap.defaults |> ArbMap.generate<bool>
        let! invalidByte = Gen.frequency [ 6, Gen.constant None; 1, Gen.choose (0, 200) |> Gen.map Some ]
        let newline = if crlf then "\r\n" else "\n"
        let text = String.Join(newline, String.Join("\t", header) :: body) + (if finalNewline then newline else "")
        let bytes = Encoding.UTF8.GetBytes text
        let bytes = if bom then Array.append [| 0xEFuy; 0xBBuy; 0xBFuy |] bytes else bytes

        return
            match invalidByte with
            | Some at when bytes.Length > 0 ->
                let b = Array.copy bytes
                b[at % b.Length] <- 0xFFuy
                b
            | _ -> bytes
    }

let private tables =
    testList "tables" [
        testPropertyWithConfig config "every table reader gives a result or GlmInputException naming the file, for any shape and cells"
        <| Prop.forAll (Arb.fromGen genTable) (fun bytes ->
            withTempDirectory (fun dir ->
                let path = Path.Combine(dir, "table.tsv")
                File.WriteAllBytes(path, bytes)

                resultOrInputError path (fun () ->
                    let events, _ = Tables.readEvents path
                    // what is accepted is usable: no silent infinity or NaN in onsets and durations
                    Expect.isTrue (Array.forall Double.IsFinite events.Onsets) "accepted onsets are finite"
                    Expect.isTrue (Array.forall Double.IsFinite events.Durations) "accepted durations are finite")

                resultOrInputError path (fun () -> Tables.readConfounds path None |> ignore)
                resultOrInputError path (fun () -> Tables.readConfounds path (Some [| "a"; "onset" |]) |> ignore)
                resultOrInputError path (fun () -> Tables.readDesign path |> ignore)
                resultOrInputError path (fun () -> Tables.readSubjectCovariates path |> ignore)

                resultOrInputError path (fun () ->
                    let table = Tables.readConfounds path None
                    Tables.requireRegressors path table)))

        testCase "a 0-byte table is refused naming the file, not a CSV reader's stack trace" <| fun () ->
            withTempDirectory (fun dir ->
                let path = Path.Combine(dir, "empty.tsv")
                File.WriteAllBytes(path, [||])
                let e = inputError (fun () -> Tables.readEvents path |> ignore)
                Expect.equal e.Input path "names the file"
                Expect.stringContains e.Problem "0 bytes" "says why")

        testCase "a 200,000-character cell is read (the reader's buffer grows), as pandas reads it" <| fun () ->
            withTempDirectory (fun dir ->
                let path = Path.Combine(dir, "events.tsv")
                File.WriteAllText(path, $"onset\tduration\ttrial_type\n8\t12\t{String('x', 200000)}\n28\t12\thouses\n")
                let events, _ = Tables.readEvents path
                Expect.equal events.TrialTypes[0].Length 200000 "the whole cell")

        testCase "a row with more cells than the header is refused naming the line" <| fun () ->
            withTempDirectory (fun dir ->
                let path = Path.Combine(dir, "events.tsv")
                File.WriteAllText(path, "onset\tduration\ttrial_type\n8\t12\tfaces\textra\n")
                let e = inputError (fun () -> Tables.readEvents path |> ignore)
                Expect.equal e.Input $"{path}, line 2" "names file and line")

        testCase "invalid UTF-8 is refused naming the file" <| fun () ->
            withTempDirectory (fun dir ->
                let path = Path.Combine(dir, "events.tsv")
                File.WriteAllBytes(path, Array.append (Encoding.UTF8.GetBytes "onset\tduration\ttrial_type\n8\t12\tfa") [| 0xFFuy; 0x0Auy |])
                let e = inputError (fun () -> Tables.readEvents path |> ignore)
                Expect.equal e.Input path "names the file"
                Expect.stringContains e.Problem "UTF-8" "says why")

        testCase "an infinite duration is refused as an infinite onset is" <| fun () ->
            withTempDirectory (fun dir ->
                let path = Path.Combine(dir, "events.tsv")
                File.WriteAllText(path, "onset\tduration\ttrial_type\n8\tinf\tfaces\n")
                let e = inputError (fun () -> Tables.readEvents path |> ignore)
                Expect.equal e.Input $"{path}, line 2, column 'duration'" "names file, line and column")

        testCase "a confound whose sum of squares overflows (1e300) is refused naming its cell, never handed to an SVD" <| fun () ->
            withTempDirectory (fun dir ->
                let path = Path.Combine(dir, "confounds.tsv")
                File.WriteAllText(path, "a\tb\n1\t2\n3\t1e300\n5\t6\n")
                let e = inputError (fun () -> Tables.readConfounds path None |> ignore)
                Expect.equal e.Input $"{path}, line 3, column 'b'" "names file, line and column")

        testCase "an n/a in a design read from a file is refused naming its cell (second-level and permute alike)" <| fun () ->
            withTempDirectory (fun dir ->
                let path = Path.Combine(dir, "design.tsv")
                File.WriteAllText(path, "a\tb\n1\tn/a\n1\t2\n")
                let table = Tables.readConfounds path None
                let e = inputError (fun () -> Tables.requireRegressors path table)
                Expect.equal e.Input $"{path}, line 2, column 'b'" "names file, line and column")
    ]

// ---- contrast expressions ---------------------------------------------------------------------------------------

let private tokens =
    [| "a"; "b"; "c_1"; "`x y`"; "d"; "1"; "0"; "2.5"; "1e400"; "1e-400"; "+"; "-"; "*"; "/"; "("; ")"; " "; "$"; "ä"
       "."; "e"; "`"; "**"; "a/0"; "0/0" |]

let private columns = [ "a"; "b"; "c_1"; "x y" ]

let private expressions =
    testList "contrast expressions" [
        testPropertyWithConfig config "parse gives finite weights, one per column, or an error value: never an exception"
        <| Prop.forAll (Arb.fromGen (Gen.choose (0, 12) |> Gen.bind (fun n -> Gen.arrayOfLength n (Gen.elements tokens)) |> Gen.map String.Concat)) (fun text ->
            match ContrastExpression.parse columns text with
            | Ok weights ->
                Expect.equal weights.Length columns.Length "one weight per column"
                Expect.isTrue (Array.forall Double.IsFinite weights) $"'{text}' gave finite weights"
            | Error e -> Expect.isNotEmpty e.Message "the error has words")

        testCase "a division by zero is an error, not NaN maps" <| fun () ->
            match ContrastExpression.parse columns "a/0" with
            | Error(NotFinite _) -> ()
            | other -> failtestf "expected NotFinite, got %A" other
    ]

// ---- NIfTI geometry ---------------------------------------------------------------------------------------------

let private specials = [| nan; infinity; -infinity; 0.0; 1e38; -1e-38; 2.0; -3.0; 1.0 |]

/// An uncompressed 4×3×2 image with the sform (code 2) or only the qform (code 1) set from drawn values.
let private genGeometry =
    gen {
        let! useSform = ArbMap.defaults |> ArbMap.generate<bool>
        let! values = Gen.arrayOfLength 12 (Gen.frequency [ 3, Gen.elements specials; 1, ArbMap.defaults |> ArbMap.generate<NormalFloat> |> Gen.map (fun (NormalFloat x) -> x) ])
        let! quaternion = Gen.arrayOfLength 6 (Gen.elements specials)
        let! pixdim = Gen.arrayOfLength 3 (Gen.elements specials)
        return useSform, values, quaternion, pixdim
    }

let private geometry =
    testList "NIfTI geometry" [
        testPropertyWithConfig config "any sform or qform gives a finite non-singular affine, or GlmInputException naming the file"
        <| Prop.forAll (Arb.fromGen genGeometry) (fun (useSform, values, quaternion, pixdim) ->
            withTempDirectory (fun dir ->
                let path = Path.Combine(dir, "geometry.nii")
                let affine = Array2D.init 4 4 (fun i j -> if i = j then 2.0 else 0.0)
                Nifti.write path (Nifti.writeOptions [| 4L; 3L; 2L |] affine) (Array.init 24 float)
                let bytes = File.ReadAllBytes path
                let put (offset: int) (v: float) = BitConverter.TryWriteBytes(Span(bytes, offset, 4), float32 v) |> ignore

                if useSform then
                    values |> Array.iteri (fun k v -> put (280 + 4 * k) v)
                else
                    BitConverter.TryWriteBytes(Span(bytes, 252, 2), 1s) |> ignore // qform_code
                    BitConverter.TryWriteBytes(Span(bytes, 254, 2), 0s) |> ignore // sform_code
                    quaternion |> Array.iteri (fun k v -> put (256 + 4 * k) v)
                    pixdim |> Array.iteri (fun k v -> put (80 + 4 * k) v)

                File.WriteAllBytes(path, bytes)

                resultOrInputError path (fun () ->
                    let image = Nifti.read path
                    let a = image.Header.Affine
                    Expect.isTrue (Seq.forall Double.IsFinite (Seq.cast<float> a)) "an accepted affine is finite"
                    let m = MathNet.Numerics.LinearAlgebra.Matrix<float>.Build.DenseOfArray(Array2D.init 3 3 (fun i j -> a[i, j]))
                    Expect.notEqual (m.Determinant()) 0.0 "an accepted affine is not singular")))
    ]

// ---- design options ---------------------------------------------------------------------------------------------

let private hostileNumbers = [| nan; infinity; -infinity; -1.0; 0.0; 1e-300; 0.01; 0.5; 1e300 |]

let private genDesignOptions =
    gen {
        let! highPass = Gen.elements hostileNumbers
        let! order = Gen.elements [| -1; 0; 3; 79; 80; 100000; Int32.MaxValue |]
        let! drift = Gen.elements [| Cosine highPass; Polynomial order; NoDrift |]
        let! minOnset = Gen.elements hostileNumbers
        let! oversampling = Gen.elements [| -1; 0; 1; 50; 1000000; Int32.MaxValue |]
        return { DesignMatrix.defaults with DriftModel = drift; MinOnset = minOnset; Oversampling = oversampling }
    }

let private designOptions =
    testList "design options" [
        testPropertyWithConfig { config with maxTest = min budget 100 } "any high_pass, drift_order, min_onset and oversampling gives a design or GlmInputException naming the parameter, never a crash or a spin"
        <| Prop.forAll (Arb.fromGen genDesignOptions) (fun options ->
            let events = { Onsets = [| 4.0; 40.0 |]; Durations = [| 2.0; 2.0 |]; TrialTypes = [| "a"; "b" |]; Modulations = [| 1.0; 1.0 |] }

            try
                DesignMatrix.makeFirstLevel (DesignMatrix.frameTimes 80 2.0 0.0) (Some events) options |> ignore
            with :? GlmInputException as e ->
                Expect.contains [ "high_pass"; "drift_order"; "min_onset"; "oversampling" ] e.Input "names the parameter")
    ]

[<Tests>]
let tests = testList "Reliability" [ tables; expressions; geometry; designOptions ]
