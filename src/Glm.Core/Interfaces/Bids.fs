namespace FmriGlm.Core

open System
open System.Globalization
open System.IO
open System.Text
open System.Text.Json

/// <summary>One run found in a BIDS dataset, with everything a first-level model needs.</summary>
type BidsRun =
    {
        /// The entities of the preprocessed BOLD file name, in file order ("sub" → "01", "task" → …, "run" → …).
        Entities: (string * string) list
        /// Preprocessed BOLD image (fMRIPrep derivatives).
        Bold: string
        /// Raw events.tsv of the run.
        Events: string
        /// fMRIPrep confounds table, when present.
        Confounds: string option
        /// fMRIPrep brain mask of the run, when present.
        Mask: string option
        /// Repetition time in seconds, from the sidecar JSON (derivatives first, then the raw dataset's inheritance).
        TR: float
        /// nilearn's slice_time_ref: StartTime / RepetitionTime from the derivatives sidecar, 0 without StartTime.
        SliceTimeRef: float
        /// SliceTiming of the raw sidecar (seconds), empty when absent; recorded in the model JSON.
        SliceTiming: float[]
    }

/// <summary>What to select in a BIDS dataset (nilearn <c>first_level_from_bids</c> arguments).</summary>
type BidsQuery =
    {
        /// The task label (BIDS <c>task-</c>).
        Task: string
        /// The space label of the preprocessed images (fMRIPrep <c>space-</c>).
        Space: string
        /// Subject labels without "sub-"; empty for every subject of the derivatives.
        Subjects: string list
        /// Extra entity filters on the BOLD file names, as nilearn's img_filters: ("desc", "preproc"), ….
        ImgFilters: (string * string) list
        /// The fMRIPrep folder; default BIDS_DIR/derivatives/fmriprep (or BIDS_DIR/derivatives).
        Derivatives: string option
    }

/// <summary>BIDS discovery with nilearn's <c>first_level_from_bids</c> semantics, fMRIPrep confound strategies,
/// and nilearn's <c>save_glm_to_bids</c> output names.</summary>
module Bids =

    /// <summary>The entities of a BIDS file name: "sub-01_task-x_run-1_bold.nii.gz" → [sub,01; task,x; run,1].
    /// The suffix (the last part, without "-") and the extension are not entities.</summary>
    let entities (fileName: string) : (string * string) list =
        let name = Path.GetFileName fileName
        let stem = name.Substring(0, (let i = name.IndexOf '.' in if i < 0 then name.Length else i))

        stem.Split '_'
        |> Array.choose (fun part ->
            match part.IndexOf '-' with
            | i when i > 0 -> Some(part.Substring(0, i), part.Substring(i + 1))
            | _ -> None)
        |> List.ofArray

    /// <summary>The suffix of a BIDS file name: "…_desc-preproc_bold.nii.gz" → "bold".</summary>
    let suffix (fileName: string) : string =
        let name = Path.GetFileName fileName
        let stem = name.Substring(0, (let i = name.IndexOf '.' in if i < 0 then name.Length else i))
        let last = stem.Split('_') |> Array.last
        if last.Contains '-' then "" else last

    let private entity (key: string) (ents: (string * string) list) =
        ents |> List.tryFind (fst >> (=) key) |> Option.map snd

    let private has (key: string) (value: string) (ents: (string * string) list) = entity key ents = Some value

    /// <summary>The fMRIPrep folder of a dataset: the given one, else BIDS_DIR/derivatives/fmriprep when it
    /// exists, else BIDS_DIR/derivatives.</summary>
    let derivativesFolder (bidsDir: string) (given: string option) : string =
        match given with
        | Some d -> d
        | None ->
            let fmriprep = Path.Combine(bidsDir, "derivatives", "fmriprep")
            if Directory.Exists fmriprep then fmriprep else Path.Combine(bidsDir, "derivatives")

    let private files (folder: string) (pattern: string) =
        if Directory.Exists folder then
            Directory.GetFiles(folder, pattern, SearchOption.AllDirectories) |> Array.sort
        else
            [||]

    let private readJson (path: string) : JsonElement option =
        if File.Exists path then
            try
                use text = Files.openUtf8 path
                use doc = JsonDocument.Parse(text.ReadToEnd())
                Some(doc.RootElement.Clone())
            with
            | :? JsonException as e -> raise (GlmInputException(path, $"is not valid JSON: {e.Message}"))
            | :? DecoderFallbackException as e -> raise (GlmInputException(path, $"is not UTF-8 text ({e.Message})"))
        else
            None

    let private number (json: JsonElement option) (key: string) =
        match json with
        | Some j when j.ValueKind = JsonValueKind.Object ->
            match j.TryGetProperty key with
            | true, v when v.ValueKind = JsonValueKind.Number -> Some(v.GetDouble())
            | _ -> None
        | _ -> None

    let private numbers (json: JsonElement option) (key: string) =
        match json with
        | Some j when j.ValueKind = JsonValueKind.Object ->
            match j.TryGetProperty key with
            | true, v when v.ValueKind = JsonValueKind.Array ->
                v.EnumerateArray() |> Seq.filter (fun e -> e.ValueKind = JsonValueKind.Number) |> Seq.map (fun e -> e.GetDouble()) |> Array.ofSeq
            | _ -> [||]
        | _ -> [||]

    /// <summary>The raw sidecars that apply to a run by BIDS inheritance, most specific last: task-T_bold.json at
    /// the root, then sub-X/[ses-Y/]func/…_bold.json files whose entities are a subset of the run's.</summary>
    let private rawSidecars (bidsDir: string) (ents: (string * string) list) =
        let sub = defaultArg (entity "sub" ents) ""
        let root = files bidsDir "*_bold.json" |> Array.filter (fun f -> Path.GetDirectoryName f = Path.GetFullPath(bidsDir).TrimEnd(Path.DirectorySeparatorChar))
        let subject = files (Path.Combine(bidsDir, $"sub-{sub}")) "*_bold.json"

        Array.append root subject
        |> Array.filter (fun f -> entities f |> List.forall (fun (k, v) -> has k v ents))
        |> Array.sortBy (fun f -> (entities f).Length)
        |> Array.choose readJson

    /// <summary>Finds the runs of one subject (nilearn first_level_from_bids for one sub_label): preprocessed BOLD
    /// images of the task and space (and img_filters) in the derivatives, the raw events.tsv with the same
    /// sub/ses/task/run entities, the confounds and brain mask beside the BOLD file, t_r and slice timing from the
    /// sidecars.</summary>
    /// <exception cref="T:FmriGlm.Core.GlmInputException">No BOLD image for the task/space (naming the tasks and
    /// spaces present), a run without events, a missing or conflicting RepetitionTime.</exception>
    let findRuns (bidsDir: string) (query: BidsQuery) (subject: string) : BidsRun list =
        let derivatives = derivativesFolder bidsDir query.Derivatives
        let subjectDir = Path.Combine(derivatives, $"sub-{subject}")

        if not (Directory.Exists subjectDir) then
            raise (GlmInputException(subjectDir, $"no folder for subject '{subject}' in the derivatives {derivatives}: check --participant-label and --derivatives"))

        let bolds =
            files subjectDir "*_bold.nii*"
            |> Array.filter (fun f -> has "desc" "preproc" (entities f) && suffix f = "bold")

        let wanted =
            bolds
            |> Array.filter (fun f ->
                let e = entities f
                has "task" query.Task e && has "space" query.Space e && query.ImgFilters |> List.forall (fun (k, v) -> has k v e))

        if wanted.Length = 0 then
            let seen key = bolds |> Array.choose (entities >> entity key) |> Array.distinct |> Array.sort
            let list (xs: string[]) = if xs.Length = 0 then "none" else String.Join(", ", xs)

            let tasks, spaces = list (seen "task"), list (seen "space")

            let problem =
                if not (seen "task" |> Array.contains query.Task) then
                    $"no preprocessed BOLD image of task '{query.Task}' (tasks found: {tasks}): check --task"
                elif not (seen "space" |> Array.contains query.Space) then
                    $"no preprocessed BOLD image in space '{query.Space}' (spaces found: {spaces}): check --space"
                else
                    $"no preprocessed BOLD image of task '{query.Task}' in space '{query.Space}' passes the filters {query.ImgFilters}: check --img-filters"

            raise (GlmInputException(subjectDir, problem))

        let rawSubject = Path.Combine(bidsDir, $"sub-{subject}")
        let events = files rawSubject "*_events.tsv"

        [ for bold in wanted ->
              let e = entities bold
              let keys = [ "sub"; "ses"; "task"; "acq"; "run" ]

              let matches (other: string) =
                  let o = entities other
                  keys |> List.forall (fun k -> entity k o = entity k e)

              let eventsFile =
                  match events |> Array.filter matches with
                  | [| one |] -> one
                  | [||] ->
                      raise (GlmInputException(bold, $"no events.tsv for this run under {rawSubject} (expected a file named like sub-{subject}_task-{query.Task}[_run-N]_events.tsv)"))
                  | many -> raise (GlmInputException(bold, $"""several events files match this run: {String.Join(", ", many)}"""))

              let folder = Path.GetDirectoryName bold
              let before = Path.GetFileName(bold).Split("_space-")[0]

              let sibling (suffixPart: string) (spaceToo: bool) =
                  let name = if spaceToo then $"{before}_space-{query.Space}_{suffixPart}" else $"{before}_{suffixPart}"
                  let path = Path.Combine(folder, name)
                  if File.Exists path then Some path else None

              let confounds = sibling "desc-confounds_timeseries.tsv" false |> Option.orElse (sibling "desc-confounds_regressors.tsv" false)
              let mask = sibling "desc-brain_mask.nii.gz" true |> Option.orElse (sibling "desc-brain_mask.nii" true)
              let derivedJson = readJson (Path.ChangeExtension(bold.Replace(".nii.gz", ".nii"), ".json"))
              let raw = rawSidecars bidsDir e
              let fromRaw key = raw |> Array.rev |> Array.tryPick (fun j -> number (Some j) key)

              let tr =
                  match number derivedJson "RepetitionTime", fromRaw "RepetitionTime" with
                  | Some d, Some r when abs (d - r) > 1e-6 ->
                      raise (GlmInputException(bold, $"RepetitionTime {d} in the derivatives sidecar differs from {r} in the raw sidecar"))
                  | Some d, _ -> d
                  | None, Some r -> r
                  | None, None ->
                      raise (GlmInputException(bold, "no RepetitionTime in its JSON sidecar nor in the raw dataset's task-*_bold.json: add it"))

              if not (tr > 0.0) then
                  raise (GlmInputException(bold, $"RepetitionTime {tr} is not positive"))

              let sliceTimeRef =
                  match number derivedJson "StartTime" with
                  | Some start -> start / tr
                  | None -> 0.0

              let sliceTiming = raw |> Array.rev |> Array.map (fun j -> numbers (Some j) "SliceTiming") |> Array.tryFind (fun a -> a.Length > 0) |> Option.defaultValue [||]

              { Entities = e
                Bold = bold
                Events = eventsFile
                Confounds = confounds
                Mask = mask
                TR = tr
                SliceTimeRef = sliceTimeRef
                SliceTiming = sliceTiming } ]

    /// <summary>Subject labels of the derivatives (folders sub-*), sorted; or the requested ones, checked.</summary>
    /// <exception cref="T:FmriGlm.Core.GlmInputException">The folder holds no subject, or a requested label is absent.</exception>
    let subjects (bidsDir: string) (query: BidsQuery) : string list =
        let derivatives = derivativesFolder bidsDir query.Derivatives

        let present =
            if Directory.Exists derivatives then
                Directory.GetDirectories(derivatives, "sub-*") |> Array.map (fun d -> Path.GetFileName(d).Substring 4) |> Array.sort
            else
                [||]

        if present.Length = 0 then
            raise (GlmInputException(derivatives, "holds no sub-* folder: give the fMRIPrep outputs with --derivatives"))

        match query.Subjects with
        | [] -> List.ofArray present
        | wanted ->
            for w in wanted do
                if not (present |> Array.contains w) then
                    raise (GlmInputException($"--participant-label {w}", $"""no sub-{w} in {derivatives} (subjects: {String.Join(", ", present)})"""))

            wanted

    /// <summary>Confound columns of a named strategy over a confounds table's header: "motion6" (trans_*, rot_*),
    /// "motion12" (+ derivative1), "motion24" (+ power2 and derivative1_power2), optionally "+csf", "+wm"
    /// (white_matter), "+gs" (global_signal): "motion24+csf+wm". Anything else is a comma-separated column list.</summary>
    /// <exception cref="T:FmriGlm.Core.GlmInputException">A strategy part is unknown, or a column is not in the table.</exception>
    let confoundColumns (source: string) (header: string[]) (strategy: string) : string[] =
        let motion = [ "trans_x"; "trans_y"; "trans_z"; "rot_x"; "rot_y"; "rot_z" ]
        let parts = strategy.Split('+', StringSplitOptions.RemoveEmptyEntries ||| StringSplitOptions.TrimEntries)

        let known = [ "motion6"; "motion12"; "motion24"; "csf"; "wm"; "gs" ]
        let named = parts |> Array.forall (fun p -> List.contains p known)

        // "motion6+framewise": a strategy with a part we do not know, not a column list
        if not named && strategy.Contains '+' then
            let unknown = parts |> Array.filter (fun p -> not (List.contains p known))
            raise (GlmInputException($"--confounds {strategy}", $"""unknown strategy part '{unknown[0]}': use motion6, motion12 or motion24 with +csf, +wm, +gs, or a comma-separated list of columns of {source}"""))

        let columns =
            if named then
                parts
                |> Array.collect (fun p ->
                    match p with
                    | "motion6" -> Array.ofList motion
                    | "motion12" -> motion |> List.collect (fun m -> [ m; m + "_derivative1" ]) |> Array.ofList
                    | "motion24" ->
                        motion
                        |> List.collect (fun m -> [ m; m + "_derivative1"; m + "_power2"; m + "_derivative1_power2" ])
                        |> Array.ofList
                    | "csf" -> [| "csf" |]
                    | "wm" -> [| "white_matter" |]
                    | _ -> [| "global_signal" |])
            else
                strategy.Split(',', StringSplitOptions.RemoveEmptyEntries ||| StringSplitOptions.TrimEntries)

        for c in columns do
            if not (header |> Array.contains c) then
                raise (GlmInputException(source, $"""no confound column '{c}' (strategy '{strategy}'; columns: {String.Join(", ", header)})"""))

        columns

    /// <summary>Reads the selected confounds, n/a (fMRIPrep's first row of derivatives) replaced by 0 as nilearn's
    /// load_confounds fills them.</summary>
    let readConfounds (path: string) (strategy: string) : string[] * float[,] =
        let header = (File.ReadLines path |> Seq.head).Split('\t')
        let columns = confoundColumns path header strategy
        let names, values = Tables.readConfounds path (Some columns)
        names, values |> Array2D.map (fun x -> if Double.IsNaN x then 0.0 else x)

    /// <summary>nilearn's save_glm_to_bids prefix of a subject: "sub-01_task-T_space-S".</summary>
    let participantPrefix (subject: string) (task: string) (space: string) = $"sub-{subject}_task-{task}_space-{space}"

    /// <summary>Name of a contrast's statistic map: "{prefix}_contrast-{label}_stat-{stat}_statmap.nii.gz", stat one
    /// of effect, variance, t, z, p (nilearn save_glm_to_bids).</summary>
    let statMapName (prefix: string) (contrast: string) (stat: string) =
        $"{prefix}_contrast-{FirstLevel.contrastFileName contrast}_stat-{stat}_statmap.nii.gz"

    /// <summary>As <c>statMapName</c> for a contrast already cleaned into a label ("facesMinusHouses").</summary>
    let labelledMapName (prefix: string) (label: string) (stat: string) =
        $"{prefix}_contrast-{label}_stat-{stat}_statmap.nii.gz"

    /// <summary>Writes text atomically: a uniquely named temporary beside the target, renamed over it, so two
    /// processes never see a half-written file.</summary>
    let writeTextAtomic (path: string) (text: string) = Files.writeTextAtomic path text

    /// <summary>A JSON number as invariant text.</summary>
    let json (x: float) = x.ToString("R", CultureInfo.InvariantCulture)
