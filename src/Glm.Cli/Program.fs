module FmriGlm.Cli.Program

open Argu
open FmriGlm.Core
open FmriGlm.Cli.ThresholdCommand
open FmriGlm.Cli.ClustersCommand

/// The fmriglm subcommands; each case's arguments live in its own command file.
type FmriGlmArgs =
    | [<CliPrefix(CliPrefix.None)>] Version
    | [<CliPrefix(CliPrefix.None)>] Threshold of ParseResults<ThresholdArgs>
    | [<CliPrefix(CliPrefix.None)>] Clusters of ParseResults<ClustersArgs>
    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Version -> "print the version."
            | Threshold _ -> "threshold a z map (nilearn threshold_stats_img): fpr, fdr, bonferroni or a given z; cluster-size filter."
            | Clusters _ -> "clusters table of a statistic map (nilearn get_clusters_table) as TSV."

[<EntryPoint>]
let main argv =
    let parser = ArgumentParser.Create<FmriGlmArgs>(programName = "fmriglm")
    try
        let results = parser.ParseCommandLine(argv)
        match results.GetAllResults() with
        | [ Version ] -> printfn "fmriglm 0.1.0"; 0
        | [ Threshold args ] -> ThresholdCommand.run args
        | [ Clusters args ] -> ClustersCommand.run args
        | _ -> printfn "%s" (parser.PrintUsage()); 0
    with
    | :? ArguParseException as e when e.ErrorCode = ErrorCode.HelpText -> printfn "%s" e.Message; 0
    | :? ArguParseException as e -> eprintfn "%s" e.Message; 2
    | :? GlmInputException as e -> eprintfn "fmriglm: %s" e.Message; 1
