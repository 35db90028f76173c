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
    | [<Unique>] Confounds of path: string
    | Subject_Labels of labels: string list
    | [<Unique>] Mask of path: string
    | [<Unique>] Smoothing_Fwhm of mm: float
    | [<Unique>] Contrast of expression: string
    | [<Unique>] Stat_Type of kind: string
    | [<Unique>] Output_Type of kind: string
    | [<Unique>] Threads of count: int
    | [<Unique>] Model of noise_model: string
    | Variance_Maps of paths: string list
    | [<Unique>] N_Iter of steps: int
    | [<Mandatory; Unique>] Out of dir: string
    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Maps _ -> "subject maps (3D NIfTI), one per design row, in row order."
            | Confounds _ -> "subject_label + covariate columns (e.g. participants.tsv): design built as nilearn's make_second_level_design_matrix."
            | Subject_Labels _ -> "subject label of each map, in order (default: each file name up to its first '_')."
            | Design _ -> "design matrix TSV (header of column names, one row per map); default: one 'intercept' column."
            | Mask _ -> "mask (NIfTI on the maps' grid); default: nilearn's background mask of the mean map."
            | Smoothing_Fwhm _ -> "Gaussian smoothing FWHM in mm before masking (default none)."
            | Contrast _ -> "column name or expression over column names, e.g. \"patients - controls\" (default: the only column)."
            | Stat_Type _ -> "t or F (default t)."
            | Output_Type _ -> "z_score (default), stat, p_value, effect_size, effect_variance or all."
            | Threads _ -> "threads (default: every core)."
            | Model _ -> "ols (default, nilearn) or mfx: mixed effects with the first-level variances of --variance-maps (nipy's EM)."
            | Variance_Maps _ -> "with --model mfx: first-level variance maps (3D NIfTI), one per map of --maps, in the same order."
            | N_Iter _ -> "with --model mfx: EM steps (nipy's n_iter, default 5)."
            | Out _ -> "folder receiving <output>.nii.gz and mask.nii.gz."

let private outputNames = [ "z_score"; "stat"; "p_value"; "effect_size"; "effect_variance" ]

/// Reads the maps (and mask) of `--maps`/`--mask`/`--smoothing-fwhm`.
let readInput (maps: string list) (mask: string option) (fwhm: float option) =
    SecondLevelImages.readMaps (Array.ofList maps) mask fwhm

/// The design of `--design`; or built from `--confounds` (nilearn make_second_level_design_matrix, subject labels
/// given or taken from the map file names); or the one-sample design.
let readDesign (path: string option) (confounds: string option) (labels: string list option) (maps: string list) =
    match path, confounds with
    | Some _, Some _ -> raise (GlmInputException("--design, --confounds", "give one or the other"))
    | Some p, None ->
        let names, values = Tables.readConfounds p None
        // n/a would be NaN in the design: second-level and permute refuse it alike, naming the cell
        Tables.requireRegressors p (names, values)

        if Array2D.length1 values <> maps.Length then
            raise (GlmInputException(p, $"{Array2D.length1 values} design rows for {maps.Length} maps: give one row per map"))

        { ColumnNames = names; Values = values }
    | None, Some c ->
        let labels =
            match labels with
            | Some l when l.Length = maps.Length -> Array.ofList l
            | Some l -> raise (GlmInputException("--subject-labels", $"{l.Length} labels for {maps.Length} maps"))
            | None -> maps |> List.map (fun m -> (Path.GetFileName m).Split('_')[0]) |> Array.ofList

        let design, warnings =
            try
                DesignMatrix.makeSecondLevel labels (Some(Tables.readSubjectCovariates c))
            with :? GlmInputException as e when not (e.Input.StartsWith c) ->
                raise (GlmInputException($"{c} ({e.Input})", e.Problem))

        for w in warnings do
            eprintfn "warning: %s" (DesignMatrix.describe w)

        design
    | None, None -> { ColumnNames = [| "intercept" |]; Values = Array2D.create maps.Length 1 1.0 }

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
    let design = readDesign (results.TryGetResult Design) (results.TryGetResult Confounds) (results.TryGetResult Subject_Labels) (results.GetResult Maps)
    let contrast =
        match results.TryGetResult Contrast with
        | Some c -> SecondLevelContrast.Expression c
        | None -> SecondLevelContrast.Default

    let maps =
        match results.TryGetResult Model, results.TryGetResult Variance_Maps with
        | (None | Some "ols"), None ->
            let fit = SecondLevel.fit threads design (Float32 input.Data)
            SecondLevel.computeContrast fit contrast statType |> SecondLevel.maps
        | (None | Some "ols"), Some _ -> raise (GlmInputException("--variance-maps", "is only used with --model mfx"))
        | Some "mfx", None -> raise (GlmInputException("--variance-maps", "is required by --model mfx (one first-level variance map per subject)"))
        | Some "mfx", Some paths ->
            if statType = Some F then
                raise (GlmInputException("--stat-type", "F is not available with --model mfx (t contrasts only)"))

            let nIter = results.GetResult(N_Iter, 5)

            if nIter < 0 then
                raise (GlmInputException("--n-iter", $"{nIter} EM steps: give 0 or more"))

            let variances = SecondLevelImages.readVarianceMaps input (Array.ofList paths)
            let fit = MixedEffects.fitSecondLevel nIter design (Float32 input.Data) (Float32 variances)
            MixedEffects.computeContrast fit contrast
        | Some other, _ -> raise (GlmInputException("--model", $"must be ols or mfx, got {other}"))
    let dir = results.GetResult Out
    // every map is written into a temporary folder that is renamed onto --out at the end: a failure (disk full,
    // read-only) leaves nothing half-written
    use folder = Files.OutputFolder.Create dir
    let write name values = SecondLevelImages.write input NiftiDatatype.Float64 (folder.File($"{name}.nii.gz")) values
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

    SecondLevelImages.write input NiftiDatatype.UInt8 (folder.File("mask.nii.gz")) (Array.create n 1.0)

    for w in input.Warnings do
        eprintfn "warning: %s" w

    folder.Commit()

    printfn "%d subjects, %d voxels, %A contrast written to %s" input.Subjects n maps.StatType dir
    0
