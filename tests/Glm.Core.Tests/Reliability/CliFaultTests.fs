/// The safety promise of the CLI, tried as a careless or hostile user would: mutated command lines, a full disk,
/// a read-only target, kill -9 in the middle of a run. Afterwards every command has either succeeded or printed
/// one message (exit 1 or 2), and nothing partial or stale is left beside its target.
module FmriGlm.Core.Tests.CliFaultTests

open System
open System.Diagnostics
open System.IO
open Expecto
open FmriGlm.Core.Tests.TestHelpers.Cli

let private isRoot = Environment.UserName = "root"

let private sh (command: string) (args: string list) =
    let psi = ProcessStartInfo(command, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false)
    args |> List.iter psi.ArgumentList.Add
    use p = Process.Start psi
    p.WaitForExit()
    p.ExitCode, p.StandardError.ReadToEnd()

let private joined (args: string list) = String.Join(" ", args)

let private runCli (args: string list) = start args |> finishWithin (TimeSpan.FromSeconds 60.0)

/// A .NET stack frame ("   at Namespace.Type.Method(...)"), not usage text that happens to say "at least".
let private stackFrame = Text.RegularExpressions.Regex(@"^\s+at \S+\.\S+\(", Text.RegularExpressions.RegexOptions.Multiline)

/// The only acceptable outcomes: success, bad input (1) or bad arguments (2), with no stack trace.
let private expectClean (args: string list) (code: int, _: string, err: string) =
    let line = joined args
    Expect.isFalse (err.Contains "Unhandled exception") $"no unhandled exception: {line}\n{err}"
    Expect.isFalse (stackFrame.IsMatch err) $"no stack trace: {line}\n{err}"
    Expect.isTrue (code = 0 || code = 1 || code = 2) $"exit 0, 1 or 2, not {code}: {line}\n{err}"

    if code <> 0 then
        Expect.isNotEmpty (err.Trim()) $"a failure says why: {line}"

/// Every entry under a folder (hidden ones included), relative path → bytes.
let private snapshot (dir: string) =
    if Directory.Exists dir then
        Directory.GetFiles(dir, "*", SearchOption.AllDirectories)
        |> Array.sort
        |> Array.map (fun f -> Path.GetRelativePath(dir, f), File.ReadAllBytes f)
    else
        [||]

let private leftovers (dir: string) =
    Directory.GetFileSystemEntries dir
    |> Array.map Path.GetFileName
    |> Array.filter (fun n -> n.Contains ".tmp")

/// A tiny simulated BIDS dataset and four first-level effect maps, made once by the CLI.
type private Fixture =
    { Root: string
      Bold: string
      Events: string
      Confounds: string
      Maps: string list }

let private fixture =
    lazy
        (let root = tempDir "faults"
         let code, _, err = runCli [ "simulate"; Path.Combine(root, "ds"); "--quiet" ]
         Expect.equal code 0 $"simulate: {err}"
         let func = Path.Combine(root, "ds", "derivatives", "fmriprep", "sub-01", "func")
         let bold = Directory.GetFiles(func, "*_desc-preproc_bold.nii.gz")[0]
         let confounds = Directory.GetFiles(func, "*_desc-confounds_timeseries.tsv")[0]
         let events = Directory.GetFiles(Path.Combine(root, "ds", "sub-01", "func"), "*_events.tsv")[0]

         let maps =
             [ for run in 1..2 do
                   let out = Path.Combine(root, $"fl{run}")
                   let args = [ "first-level"; "--bold"; bold; "--events"; events; "--tr"; "2"; "--contrast"; "f=faces"; "--contrast"; "h=houses"; "--n-jobs"; "1"; "--out"; out ]
                   let code, _, err = runCli args
                   Expect.equal code 0 $"first-level: {err}"
                   yield! [ "f"; "h" ] |> List.map (fun c -> Path.Combine(out, $"contrast-{c}_stat-effect_statmap.nii.gz")) ]

         { Root = root; Bold = bold; Events = events; Confounds = confounds; Maps = maps })

/// The commands that write outputs, into the folder `out`.
let private writers (f: Fixture) (out: string) =
    [ [ "first-level"; "--bold"; f.Bold; "--events"; f.Events; "--tr"; "2"; "--contrast"; "f=faces"; "--keep-diagnostics"; "--out"; out ]
      [ "second-level"; "--maps" ] @ f.Maps @ [ "--output-type"; "all"; "--out"; out ]
      [ "permute"; "--maps" ] @ f.Maps @ [ "--n-perm"; "20"; "--out"; out ]
      [ "bids"; Path.Combine(f.Root, "ds"); out; "participant"; "--quiet" ]
      [ "beta-series"; "--method"; "lss"; "--bold"; f.Bold; "--events"; f.Events; "--tr"; "2"; "--out"; out ]
      [ "second-level"; "--model"; "mfx"; "--maps" ] @ f.Maps @ [ "--variance-maps" ] @ (f.Maps |> List.map (fun m -> m.Replace("stat-effect", "stat-variance"))) @ [ "--out"; out ] ]

let private withCli (f: Fixture -> unit) =
    match cliDll () with
    | None -> Tests.skiptest "src/Glm.Cli/bin/Release/net10.0/fmriglm.dll not built: build the solution in Release"
    | Some _ -> f fixture.Value

/// A mutation of a valid command line: one value replaced by a hostile one, an argument dropped or repeated, or an
/// unknown flag added.
let private mutate (random: Random) (f: Fixture) (scratch: string) =
    let values =
        [| ""; "-5"; "0"; "nan"; "inf"; "1e300"; "-1"; "2147483647"; "abc"; "a=b=c"; "faces/0"; "f=faces/0"; "f="; "="
           "/dev/null"; "/dev/zero"; "/"; scratch; Path.Combine(scratch, "missing.nii.gz"); f.Events; f.Bold; f.Maps.Head
           String('a', 300); "f=" + String('a', 300); "x,y"; ",,"; "'"; "\"" |]

    let out = Path.Combine(scratch, $"out{random.Next 1000000}")

    let bases =
        writers f out
        @ [ [ "threshold"; f.Maps.Head; "--out"; Path.Combine(scratch, $"t{random.Next 1000000}.nii.gz") ]
            [ "clusters"; f.Maps.Head; "--out"; Path.Combine(scratch, $"c{random.Next 1000000}.tsv") ]
            [ "info"; f.Bold ]
            [ "design"; "--events"; f.Events; "--tr"; "2"; "--n-scans"; "80"; "--out"; Path.Combine(scratch, $"d{random.Next 1000000}.tsv") ] ]

    let args = bases[random.Next bases.Length] |> Array.ofList
    let pick () = values[random.Next values.Length]

    let mutated =
        match random.Next 4 with
        | 0 when args.Length > 1 ->
            let i = 1 + random.Next(args.Length - 1)
            args |> Array.mapi (fun k a -> if k = i then pick () else a)
        | 1 when args.Length > 1 ->
            let i = 1 + random.Next(args.Length - 1)
            Array.append args[.. i - 1] args[i + 1 ..]
        | 2 when args.Length > 2 ->
            let i = 1 + random.Next(args.Length - 2)
            Array.concat [ args; [| args[i]; pick () |] ]
        | _ -> Array.append args [| "--" + pick (); pick () |]

    List.ofArray mutated, out

let private seed =
    match Int32.TryParse(Environment.GetEnvironmentVariable "FMRIGLM_FUZZ_SEED") with
    | true, s -> s
    | _ -> 17

[<Tests>]
let tests =
    testSequenced
    <| testList "Reliability.CLI" [
        testCase "mutated command lines exit 0, 1 or 2 with a message, never a crash, a hang or a stray output (skipped when the CLI is not built)" <| fun () ->
            withCli (fun shared ->
                let scratch = tempDir "fuzz-cli"
                // the mutations may name an input as an output: they work on copies, so the shared fixture survives
                let copy (path: string) =
                    let target = Path.Combine(scratch, "inputs", Path.GetFileName(Path.GetDirectoryName path) + "-" + Path.GetFileName path)
                    Directory.CreateDirectory(Path.GetDirectoryName target) |> ignore
                    File.Copy(path, target)
                    target

                let f =
                    { shared with
                        Bold = copy shared.Bold
                        Events = copy shared.Events
                        Confounds = copy shared.Confounds
                        Maps = List.map copy shared.Maps }

                // the variance maps beside the effect maps (mixed effects)
                for m in shared.Maps do
                    copy (m.Replace("stat-effect", "stat-variance")) |> ignore

                let random = Random seed
                // a process per case: the CI budget is a sixteenth of the in-process suites'
                let cases = max 12 (FuzzTests.budget / 16)

                for _ in 1..cases do
                    let args, out = mutate random f scratch
                    // relative paths among the mutations land in the scratch folder, which must hold no temporary
                    let result = startIn scratch args |> finishWithin (TimeSpan.FromSeconds 60.0)
                    expectClean args result
                    let code, _, _ = result

                    if code <> 0 then
                        Expect.isFalse (Directory.Exists out && not (Seq.isEmpty (Directory.EnumerateFileSystemEntries out))) $"a failed command leaves no output: {joined args}"

                    Expect.isEmpty (leftovers scratch) $"no temporary left: {joined args}")

        testCase "a FIFO given as input is refused at once, naming it, instead of blocking (skipped when the CLI is not built)" <| fun () ->
            withCli (fun f ->
                let dir = tempDir "fifo"
                let fifo = Path.Combine(dir, "bold.nii")
                let code, err = sh "mkfifo" [ fifo ]
                Expect.equal code 0 $"mkfifo: {err}"

                for args in [ [ "info"; fifo ]; [ "first-level"; "--bold"; fifo; "--events"; f.Events; "--tr"; "2"; "--contrast"; "f=faces"; "--out"; Path.Combine(dir, "out") ] ] do
                    let code, _, err = start args |> finishWithin (TimeSpan.FromSeconds 30.0)
                    Expect.equal code 1 $"refused: {err}"
                    Expect.stringContains err fifo "names the FIFO")

        testCase "a contrast name too long for a file name is refused naming --contrast, not as a wrapped parallel-writer error (skipped when the CLI is not built)" <| fun () ->
            withCli (fun f ->
                let dir = tempDir "long-name"
                let args = [ "first-level"; "--bold"; f.Bold; "--events"; f.Events; "--tr"; "2"; "--contrast"; String('a', 300) + "=faces"; "--out"; Path.Combine(dir, "out") ]
                let code, _, err = runCli args
                Expect.equal code 1 $"refused: {err}"
                Expect.stringContains err "--contrast" "names the option"
                Expect.isFalse (err.Contains "AggregateException") "unwrapped"
                Expect.isEmpty (Directory.GetFileSystemEntries dir) "nothing written")

        testCase "an --out that is the command's own input is refused and the input left intact (skipped when the CLI is not built)" <| fun () ->
            withCli (fun f ->
                let dir = tempDir "own-input"
                let map = Path.Combine(dir, "z.nii.gz")
                File.Copy(f.Maps.Head, map)
                let before = File.ReadAllBytes map

                for args in [ [ "clusters"; map; "--out"; map ]; [ "threshold"; map; "--out"; map ] ] do
                    let code, _, err = runCli args
                    Expect.equal code 1 $"refused: {joined args}: {err}"
                    Expect.stringContains err "is also an input" "says why"
                    Expect.isTrue ((File.ReadAllBytes map) = before) "the input is intact")

        testCase "second-level refuses a non-empty --out as first-level does (skipped when the CLI is not built)" <| fun () ->
            withCli (fun f ->
                let out = tempDir "sl-nonempty"
                File.WriteAllText(Path.Combine(out, "keep.txt"), "mine")
                let code, _, err = runCli ([ "second-level"; "--maps" ] @ f.Maps @ [ "--out"; out ])
                Expect.equal code 1 $"refused: {err}"
                Expect.stringContains err "not empty" "says why"
                Expect.equal (Directory.GetFileSystemEntries out |> Array.map Path.GetFileName) [| "keep.txt" |] "untouched")

        testCase "a read-only target fails every writing command naming it, leaving nothing (skipped when the CLI is not built)" <| fun () ->
            withCli (fun f ->
                let dir = tempDir "read-only"

                // root ignores permissions, so as root the target is a read-only tmpfs
                let mounted =
                    if isRoot then
                        let code, err = sh "mount" [ "-t"; "tmpfs"; "-o"; "ro,size=1m"; "tmpfs"; dir ]
                        Expect.equal code 0 $"mount: {err}"
                        true
                    else
                        File.SetUnixFileMode(dir, UnixFileMode.UserRead ||| UnixFileMode.UserExecute)
                        false

                try
                    for args in writers f (Path.Combine(dir, "out")) do
                        let result = runCli args
                        expectClean args result
                        let code, _, err = result
                        Expect.equal code 1 $"refused: {joined args}"
                        Expect.stringContains err dir "names the target"
                        Expect.isEmpty (Directory.GetFileSystemEntries dir) "nothing written"
                finally
                    if mounted then sh "umount" [ dir ] |> ignore
                    else File.SetUnixFileMode(dir, UnixFileMode.UserRead ||| UnixFileMode.UserWrite ||| UnixFileMode.UserExecute))

        testCase "a full disk fails every writing command with 'disk is full', leaving nothing (needs root to mount a small tmpfs)" <| fun () ->
            withCli (fun f ->
                if not isRoot then
                    Tests.skiptest "not root: a full disk is simulated with an 8 KiB tmpfs, which needs root to mount"

                let dir = tempDir "full-disk"
                let code, err = sh "mount" [ "-t"; "tmpfs"; "-o"; "size=8k"; "tmpfs"; dir ]
                Expect.equal code 0 $"mount: {err}"

                try
                    for args in writers f (Path.Combine(dir, "out")) do
                        let result = runCli args
                        expectClean args result
                        let code, _, err = result
                        Expect.equal code 1 $"refused: {joined args}"
                        Expect.stringContains err "disk is full" "says why"
                        Expect.isEmpty (snapshot dir) $"no file left: {joined args}"
                        Expect.isEmpty (leftovers dir) "no temporary folder left"
                finally
                    sh "umount" [ dir ] |> ignore)

        testCase "kill -9 at random points of first-level and second-level, then a rerun: nothing partial or stale remains and the outputs equal a clean run's (skipped when the CLI is not built)" <| fun () ->
            withCli (fun f ->
                let random = Random seed

                let commands =
                    [ "first-level", writers f >> List.item 0
                      "second-level", writers f >> List.item 1 ]

                for name, command in commands do
                    let cleanDir = tempDir $"clean-{name}"
                    let clean = Path.Combine(cleanDir, "out")
                    let code, _, err = runCli (command clean)
                    Expect.equal code 0 $"clean {name}: {err}"
                    let expected = snapshot clean

                    for attempt in 1..3 do
                        let dir = tempDir $"killed-{name}"
                        let out = Path.Combine(dir, "out")
                        let p = start (command out)
                        let watch = Stopwatch.StartNew()

                        // wait until the run is writing (its temporary folder exists), then kill it a little later
                        while leftovers dir |> Array.isEmpty && not p.HasExited && watch.Elapsed.TotalSeconds < 30.0 do
                            Threading.Thread.Sleep 2

                        Threading.Thread.Sleep(random.Next 150)

                        if not p.HasExited then
                            p.Kill()

                        p.WaitForExit()
                        // killed: at most a stale temporary, never a partial target
                        let finished = Directory.Exists out

                        if finished then
                            Expect.equal (snapshot out |> Array.map fst) (expected |> Array.map fst) $"{name} #{attempt}: a target that exists is complete"
                        else
                            let code, _, err = runCli (command out)
                            Expect.equal code 0 $"{name} #{attempt} rerun: {err}"

                        Expect.isEmpty (leftovers dir) $"{name} #{attempt}: the rerun removed the killed run's temporary"
                        let actual = snapshot out
                        Expect.equal (actual |> Array.map fst) (expected |> Array.map fst) $"{name} #{attempt}: same files"

                        for (file, bytes), (_, reference) in Array.zip actual expected do
                            Expect.isTrue (bytes = reference) $"{name} #{attempt}: {file} equals the clean run's")
    ]
