/// `fmriglm bench nifti [--dir D]`: speed and peak memory of reading a 64×64×36×300 float32 .nii.gz whole.
module FmriGlm.Cli.BenchCommand

open System
open System.Diagnostics
open System.Globalization
open System.IO
open Argu
open FmriGlm.Core

/// Arguments of `fmriglm bench nifti`.
type BenchNiftiArgs =
    | [<Unique>] Dir of dir: string

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Dir _ -> "folder holding (or to receive) the benchmark image (default: a temporary folder)."

/// Arguments of `fmriglm bench first-level`.
type BenchFirstLevelArgs =
    | [<Unique; CustomCommandLine("--dir")>] Bench_Dir of dir: string

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Bench_Dir _ ->
                "folder holding (or to receive) the benchmark run and events (default: a temporary folder)."

/// Arguments of `fmriglm bench second-level`.
type BenchSecondLevelArgs =
    | [<Unique>] Subjects of count: int
    | [<Unique>] N_Perm of count: int
    | [<Unique>] Threshold of p: float
    | [<Unique>] Threads of count: int

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Subjects _ -> "number of subject maps (default 40)."
            | N_Perm _ -> "sign flips (default 10000)."
            | Threshold _ -> "cluster-forming p threshold for cluster-size FWE (default 0.001)."
            | Threads _ -> "threads (default: every core)."

/// Arguments of `fmriglm bench`.
type BenchArgs =
    | [<CliPrefix(CliPrefix.None)>] Nifti of ParseResults<BenchNiftiArgs>
    | [<CliPrefix(CliPrefix.None)>] First_Level of ParseResults<BenchFirstLevelArgs>
    | [<CliPrefix(CliPrefix.None)>] Second_Level of ParseResults<BenchSecondLevelArgs>
    | [<CliPrefix(CliPrefix.None)>] Beta_Series of ParseResults<BenchBetaSeriesCommand.BenchBetaSeriesArgs>

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Nifti _ -> "NIfTI read time, decompression throughput and peak memory."
            | First_Level _ ->
                "FirstLevelModel end to end (read, mask, design, AR(1), 4 contrasts, write) vs reading the input alone."
            | Second_Level _ ->
                "one-sample group GLM and 10,000 sign flips (max-t and cluster-size FWE) on 40 maps of the 91×109×91 grid."
            | Beta_Series _ -> "LSS of 100 trials on a simulated 64×64×36×300 run vs separate first-level fits per trial."

let private nx, ny, nz, nt = 64, 64, 36, 300
let private inv = CultureInfo.InvariantCulture

/// The benchmark runs' grid: 3 × 3 × 3.5 mm voxels, TR 2 s.
let private benchWriteOptions (descrip: string) =
    let affine =
        array2D
            [ [ -3.0; 0.0; 0.0; 96.0 ]
              [ 0.0; 3.0; 0.0; -96.0 ]
              [ 0.0; 0.0; 3.5; -60.0 ]
              [ 0.0; 0.0; 0.0; 1.0 ] ]

    { Nifti.writeOptions [| int64 nx; int64 ny; int64 nz; int64 nt |] affine with
        TR = Some 2.0
        Descrip = descrip }

/// Baseline intensity of voxel n (an ellipsoid brain of 600–1000 on a background of 5) and its quadrant of the
/// brain (0–3; −1 outside), where the first-level benchmark plants condition q.
let private brainAt (n: int) =
    let i, j, k = n % nx, n / nx % ny, n / (nx * ny)

    let r2 =
        ((float i - 31.5) / 26.0) ** 2.0
        + ((float j - 31.5) / 30.0) ** 2.0
        + ((float k - 17.5) / 16.0) ** 2.0

    if r2 < 1.0 then
        600.0 + 400.0 * (1.0 - r2), (if i < 32 then 0 else 1) + (if j < 32 then 0 else 2)
    else
        5.0, -1

/// Writes the benchmark image volume by volume (so generating it never holds the series): a smooth brain-like
/// baseline plus seeded Gaussian-ish noise, as float32.
let private generate (path: string) =
    let options = benchWriteOptions "fmriglm bench"
    let per = nx * ny * nz
    let baseline = Array.init per (brainAt >> fst)

    let random = Random 20261124
    let volume = Array.zeroCreate<float32> per
    use writer = Nifti.createWriter path options

    for _ in 1..nt do
        for v in 0 .. per - 1 do
            // sum of 3 uniforms: roughly Gaussian, sd ≈ 2 % of the baseline
            let noise = random.NextDouble() + random.NextDouble() + random.NextDouble() - 1.5
            // rounded to whole numbers, as scanner data converted from int16 is
            volume[v] <- float32 (Math.Round(baseline[v] * (1.0 + 0.04 * noise)))

        writer.WriteVolume(ReadOnlySpan volume)

    writer.Complete()

/// The first argument that makes `fmriglm` run only `measure` (Program.fs checks it before Argu loads, so the
/// child's baseline memory is the runtime's alone).
let measureFlag = "--bench-nifti-measure-read"

/// In a fresh process: read the file whole as float32, then report time and peak working set.
let measure (file: string) =
    GC.Collect()
    let self = Process.GetCurrentProcess()
    self.Refresh()
    let before = self.PeakWorkingSet64
    let clock = Stopwatch.StartNew()
    let image = Nifti.readFloat32 file
    let seconds = clock.Elapsed.TotalSeconds
    GC.Collect()
    self.Refresh()

    printfn
        "measured seconds=%s peak=%d before=%d values=%d"
        (seconds.ToString("R", inv))
        self.PeakWorkingSet64
        before
        image.Data.Length

    GC.KeepAlive image
    0


/// The 4 conditions of the first-level benchmark: 12 s blocks cycling a, b, c, d every 15 s.
let private benchEvents =
    let n = 40

    { Onsets = Array.init n (fun e -> 10.0 + 15.0 * float e)
      Durations = Array.create n 12.0
      TrialTypes = Array.init n (fun e -> [| "a"; "b"; "c"; "d" |][e % 4])
      Modulations = Array.create n 1.0 }

/// Writes the first-level benchmark run: the `bench nifti` brain, AR(1)-like noise, and each condition planted
/// (3 % signal change) in one quadrant of the brain; plus its events.tsv.
let private generateFirstLevel (path: string) (eventsPath: string) =
    let options = benchWriteOptions "fmriglm bench first-level"

    let per = nx * ny * nz

    let design, _ =
        DesignMatrix.makeFirstLevel (DesignMatrix.frameTimes nt 2.0 0.0) (Some benchEvents) DesignMatrix.defaults

    let baseline, quadrant = Array.init per brainAt |> Array.unzip

    let random = Random 20261124
    let noise = Array.zeroCreate<float> per
    let volume = Array.zeroCreate<float32> per
    use writer = Nifti.createWriter path options

    for t in 0 .. nt - 1 do
        for v in 0 .. per - 1 do
            let e = random.NextDouble() + random.NextDouble() + random.NextDouble() - 1.5
            noise[v] <- 0.3 * noise[v] + e

            let signal =
                if quadrant[v] >= 0 then
                    0.03 * design.Values[t, quadrant[v]]
                else
                    0.0

            volume[v] <- float32 (Math.Round(baseline[v] * (1.0 + signal + 0.04 * noise[v])))

        writer.WriteVolume(ReadOnlySpan volume)

    writer.Complete()

    let lines =
        Array.init benchEvents.Onsets.Length (fun e ->
            String.Format(
                inv,
                "{0}\t{1}\t{2}",
                benchEvents.Onsets[e],
                benchEvents.Durations[e],
                benchEvents.TrialTypes[e]
            ))

    File.WriteAllLines(eventsPath, Array.append [| "onset\tduration\ttrial_type" |] lines)

/// The first argument that makes `fmriglm` run only `measureFirstLevel` (dispatched before Argu, as measureFlag).
let measureFirstLevelFlag = "--bench-first-level-measure"

/// In a fresh process: FirstLevelModel end to end on the benchmark run, then time and peak working set.
let measureFirstLevel (file: string) (eventsPath: string) (outDir: string) =
    GC.Collect()
    let self = Process.GetCurrentProcess()
    self.Refresh()
    let before = self.PeakWorkingSet64
    let clock = Stopwatch.StartNew()

    let options =
        { FirstLevel.defaults with
            TR = Some 2.0 }

    let run = FirstLevel.runFromFiles file (Some eventsPath) None None
    let fit =
        FirstLevel.fit options [ run ]

    let fitted = clock.Elapsed.TotalSeconds
    self.Refresh()
    let fitPeak = self.PeakWorkingSet64

    let contrasts =
        [ "a - b"; "c - d"; "a + b - c - d"; "a" ]
        |> List.map (fun e -> e, FirstLevel.computeContrast fit [ ContrastDefinition.Expression e ] None)

    if Directory.Exists outDir then
        Directory.Delete(outDir, true)

    FirstLevel.writeOutputs outDir fit contrasts [ ZScore; Stat; PValue; EffectSize; EffectVariance ]
    let seconds = clock.Elapsed.TotalSeconds
    GC.Collect()
    self.Refresh()

    printfn
        "measured seconds=%s fit=%s peak=%d fitpeak=%d before=%d values=%d"
        (seconds.ToString("R", inv))
        (fitted.ToString("R", inv))
        self.PeakWorkingSet64
        fitPeak
        before
        fit.MaskedIndices.Length

    0

let private childCommand (args: string list) =
    let exe = Environment.ProcessPath

    if Path.GetFileNameWithoutExtension(exe) = "dotnet" then
        exe, (typeof<BenchArgs>.Assembly.Location :: args)
    else
        exe, args

/// Runs the measuring child and returns the fields of its "measured" line.
let private runChild (args: string list) =
    let exe, childArgs = childCommand args

    let info =
        ProcessStartInfo(exe, childArgs, RedirectStandardOutput = true, UseShellExecute = false)

    use child = Process.Start info
    let output = child.StandardOutput.ReadToEnd()
    child.WaitForExit()

    match output.Split('\n') |> Array.tryFind (fun l -> l.StartsWith "measured ") with
    | None ->
        eprintfn "fmriglm: the measuring child process failed (exit %d): %s" child.ExitCode output
        None
    | Some line ->
        Some(fun (name: string) ->
            line.Trim().Split(' ')
            |> Array.pick (fun kv ->
                if kv.StartsWith(name + "=") then
                    Some(kv.Substring(name.Length + 1))
                else
                    None))

/// How the core's code runs: precompiled (ReadyToRun, as `dotnet publish -p:PublishReadyToRun=true` ships it) or
/// compiled as it is first called (JIT, as `dotnet run` and `dotnet build` leave it). The first costs less time
/// before the work starts, so the benchmark says which it measured.
let private codeKind () =
    try
        use stream = File.OpenRead(typeof<FirstLevelOptions>.Assembly.Location)
        use pe = new System.Reflection.PortableExecutable.PEReader(stream)
        let cor = pe.PEHeaders.CorHeader

        if not (isNull cor) && cor.ManagedNativeHeaderDirectory.Size > 0 then
            "ReadyToRun (published)"
        else
            "JIT (dotnet run/build; publish ReadyToRun with scripts/bench-first-level.sh)"
    with _ ->
        "unknown"

/// Measured runs of each child in `bench first-level` (after one untimed run).
let private repeats = 5

let private benchFirstLevel (dir: string) =
    Directory.CreateDirectory dir |> ignore
    let path = Path.Combine(dir, $"bench_firstlevel_{nx}x{ny}x{nz}x{nt}_float32.nii.gz")
    let eventsPath = Path.Combine(dir, "bench_firstlevel_events.tsv")

    if not (File.Exists path && File.Exists eventsPath) then
        printfn "generating %s (streamed) ..." path
        let clock = Stopwatch.StartNew()
        generateFirstLevel path eventsPath
        printfn "  written in %.1f s" clock.Elapsed.TotalSeconds

    let outDir = Path.Combine(dir, "bench_firstlevel_out")

    let readArgs = [ measureFlag; path ]
    let fullArgs = [ measureFirstLevelFlag; path; eventsPath; outDir ]
    // One untimed run of each first (it fills the page cache and records the multi-core JIT profile a user's
    // later runs have), then `repeats` runs of each, interleaved; times are medians, peaks the largest seen.
    let warm = runChild readArgs, runChild fullArgs

    let runs =
        List.init repeats (fun _ -> runChild readArgs, runChild fullArgs)
        |> List.choose (fun (r, f) ->
            match r, f with
            | Some r, Some f -> Some(r, f)
            | _ -> None)

    match warm, runs with
    | (Some _, Some _), runs when runs.Length = repeats ->
        let median (xs: float list) = (List.sort xs)[xs.Length / 2]
        let number field (get: string -> string) = Double.Parse(get field, inv)
        let reads, fulls = List.unzip runs
        let mib (x: float) = x / 1048576.0
        let raw = float (nx * ny * nz * nt * 4)
        let readSeconds = reads |> List.map (number "seconds") |> median
        let readPeak = reads |> List.map (number "peak") |> List.max
        let seconds = fulls |> List.map (number "seconds") |> median
        let fitSeconds = fulls |> List.map (number "fit") |> median
        let peak = fulls |> List.map (number "peak") |> List.max
        let before = fulls |> List.map (number "before") |> List.max
        let full = fulls.Head

        printfn
            "file               %s (%.1f MiB raw float32, %.1f MiB gzip)"
            path
            (mib raw)
            (mib (float (FileInfo(path).Length)))

        printfn
            "read alone         %.2f s, peak working set %.1f MiB (%.2f x raw)"
            readSeconds
            (mib readPeak)
            (readPeak / raw)

        printfn
            "first level        %.2f s end to end (read+mask+design+AR(1) fit: %.2f s; contrasts+write: %.2f s), %s voxels in mask"
            seconds
            fitSeconds
            (seconds - fitSeconds)
            (full "values")

        printfn
            "                   peak working set %.1f MiB (%.2f x raw; after the fit %.1f MiB; runtime before: %.1f MiB)"
            (mib peak)
            (peak / raw)
            (mib (fulls |> List.map (number "fitpeak") |> List.max))
            (mib before)

        printfn "code               %s" (codeKind ())

        printfn
            "runs               medians of %d runs each after one untimed run; first level: %s s; read: %s s"
            repeats
            (String.Join(" ", fulls |> List.map (fun f -> (number "seconds" f).ToString("0.00", inv))))
            (String.Join(" ", reads |> List.map (fun r -> (number "seconds" r).ToString("0.00", inv))))

        printfn
            "ratios             time %.2f x read (target 1.5), memory %.2f x raw (target 1.3)"
            (seconds / readSeconds)
            (peak / raw)

        0
    | _ -> 1

/// `fmriglm bench second-level`: 40 synthetic subject maps on the 2 mm MNI grid (91×109×91) inside an ellipsoid
/// brain mask (about 230,000 voxels): white noise plus a smooth per-subject field and a true effect in a sphere.
/// Times the plain one-sample GLM (fit, contrast, all maps) and nilearn's non_parametric_inference with 10,000
/// sign flips, voxel-level max-t and cluster-size/mass FWE; prints both and the peak working set.
let private benchSecondLevel (args: ParseResults<BenchSecondLevelArgs>) =
    let subjects = args.GetResult(Subjects, 40)
    let nPerm = args.GetResult(N_Perm, 10000)
    let threshold = args.GetResult(Threshold, 0.001)
    let threads = args.GetResult(Threads, Environment.ProcessorCount)
    let shape = { X = 91; Y = 109; Z = 91 }
    let inside (i, j, k) =
        let a = (float i - 45.0) / 36.0
        let b = (float j - 54.0) / 46.0
        let c = (float k - 45.0) / 33.0
        a * a + b * b + c * c <= 1.0

    let voxels =
        [| for k in 0 .. shape.Z - 1 do
               for j in 0 .. shape.Y - 1 do
                   for i in 0 .. shape.X - 1 do
                       if inside (i, j, k) then yield shape.Index(i, j, k) |]

    let m = voxels.Length
    let rng = Random 2026
    let data = Array.zeroCreate<float32> (m * subjects)

    let gauss () =
        let u1 = 1.0 - rng.NextDouble()
        sqrt (-2.0 * log u1) * cos (2.0 * Math.PI * rng.NextDouble())

    for s in 0 .. subjects - 1 do
        let fx, fy, fz, amp = 0.05 + 0.1 * rng.NextDouble(), 0.05 + 0.1 * rng.NextDouble(), 0.05 + 0.1 * rng.NextDouble(), gauss ()

        for u in 0 .. m - 1 do
            let g = voxels[u]
            let i, j, k = g % shape.X, (g / shape.X) % shape.Y, g / (shape.X * shape.Y)
            let d2 = float ((i - 30) * (i - 30) + (j - 60) * (j - 60) + (k - 50) * (k - 50))
            let effect = if d2 < 64.0 then 0.8 else 0.0
            data[u * subjects + s] <- float32 (effect + 0.5 * amp * sin (fx * float i + fy * float j + fz * float k) + gauss ())

    printfn "bench second-level: %d maps on 91×109×91, %d voxels in the ellipsoid mask, %d sign flips, threads %d" subjects m nPerm threads
    GC.Collect()
    let self = Process.GetCurrentProcess()
    let clock = Stopwatch.StartNew()
    let design = { ColumnNames = [| "intercept" |]; Values = Array2D.create subjects 1 1.0 }
    let fit = SecondLevel.fit threads design (Float32 data)
    let maps = SecondLevel.computeContrast fit SecondLevelContrast.Default None |> SecondLevel.maps
    let glmSeconds = clock.Elapsed.TotalSeconds
    printfn "  one-sample GLM (fit, contrast, z/stat/p/effect/variance): %.2f s (nilearn 0.13.1: 11.8 s; target ≤ 2 s)" glmSeconds
    GC.KeepAlive maps
    let grid = { Shape = shape; Voxels = voxels }

    let options =
        { PermutationOptions.defaults with
            NPerm = nPerm
            Threshold = Some threshold
            Threads = threads }

    // the machine may be shared: the 1-minute load average and the CPU time tell how much of it we had
    let load = if File.Exists "/proc/loadavg" then File.ReadAllText("/proc/loadavg").Split(' ')[0] else "?"
    self.Refresh()
    let cpuBefore = self.TotalProcessorTime
    clock.Restart()
    let r = Permutation.permutedOls options (Some grid) (Array.create subjects 1.0) None (Float32 data)
    let permSeconds = clock.Elapsed.TotalSeconds
    self.Refresh()
    let cpu = (self.TotalProcessorTime - cpuBefore).TotalSeconds
    let significant = r.LogPMaxT |> Array.filter (fun l -> l > -log10 0.05) |> Array.length
    printfn "  non_parametric_inference, max-t + cluster size/mass FWE (p < %g): %.2f s (nilearn 0.13.1: 354 s; target ≤ 25 s); CPU time %.2f s, load average at start %s" threshold permSeconds cpu load
    printfn "  voxels with FWE p < 0.05: %d (max-t), %d (cluster size)" significant (r.Clusters.Value.LogPMaxSize |> Array.filter (fun l -> l > -log10 0.05) |> Array.length)
    printfn "  peak working set: %.0f MB (input data %.0f MB)" (float self.PeakWorkingSet64 / 1e6) (float (data.Length * 4) / 1e6)
    0

/// Runs `fmriglm bench nifti`, `fmriglm bench first-level` or `fmriglm bench second-level`.
let run (args: ParseResults<BenchArgs>) =
    match args.GetSubCommand() with
    | First_Level fl ->
        benchFirstLevel (fl.GetResult(Bench_Dir, defaultValue = Path.Combine(Path.GetTempPath(), "fmriglm-bench")))
    | Second_Level a -> benchSecondLevel a
    | Beta_Series a -> BenchBetaSeriesCommand.run a
    | Nifti nifti ->
        let dir =
            nifti.GetResult(Dir, defaultValue = Path.Combine(Path.GetTempPath(), "fmriglm-bench"))

        Directory.CreateDirectory dir |> ignore
        let path = Path.Combine(dir, $"bench_{nx}x{ny}x{nz}x{nt}_float32_v2.nii.gz")

        if not (File.Exists path) then
            printfn "generating %s (streamed) ..." path
            let clock = Stopwatch.StartNew()
            generate path
            printfn "  written in %.1f s" clock.Elapsed.TotalSeconds

        let exe, childArgs = childCommand [ measureFlag; path ]

        let info =
            ProcessStartInfo(exe, childArgs, RedirectStandardOutput = true, UseShellExecute = false)

        use child = Process.Start info
        let output = child.StandardOutput.ReadToEnd()
        child.WaitForExit()
        let line = output.Split('\n') |> Array.tryFind (fun l -> l.StartsWith "measured ")

        match line with
        | None ->
            eprintfn "fmriglm: the measuring child process failed (exit %d): %s" child.ExitCode output
            1
        | Some line ->
            let field (name: string) =
                line.Split(' ')
                |> Array.pick (fun kv ->
                    if kv.StartsWith(name + "=") then
                        Some(kv.Substring(name.Length + 1))
                    else
                        None)

            let seconds = Double.Parse(field "seconds", inv)
            let peak = float (Int64.Parse(field "peak", inv))
            let before = float (Int64.Parse(field "before", inv))
            let raw = float (nx * ny * nz * nt * 4)
            let compressed = float (FileInfo(path).Length)
            let mib (x: float) = x / 1048576.0
            printfn "file               %s" path

            printfn
                "image              %dx%dx%dx%d float32: %.1f MiB raw, %.1f MiB gzip (ratio %.2f)"
                nx
                ny
                nz
                nt
                (mib raw)
                (mib compressed)
                (raw / compressed)

            printfn
                "read (float32)     %.2f s: %.0f MiB/s decompressed, %.0f MiB/s of gzip input"
                seconds
                (mib raw / seconds)
                (mib compressed / seconds)

            printfn
                "peak working set   %.1f MiB = %.2f x raw (process before reading: %.1f MiB; increase %.2f x raw)"
                (mib peak)
                (peak / raw)
                (mib before)
                ((peak - before) / raw)

            // "about 1.2x": the runtime alone takes ~27 MiB (0.16x) before the reader allocates anything
            printfn
                "target             peak about 1.2 x raw or less: %.2f x, %s"
                (peak / raw)
                (if peak <= 1.25 * raw then "met" else "NOT met")

            0
