/// `fmriglm simulate OUT_DIR [--size tiny|realistic] [--subjects N] [--seed S]`: writes a BIDS dataset with
/// fMRIPrep-like derivatives and known planted activations (Simulation module).
module FmriGlm.Cli.SimulateCommand

open System.IO
open Argu
open Spectre.Console
open FmriGlm.Core

/// Dataset sizes of `--size`.
type SimulationSize =
    | Tiny
    | Realistic

/// Arguments of `fmriglm simulate`.
type SimulateArgs =
    | [<MainCommand; Mandatory; Unique>] Out_Dir of dir: string
    | [<Unique>] Size of SimulationSize
    | [<Unique>] Subjects of count: int
    | [<Unique>] Seed of seed: int
    | [<Unique; AltCommandLine("-q")>] Quiet

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Out_Dir _ -> "folder of the new BIDS dataset (created; existing files are overwritten)."
            | Size _ -> "tiny (24×28×20 voxels, 80 scans; default) or realistic (64×64×36, 300 scans)."
            | Subjects _ -> "number of subjects (default 2)."
            | Seed _ -> "seed of every random draw (default 42): the same seed gives the same files."
            | Quiet -> "print nothing but errors."

/// The simulation options the arguments select.
let options (args: ParseResults<SimulateArgs>) =
    let size =
        match args.GetResult(Size, Tiny) with
        | Tiny -> Simulation.tiny
        | Realistic -> Simulation.realistic

    let subjects = args.GetResult(Subjects, size.Subjects)

    if subjects < 1 then
        args.Raise("--subjects must be at least 1", showUsage = false)

    { size with
        Subjects = subjects
        Seed = args.GetResult(Seed, size.Seed) }

/// Writes the dataset with a progress bar (one step per subject); quiet: silently.
let simulate (quiet: bool) (root: string) (options: SimulationOptions) =
    Simulation.writeDatasetFiles root options

    if quiet then
        for n in 1 .. options.Subjects do
            Simulation.writeSubject root options n
    else
        AnsiConsole
            .Progress()
            .Start(fun ctx ->
                let task = ctx.AddTask("simulating subjects", maxValue = float options.Subjects)

                for n in 1 .. options.Subjects do
                    Simulation.writeSubject root options n
                    task.Increment 1.0)

/// Runs `fmriglm simulate`; 0 on success.
let run (args: ParseResults<SimulateArgs>) =
    let root = args.GetResult Out_Dir
    let o = options args
    let quiet = args.Contains Quiet
    simulate quiet root o

    if not quiet then
        printfn
            "wrote a BIDS dataset to %s: %d subject(s), task '%s', %d×%d×%d voxels × %d scans, TR %g s"
            (Path.GetFullPath root) o.Subjects o.Task o.Shape.X o.Shape.Y o.Shape.Z o.Scans o.TR

        printfn "fMRIPrep-like derivatives in %s" (Path.Combine(root, "derivatives", "fmriprep"))
        printfn "ground truth maps in %s" (Path.Combine(root, "derivatives", "simulation"))

    0
