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

/// Arguments of `fmriglm bench`.
type BenchArgs =
    | [<CliPrefix(CliPrefix.None)>] Nifti of ParseResults<BenchNiftiArgs>

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Nifti _ -> "NIfTI read time, decompression throughput and peak memory."

let private nx, ny, nz, nt = 64, 64, 36, 300
let private inv = CultureInfo.InvariantCulture

/// Writes the benchmark image volume by volume (so generating it never holds the series): a smooth brain-like
/// baseline plus seeded Gaussian-ish noise, as float32.
let private generate (path: string) =
    let affine =
        array2D
            [ [ -3.0; 0.0; 0.0; 96.0 ]
              [ 0.0; 3.0; 0.0; -96.0 ]
              [ 0.0; 0.0; 3.5; -60.0 ]
              [ 0.0; 0.0; 0.0; 1.0 ] ]

    let options =
        { Nifti.writeOptions [| int64 nx; int64 ny; int64 nz; int64 nt |] affine with
            TR = Some 2.0
            Descrip = "fmriglm bench" }

    let per = nx * ny * nz

    let baseline =
        Array.init per (fun n ->
            let i, j, k = n % nx, n / nx % ny, n / (nx * ny)

            let r2 =
                ((float i - 31.5) / 26.0) ** 2.0
                + ((float j - 31.5) / 30.0) ** 2.0
                + ((float k - 17.5) / 16.0) ** 2.0

            if r2 < 1.0 then 600.0 + 400.0 * (1.0 - r2) else 5.0)

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

let private childCommand (args: string list) =
    let exe = Environment.ProcessPath

    if Path.GetFileNameWithoutExtension(exe) = "dotnet" then
        exe, (typeof<BenchArgs>.Assembly.Location :: args)
    else
        exe, args

/// Runs `fmriglm bench nifti`.
let run (args: ParseResults<BenchArgs>) =
    match args.GetSubCommand() with
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
