/// `fmriglm beta-series`: single-trial betas (LSA or LSS) of BOLD runs with the first level's model options,
/// one 4D map of betas per condition and trials.tsv.
module FmriGlm.Cli.BetaSeriesCommand

open System
open System.Globalization
open System.IO
open Argu
open FmriGlm.Core

/// Arguments of `fmriglm beta-series`; the model options are first-level's (nilearn FirstLevelModel names).
type BetaSeriesArgs =
    | [<Mandatory; Unique>] Method of method: string
    | Bold of path: string
    | [<Unique>] Tr of seconds: float
    | Events of path: string
    | Confounds of path: string
    | [<Unique>] Confound_Columns of names: string
    | Sample_Mask of indices: string
    | [<Unique>] Mask of path: string
    | [<Unique>] No_Mask
    | [<Unique>] Hrf of model: string
    | [<Unique>] Drift of model: string
    | [<Unique>] High_Pass of hz: float
    | [<Unique>] Drift_Order of order: int
    | [<Unique>] Slice_Time_Ref of fraction: float
    | [<Unique>] Min_Onset of seconds: float
    | [<Unique>] Smoothing_Fwhm of mm: float
    | [<Unique>] Signal_Scaling of scaling: string
    | [<Unique>] Noise_Model of model: string
    | [<Unique>] Bins of count: int
    | [<Unique>] N_Jobs of threads: int
    | [<Mandatory; Unique>] Out of dir: string

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Method _ -> "lss (one model per trial, computed without refitting) or lsa (one model, a regressor per trial)."
            | Bold _ -> "4D BOLD run (.nii/.nii.gz); repeat for several runs on the same grid."
            | Tr _ -> "repetition time, in seconds."
            | Events _ -> "BIDS events.tsv of a run; one per --bold, in the same order."
            | Confounds _ -> "confounds TSV of a run (fMRIPrep desc-confounds_timeseries.tsv); one per --bold."
            | Confound_Columns _ -> "confound columns to use, comma separated (default: all)."
            | Sample_Mask _ -> "kept scan indices of a run, comma separated (scrubbing); one per --bold."
            | Mask _ -> "mask image on the runs' grid (default: compute_epi_mask on the first run)."
            | No_Mask -> "analyse every voxel (nilearn mask_img=False)."
            | Hrf _ -> "HRF model with one regressor per trial: glover (default), spm, none."
            | Drift _ -> "drift model: cosine (default), polynomial or none."
            | High_Pass _ -> "cosine drift cut-off, in Hz (default 0.01)."
            | Drift_Order _ -> "polynomial drift order (default 1)."
            | Slice_Time_Ref _ -> "slice timing reference in [0, 1] (default 0)."
            | Min_Onset _ -> "start of the oversampled grid before the first scan, in seconds (default -24)."
            | Smoothing_Fwhm _ -> "Gaussian smoothing FWHM, in mm (default none)."
            | Signal_Scaling _ -> "0 (default: each voxel's mean), '0,1' (grand mean) or false."
            | Noise_Model _ -> "ar1 (default) or ols."
            | Bins _ -> "AR(1) bins (default 100)."
            | N_Jobs _ -> "threads (default: every core); results do not depend on it."
            | Out _ -> "output folder (must not exist or be empty): <condition>_betas.nii.gz and trials.tsv, written atomically."

let private methodOf (text: string) =
    match text.Trim().ToLowerInvariant() with
    | "lss" -> Lss
    | "lsa" -> Lsa
    | m -> raise (GlmInputException("--method", $"'{m}': use lss or lsa"))

let private optionsOf (args: ParseResults<BetaSeriesArgs>) =
    ModelFlags.options
        { Tr = args.TryGetResult Tr
          SliceTimeRef = args.TryGetResult Slice_Time_Ref
          Hrf = args.TryGetResult Hrf
          FirDelays = None
          Drift = args.TryGetResult Drift
          HighPass = args.TryGetResult High_Pass
          DriftOrder = args.TryGetResult Drift_Order
          MinOnset = args.TryGetResult Min_Onset
          Mask = args.TryGetResult Mask
          NoMask = args.Contains No_Mask
          SmoothingFwhm = args.TryGetResult Smoothing_Fwhm
          SignalScaling = args.TryGetResult Signal_Scaling
          NoiseModel = args.TryGetResult Noise_Model
          Bins = args.TryGetResult Bins
          NJobs = args.TryGetResult N_Jobs }

/// Runs `fmriglm beta-series`.
let run (args: ParseResults<BetaSeriesArgs>) =
    let method = methodOf (args.GetResult Method)
    let options = optionsOf args
    let bolds = args.GetResults Bold

    if bolds.IsEmpty then
        raise (GlmInputException("--bold", "at least one run is needed"))

    let perRun (name: string) (values: 'T list) =
        if not values.IsEmpty && values.Length <> bolds.Length then
            raise (GlmInputException(name, $"{values.Length} given for {bolds.Length} --bold runs: give one per run"))

        fun i -> List.tryItem i values

    let events = perRun "--events" (args.GetResults Events)
    let confounds = perRun "--confounds" (args.GetResults Confounds)
    let sampleMasks = perRun "--sample-mask" (args.GetResults Sample_Mask)
    let columns = ModelFlags.confoundColumns (args.TryGetResult Confound_Columns)

    let runInput i =
        { Bold = BoldFile bolds[i]
          Events = events i |> Option.map (Tables.readEvents >> fst)
          Confounds = confounds i |> Option.map (ModelFlags.readConfounds columns)
          DesignMatrix = None
          SampleMask =
            sampleMasks i |> Option.map ModelFlags.sampleMask }

    let result = BetaSeries.fit method options (List.init bolds.Length runInput)
    BetaSeries.writeOutputs (args.GetResult Out) result

    for w in result.Warnings do
        eprintfn "warning: %s" w

    printfn
        "%s: %d trial(s) of %d condition(s), %d voxels in the mask; written to %s"
        (match method with Lss -> "lss" | Lsa -> "lsa")
        result.Trials.Length
        result.Conditions.Length
        result.MaskedIndices.Length
        (Path.GetFullPath(args.GetResult Out))

    0
