/// `fmriglm confounds`: nilearn's load_confounds / load_confounds_strategy on an fMRIPrep BOLD file: writes the
/// selected confounds as TSV and, optionally, the sample mask (kept volume indices, one per line).
module FmriGlm.Cli.ConfoundsCommand

open System
open System.IO
open Argu
open FmriGlm.Core

/// Arguments of `fmriglm confounds`; flags are nilearn's parameter names with `_` written `-`.
type ConfoundsArgs =
    | [<MainCommand; Mandatory; Unique>] Bold of path: string
    | [<Unique>] Strategy of components: string
    | [<Unique>] Denoise_Strategy of preset: string
    | [<Unique>] Motion of expansion: string
    | [<Unique>] Wm_Csf of expansion: string
    | [<Unique>] Global_Signal of expansion: string
    | [<Unique>] Scrub of volumes: int
    | [<Unique>] Fd_Threshold of mm: float
    | [<Unique>] Std_Dvars_Threshold of threshold: float
    | [<Unique>] Compcor of method: string
    | [<Unique>] N_Compcor of count: string
    | [<Unique>] Ica_Aroma of mode: string
    | [<Unique>] Demean of bool: string
    | [<Mandatory; Unique>] Out of path: string
    | [<Unique>] Sample_Mask_Out of path: string
    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Bold _ -> "fMRIPrep BOLD file (*_desc-preproc_bold.nii.gz, *_desc-smoothAROMAnonaggr_bold.nii.gz, *_bold.dtseries.nii); its confounds TSV is found beside it, as nilearn finds it."
            | Strategy _ -> "load_confounds strategy, comma separated: motion, high_pass, wm_csf, global_signal, compcor, ica_aroma, scrub, non_steady_state (default motion,high_pass,wm_csf)."
            | Denoise_Strategy _ -> "a load_confounds_strategy preset instead: simple, scrubbing, compcor or ica_aroma."
            | Motion _ -> "basic, power2, derivatives or full (default full)."
            | Wm_Csf _ -> "basic, power2, derivatives or full (default basic)."
            | Global_Signal _ -> "basic, power2, derivatives or full (default basic; with a preset, adds global_signal)."
            | Scrub _ -> "also leave out kept segments shorter than this many volumes (default 5; 0: none)."
            | Fd_Threshold _ -> "framewise displacement threshold in mm for scrub (default 0.5)."
            | Std_Dvars_Threshold _ -> "standardized DVARS threshold for scrub (default 1.5)."
            | Compcor _ -> "anat_combined (default), anat_separated, temporal, temporal_anat_combined or temporal_anat_separated."
            | N_Compcor _ -> "CompCor components per mask: a number or all (default all)."
            | Ica_Aroma _ -> "full (default: the image is already denoised) or basic (add the aroma_motion_XX regressors)."
            | Demean _ -> "true (default) or false: subtract each column's mean over the kept volumes."
            | Out _ -> "confounds TSV to write (one row per volume, the left-out ones too)."
            | Sample_Mask_Out _ -> "file for the sample mask: kept volume indices, one per line; empty when no volume is left out."

let private parseBool (option: string) (value: string) =
    match value.Trim().ToLowerInvariant() with
    | "true" -> true
    | "false" -> false
    | _ -> raise (GlmInputException(option, $"'{value}' is not true or false"))

let private parseStrategy (text: string) =
    text.Split(',', StringSplitOptions.RemoveEmptyEntries ||| StringSplitOptions.TrimEntries)
    |> Array.map Confounds.parseComponent
    |> List.ofArray

/// The confound flags as given, shared by `confounds` and `first-level` (whose strategy flag is
/// --confounds-strategy); the text is parsed only when the confounds are loaded, so errors name the flag.
type ConfoundFlags =
    { Strategy: string option
      DenoiseStrategy: string option
      Motion: string option
      WmCsf: string option
      GlobalSignal: string option
      Scrub: int option
      FdThreshold: float option
      StdDvarsThreshold: float option
      Compcor: string option
      NCompcor: string option
      IcaAroma: string option
      Demean: string option }

/// The preset's overrides: only the flags given.
let private overrides (flags: ConfoundFlags) : DenoiseOverrides =
    { Motion = flags.Motion |> Option.map (Confounds.parseExpansion "--motion")
      WmCsf = flags.WmCsf |> Option.map (Confounds.parseExpansion "--wm-csf")
      GlobalSignal = flags.GlobalSignal |> Option.map (Confounds.parseExpansion "--global-signal")
      Scrub = flags.Scrub
      FdThreshold = flags.FdThreshold
      StdDvarsThreshold = flags.StdDvarsThreshold
      Compcor = flags.Compcor |> Option.map Confounds.parseCompCor
      NCompcor = flags.NCompcor |> Option.map Confounds.parseCompCorCount
      IcaAroma = flags.IcaAroma |> Option.map Confounds.parseIcaAroma
      Demean = flags.Demean |> Option.map (parseBool "--demean") }

/// load_confounds' parameters: nilearn's defaults with the flags given.
let private options (flags: ConfoundFlags) : ConfoundsOptions =
    let o = overrides flags
    let d = Confounds.defaults

    { Strategy = flags.Strategy |> Option.map parseStrategy |> Option.defaultValue d.Strategy
      Motion = defaultArg o.Motion d.Motion
      Scrub = defaultArg o.Scrub d.Scrub
      FdThreshold = defaultArg o.FdThreshold d.FdThreshold
      StdDvarsThreshold = defaultArg o.StdDvarsThreshold d.StdDvarsThreshold
      WmCsf = defaultArg o.WmCsf d.WmCsf
      GlobalSignal = defaultArg o.GlobalSignal d.GlobalSignal
      Compcor = defaultArg o.Compcor d.Compcor
      NCompcor = defaultArg o.NCompcor d.NCompcor
      IcaAroma = defaultArg o.IcaAroma d.IcaAroma
      Demean = defaultArg o.Demean d.Demean }

/// The confounds of one BOLD file as the flags ask: a preset with a denoise strategy, load_confounds otherwise.
let loadWith (flags: ConfoundFlags) (bold: string) : LoadedConfounds =
    match flags.DenoiseStrategy with
    | Some _ when flags.Strategy.IsSome ->
        raise (GlmInputException("--denoise-strategy", "a preset and an explicit strategy exclude each other"))
    | Some preset -> Confounds.loadStrategy bold (Confounds.parseDenoiseStrategy preset) (overrides flags)
    | None -> Confounds.load bold (options flags)

let private flagsOf (results: ParseResults<ConfoundsArgs>) : ConfoundFlags =
    { Strategy = results.TryGetResult Strategy
      DenoiseStrategy = results.TryGetResult Denoise_Strategy
      Motion = results.TryGetResult Motion
      WmCsf = results.TryGetResult Wm_Csf
      GlobalSignal = results.TryGetResult Global_Signal
      Scrub = results.TryGetResult Scrub
      FdThreshold = results.TryGetResult Fd_Threshold
      StdDvarsThreshold = results.TryGetResult Std_Dvars_Threshold
      Compcor = results.TryGetResult Compcor
      NCompcor = results.TryGetResult N_Compcor
      IcaAroma = results.TryGetResult Ica_Aroma
      Demean = results.TryGetResult Demean }

/// Runs the command: exit code 0 when the table (and sample mask) are written.
let run (results: ParseResults<ConfoundsArgs>) : int =
    let loaded = loadWith (flagsOf results) (results.GetResult Bold)

    for warning in loaded.Warnings do
        eprintfn "warning: %s" warning

    let inputs = [ results.GetResult Bold; loaded.File ]
    Files.requireOutputFile "--out" (results.GetResult Out) inputs
    results.TryGetResult Sample_Mask_Out |> Option.iter (fun path -> Files.requireOutputFile "--sample-mask-out" path inputs)

    Files.writeTextAtomic (results.GetResult Out) (Confounds.toTsv loaded)
    results.TryGetResult Sample_Mask_Out |> Option.iter (fun path -> Files.writeTextAtomic path (Confounds.sampleMaskText loaded))
    let volumes = Array2D.length1 loaded.Values
    printfn "confounds file\t%s" loaded.File
    printfn "columns\t%d" loaded.Columns.Length

    match loaded.SampleMask with
    | Some kept -> printfn "volumes kept\t%d of %d" kept.Length volumes
    | None -> printfn "volumes kept\t%d of %d (no sample mask)" volumes volumes

    0
