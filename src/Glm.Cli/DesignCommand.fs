/// `fmriglm design`: a first-level design matrix as nilearn's make_first_level_design_matrix builds it, written as
/// TSV (header of column names, one row per scan) and, with --plot, as a PNG.
module FmriGlm.Cli.DesignCommand

open System
open System.Globalization
open Argu
open FmriGlm.Core
open FmriGlm.Plotting

/// Arguments of `fmriglm design`; names and defaults are nilearn's.
type DesignArgs =
    | [<Mandatory; Unique>] Tr of seconds: float
    | [<Mandatory; Unique>] N_Scans of count: int
    | [<Unique>] Events of path: string
    | [<Unique>] Hrf of model: string
    | [<Unique>] Fir_Delays of delays: string
    | [<Unique>] Drift of model: string
    | [<Unique>] High_Pass of hz: float
    | [<Unique>] Drift_Order of order: int
    | [<Unique>] Confounds of path: string
    | [<Unique>] Confound_Columns of names: string
    | [<Unique>] Slice_Time_Ref of fraction: float
    | [<Unique>] Min_Onset of seconds: float
    | [<Unique>] Oversampling of factor: int
    | [<Mandatory; Unique>] Out of path: string
    | [<Unique>] Plot of path: string

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Tr _ -> "repetition time, in seconds."
            | N_Scans _ -> "number of volumes in the run (at least 2)."
            | Events _ -> "BIDS events.tsv (onset, duration; optional trial_type, modulation). Without it: drifts only."
            | Hrf _ ->
                "HRF model: glover (default), spm, 'spm + derivative', 'spm + derivative + dispersion', the same for glover, fir, none."
            | Fir_Delays _ -> "FIR delays in scans, comma separated (default 0)."
            | Drift _ -> "drift model: cosine (default), polynomial or none."
            | High_Pass _ -> "cosine drift cut-off, in Hz (default 0.01)."
            | Drift_Order _ -> "polynomial drift order (default 1)."
            | Confounds _ -> "confounds TSV whose columns become additional regressors (one row per scan)."
            | Confound_Columns _ -> "confound columns to use, comma separated (default: all)."
            | Slice_Time_Ref _ ->
                "slice timing reference in [0, 1]: frame times start at slice_time_ref × t_r (default 0)."
            | Min_Onset _ -> "start of the oversampled grid before the first scan, in seconds (default -24)."
            | Oversampling _ -> "oversampling of the convolution grid per t_r (default 50)."
            | Out _ -> "design matrix TSV to write."
            | Plot _ -> "PNG picture of the design to write."

let private list (text: string) =
    text.Split(',', StringSplitOptions.RemoveEmptyEntries ||| StringSplitOptions.TrimEntries)

/// A bad argument value: Argu's post-processing turns the exception into its own error (exit 2); no parameter
/// name is attached, since Argu already names the argument.
let private bad (message: string) : 'T = raise (ArgumentException message)

let private positive (v: float) =
    if not (v > 0.0) then
        bad $"must be > 0, got {v}"

    v

/// The design's options from the parsed arguments; bad values become Argu errors (exit 2).
let options (results: ParseResults<DesignArgs>) : FirstLevelDesignOptions =
    let delays =
        results.TryPostProcessResult(
            Fir_Delays,
            fun text ->
                list text
                |> Array.map (fun d ->
                    match Int32.TryParse(d, NumberStyles.Integer, CultureInfo.InvariantCulture) with
                    | true, v when v >= 0 -> v
                    | _ -> bad $"'{d}' is not a delay in scans (an integer ≥ 0)")
        )
        |> Option.defaultValue [| 0 |]

    let hrf =
        results.TryPostProcessResult(
            Hrf,
            fun text ->
                match Hrf.parse delays text with
                | Ok model -> model
                | Error accepted -> bad $"""unknown HRF model '{text}'; use one of {String.Join(", ", accepted)}"""
        )
        |> Option.defaultValue Hrf.Glover

    let highPass =
        results.TryPostProcessResult(High_Pass, positive) |> Option.defaultValue 0.01

    let order =
        results.TryPostProcessResult(Drift_Order, fun o -> if o < 0 then bad "must be ≥ 0" else o)
        |> Option.defaultValue 1

    let drift =
        results.TryPostProcessResult(
            Drift,
            fun text ->
                match text.Trim().ToLowerInvariant() with
                | "cosine" -> Cosine highPass
                | "polynomial" -> Polynomial order
                | "none" -> NoDrift
                | _ -> bad $"unknown drift model '{text}'; use cosine, polynomial or none"
        )
        |> Option.defaultValue (Cosine highPass)

    let oversampling =
        results.TryPostProcessResult(Oversampling, fun k -> if k < 1 then bad "must be ≥ 1" else k)
        |> Option.defaultValue 50

    { DesignMatrix.defaults with
        HrfModel = hrf
        DriftModel = drift
        MinOnset = results.GetResult(Min_Onset, defaultValue = -24.0)
        Oversampling = oversampling }

/// Reads the confounds as additional regressors; a row count other than n_scans or a missing cell is bad data.
let private confounds (results: ParseResults<DesignArgs>) (scans: int) =
    match results.TryGetResult Confounds with
    | None -> None, None
    | Some path ->
        let columns = results.TryGetResult Confound_Columns |> Option.map list
        let names, values = Tables.readConfounds path columns

        if Array2D.length1 values <> scans then
            raise (GlmInputException(path, $"{Array2D.length1 values} rows, but --n-scans is {scans}"))

        for i in 0 .. scans - 1 do
            for j in 0 .. names.Length - 1 do
                if not (Double.IsFinite values[i, j]) then
                    raise (
                        GlmInputException(
                            $"{path}, line {i + 2}, column '{names[j]}'",
                            "missing or non-finite value: fill it or leave the column out with --confound-columns"
                        )
                    )

        Some values, Some names

/// Runs `fmriglm design`: returns the exit code (0); bad data raises GlmInputException (exit 1 in Program).
let run (results: ParseResults<DesignArgs>) : int =
    let tr = results.PostProcessResult(Tr, positive)

    let scans =
        results.PostProcessResult(N_Scans, fun n -> if n < 2 then bad "must be ≥ 2" else n)

    let sliceTimeRef =
        results.TryPostProcessResult(Slice_Time_Ref, fun s -> if s < 0.0 || s > 1.0 then bad "must be in [0, 1]" else s)
        |> Option.defaultValue 0.0

    let opts = options results

    // the design is sampled on a grid oversampling times finer than the scans, one array per condition and more:
    // an absurd n_scans is refused with its estimate before anything is allocated
    let gridBytes = float scans * float opts.Oversampling * 8.0 * 4.0
    let limit = float (GC.GetGCMemoryInfo().TotalAvailableMemoryBytes) / 2.0

    if gridBytes > limit then
        raise (GlmInputException("--n-scans", $"{scans} scans at oversampling {opts.Oversampling} need about {gridBytes / 1048576.0:F0} MiB for the oversampled regressors, more than the limit of {limit / 1048576.0:F0} MiB (half the memory available)"))
    let addRegs, addNames = confounds results scans

    let events, tableWarnings =
        match results.TryGetResult Events with
        | Some path ->
            let ev, w = Tables.readEvents path
            Some ev, w
        | None -> None, []

    let frameTimes = DesignMatrix.frameTimes scans tr sliceTimeRef

    let design, warnings =
        DesignMatrix.makeFirstLevel
            frameTimes
            events
            { opts with
                AddRegs = addRegs
                AddRegNames = addNames }

    for w in tableWarnings do
        eprintfn "fmriglm: warning: %s" (Tables.describe w)

    for w in warnings do
        eprintfn "fmriglm: warning: %s" (DesignMatrix.describe w)

    let out = results.GetResult Out
    Files.requireOutputFile "--out" out (Option.toList (results.TryGetResult Events) @ Option.toList (results.TryGetResult Confounds))
    Tables.writeDesign out design
    printfn "%s: %d scans × %d columns (%s)" out scans design.ColumnNames.Length (String.Join(", ", design.ColumnNames))

    match results.TryGetResult Plot with
    | Some png ->
        DesignPlot.save png design
        printfn "%s: design plot" png
    | None -> ()

    0
