/// `fmriglm demo [--out DIR] [--subjects N]`: the README's main command. Simulates a tiny BIDS dataset with planted
/// activations, runs the BIDS App's participant and group levels, writes the reports, and scores the thresholded
/// z maps against the ground truth (hits, false positives, misses, Dice).
module FmriGlm.Cli.DemoCommand

open System
open System.IO
open Argu
open Spectre.Console
open FmriGlm.Core

/// Arguments of `fmriglm demo`.
type DemoArgs =
    | [<Unique>] Out of dir: string
    | [<Unique>] Subjects of count: int
    | [<Unique; AltCommandLine("-q")>] Quiet
    | [<Unique>] Noise_Model of model: string

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Out _ -> "folder for the demo's files (default: a new temporary folder)."
            | Subjects _ -> "number of simulated subjects (default 4; the group level needs at least 2)."
            | Quiet -> "print only the recovery table."
            | Noise_Model _ -> "first-level noise model: ar1 (default, nilearn's), ols, arN, ar1-exact, ar1-corrected."

/// The demo's threshold: nilearn's threshold_stats_img defaults (fpr, α = 0.001, two-sided, no cluster threshold).
let threshold = Thresholding.defaultThresholdOptions

/// One line of the recovery table.
type RecoveryLine =
    { Level: string
      Contrast: string
      Recovery: Recovery }

/// Scores a z map against the signed ground truth of a contrast at the demo's threshold: a voxel is detected when
/// its thresholded z has the sign of the truth (positive detections for +1 voxels, negative for −1).
let scoreMap (shape: GridShape) (mask: bool[]) (truth: float[]) (zMap: float[]) =
    let result = Thresholding.thresholdStatsImg shape threshold (Some mask) zMap
    let truthActive = truth |> Array.map (fun t -> t <> 0.0)
    // a detection with the sign of the truth is a hit; any other detection is a false positive
    let correct = Array.init truth.Length (fun v -> truth[v] * result.Thresholded[v] > 0.0)
    let wrong = Array.init truth.Length (fun v -> result.Thresholded[v] <> 0.0 && not correct[v])
    let r = Recovery.score truthActive correct
    let fp = wrong |> Array.filter id |> Array.length
    { r with FalsePositives = fp; Dice = 2.0 * float r.Hits / float (max 1 (2 * r.Hits + fp + r.Misses)) }

/// Runs the whole demo in `dir`; returns the recovery lines and the paths of the reports.
let runIn (dir: string) (subjects: int) (noiseModel: NoiseModel) (quiet: bool) =
    let data = Path.Combine(dir, "bids")
    let output = Path.Combine(dir, "output")
    let options = { Simulation.tiny with Subjects = subjects }
    SimulateCommand.simulate quiet data options

    let settings: BidsCommand.BidsSettings =
        { BidsDir = data
          OutputDir = output
          Level = BidsCommand.ParticipantLevel
          Query =
            { Task = options.Task
              Space = Simulation.space
              Subjects = []
              ImgFilters = []
              Derivatives = None }
          Model =
            { BidsModels.defaults with
                Glm = { BidsModels.defaults.Glm with NoiseModel = noiseModel }
                Confounds = Some "motion6+csf+wm"
                Contrasts = List.ofArray Simulation.contrasts }
          Threshold = threshold
          Quiet = quiet
          Verbose = false }

    let participants = BidsCommand.participants settings
    let groups, groupReport = BidsCommand.group { settings with Level = BidsCommand.GroupLevel }
    let shape = options.Shape

    let lines =
        [ for p in participants do
              for name, c in p.Fit.Contrasts do
                  let z = BidsModels.unmask p.Fit.Mask (Contrast.zScoreWith Nilearn 0.0 c)

                  { Level = $"sub-{p.Fit.Subject}"
                    Contrast = name
                    Recovery = scoreMap shape p.Fit.Mask (Simulation.groundTruth shape name) z }
          for g in groups do
              let name = Simulation.contrasts |> Array.find (fun c -> Simulation.contrastLabel c = g.Contrast)

              { Level = "group"
                Contrast = name
                Recovery = scoreMap shape g.Mask (Simulation.groundTruth shape name) g.ZMap } ]

    lines, (participants |> List.map (fun p -> p.Report)) @ [ groupReport ]

/// Runs the demo; 0 on success.
let run (args: ParseResults<DemoArgs>) =
    let dir =
        match args.TryGetResult Out with
        | Some d -> d
        | None -> Path.Combine(Path.GetTempPath(), "fmriglm-demo-" + Guid.NewGuid().ToString("N").Substring(0, 8))

    let subjects = args.GetResult(Subjects, 4)

    if subjects < 2 then
        args.Raise("--subjects must be at least 2 (the group level needs two)", showUsage = false)

    let quiet = args.Contains Quiet

    let noiseModel =
        match Regression.parseNoiseModel (args.GetResult(Noise_Model, "ar1")) with
        | Ok model -> model
        | Error e -> args.Raise($"--noise-model: {e}", showUsage = false)

    Directory.CreateDirectory dir |> ignore
    let clock = Diagnostics.Stopwatch.StartNew()
    let lines, reports = runIn dir subjects noiseModel quiet
    let table = Table()

    for c in [ "level"; "contrast"; "hits"; "false positives"; "misses"; "Dice" ] do
        table.AddColumn c |> ignore

    for l in lines do
        let r = l.Recovery
        table.AddRow(l.Level, Markup.Escape l.Contrast, string r.Hits, string r.FalsePositives, string r.Misses, r.Dice.ToString("F3")) |> ignore

    if not quiet then
        printfn "simulated BIDS dataset  %s" (Path.Combine(dir, "bids"))
        printfn "ground truth            %s" (Path.Combine(dir, "bids", "derivatives", "simulation"))
        printfn "GLM derivatives         %s" (Path.Combine(dir, "output"))

        for r in reports do
            printfn "report                  %s" r

        printfn ""
        printfn "Recovery of the planted activations (z thresholded at fpr α = 0.001 two-sided, nilearn's defaults):"

    AnsiConsole.Write table

    if not quiet then
        printfn "done in %.1f s" clock.Elapsed.TotalSeconds

    0
