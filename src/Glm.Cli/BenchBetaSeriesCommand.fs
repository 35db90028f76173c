/// `fmriglm bench beta-series`: LSS of 100 trials on a simulated 64×64×36×300 run against separate first-level
/// fits (nilearn's plot_beta_series recipe), both timed in the same process.
module FmriGlm.Cli.BenchBetaSeriesCommand

open System
open System.Diagnostics
open Argu
open FmriGlm.Core

/// Arguments of `fmriglm bench beta-series`.
type BenchBetaSeriesArgs =
    | [<Unique>] Trials of count: int
    | [<Unique>] Separate_Fits of count: int
    | [<Unique>] Noise_Model of model: string
    | [<Unique>] Threads of count: int

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Trials _ -> "number of trials, in two conditions (default 100)."
            | Separate_Fits _ ->
                "separate first-level fits timed, the time per fit extrapolated to every trial (default 5)."
            | Noise_Model _ -> "ols or ar1 (default)."
            | Threads _ -> "threads (default: every core)."

let private nx, ny, nz, nt, tr = 64, 64, 36, 300, 2.0

/// Inside an ellipsoid brain: its baseline (600–1000) and whether voxel n is in it.
let private brain (n: int) =
    let i, j, k = n % nx, n / nx % ny, n / (nx * ny)

    let r2 =
        ((float i - 31.5) / 26.0) ** 2.0
        + ((float j - 31.5) / 30.0) ** 2.0
        + ((float k - 17.5) / 16.0) ** 2.0

    if r2 < 1.0 then 600.0 + 400.0 * (1.0 - r2), true else 5.0, false

/// Trials every 5.5 s from 10 s, 1 s long, alternating conditions a and b.
let private events (count: int) =
    { Onsets = Array.init count (fun e -> 10.0 + 5.5 * float e)
      Durations = Array.create count 1.0
      TrialTypes = Array.init count (fun e -> if e % 2 = 0 then "a" else "b")
      Modulations = Array.create count 1.0 }

/// The run in memory: baseline, AR(1)-like noise (ρ 0.3, about 2 % of the baseline), 2 % responses of random size
/// per trial in the brain.
let private simulate (paradigm: Events) =
    let per = nx * ny * nz

    let design, _ =
        DesignMatrix.makeFirstLevel
            (DesignMatrix.frameTimes nt tr 0.0)
            (Some { paradigm with TrialTypes = Array.create paradigm.Onsets.Length "all" })
            DesignMatrix.defaults

    let baseline, inBrain = Array.init per brain |> Array.unzip
    let random = Random 20261202
    let noise = Array.zeroCreate<float> per

    let volumes =
        Array.init nt (fun t ->
            Array.init per (fun v ->
                let e = random.NextDouble() + random.NextDouble() + random.NextDouble() - 1.5
                noise[v] <- 0.3 * noise[v] + e
                let signal = if inBrain[v] then 0.02 * design.Values[t, 0] else 0.0
                float32 (Math.Round(baseline[v] * (1.0 + signal + 0.04 * noise[v])))))

    volumes, inBrain

/// Runs the benchmark and prints both timings and the largest difference between the two methods' betas.
let run (args: ParseResults<BenchBetaSeriesArgs>) : int =
    let count = args.GetResult(Trials, 100)
    let separate = args.GetResult(Separate_Fits, 5)
    let threads = args.GetResult(Threads, Environment.ProcessorCount)

    let noise =
        match Regression.parseNoiseModel (args.GetResult(Noise_Model, "ar1")) with
        | Ok m -> m
        | Error e -> raise (GlmInputException("--noise-model", e))

    if count < 2 || 10.0 + 5.5 * float count > float nt * tr then
        raise (GlmInputException("--trials", $"must be 2 to {int ((float nt * tr - 10.0) / 5.5)}, not {count}"))

    if separate < 1 || separate > count then
        raise (GlmInputException("--separate-fits", $"must be 1 to the {count} trials, not {separate}"))

    let paradigm = events count
    let clock = Stopwatch.StartNew()
    let volumes, inBrain = simulate paradigm
    printfn "bench beta-series: %d trials, run %d×%d×%d×%d (simulated in %.1f s), %d voxels in the mask, %s, %d threads" count nx ny nz nt clock.Elapsed.TotalSeconds (Array.sumBy (fun b -> if b then 1 else 0) inBrain) (Regression.noiseModelName noise) threads

    let affine = Array2D.init 4 4 (fun i j -> if i = j then 1.0 else 0.0)

    let options =
        { FirstLevel.defaults with
            TR = Some tr
            Mask = MaskArray inBrain
            NoiseModel = noise
            Threads = threads }

    let run =
        { Bold = BoldVolumes({ X = nx; Y = ny; Z = nz }, affine, volumes)
          Events = Some paradigm
          Confounds = None
          DesignMatrix = None
          SampleMask = None }

    // one untimed call of each so that neither timing includes JIT compilation
    let warm = { run with Bold = BoldVolumes({ X = 8; Y = 8; Z = 4 }, affine, volumes |> Array.map (fun v -> Array.sub v 0 256)) }
    let warmOptions = { options with Mask = NoMask }
    BetaSeries.lss warmOptions [ warm ] |> ignore
    FirstLevel.fit warmOptions [ warm ] |> ignore

    clock.Restart()
    let lss = BetaSeries.lss options [ run ]
    let lssSeconds = clock.Elapsed.TotalSeconds

    // nilearn's recipe: the trial alone renamed, a whole first-level model fitted per trial
    let mutable worst = 0.0
    clock.Restart()

    for e in 0 .. separate - 1 do
        let types = Array.copy paradigm.TrialTypes
        types[e] <- "the__trial"
        let fit = FirstLevel.fit options [ { run with Events = Some { paradigm with TrialTypes = types } } ]
        let glm = fit.Runs[0].Glm
        let j = Array.IndexOf(fit.Runs[0].Design.ColumnNames, "the__trial")
        let c = Array.IndexOf(lss.Conditions, paradigm.TrialTypes[e])
        // trials alternate a, b in onset order: trial e is number e / 2 of its condition
        let k = e / 2

        for v in 0 .. glm.Voxels - 1 do
            worst <- max worst (abs (glm.Betas[v * glm.Regressors + j] - lss.Betas[c][k * glm.Voxels + v]))

    let perFit = clock.Elapsed.TotalSeconds / float separate
    let refit = perFit * float count
    printfn "  LSS, %d trials: %.2f s" count lssSeconds
    printfn "  separate first-level fits: %.2f s per fit (%d timed), %.1f s extrapolated to %d trials" perFit separate refit count
    printfn "  speed-up: %.1f× (target ≥ 20×); largest |LSS − separate fit| beta over the %d fits: %.2e (bound 1e-10)" (refit / lssSeconds) separate worst
    0
