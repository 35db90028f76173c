/// `fmriglm bench-glm`: times an AR(1) fit and four contrasts on synthetic data and reports peak memory.
module FmriGlm.Cli.BenchGlmCommand

open System
open System.Diagnostics
open Argu
open FmriGlm.Core

/// Arguments of `fmriglm bench-glm`.
type BenchGlmArgs =
    | [<Unique>] Voxels of count: int
    | [<Unique>] Scans of count: int
    | [<Unique>] Regressors of count: int
    | [<Unique>] Threads of count: int
    | [<Unique>] Noise_Model of model: string

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Voxels _ -> "number of voxels (default 100000)."
            | Scans _ -> "number of scans (default 300)."
            | Regressors _ -> "number of design columns, the last one constant (default 30)."
            | Threads _ -> "threads (default: every core)."
            | Noise_Model _ -> "ols, ar1 (default), ar2, ..., ar1-exact or ar1-corrected."

let private noiseModel (text: string) =
    match Regression.parseNoiseModel text with
    | Ok model -> model
    | Error e -> raise (GlmInputException("--noise-model", e))

/// Runs the benchmark: float32 data with AR(1) noise (ρ = 0.3), a sinusoid-and-block design, then 4 contrasts.
let run (args: ParseResults<BenchGlmArgs>) : int =
    let voxels = args.GetResult(Voxels, 100_000)
    let scans = args.GetResult(Scans, 300)
    let p = args.GetResult(Regressors, 30)
    let threads = args.GetResult(Threads, Environment.ProcessorCount)
    let model = noiseModel (args.GetResult(Noise_Model, "ar1"))

    if voxels < 1 || scans <= p || p < 2 then
        raise (
            GlmInputException(
                "--voxels/--scans/--regressors",
                $"need voxels ≥ 1 and scans > regressors ≥ 2, not {voxels}, {scans}, {p}"
            )
        )

    let design =
        Array2D.init scans p (fun t j ->
            if j = p - 1 then
                1.0
            elif j % 2 = 0 then
                (if ((t + 7 * j) / (10 + j)) % 2 = 0 then 1.0 else 0.0)
            else
                cos (Math.PI * float (t * (j + 1)) / float scans))

    let rng = Random 42
    let data = Array.zeroCreate<float32> (scans * voxels)

    for v in 0 .. voxels - 1 do
        let mutable e = 0.0

        for t in 0 .. scans - 1 do
            e <- 0.3 * e + (rng.NextDouble() - 0.5)
            data[v * scans + t] <- float32 (100.0 + e)

    let before = Process.GetCurrentProcess().PeakWorkingSet64
    let watch = Stopwatch.StartNew()

    let fit =
        Regression.fit
            { GlmOptions.defaults with
                NoiseModel = model
                Threads = threads }
            design
            (Float32 data)

    let fitTime = watch.Elapsed.TotalSeconds

    let unit j =
        Array.init p (fun k -> if k = j then 1.0 else 0.0)

    let contrasts =
        [ array2D [ unit 0 ], T
          array2D
              [ Array.init p (fun k ->
                    if k = 0 then 1.0
                    elif k = 2 then -1.0
                    else 0.0) ],
          T
          array2D [ unit 0; unit 2 ], F
          array2D [ unit 0; unit 2; unit 4 ], F ]

    let mutable checksum = 0.0

    for w, st in contrasts do
        let z = Contrast.compute fit w st |> Contrast.zScore 0.0
        checksum <- checksum + Array.sum z

    let total = watch.Elapsed.TotalSeconds
    let peak = Process.GetCurrentProcess().PeakWorkingSet64
    printfn "bench-glm: %d voxels x %d scans x %d regressors, %A, %d threads" voxels scans p model threads
    printfn "  labels: %d" fit.Models.Length
    printfn "  fit: %.2f s; fit + 4 contrasts (z maps): %.2f s" fitTime total

    printfn
        "  peak working set: %.0f MB (%.0f MB before the fit; input data %.0f MB)"
        (float peak / 1e6)
        (float before / 1e6)
        (float (data.Length * 4) / 1e6)

    printfn "  checksum of z: %.6g" checksum
    0
