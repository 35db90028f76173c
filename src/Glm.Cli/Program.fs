module FmriGlm.Cli.Program

open Argu
open FmriGlm.Core
open FmriGlm.Cli.DesignCommand
open FmriGlm.Cli.ThresholdCommand
open FmriGlm.Cli.ClustersCommand

/// The fmriglm subcommands; each case's arguments live in its own command file.
type FmriGlmArgs =
    | [<CliPrefix(CliPrefix.None)>] Version
    | [<CliPrefix(CliPrefix.None)>] Info of ParseResults<InfoCommand.InfoArgs>
    | [<CliPrefix(CliPrefix.None)>] Demo of ParseResults<DemoCommand.DemoArgs>
    | [<CliPrefix(CliPrefix.None)>] Bench of ParseResults<BenchCommand.BenchArgs>
    | [<CliPrefix(CliPrefix.None)>] Design of ParseResults<DesignArgs>
    | [<CliPrefix(CliPrefix.None)>] Threshold of ParseResults<ThresholdArgs>
    | [<CliPrefix(CliPrefix.None)>] Clusters of ParseResults<ClustersArgs>
    | [<CliPrefix(CliPrefix.None)>] Bench_Glm of ParseResults<BenchGlmCommand.BenchGlmArgs>
    | [<CliPrefix(CliPrefix.None)>] First_Level of ParseResults<FirstLevelCommand.FirstLevelArgs>
    | [<CliPrefix(CliPrefix.None)>] Simulate of ParseResults<SimulateCommand.SimulateArgs>
    | [<CliPrefix(CliPrefix.None)>] Bids of ParseResults<BidsCommand.BidsArgs>
    | [<CliPrefix(CliPrefix.None)>] Second_Level of ParseResults<SecondLevelCommand.SecondLevelArgs>
    | [<CliPrefix(CliPrefix.None)>] Permute of ParseResults<PermuteCommand.PermuteArgs>
    | [<CliPrefix(CliPrefix.None)>] Beta_Series of ParseResults<BetaSeriesCommand.BetaSeriesArgs>
    | [<CliPrefix(CliPrefix.None)>] Confounds of ParseResults<ConfoundsCommand.ConfoundsArgs>
    | [<CliPrefix(CliPrefix.None)>] Smoothness of ParseResults<SmoothnessCommand.SmoothnessArgs>
    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Version -> "print the version."
            | Info _ -> "shape, datatype, voxel size, TR, affine and value range of a NIfTI file."
            | Demo _ -> "simulate a small BIDS dataset, run the participant and group levels, write reports, score the recovery."
            | Bench _ -> "benchmarks: nifti (read speed, peak memory), first-level (end to end vs. reading), second-level (GLM and 10,000 sign flips), beta-series (LSS vs. refitting)."
            | Design _ -> "make a first-level design matrix (nilearn make_first_level_design_matrix) as TSV, optionally a PNG."
            | Threshold _ -> "threshold a z map (nilearn threshold_stats_img): fpr, fdr, bonferroni, fwe (random field theory) or a given z; cluster-size filter."
            | Clusters _ -> "clusters table of a statistic map (nilearn get_clusters_table) as TSV."
            | Bench_Glm _ -> "time an AR(1) fit and 4 contrasts on synthetic data; print time and peak memory."
            | First_Level _ -> "nilearn FirstLevelModel: fit BOLD runs with events/confounds, write contrast maps (BIDS names)."
            | Simulate _ -> "write a simulated BIDS dataset (raw events + fMRIPrep-like derivatives) with planted activations and ground truth."
            | Bids _ -> "the BIDS App: BIDS_DIR OUTPUT_DIR participant|group (first level per subject, then the group level)."
            | Second_Level _ -> "group GLM on subject maps (nilearn SecondLevelModel): contrast maps as NIfTI."
            | Permute _ -> "permutation inference on subject maps (nilearn non_parametric_inference): max-t, cluster and TFCE FWE maps."
            | Beta_Series _ -> "single-trial betas (LSS or LSA) of BOLD runs: one 4D map per condition and trials.tsv."
            | Confounds _ -> "fMRIPrep confounds of a BOLD file (nilearn load_confounds / load_confounds_strategy) as TSV, with the sample mask."
            | Smoothness _ -> "smoothness of model residuals in a mask: FWHM (voxels, mm), resels and LKCs (random field theory)."

/// Multi-core JIT (System.Runtime.ProfileOptimization): each subcommand records the methods it compiles in a
/// profile under the user's cache folder, and later runs compile them on a spare core while the main thread starts
/// working. Best effort: without a writable cache folder the runtime simply compiles on demand.
let private startJitProfile (argv: string[]) =
    try
        let cache =
            match System.Environment.GetEnvironmentVariable "XDG_CACHE_HOME" with
            | null
            | "" ->
                System.IO.Path.Combine(
                    System.Environment.GetFolderPath System.Environment.SpecialFolder.UserProfile,
                    ".cache"
                )
            | dir -> dir

        // no home folder (a relative path): record nothing rather than write into the working directory
        if System.IO.Path.IsPathRooted cache then
            let root = System.IO.Path.Combine(cache, "fmriglm", "jit")
            System.IO.Directory.CreateDirectory root |> ignore
            System.Runtime.ProfileOptimization.SetProfileRoot root

            let scenario =
                if argv.Length = 0 then "none" else argv[0].TrimStart('-')
                |> String.filter (fun c -> System.Char.IsLetterOrDigit c || c = '-')

            System.Runtime.ProfileOptimization.StartProfile $"{scenario}.jitprofile"
    with _ ->
        ()

/// The error a user should read: aggregate, invocation and type-initialisation wrappers removed (a parallel writer's
/// error arrives inside an AggregateException), the project's input error preferred when several are wrapped.
let rec private innermost (e: exn) : exn =
    match e with
    | :? System.AggregateException as a ->
        let inner = a.Flatten().InnerExceptions |> Seq.map innermost |> List.ofSeq

        match inner |> List.tryFind (fun x -> x :? GlmInputException) with
        | Some x -> x
        | None -> (match inner with x :: _ -> x | [] -> e)
    | :? System.Reflection.TargetInvocationException
    | :? System.TypeInitializationException when not (isNull e.InnerException) -> innermost e.InnerException
    | _ -> e

/// The one place where an exception escaping a command becomes a message and an exit code: 1 for bad input or a
/// target that cannot be written, 2 for bad arguments, 70 (EX_SOFTWARE) for a fault of fmriglm itself. No stack
/// trace unless FMRIGLM_DEBUG=1.
let private report (e: exn) : int =
    let e = innermost e

    if System.Environment.GetEnvironmentVariable "FMRIGLM_DEBUG" = "1" then
        eprintfn "%O" e

    match e with
    | :? ArguParseException as a when a.ErrorCode = ErrorCode.HelpText -> printfn "%s" a.Message; 0
    | :? ArguParseException as a -> eprintfn "%s" a.Message; 2
    | :? GlmInputException as g -> eprintfn "fmriglm: %s" g.Message; 1
    | :? System.IO.IOException
    | :? System.UnauthorizedAccessException ->
        // .NET's file-system messages name the path; the commands' own writers already name their target
        let full = if e.HResult = 28 || e.Message.Contains "No space left" then "the disk is full: " else ""
        eprintfn "fmriglm: %s%s" full e.Message
        1
    | :? System.OutOfMemoryException
    | :? System.InsufficientMemoryException ->
        eprintfn "fmriglm: out of memory: the request needs more memory than this machine has (%s)" e.Message
        1
    | _ ->
        eprintfn "fmriglm: internal error (%s): %s" (e.GetType().Name) e.Message
        eprintfn "This is a fault of fmriglm, not of your input: please report it with the command line. FMRIGLM_DEBUG=1 shows the details."
        70

[<EntryPoint>]
let main argv =
    startJitProfile argv
    // `bench nifti` measures in a child process started with this flag; it is dispatched before Argu loads so the
    // child's memory baseline is the runtime's alone.
    if argv.Length = 2 && argv[0] = BenchCommand.measureFlag then BenchCommand.measure argv[1] else
    if argv.Length = 4 && argv[0] = BenchCommand.measureFirstLevelFlag then
        BenchCommand.measureFirstLevel argv[1] argv[2] argv[3]
    else
    let parser = ArgumentParser.Create<FmriGlmArgs>(programName = "fmriglm")
    try
        let results = parser.ParseCommandLine(argv)
        match results.GetAllResults() with
        | [ Version ] -> printfn "fmriglm 0.1.0"; 0
        | [ Info args ] -> InfoCommand.run args
        | [ Demo args ] -> DemoCommand.run args
        | [ Bench args ] -> BenchCommand.run args
        | [ Design args ] -> DesignCommand.run args
        | [ Threshold args ] -> ThresholdCommand.run args
        | [ Clusters args ] -> ClustersCommand.run args
        | [ Bench_Glm args ] -> BenchGlmCommand.run args
        | [ First_Level args ] -> FirstLevelCommand.run args
        | [ Simulate args ] -> SimulateCommand.run args
        | [ Bids args ] -> BidsCommand.run args
        | [ Second_Level args ] -> SecondLevelCommand.run args
        | [ Permute args ] -> PermuteCommand.run args
        | [ Beta_Series args ] -> BetaSeriesCommand.run args
        | [ Confounds args ] -> ConfoundsCommand.run args
        | [ Smoothness args ] -> SmoothnessCommand.run args
        | _ -> printfn "%s" (parser.PrintUsage()); 0
    with e ->
        report e

