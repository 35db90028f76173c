/// `fmriglm second-level`: nilearn's SecondLevelModel on a list of subject maps; writes the contrast's maps.
module FmriGlm.Cli.SecondLevelCommand

open System
open System.IO
open Argu
open FmriGlm.Core

/// Arguments of `fmriglm second-level`; names and defaults are nilearn's.
type SecondLevelArgs =
    | [<Mandatory>] Maps of paths: string list
    | [<Unique>] Design of path: string
    | [<Unique>] Mask of path: string
    | [<Unique>] Smoothing_Fwhm of mm: float
    | [<Unique>] Contrast of expression: string
    | [<Unique>] Stat_Type of kind: string
    | [<Unique>] Output_Type of kind: string
    | [<Unique>] Threads of count: int
    | [<Mandatory; Unique>] Out of dir: string
    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Maps _ -> "subject maps (3D NIfTI), one per design row, in row order."
            | Design _ -> "design matrix TSV (header of column names, one row per map); default: one 'intercept' column."
            | Mask _ -> "mask (NIfTI on the maps' grid); default: nilearn's background mask of the mean map."
            | Smoothing_Fwhm _ -> "Gaussian smoothing FWHM in mm before masking (default none)."
            | Contrast _ -> "column name or expression over column names, e.g. \"patients - controls\" (default: the only column)."
            | Stat_Type _ -> "t or F (default t)."
            | Output_Type _ -> "z_score (default), stat, p_value, effect_size, effect_variance or all."
            | Threads _ -> "threads (default: every core)."
            | Out _ -> "folder receiving <output>.nii.gz and mask.nii.gz."

let private outputNames = [ "z_score"; "stat"; "p_value"; "effect_size"; "effect_variance" ]

/// Reads the maps (and mask) of `--maps`/`--mask`/`--smoothing-fwhm`.
let readInput (maps: string list) (mask: string option) (fwhm: float option) =
    SecondLevelImages.readMaps (Array.ofList maps) mask fwhm

/// The design of `--design`, or the one-sample design.
let readDesign (path: string option) (subjects: int) =
    match path with
    | Some p ->
        let names, values = Tables.readConfounds p None
        { ColumnNames = names; Values = values }
    | None -> { ColumnNames = [| "intercept" |]; Values = Array2D.create subjects 1 1.0 }

/// Runs the command: exit code 0 when the maps are written.
let run (results: ParseResults<SecondLevelArgs>) : int =
    let statType =
        results.TryPostProcessResult(Stat_Type, fun s ->
            match s with
            | "t" -> T
            | "F" -> F
            | _ -> failwith $"must be t or F, got {s}")

    let outputType =
        results.TryPostProcessResult(Output_Type, fun s -> if s = "all" || List.contains s outputNames then s else failwith $"unknown output type {s}")
        |> Option.defaultValue "z_score"

    let threads = results.GetResult(Threads, Environment.ProcessorCount)
    let input = readInput (results.GetResult Maps) (results.TryGetResult Mask) (results.TryGetResult Smoothing_Fwhm)
    let design = readDesign (results.TryGetResult Design) input.Subjects
    let fit = SecondLevel.fit threads design (Float32 input.Data)

    let contrast =
        match results.TryGetResult Contrast with
        | Some c -> Expression c
        | None -> Default

    let maps = SecondLevel.computeContrast fit contrast statType |> SecondLevel.maps
    let dir = results.GetResult Out
    Directory.CreateDirectory dir |> ignore
    let write name values = SecondLevelImages.write input NiftiDatatype.Float64 (Path.Combine(dir, $"{name}.nii.gz")) values
    let n = maps.Stat.Length

    for name in (if outputType = "all" then outputNames else [ outputType ]) do
        match name with
        | "z_score" -> write name maps.ZScore
        | "stat" -> write name maps.Stat
        | "p_value" -> write name maps.PValue
        | "effect_variance" -> write name maps.EffectVariance
        | _ ->
            for row in 0 .. maps.Dim - 1 do
                write (if maps.Dim = 1 then name else $"{name}_{row}") maps.EffectSize[row * n .. (row + 1) * n - 1]

    SecondLevelImages.write input NiftiDatatype.UInt8 (Path.Combine(dir, "mask.nii.gz")) (Array.create n 1.0)

    for w in input.Warnings do
        eprintfn "warning: %s" w

    printfn "%d subjects, %d voxels, %A contrast written to %s" input.Subjects n maps.StatType dir
    0
