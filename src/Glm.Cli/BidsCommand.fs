/// `fmriglm bids BIDS_DIR OUTPUT_DIR participant|group`: the BIDS App. The participant level fits one first-level
/// model per subject (nilearn first_level_from_bids + FirstLevelModel, runs combined) and writes BIDS derivatives
/// with nilearn's save_glm_to_bids names and an HTML report; the group level reads those effect maps and fits a
/// one-sample second level. Participants are independent: every file is written through a unique temporary and a
/// rename, and each subject writes only under its own sub-X folder.
module FmriGlm.Cli.BidsCommand

open System
open System.IO
open Argu
open Spectre.Console
open FmriGlm.Core
open FmriGlm.Plotting

/// Arguments of `fmriglm bids`.
type BidsArgs =
    | [<MainCommand; Mandatory>] Positional of bids_dir_output_dir_level: string list
    | Participant_Label of labels: string list
    | [<Unique>] Task of label: string
    | [<Unique>] Space of label: string
    | [<Unique>] Derivatives of dir: string
    | Img_Filters of entity_value: string list
    | [<Unique>] Confounds of strategy: string
    | [<Unique>] Smoothing_Fwhm of mm: float
    | [<Unique>] Hrf_Model of model: string
    | [<Unique>] Drift_Model of model: string
    | [<Unique>] High_Pass of hz: float
    | [<Unique>] Noise_Model of model: string
    | Contrast of expression: string
    | [<Unique>] Height_Control of control: string
    | [<Unique>] Alpha of alpha: float
    | [<Unique>] Cluster_Threshold of voxels: int
    | [<Unique; AltCommandLine("-q")>] Quiet
    | [<Unique; AltCommandLine("-v")>] Verbose

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Positional _ -> "BIDS_DIR OUTPUT_DIR participant|group (the BIDS Apps convention)."
            | Participant_Label _ -> "subjects to analyse, without 'sub-' (default: every subject of the derivatives)."
            | Task _ -> "task label (default: the only task of the derivatives)."
            | Space _ -> "space of the preprocessed images (default: the only space found)."
            | Derivatives _ -> "fMRIPrep output folder (default: BIDS_DIR/derivatives/fmriprep)."
            | Img_Filters _ -> "extra entity filters on the BOLD files, as entity:value (e.g. acq:highres)."
            | Confounds _ -> "confounds: motion6, motion12 or motion24, optionally +csf +wm +gs (e.g. motion6+csf+wm), or a comma-separated column list."
            | Smoothing_Fwhm _ -> "Gaussian smoothing FWHM in mm (default none)."
            | Hrf_Model _ -> "HRF model as nilearn spells it (default glover)."
            | Drift_Model _ -> "cosine (default), polynomial or none."
            | High_Pass _ -> "high-pass cut-off of the cosine drift, in Hz (default 0.01)."
            | Noise_Model _ -> "ar1 (default), arN, ols, or the extras ar1-exact, ar1-corrected (bias-corrected AR(1)), nipy-ar1."
            | Contrast _ -> "a contrast expression over the design columns, e.g. \"faces - houses\"; repeat for several (default: one per condition)."
            | Height_Control _ -> "threshold of the reports: fpr (default), fdr, bonferroni or none."
            | Alpha _ -> "error rate of the reports' threshold (default 0.001)."
            | Cluster_Threshold _ -> "minimum cluster size in voxels in the reports (default 0)."
            | Quiet -> "print nothing but errors."
            | Verbose -> "print every file found and written, and the model's warnings."

/// Analysis level of the BIDS App.
type Level =
    | ParticipantLevel
    | GroupLevel

/// Settings of a BIDS App run, checked.
type BidsSettings =
    { BidsDir: string
      OutputDir: string
      Level: Level
      Query: BidsQuery
      Model: BidsModelOptions
      Threshold: ThresholdOptions
      Quiet: bool
      Verbose: bool }

/// The only value of an entity among the preprocessed BOLD files of the derivatives.
let private onlyEntity (derivatives: string) (key: string) (option: string) =
    let values =
        if Directory.Exists derivatives then
            Directory.GetFiles(derivatives, "*_bold.nii*", SearchOption.AllDirectories)
            |> Array.choose (fun f -> Bids.entities f |> List.tryFind (fst >> (=) key) |> Option.map snd)
            |> Array.distinct
            |> Array.sort
        else
            [||]

    match values with
    | [| one |] -> one
    | [||] -> raise (GlmInputException(derivatives, $"no preprocessed BOLD image with a '{key}' entity: check --derivatives"))
    | many -> raise (GlmInputException(derivatives, $"""several {key} labels ({String.Join(", ", many)}): choose one with {option}"""))

/// Parses and checks the arguments (bad ones raise Argu's exception: exit code 2).
let settings (args: ParseResults<BidsArgs>) : BidsSettings =
    let bad (message: string) = args.Raise(message, showUsage = false)

    let bidsDir, outputDir, level =
        match args.GetResult Positional with
        | [ b; o; "participant" ] -> b, o, ParticipantLevel
        | [ b; o; "group" ] -> b, o, GroupLevel
        | [ _; _; other ] -> bad $"the analysis level is 'participant' or 'group', not '{other}'"
        | given -> bad $"expected BIDS_DIR OUTPUT_DIR participant|group, got {given.Length} value(s)"

    // an empty OUTPUT_DIR would write the subjects' folders into the working directory
    if String.IsNullOrWhiteSpace outputDir then
        raise (GlmInputException("OUTPUT_DIR", "is empty: give the output folder"))

    if String.IsNullOrWhiteSpace bidsDir || not (Directory.Exists bidsDir) then
        raise (GlmInputException((if String.IsNullOrWhiteSpace bidsDir then "BIDS_DIR" else bidsDir), "BIDS folder not found"))

    if Path.GetFullPath(outputDir).TrimEnd('/') = Path.GetFullPath(bidsDir).TrimEnd('/') then
        raise (GlmInputException(outputDir, "is the BIDS folder itself: give a separate output folder (e.g. BIDS_DIR/derivatives/fmriglm)"))

    let derivatives = Bids.derivativesFolder bidsDir (args.TryGetResult Derivatives)

    let filters =
        args.GetResults Img_Filters
        |> List.concat
        |> List.map (fun f ->
            match f.Split(':') with
            | [| k; v |] when k <> "" && v <> "" -> k, v
            | _ -> bad $"--img-filters takes entity:value pairs such as desc:preproc, not '{f}'")

    let hrf =
        match Hrf.parse [| 0 |] (args.GetResult(Hrf_Model, "glover")) with
        | Ok m -> m
        | Error accepted -> bad $"""--hrf-model: use one of {String.Join(", ", accepted)}"""

    let highPass = args.GetResult(High_Pass, 0.01)

    let drift =
        match args.GetResult(Drift_Model, "cosine").ToLowerInvariant() with
        | "cosine" -> Cosine highPass
        | "polynomial" -> Polynomial 1
        | "none" -> NoDrift
        | other -> bad $"--drift-model is cosine, polynomial or none, not '{other}'"

    let noise =
        match Regression.parseNoiseModel (args.GetResult(Noise_Model, "ar1")) with
        | Ok model -> model
        | Error e -> bad $"--noise-model: {e}"

    let fwhm = args.GetResult(Smoothing_Fwhm, 0.0)
    if fwhm < 0.0 then bad "--smoothing-fwhm must be ≥ 0"
    let alpha = args.GetResult(Alpha, 0.001)
    if not (alpha > 0.0 && alpha < 1.0) then bad "--alpha must be in (0, 1)"

    let control =
        try
            Thresholding.parseHeightControl (args.GetResult(Height_Control, "fpr"))
        with :? GlmInputException as e ->
            bad $"--height-control: {e.Problem}"

    { BidsDir = bidsDir
      OutputDir = outputDir
      Level = level
      Query =
        { Task = args.TryGetResult Task |> Option.defaultWith (fun () -> onlyEntity derivatives "task" "--task")
          Space = args.TryGetResult Space |> Option.defaultWith (fun () -> onlyEntity derivatives "space" "--space")
          Subjects = args.GetResults Participant_Label |> List.concat |> List.map (fun s -> if s.StartsWith "sub-" then s.Substring 4 else s)
          ImgFilters = filters
          Derivatives = args.TryGetResult Derivatives }
      Model =
        { BidsModels.defaults with
            HrfModel = hrf
            DriftModel = drift
            Glm = { GlmOptions.defaults with NoiseModel = noise }
            SmoothingFwhm = fwhm
            Confounds = args.TryGetResult Confounds
            Contrasts = args.GetResults Contrast }
      Threshold =
        { Thresholding.defaultThresholdOptions with
            Alpha = alpha
            HeightControl = control
            ClusterThreshold = float (args.GetResult(Cluster_Threshold, 0)) }
      Quiet = args.Contains Quiet
      Verbose = args.Contains Verbose }

/// The model's parameters as the report lists them.
let private parameters (s: BidsSettings) (runs: BidsRun list) =
    [ "task", s.Query.Task
      "space", s.Query.Space
      "t_r (s)", (match runs with r :: _ -> string r.TR | [] -> "")
      "slice_time_ref", (match runs with r :: _ -> string r.SliceTimeRef | [] -> "")
      "hrf_model", Hrf.name s.Model.HrfModel
      "drift_model", (match s.Model.DriftModel with
                     | Cosine hp -> $"cosine (high_pass {hp} Hz)"
                     | Polynomial order -> $"polynomial (drift_order {order})"
                     | NoDrift -> "none")
      "noise_model", Regression.noiseModelName s.Model.Glm.NoiseModel
      "signal_scaling", (if s.Model.SignalScaling then "0 (percent signal change)" else "none")
      "smoothing_fwhm (mm)", string s.Model.SmoothingFwhm
      "confounds", defaultArg s.Model.Confounds "none"
      "runs", string runs.Length ]

let private datasetDescription (outputDir: string) =
    Bids.writeTextAtomic
        (Path.Combine(outputDir, "dataset_description.json"))
        """{"Name": "fmriglm GLM outputs", "BIDSVersion": "1.8.0", "DatasetType": "derivative", "GeneratedBy": [{"Name": "fmriglm", "Version": "0.1.0"}]}"""

/// Result of one subject: the fit, the files written, the report.
type ParticipantOutput =
    { Fit: ParticipantFit
      Files: string list
      Report: string }

/// Fits and writes one subject (with its report); contrasts default to one per condition of the first run's events.
let participant (s: BidsSettings) (subject: string) : ParticipantOutput =
    let runs = Bids.findRuns s.BidsDir s.Query subject

    let model =
        if s.Model.Contrasts.IsEmpty then
            let events, _ = Tables.readEvents runs.Head.Events
            { s.Model with Contrasts = DesignMatrix.conditions events |> List.ofArray }
        else
            s.Model

    let fit = BidsModels.fitParticipant model subject runs
    // the subject's folder is filled under a temporary name and swapped in whole: a failed or killed run leaves the
    // previous outputs (or none), never a mixture
    use folder = Files.OutputFolder.Create(Path.Combine(s.OutputDir, $"sub-{subject}"), replace = true)
    let files = BidsModels.writeParticipant folder.Path s.Query.Task s.Query.Space model fit
    let prefix = Bids.participantPrefix subject s.Query.Task s.Query.Space
    let reportPath = folder.File $"{prefix}_report.html"
    let columns = fit.Designs.Head.ColumnNames |> List.ofArray

    Report.write
        reportPath
        { Title = $"First-level model of sub-{subject}, task {s.Query.Task}"
          Parameters = parameters s runs
          Designs = fit.Designs
          Contrasts =
            [ for name, c in fit.Contrasts ->
                  { Name = name
                    Weights =
                      match ContrastExpression.parse columns name with
                      | Ok w -> w
                      | Error _ -> Array.zeroCreate columns.Length
                    ZMap = BidsModels.unmask fit.Mask (Contrast.zScoreWith Nilearn 0.0 c) } ]
          Shape = fit.Shape
          Affine = fit.Affine
          Zooms = fit.Zooms
          Background = fit.MeanImage
          Mask = fit.Mask
          Threshold = s.Threshold
          Warnings = fit.Warnings }

    folder.Commit()
    let final (path: string) = Path.Combine(folder.Target, Path.GetFileName path)
    { Fit = fit; Files = (files @ [ reportPath ]) |> List.map final; Report = final reportPath }

/// One contrast of the group level: the subjects used, the z map (full grid), the mask, the files written.
type GroupOutput =
    { Contrast: string
      Subjects: string list
      ZMap: float[]
      Mask: bool[]
      Files: string list }

/// Contrast labels of the first-level outputs: the contrast- entity of every stat-effect map under sub-*/.
let private contrastLabels (s: BidsSettings) =
    if s.Model.Contrasts.IsEmpty then
        let found =
            if Directory.Exists s.OutputDir then
                Directory.GetFiles(s.OutputDir, "sub-*_stat-effect_statmap.nii.gz", SearchOption.AllDirectories)
                |> Array.filter (fun f -> Bids.entities f |> List.contains ("task", s.Query.Task))
                |> Array.choose (fun f -> Bids.entities f |> List.tryFind (fst >> (=) "contrast") |> Option.map snd)
                |> Array.distinct
                |> Array.sort
            else
                [||]

        if found.Length = 0 then
            raise (GlmInputException(s.OutputDir, $"no first-level effect maps of task '{s.Query.Task}': run the participant level first"))

        List.ofArray found
    else
        s.Model.Contrasts |> List.map Simulation.contrastLabel

/// Fits the group level of every contrast, writes OUTPUT_DIR/group/task-T_space-S_contrast-C_stat-*_statmap.nii.gz,
/// the group mask and one report.
let group (s: BidsSettings) : GroupOutput list * string =
    use output = Files.OutputFolder.Create(Path.Combine(s.OutputDir, "group"), replace = true)
    let folder = output.Path
    let prefix = $"task-{s.Query.Task}_space-{s.Query.Space}"

    let outputs =
        [ for label in contrastLabels s ->
              let subjects, c, mask, shape, affine, _ = BidsModels.fitGroup s.OutputDir s.Query.Task s.Query.Space label

              let maps =
                  [ "effect", Contrast.effectSize c
                    "variance", Contrast.effectVariance c
                    "t", Contrast.stat 0.0 c
                    "z", Contrast.zScoreWith Nilearn 0.0 c
                    "p", Contrast.pValue 0.0 c ]

              let files =
                  [ for stat, values in maps ->
                        let path = Path.Combine(folder, Bids.labelledMapName prefix label stat)
                        BidsModels.writeMap path shape affine (BidsModels.unmask mask values)
                        path ]

              let maskPath = Path.Combine(folder, $"{prefix}_contrast-{label}_mask.nii.gz")
              BidsModels.writeMap maskPath shape affine (mask |> Array.map (fun b -> if b then 1.0 else 0.0))

              { Contrast = label
                Subjects = subjects
                ZMap = BidsModels.unmask mask (Contrast.zScoreWith Nilearn 0.0 c)
                Mask = mask
                Files = files @ [ maskPath ] } ]

    let first = outputs.Head
    let header = Nifti.readHeader first.Files.Head
    let shape = { X = int header.Shape[0]; Y = int header.Shape[1]; Z = int header.Shape[2] }
    let n = first.Subjects.Length
    let reportPath = Path.Combine(folder, $"{prefix}_report.html")

    Report.write
        reportPath
        { Title = $"Second-level model (one-sample t test over {n} subjects), task {s.Query.Task}"
          Parameters =
            [ "subjects", String.Join(", ", first.Subjects)
              "design", "intercept (one-sample t test)"
              "noise_model", "ols"
              "first-level effect maps", $"OUTPUT_DIR/sub-*/*_contrast-*_stat-effect_statmap.nii.gz" ]
          Designs = [ { ColumnNames = [| "intercept" |]; Values = Array2D.create n 1 1.0 } ]
          Contrasts = outputs |> List.map (fun o -> { Name = o.Contrast; Weights = [| 1.0 |]; ZMap = o.ZMap })
          Shape = shape
          Affine = header.Affine
          Zooms = header.Zooms |> Array.truncate 3
          Background = first.Mask |> Array.map (fun b -> if b then 1.0 else 0.0)
          Mask = first.Mask
          Threshold = s.Threshold
          Warnings = [] }

    output.Commit()
    let final (path: string) = Path.Combine(output.Target, Path.GetFileName path)
    outputs |> List.map (fun o -> { o with Files = List.map final o.Files }), final reportPath

/// Runs every requested subject in this process, with a progress bar unless quiet.
let participants (s: BidsSettings) : ParticipantOutput list =
    let subjects = Bids.subjects s.BidsDir s.Query

    let outputs =
        if s.Quiet then
            subjects |> List.map (participant s)
        else
            AnsiConsole
                .Progress()
                .Start(fun ctx ->
                    let task = ctx.AddTask($"first level ({subjects.Length} subject(s))", maxValue = float subjects.Length)

                    subjects
                    |> List.map (fun subject ->
                        let out = participant s subject
                        task.Increment 1.0
                        out))

    // written last: a run that fails leaves no derivative dataset that looks complete
    datasetDescription s.OutputDir
    outputs

/// Runs `fmriglm bids`; 0 on success.
let run (args: ParseResults<BidsArgs>) =
    let s = settings args

    match s.Level with
    | ParticipantLevel ->
        let outputs = participants s

        if not s.Quiet then
            for o in outputs do
                printfn "sub-%s: %d run(s), %d contrast(s), %d voxels; report %s" o.Fit.Subject o.Fit.Runs.Length o.Fit.Contrasts.Length (o.Fit.Mask |> Array.filter id |> Array.length) o.Report

                if s.Verbose then
                    for r in o.Fit.Runs do
                        printfn "  bold %s\n  events %s\n  confounds %s\n  TR %g s, slice_time_ref %g" r.Bold r.Events (defaultArg r.Confounds "-") r.TR r.SliceTimeRef

                    for w in o.Fit.Warnings do
                        printfn "  warning: %s" w

                    for f in o.Files do
                        printfn "  wrote %s" f
    | GroupLevel ->
        let outputs, report = group s
        datasetDescription s.OutputDir

        if not s.Quiet then
            for o in outputs do
                printfn "contrast %s: %d subjects" o.Contrast o.Subjects.Length

                if s.Verbose then
                    for f in o.Files do
                        printfn "  wrote %s" f

            printfn "group report %s" report

    0
