module FmriGlm.Core.Tests.ConfoundsTests

open System
open System.Globalization
open System.IO
open System.Text.Json
open Expecto
open FsCheck
open FsCheck.FSharp
open FmriGlm.Core
open FmriGlm.Core.Tests.TestHelpers

/// The fMRIPrep fixture every reference case was computed on (tests/data/confounds/fmriprep).
let private fixtureDir = Path.Combine(Reference.dataDir, "confounds", "fmriprep")

let private preprocBold = "sub-01_task-test_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz"
let private aromaBold = "sub-01_task-test_space-MNI152NLin2009cAsym_desc-smoothAROMAnonaggr_bold.nii.gz"

let private text (e: JsonElement) =
    match e.ValueKind with
    | JsonValueKind.String -> e.GetString()
    | _ -> e.GetRawText()

/// load_confounds' keyword arguments applied to FmriGlm's options, through the parsers the CLI and C# use.
let private withArgument (o: ConfoundsOptions) (key: string) (v: JsonElement) =
    match key with
    | "strategy" -> { o with Strategy = [ for s in v.EnumerateArray() -> Confounds.parseComponent (s.GetString()) ] }
    | "motion" -> { o with Motion = Confounds.parseExpansion key (text v) }
    | "wm_csf" -> { o with WmCsf = Confounds.parseExpansion key (text v) }
    | "global_signal" -> { o with GlobalSignal = Confounds.parseExpansion key (text v) }
    | "compcor" -> { o with Compcor = Confounds.parseCompCor (text v) }
    | "n_compcor" -> { o with NCompcor = Confounds.parseCompCorCount (text v) }
    | "ica_aroma" -> { o with IcaAroma = Confounds.parseIcaAroma (text v) }
    | "scrub" -> { o with Scrub = v.GetInt32() }
    | "fd_threshold" -> { o with FdThreshold = v.GetDouble() }
    | "std_dvars_threshold" -> { o with StdDvarsThreshold = v.GetDouble() }
    | "demean" -> { o with Demean = v.GetBoolean() }
    | _ -> failwith $"unknown load_confounds argument {key}"

let private withOverride (o: DenoiseOverrides) (key: string) (v: JsonElement) =
    match key with
    | "n_compcor" -> { o with NCompcor = Some(Confounds.parseCompCorCount (text v)) }
    | "fd_threshold" -> { o with FdThreshold = Some(v.GetDouble()) }
    | "std_dvars_threshold" -> { o with StdDvarsThreshold = Some(v.GetDouble()) }
    | _ -> failwith $"unknown load_confounds_strategy argument {key}"

/// Runs a case's call (params.json "inputs") on the fixture.
let private runCase (case': string) : LoadedConfounds =
    let inputs = (Reference.parameters "confounds" case').GetProperty "inputs"
    let arguments = [ for p in inputs.EnumerateObject() -> p.Name, p.Value ]
    let bold = Path.Combine(fixtureDir, inputs.GetProperty("img_files").GetString())
    let rest = arguments |> List.filter (fun (k, _) -> k <> "img_files" && k <> "denoise_strategy")

    match inputs.TryGetProperty "denoise_strategy" with
    | true, s ->
        let overrides = rest |> List.fold (fun o (k, v) -> withOverride o k v) Confounds.noOverrides
        Confounds.loadStrategy bold (Confounds.parseDenoiseStrategy (s.GetString())) overrides
    | _ -> Confounds.load bold (rest |> List.fold (fun o (k, v) -> withArgument o k v) Confounds.defaults)

let private parity (case': string) =
    let acc = Tolerance.forColumn "confounds" case' "confounds.tsv" ""

    testCase $"{case'}: columns and order exact, values atol {acc.absolute:g} rtol {acc.relative:g}, sample mask exact (nilearn 0.13.1)"
    <| fun () ->
        let loaded = runCase case'
        let expectedColumns, expectedValues = Tsv.columns (Reference.path "confounds" case' "confounds.tsv")
        Expect.sequenceEqual loaded.Columns expectedColumns "columns and their order"
        let actual j = Array.init (Array2D.length1 loaded.Values) (fun i -> loaded.Values[i, j])
        expectedColumns |> Array.iteri (fun j name -> Close.all acc (actual j) expectedValues[j] name)
        let expected = JsonDocument.Parse(File.ReadAllText(Reference.path "confounds" case' "expected.json")).RootElement

        match expected.GetProperty("sample_mask").GetString() with
        | "none" -> Expect.isNone loaded.SampleMask "no sample mask"
        | file ->
            let kept = Tsv.column (Reference.path "confounds" case' file) "index" |> Array.map int
            Expect.sequenceEqual (Option.defaultValue [||] loaded.SampleMask) kept "sample mask"
            Expect.equal kept.Length (expected.GetProperty("n_kept").GetInt32()) "n_kept"

// ---- generated fMRIPrep folders ---------------------------------------------------------------------------------

/// A BOLD file name in a new folder holding the given confounds table (and sidecar, when given).
let private folderWith (tsvName: string) (header: string list) (rows: float[] list) (sidecar: string option) =
    let dir = Path.Combine(Path.GetTempPath(), $"fmriglm-confounds-{Guid.NewGuid():N}")
    Directory.CreateDirectory dir |> ignore

    let cell (v: float) =
        if Double.IsNaN v then "n/a" else v.ToString("R", CultureInfo.InvariantCulture)

    let lines = String.Join("\t", header) :: [ for r in rows -> String.Join("\t", r |> Array.map cell) ]
    File.WriteAllText(Path.Combine(dir, tsvName), String.Join("\n", lines) + "\n")
    sidecar |> Option.iter (fun json -> File.WriteAllText(Path.Combine(dir, Path.ChangeExtension(tsvName, ".json")), json))
    dir, Path.Combine(dir, preprocBold)

let private motionNames =
    [ for p in [ "trans_x"; "trans_y"; "trans_z"; "rot_x"; "rot_y"; "rot_z" ] do
          yield p
          yield p + "_derivative1"
          yield p + "_power2"
          yield p + "_derivative1_power2" ]

/// A random motion table: columns motionNames @ [non_steady_state_outlier00; framewise_displacement; std_dvars].
let private motionTable =
    gen {
        let! n = Gen.choose (3, 40)
        let! values = Gen.arrayOfLength (n * motionNames.Length) (Gen.choose (-100000, 100000) |> Gen.map (fun i -> float i / 997.0))
        let! steady = Gen.choose (0, 2)
        let! fd = Gen.arrayOfLength n (Gen.choose (0, 100) |> Gen.map (fun i -> float i / 100.0))

        return
            [ for i in 0 .. n - 1 ->
                  Array.append
                      values[i * motionNames.Length .. (i + 1) * motionNames.Length - 1]
                      [| (if i < steady then 1.0 else 0.0); fd[i]; fd[i] * 2.0 |] ]
    }

let private withTable (rows: float[] list) (f: string -> 'a) : 'a =
    let dir, bold =
        folderWith
            "sub-01_task-test_desc-confounds_timeseries.tsv"
            (motionNames @ [ "non_steady_state_outlier00"; "framewise_displacement"; "std_dvars" ])
            rows
            None

    try
        f bold
    finally
        Directory.Delete(dir, true)

/// Maximal runs of consecutive kept volumes.
let private keptSegments (nScans: int) (flagged: int[]) =
    let isFlagged = Array.init nScans (fun i -> Array.contains i flagged)

    ([], [ 0 .. nScans - 1 ])
    ||> List.fold (fun segments i ->
        match isFlagged[i], segments with
        | true, _ -> segments
        | false, (last :: _ as s) :: rest when last = i - 1 -> (i :: s) :: rest
        | false, _ -> [ i ] :: segments)

let private expectInputError (fragments: string list) (f: unit -> 'a) =
    try
        f () |> ignore
        failtest "no GlmInputException"
    with :? GlmInputException as e ->
        for fragment in fragments do
            Expect.stringContains e.Message fragment "names the input and the fault"

let private fixtureBold = Path.Combine(fixtureDir, preprocBold)

let private column (loaded: LoadedConfounds) (name: string) =
    let j = Array.IndexOf(loaded.Columns, name)
    Array.init (Array2D.length1 loaded.Values) (fun i -> loaded.Values[i, j])

// ---- the CLI ----------------------------------------------------------------------------------------------------

/// The built fmriglm CLI (Release) beside the repository's tests/data, when the solution has been built.
let private cliDll () =
    let root = Path.GetDirectoryName(Path.GetDirectoryName Reference.dataDir)
    Some(Path.Combine(root, "src", "Glm.Cli", "bin", "Release", "net10.0", "fmriglm.dll")) |> Option.filter File.Exists

let private runCli (args: string list) =
    match cliDll () with
    | None -> Tests.skiptest "src/Glm.Cli/bin/Release/net10.0/fmriglm.dll not built: build the solution in Release"
    | Some dll ->
        let psi = Diagnostics.ProcessStartInfo("dotnet", RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false)
        psi.ArgumentList.Add dll
        args |> List.iter psi.ArgumentList.Add
        use p = Diagnostics.Process.Start psi
        let out, err = p.StandardOutput.ReadToEndAsync(), p.StandardError.ReadToEndAsync()

        if not (p.WaitForExit(TimeSpan.FromMinutes 2.0)) then
            p.Kill true
            failtest "fmriglm confounds did not finish within 2 minutes"

        p.WaitForExit()
        p.ExitCode, out.Result, err.Result

let private cliTests =
    testList
        "CLI"
        [ testCase "fmriglm confounds --denoise-strategy scrubbing writes nilearn's table and sample mask (strategy-scrubbing case, its tolerance)"
          <| fun () ->
              let dir = Directory.CreateTempSubdirectory "fmriglm-confounds-cli"

              try
                  let out, kept = Path.Combine(dir.FullName, "confounds.tsv"), Path.Combine(dir.FullName, "kept.tsv")

                  let code, stdout, err =
                      runCli
                          [ "confounds"; fixtureBold; "--denoise-strategy"; "scrubbing"; "--fd-threshold"; "0.15"
                            "--std-dvars-threshold"; "1.2"; "--out"; out; "--sample-mask-out"; kept ]

                  Expect.equal code 0 $"exit code (stderr: {err})"
                  Expect.stringContains stdout "volumes kept\t21 of 30" "summary"
                  let case' = "strategy-scrubbing"
                  let acc = Tolerance.forColumn "confounds" case' "confounds.tsv" ""
                  let columns, values = Tsv.columns out
                  let expectedColumns, expected = Tsv.columns (Reference.path "confounds" case' "confounds.tsv")
                  Expect.sequenceEqual columns expectedColumns "columns"
                  Array.iteri2 (fun j a e -> Close.all acc a e columns[j]) values expected
                  let expectedKept = Tsv.column (Reference.path "confounds" case' "sample_mask.tsv") "index" |> Array.map (int >> string)
                  Expect.sequenceEqual (File.ReadAllLines kept) expectedKept "one kept index per line"
              finally
                  dir.Delete true

          testCase "fmriglm confounds --strategy compcor exits 1 naming the strategy and nilearn's rule, and writes nothing"
          <| fun () ->
              let dir = Directory.CreateTempSubdirectory "fmriglm-confounds-cli"

              try
                  let out = Path.Combine(dir.FullName, "confounds.tsv")
                  let code, _, err = runCli [ "confounds"; fixtureBold; "--strategy"; "compcor"; "--out"; out ]
                  Expect.equal code 1 "exit code"
                  Expect.stringContains err "strategy" "names the option"
                  Expect.stringContains err "high_pass" "says what is missing"
                  Expect.isEmpty (Directory.GetFileSystemEntries dir.FullName) "nothing written"
              finally
                  dir.Delete true

          testCase "fmriglm first-level --confounds-strategy motion --motion basic builds the run's confounds and drops the non-steady-state scan"
          <| fun () ->
              let dir = Directory.CreateTempSubdirectory "fmriglm-confounds-cli"

              try
                  for f in Array.append (Directory.GetFiles(fixtureDir, "*.tsv")) (Directory.GetFiles(fixtureDir, "*.json")) do
                      File.Copy(f, Path.Combine(dir.FullName, Path.GetFileName f))

                  let bold = Path.Combine(dir.FullName, preprocBold)
                  let identity = Array2D.init 4 4 (fun i j -> if i = j then 1.0 else 0.0)
                  let w = Nifti.createWriter bold (Nifti.writeOptions [| 2L; 2L; 2L; 30L |] identity)
                  let random = Random 3

                  for _ in 1..30 do
                      w.WriteVolume(ReadOnlySpan(Array.init 8 (fun _ -> float32 (100.0 + random.NextDouble()))))

                  w.Complete()
                  let events = Path.Combine(dir.FullName, "events.tsv")
                  File.WriteAllText(events, "onset\tduration\ttrial_type\n10\t5\ttask\n30\t5\ttask\n")
                  let out = Path.Combine(dir.FullName, "out")

                  let code, _, err =
                      runCli
                          [ "first-level"; "--bold"; bold; "--events"; events; "--tr"; "2"; "--no-mask"; "--noise-model"; "ols"
                            "--confounds-strategy"; "motion"; "--motion"; "basic"; "--contrast"; "task"; "--out"; out ]

                  Expect.equal code 0 $"exit code (stderr: {err})"
                  let design = Directory.GetFiles(out, "*design.tsv") |> Array.exactlyOne
                  let columns, values = Tsv.columns design
                  Expect.equal values[0].Length 29 "29 of 30 scans: the non-steady-state scan is left out"

                  for name in [ "trans_x"; "rot_z" ] do
                      Expect.contains columns name "motion column in the design"
              finally
                  dir.Delete true

          testCase "fmriglm confounds --demean maybe exits 1 naming --demean"
          <| fun () ->
              let code, _, err = runCli [ "confounds"; fixtureBold; "--demean"; "maybe"; "--out"; Path.Combine(Path.GetTempPath(), "never.tsv") ]
              Expect.equal code 1 "exit code"
              Expect.stringContains err "--demean" "names the option" ]

[<Tests>]
let tests =
    testList
        "Confounds"
        [ cliTests
          testList "parity" [ for case' in Reference.cases "confounds" |> Array.filter ((<>) "fmriprep") -> parity case' ]

          testList
              "laws"
              [ testProperty "demean gives columns whose mean over the kept volumes is 0 (|mean| <= 1e-9 * scale)"
                <| Prop.forAll (Arb.fromGen motionTable) (fun rows ->
                    withTable rows (fun bold ->
                        let loaded = Confounds.load bold { Confounds.defaults with Strategy = [ Motion ] }
                        let kept = loaded.SampleMask |> Option.defaultValue [| 0 .. rows.Length - 1 |]

                        kept.Length = 0
                        || loaded.Columns
                           |> Array.forall (fun name ->
                               let c = column loaded name
                               let scale = 1.0 + (c |> Array.map abs |> Array.max)
                               abs (kept |> Array.averageBy (fun i -> c[i])) <= 1e-9 * scale)))

                testProperty "the sample mask leaves out exactly the non-steady-state volumes when not scrubbing"
                <| Prop.forAll (Arb.fromGen motionTable) (fun rows ->
                    withTable rows (fun bold ->
                        let loaded = Confounds.load bold { Confounds.defaults with Strategy = [ Motion ] }
                        let steady = rows |> List.filter (fun r -> r[motionNames.Length] = 1.0) |> List.length
                        loaded.SampleMask = Some [| steady .. rows.Length - 1 |]))

                testProperty "scrub never keeps a segment shorter than scrub volumes, and flags every volume above a threshold"
                <| Prop.forAll
                    (Arb.fromGen (
                        Gen.zip3
                            (Gen.choose (1, 60) |> Gen.bind (fun n -> Gen.arrayOfLength n (Gen.choose (0, 100) |> Gen.map (fun i -> float i / 100.0))))
                            (Gen.choose (0, 8))
                            (Gen.choose (10, 95) |> Gen.map (fun t -> float t / 100.0))
                    ))
                    (fun (fd, scrub, threshold) ->
                        let flagged = Confounds.scrubOutliers fd (Array.create fd.Length 0.0) threshold 1.0 scrub
                        let above = [| for i in 0 .. fd.Length - 1 do if fd[i] > threshold then yield i |]
                        let segments = keptSegments fd.Length flagged

                        (above |> Array.forall (fun i -> Array.contains i flagged))
                        && (above.Length = 0 && flagged.Length = 0
                            || scrub = 0 && flagged = above
                            || scrub > 0 && segments |> List.forall (fun s -> s.Length >= scrub)))

                testProperty "scrub only flags volumes above a threshold or inside a short kept segment (no longer segment is cut)"
                <| Prop.forAll
                    (Arb.fromGen (
                        Gen.zip
                            (Gen.choose (1, 60) |> Gen.bind (fun n -> Gen.arrayOfLength n (Gen.choose (0, 100) |> Gen.map (fun i -> float i / 100.0))))
                            (Gen.choose (1, 8))
                    ))
                    (fun (fd, scrub) ->
                        let flagged = Confounds.scrubOutliers fd (Array.create fd.Length 0.0) 0.5 1.0 scrub
                        let above = [| for i in 0 .. fd.Length - 1 do if fd[i] > 0.5 then yield i |]
                        // The segments between threshold outliers: a volume is flagged without being above the
                        // threshold only when its segment is shorter than scrub.
                        let segmentsBetween = keptSegments fd.Length above

                        above.Length = 0 && flagged.Length = 0
                        || segmentsBetween
                           |> List.forall (fun s ->
                               let cut = s |> List.forall (fun i -> Array.contains i flagged)
                               let untouched = s |> List.forall (fun i -> not (Array.contains i flagged))
                               if s.Length < scrub then cut else untouched))

                testCase "a table without outlier columns gives no sample mask, and demean centres over every volume (sklearn scale)"
                <| fun () ->
                    let dir, bold =
                        folderWith "sub-01_task-test_desc-confounds_timeseries.tsv" [ "csf"; "white_matter" ] [ [| 1e6 + 1.0; 2.0 |]; [| 1e6 + 4.0; 3.0 |]; [| 1e6 + 7.0; 7.0 |] ] None

                    try
                        let loaded = Confounds.load bold { Confounds.defaults with Strategy = [ WmCsf ] }
                        Expect.isNone loaded.SampleMask "no sample mask"
                        Close.all { absolute = 1e-9; relative = 0.0 } (column loaded "csf") [| -3.0; 0.0; 3.0 |] "csf centred"
                        Close.all { absolute = 1e-12; relative = 0.0 } (column loaded "white_matter") [| -2.0; -1.0; 3.0 |] "white_matter centred"
                    finally
                        Directory.Delete(dir, true)

                testCase "power2 columns are the squares of the basic columns and derivatives sit beside them (fixture, demean false, rtol 1e-12)"
                <| fun () ->
                    for expansion in [ Power2; Full ] do
                        let loaded =
                            Confounds.load
                                fixtureBold
                                { Confounds.defaults with
                                    Strategy = [ Motion; WmCsf; GlobalSignal ]
                                    Motion = expansion
                                    WmCsf = expansion
                                    GlobalSignal = expansion
                                    Demean = false }

                        for name in [ "trans_x"; "rot_z"; "csf"; "white_matter"; "global_signal" ] do
                            let basic, squared = column loaded name, column loaded (name + "_power2")
                            Close.all { absolute = 0.0; relative = 1e-12 } squared (basic |> Array.map (fun v -> v * v)) (name + "_power2")

                testCase "expansions: basic ⊂ power2, derivatives ⊂ full; full = power2 ∪ derivatives ∪ derivative1_power2 (6, 12, 12, 24 motion columns)"
                <| fun () ->
                    let columns expansion =
                        (Confounds.load fixtureBold { Confounds.defaults with Strategy = [ Motion ]; Motion = expansion }).Columns
                        |> Set.ofArray

                    let basic, power2, derivatives, full = columns Basic, columns Power2, columns Derivatives, columns Full
                    Expect.equal (basic.Count, power2.Count, derivatives.Count, full.Count) (6, 12, 12, 24) "counts"
                    Expect.isTrue (Set.isSubset basic power2 && Set.isSubset basic derivatives) "basic in both"

                    let squaredDerivatives = basic |> Set.map (fun c -> c + "_derivative1_power2")
                    Expect.equal full (Set.unionMany [ power2; derivatives; squaredDerivatives ]) "full"

                testCase "columns come sorted by ordinal name whatever the strategy order"
                <| fun () ->
                    let a = Confounds.load fixtureBold { Confounds.defaults with Strategy = [ WmCsf; HighPass; Motion ] }
                    let b = Confounds.load fixtureBold { Confounds.defaults with Strategy = [ Motion; WmCsf; HighPass ] }
                    Expect.sequenceEqual a.Columns b.Columns "same order"
                    Expect.sequenceEqual a.Columns (Array.sortWith (fun x y -> String.CompareOrdinal(x, y)) a.Columns) "sorted" ]

          testList
              "finding files"
              [ testCase "the older _desc-confounds_regressors.tsv name is found, and entities the file lacks are dropped"
                <| fun () ->
                    let dir, _ = folderWith "sub-01_task-test_desc-confounds_regressors.tsv" [ "csf"; "white_matter" ] [ [| 1.0; 2.0 |]; [| 3.0; 4.0 |] ] None

                    try
                        let bold = Path.Combine(dir, "sub-01_task-test_run-2_space-T1w_desc-preproc_bold.nii.gz")
                        Expect.equal (Confounds.findConfoundsFile bold) (Path.Combine(dir, "sub-01_task-test_desc-confounds_regressors.tsv")) "found"
                    finally
                        Directory.Delete(dir, true)

                testCase "no confounds file: the error names the BOLD file"
                <| fun () ->
                    let bold = Path.Combine(Path.GetTempPath(), $"nowhere-{Guid.NewGuid():N}", preprocBold)
                    expectInputError [ bold; "confounds file" ] (fun () -> Confounds.load bold Confounds.defaults)

                testCase "two candidate confounds files: the error names both"
                <| fun () ->
                    let dir, bold = folderWith "sub-01_desc-confounds_timeseries.tsv" [ "csf" ] [ [| 1.0 |] ] None

                    try
                        File.WriteAllText(Path.Combine(dir, "sub-01_task-test_desc-confounds_regressors.tsv"), "csf\n1\n")
                        expectInputError [ bold; "more than one"; "sub-01_desc-confounds_timeseries.tsv" ] (fun () -> Confounds.findConfoundsFile bold)
                    finally
                        Directory.Delete(dir, true) ]

          testList
              "bad input"
              [ testCase "compcor without high_pass is refused as nilearn refuses it (input 'strategy')"
                <| fun () ->
                    expectInputError [ "strategy"; "high_pass" ] (fun () -> Confounds.load fixtureBold { Confounds.defaults with Strategy = [ CompCor ] })

                testCase "ica_aroma 'full' on a desc-preproc image names the image and desc-smoothAROMAnonaggr_bold"
                <| fun () ->
                    expectInputError
                        [ fixtureBold; "desc-smoothAROMAnonaggr_bold" ]
                        (fun () -> Confounds.load fixtureBold { Confounds.defaults with Strategy = [ HighPass; IcaAroma ] })

                testCase "a BOLD name that is not fMRIPrep's desc-preproc_bold is refused, naming it"
                <| fun () ->
                    let bold = Path.Combine(fixtureDir, "sub-01_task-test_bold.nii")
                    expectInputError [ bold; "unsupported input" ] (fun () -> Confounds.load bold Confounds.defaults)

                testCase "an unknown strategy name or expansion names the option"
                <| fun () ->
                    expectInputError [ "strategy"; "'motions'" ] (fun () -> Confounds.parseComponent "motions")
                    expectInputError [ "wm_csf"; "'square'" ] (fun () -> Confounds.parseExpansion "wm_csf" "square")
                    expectInputError [ "n_compcor"; "'some'" ] (fun () -> Confounds.parseCompCorCount "some")

                testCase "a component with none of its columns is named, with the file (nilearn's missing keywords)"
                <| fun () ->
                    let dir, bold = folderWith "sub-01_task-test_desc-confounds_timeseries.tsv" [ "trans_x"; "cosine00" ] [ [| 1.0; 2.0 |]; [| 3.0; 4.0 |] ] None

                    try
                        expectInputError
                            [ "sub-01_task-test_desc-confounds_timeseries.tsv"; "'wm_csf'"; "'global_signal'" ]
                            (fun () -> Confounds.load bold { Confounds.defaults with Strategy = [ HighPass; WmCsf; GlobalSignal ] })
                    finally
                        Directory.Delete(dir, true)

                testCase "motion with some of its columns names the missing ones (nilearn's missing parameters)"
                <| fun () ->
                    let dir, bold = folderWith "sub-01_task-test_desc-confounds_timeseries.tsv" [ "trans_x"; "trans_y" ] [ [| 1.0; 2.0 |]; [| 3.0; 4.0 |] ] None

                    try
                        expectInputError [ "'rot_z'"; "'trans_z'" ] (fun () -> Confounds.load bold { Confounds.defaults with Strategy = [ Motion ]; Motion = Basic })
                    finally
                        Directory.Delete(dir, true)

                testCase "anatomical CompCor without the JSON sidecar names the sidecar"
                <| fun () ->
                    let dir, bold = folderWith "sub-01_task-test_desc-confounds_timeseries.tsv" [ "a_comp_cor_00"; "cosine00" ] [ [| 1.0; 2.0 |]; [| 3.0; 4.0 |] ] None

                    try
                        expectInputError
                            [ "sub-01_task-test_desc-confounds_timeseries.json"; "CompCor" ]
                            (fun () -> Confounds.load bold { Confounds.defaults with Strategy = [ HighPass; CompCor ] })
                    finally
                        Directory.Delete(dir, true)

                testCase "scrub without framewise_displacement names the column"
                <| fun () ->
                    let dir, bold = folderWith "sub-01_task-test_desc-confounds_timeseries.tsv" [ "std_dvars" ] [ [| 1.0 |]; [| 3.0 |] ] None

                    try
                        expectInputError [ "'framewise_displacement'" ] (fun () -> Confounds.load bold { Confounds.defaults with Strategy = [ Scrub ] })
                    finally
                        Directory.Delete(dir, true)

                testCase "an fMRIPrep 1.0/1.1 camelCase header is refused, naming the file"
                <| fun () ->
                    let dir, bold = folderWith "sub-01_task-test_desc-confounds_timeseries.tsv" [ "WhiteMatter"; "CSF" ] [ [| 1.0; 2.0 |] ] None

                    try
                        expectInputError [ "sub-01_task-test_desc-confounds_timeseries.tsv"; "camel case" ] (fun () -> Confounds.load bold Confounds.defaults)
                    finally
                        Directory.Delete(dir, true)

                testCase "presets warn about parameters they do not accept, as nilearn does, and ignore them"
                <| fun () ->
                    let options, warnings = Confounds.presetOptions SimpleStrategy { Confounds.noOverrides with Scrub = Some 3; Motion = Some Basic }
                    Expect.equal options.Motion Basic "motion accepted"
                    Expect.equal options.Scrub Confounds.defaults.Scrub "scrub ignored"
                    Expect.equal warnings.Length 1 "one warning"
                    Expect.stringContains warnings.Head "['scrub']" "names the parameter" ] ]
