/// `fmriglm first-level`: nilearn's FirstLevelModel(...).fit(runs, events, confounds).compute_contrast(...) on the
/// command line, writing the maps with nilearn's BIDS-derivative names.
module FmriGlm.Cli.FirstLevelCommand

open System
open System.Globalization
open System.IO
open Argu
open Spectre.Console
open FmriGlm.Core

/// Arguments of `fmriglm first-level`; names and defaults are nilearn's.
type FirstLevelArgs =
    | Bold of path: string
    | [<Unique>] Tr of seconds: float
    | Events of path: string
    | Confounds of path: string
    | [<Unique>] Confound_Columns of names: string
    | [<Unique>] Confounds_Strategy of components: string
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
    | Design_Matrix of path: string
    | [<Unique>] Signals of path: string
    | Sample_Mask of indices: string
    | [<Unique>] Mask of path: string
    | [<Unique>] No_Mask
    | [<Unique>] Hrf of model: string
    | [<Unique>] Fir_Delays of delays: string
    | [<Unique>] Drift of model: string
    | [<Unique>] High_Pass of hz: float
    | [<Unique>] Drift_Order of order: int
    | [<Unique>] Slice_Time_Ref of fraction: float
    | [<Unique>] Min_Onset of seconds: float
    | [<Unique>] Smoothing_Fwhm of mm: float
    | [<Unique>] Signal_Scaling of scaling: string
    | [<Unique>] Standardize
    | [<Unique>] Noise_Model of model: string
    | [<Unique>] Bins of count: int
    | [<Unique>] Keep_Diagnostics
    | [<Unique>] N_Jobs of threads: int
    | [<Mandatory>] Contrast of definition: string
    | [<Unique>] Output_Type of kind: string
    | [<Mandatory; Unique>] Out of dir: string

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Bold _ -> "4D BOLD run (.nii/.nii.gz); repeat for several runs on the same grid."
            | Tr _ -> "repetition time, in seconds (needed with --events)."
            | Events _ -> "BIDS events.tsv of a run; one per --bold, in the same order."
            | Confounds _ -> "confounds TSV of a run (fMRIPrep desc-confounds_timeseries.tsv); one per --bold."
            | Confound_Columns _ -> "confound columns to use, comma separated (default: all)."
            | Confounds_Strategy _ -> "build each run's confounds and sample mask from its fMRIPrep files (nilearn load_confounds strategy, comma separated, e.g. motion,high_pass,wm_csf); see `fmriglm confounds`."
            | Denoise_Strategy _ -> "build each run's confounds with a load_confounds_strategy preset: simple, scrubbing, compcor or ica_aroma."
            | Motion _ -> "with a confounds strategy: basic, power2, derivatives or full."
            | Wm_Csf _ -> "with a confounds strategy: basic, power2, derivatives or full."
            | Global_Signal _ -> "with a confounds strategy: basic, power2, derivatives or full."
            | Scrub _ -> "with a confounds strategy: minimum kept segment length in volumes."
            | Fd_Threshold _ -> "with a confounds strategy: framewise displacement threshold in mm."
            | Std_Dvars_Threshold _ -> "with a confounds strategy: standardized DVARS threshold."
            | Compcor _ -> "with a confounds strategy: CompCor method (anat_combined, anat_separated, temporal, ...)."
            | N_Compcor _ -> "with a confounds strategy: CompCor components per mask, a number or all."
            | Ica_Aroma _ -> "with a confounds strategy: full or basic."
            | Demean _ -> "with a confounds strategy: true or false."
            | Design_Matrix _ -> "design matrix TSV of a run, given instead of events; one per --bold."
            | Signals _ -> "time-by-region TSV (one column per region) instead of images: the ROI GLM."
            | Sample_Mask _ -> "kept scan indices of a run, comma separated (scrubbing); one per --bold."
            | Mask _ -> "mask image on the runs' grid (default: compute_epi_mask on the first run)."
            | No_Mask -> "analyse every voxel (nilearn mask_img=False)."
            | Hrf _ -> "HRF model: glover (default), spm, 'spm + derivative', ..., fir, none."
            | Fir_Delays _ -> "FIR delays in scans, comma separated (default 0)."
            | Drift _ -> "drift model: cosine (default), polynomial or none."
            | High_Pass _ -> "cosine drift cut-off, in Hz (default 0.01)."
            | Drift_Order _ -> "polynomial drift order (default 1)."
            | Slice_Time_Ref _ -> "slice timing reference in [0, 1] (default 0)."
            | Min_Onset _ -> "start of the oversampled grid before the first scan, in seconds (default -24)."
            | Smoothing_Fwhm _ -> "Gaussian smoothing FWHM, in mm (default none)."
            | Signal_Scaling _ -> "0 (default: each voxel's mean), '0,1' (grand mean) or false."
            | Standardize -> "accepted for nilearn compatibility; has no effect, as in nilearn 0.13.1."
            | Noise_Model _ -> "ar1 (default), ols, ar2, ..., or the extras ar1-exact, ar1-corrected (bias-corrected AR(1)), nipy-ar1."
            | Bins _ -> "AR(1) bins (default 100)."
            | Keep_Diagnostics -> "also write R², residuals and predicted values (nilearn minimize_memory=False)."
            | N_Jobs _ -> "threads (default: every core); results do not depend on it."
            | Contrast _ -> "contrast as name=expression, e.g. 'faceVsHouse=face - house'; repeatable."
            | Output_Type _ -> "all (default), z_score, stat, p_value, effect_size or effect_variance."
            | Out _ -> "output folder (must not exist or be empty); written atomically."

let private optionsOf (args: ParseResults<FirstLevelArgs>) =
    { ModelFlags.options
        { Tr = args.TryGetResult Tr
          SliceTimeRef = args.TryGetResult Slice_Time_Ref
          Hrf = args.TryGetResult Hrf
          FirDelays = args.TryGetResult Fir_Delays
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
          NJobs = args.TryGetResult N_Jobs } with
        Standardize = args.Contains Standardize
        MinimizeMemory = not (args.Contains Keep_Diagnostics) }

let private contrastsOf (args: ParseResults<FirstLevelArgs>) =
    args.GetResults Contrast
    |> List.map (fun c ->
        match c.IndexOf '=' with
        | i when i > 0 -> c.Substring(0, i).Trim(), c.Substring(i + 1).Trim()
        | _ -> c.Trim(), c.Trim())

/// Runs `fmriglm first-level`.
let run (args: ParseResults<FirstLevelArgs>) =
    let options = optionsOf args
    let bolds = args.GetResults Bold

    let perRun (name: string) (values: 'T list) =
        if not values.IsEmpty && values.Length <> max 1 bolds.Length then
            raise (GlmInputException(name, $"{values.Length} given for {bolds.Length} --bold runs: give one per run"))

        fun i -> List.tryItem i values

    let events = perRun "--events" (args.GetResults Events)
    let confounds = perRun "--confounds" (args.GetResults Confounds)
    let designs = perRun "--design-matrix" (args.GetResults Design_Matrix)
    let sampleMasks = perRun "--sample-mask" (args.GetResults Sample_Mask)
    let columns = ModelFlags.confoundColumns (args.TryGetResult Confound_Columns)

    let outputs =
        match FirstLevel.parseOutputType (args.GetResult(Output_Type, defaultValue = "all")) with
        | Ok o -> o
        | Error accepted -> raise (GlmInputException("--output-type", $"""use one of {String.Join(", ", accepted)}"""))

    let confoundFlags: ConfoundsCommand.ConfoundFlags =
        { Strategy = args.TryGetResult Confounds_Strategy
          DenoiseStrategy = args.TryGetResult Denoise_Strategy
          Motion = args.TryGetResult Motion
          WmCsf = args.TryGetResult Wm_Csf
          GlobalSignal = args.TryGetResult Global_Signal
          Scrub = args.TryGetResult Scrub
          FdThreshold = args.TryGetResult Fd_Threshold
          StdDvarsThreshold = args.TryGetResult Std_Dvars_Threshold
          Compcor = args.TryGetResult Compcor
          NCompcor = args.TryGetResult N_Compcor
          IcaAroma = args.TryGetResult Ica_Aroma
          Demean = args.TryGetResult Demean }

    let fmriprepConfounds = confoundFlags.Strategy.IsSome || confoundFlags.DenoiseStrategy.IsSome

    if fmriprepConfounds && (args.Contains Confounds || args.Contains Sample_Mask || args.Contains Signals || args.Contains Design_Matrix) then
        raise (
            GlmInputException(
                "--confounds-strategy",
                "builds each run's confounds and sample mask from its fMRIPrep files: give it without --confounds, --sample-mask, --design-matrix and --signals"
            )
        )

    let runInput i =
        if fmriprepConfounds then
            let loaded = ConfoundsCommand.loadWith confoundFlags bolds[i]

            for w in loaded.Warnings do
                eprintfn "warning: %s: %s" bolds[i] w

            FmriGlm.Core.Confounds.runInput (BoldFile bolds[i]) (events i |> Option.map (Tables.readEvents >> fst)) loaded
        else

        let r =
            { Bold = BoldFile(if bolds.IsEmpty then "" else bolds[i])
              Events = events i |> Option.map (Tables.readEvents >> fst)
              Confounds = confounds i |> Option.map (ModelFlags.readConfounds columns)
              DesignMatrix =
                designs i
                |> Option.map (fun path ->
                    let d = Tables.readDesign path
                    Tables.requireRegressors path (d.ColumnNames, d.Values)
                    d)
              SampleMask =
                sampleMasks i |> Option.map ModelFlags.sampleMask }

        r

    let work (status: string -> unit) =
        status "reading runs and fitting"

        let fit =
            match args.TryGetResult Signals, bolds with
            | Some table, [] ->
                let d = Tables.readDesign table // a numeric table with a header: one column per region
                FirstLevel.fitSignals options d.Values (runInput 0)
            | Some _, _ -> raise (GlmInputException("--signals", "give --signals or --bold, not both"))
            | None, [] -> raise (GlmInputException("--bold", "at least one run is needed (or --signals)"))
            | None, _ -> FirstLevel.fit options (List.init bolds.Length runInput)

        status "computing contrasts"

        let contrasts =
            contrastsOf args
            |> List.map (fun (name, expression) -> name, FirstLevel.computeContrast fit [ ContrastDefinition.Expression expression ] None)

        status "writing outputs"
        FirstLevel.writeOutputs (args.GetResult Out) fit contrasts outputs
        fit, contrasts

    let fit, contrasts =
        if Console.IsOutputRedirected then
            work ignore
        else
            AnsiConsole.Status().Start("first-level", fun ctx -> work (fun s -> ctx.Status <- s))

    for w in fit.Warnings do
        eprintfn "warning: %s" w

    for name, c in contrasts do
        for w in c.Warnings do
            eprintfn "warning (%s): %s" name w

    printfn
        "fitted %d run(s), %d voxels in the mask; %d contrast(s) written to %s"
        fit.Runs.Length
        fit.MaskedIndices.Length
        contrasts.Length
        (Path.GetFullPath(args.GetResult Out))

    0
