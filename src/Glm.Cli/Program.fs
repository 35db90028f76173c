module FmriGlm.Cli.Program

open Argu
open FmriGlm.Core
open FmriGlm.Cli.DesignCommand

/// The fmriglm subcommands; each case's arguments live in its own command file.
type FmriGlmArgs =
    | [<CliPrefix(CliPrefix.None)>] Version
    | [<CliPrefix(CliPrefix.None)>] Design of ParseResults<DesignArgs>
    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Version -> "print the version."
            | Design _ -> "make a first-level design matrix (nilearn make_first_level_design_matrix) as TSV, optionally a PNG."

[<EntryPoint>]
let main argv =
    let parser = ArgumentParser.Create<FmriGlmArgs>(programName = "fmriglm")
    try
        let results = parser.ParseCommandLine(argv)
        match results.GetAllResults() with
        | [ Version ] -> printfn "fmriglm 0.1.0"; 0
        | [ Design args ] -> DesignCommand.run args
        | _ -> printfn "%s" (parser.PrintUsage()); 0
    with
    | :? ArguParseException as e when e.ErrorCode = ErrorCode.HelpText -> printfn "%s" e.Message; 0
    | :? ArguParseException as e -> eprintfn "%s" e.Message; 2
    | :? GlmInputException as e -> eprintfn "fmriglm: %s" e.Message; 1
