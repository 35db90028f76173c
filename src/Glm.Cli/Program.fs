module FmriGlm.Cli.Program

open Argu
open FmriGlm.Core

/// The fmriglm subcommands; each case's arguments live in its own command file.
type FmriGlmArgs =
    | [<CliPrefix(CliPrefix.None)>] Version
    | [<CliPrefix(CliPrefix.None)>] Bench_Glm of ParseResults<BenchGlmCommand.BenchGlmArgs>
    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Version -> "print the version."
            | Bench_Glm _ -> "time an AR(1) fit and 4 contrasts on synthetic data; print time and peak memory."

[<EntryPoint>]
let main argv =
    let parser = ArgumentParser.Create<FmriGlmArgs>(programName = "fmriglm")
    try
        let results = parser.ParseCommandLine(argv)
        match results.GetAllResults() with
        | [ Version ] -> printfn "fmriglm 0.1.0"; 0
        | [ Bench_Glm args ] -> BenchGlmCommand.run args
        | _ -> printfn "%s" (parser.PrintUsage()); 0
    with
    | :? ArguParseException as e when e.ErrorCode = ErrorCode.HelpText -> printfn "%s" e.Message; 0
    | :? ArguParseException as e -> eprintfn "%s" e.Message; 2
    | :? GlmInputException as e -> eprintfn "fmriglm: %s" e.Message; 1
