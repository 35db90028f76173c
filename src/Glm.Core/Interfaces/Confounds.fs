namespace FmriGlm.Core

open System
open System.Globalization
open System.IO
open System.Text

type ConfoundComponent =
    | Motion
    | HighPass
    | WmCsf
    | GlobalSignal
    | CompCor
    | IcaAroma
    | Scrub
    | NonSteadyState

type ConfoundExpansion =
    | Basic
    | Power2
    | Derivatives
    | Full

type CompCorMethod =
    | AnatCombined
    | AnatSeparated
    | Temporal
    | TemporalAnatCombined
    | TemporalAnatSeparated

type CompCorCount =
    | AllComponents
    | FirstComponents of count: int

type IcaAromaMode =
    | AromaFull
    | AromaBasic

type ConfoundsOptions =
    { Strategy: ConfoundComponent list
      Motion: ConfoundExpansion
      Scrub: int
      FdThreshold: float
      StdDvarsThreshold: float
      WmCsf: ConfoundExpansion
      GlobalSignal: ConfoundExpansion
      Compcor: CompCorMethod
      NCompcor: CompCorCount
      IcaAroma: IcaAromaMode
      Demean: bool }

type DenoiseStrategy =
    | SimpleStrategy
    | ScrubbingStrategy
    | CompCorStrategy
    | IcaAromaStrategy

type DenoiseOverrides =
    { Motion: ConfoundExpansion option
      WmCsf: ConfoundExpansion option
      GlobalSignal: ConfoundExpansion option
      Scrub: int option
      FdThreshold: float option
      StdDvarsThreshold: float option
      Compcor: CompCorMethod option
      NCompcor: CompCorCount option
      IcaAroma: IcaAromaMode option
      Demean: bool option }

[<NoEquality; NoComparison>]
type LoadedConfounds =
    { Columns: string[]
      Values: float[,]
      SampleMask: int[] option
      File: string
      Warnings: string list }

module Confounds =

    let defaults: ConfoundsOptions =
        { Strategy = [ Motion; HighPass; WmCsf ]
          Motion = Full
          Scrub = 5
          FdThreshold = 0.5
          StdDvarsThreshold = 1.5
          WmCsf = Basic
          GlobalSignal = Basic
          Compcor = AnatCombined
          NCompcor = AllComponents
          IcaAroma = AromaFull
          Demean = true }

    let noOverrides: DenoiseOverrides =
        { Motion = None
          WmCsf = None
          GlobalSignal = None
          Scrub = None
          FdThreshold = None
          StdDvarsThreshold = None
          Compcor = None
          NCompcor = None
          IcaAroma = None
          Demean = None }

    // ---- names ----------------------------------------------------------------------------------------------

    let private componentNames =
        [ Motion, "motion"
          HighPass, "high_pass"
          WmCsf, "wm_csf"
          GlobalSignal, "global_signal"
          CompCor, "compcor"
          IcaAroma, "ica_aroma"
          Scrub, "scrub"
          NonSteadyState, "non_steady_state" ]

    let componentName (c: ConfoundComponent) = componentNames |> List.find (fst >> (=) c) |> snd

    let private parseNamed (input: string) (what: string) (table: ('a * string) list) (value: string) : 'a =
        match table |> List.tryFind (snd >> (=) (value.Trim())) with
        | Some(v, _) -> v
        | None ->
            let allowed = String.Join(", ", table |> List.map snd)
            raise (GlmInputException(input, $"'{value}' is not a supported {what} (use {allowed})"))

    let parseComponent (name: string) =
        parseNamed "strategy" "type of confounds" componentNames name

    let private expansionNames =
        [ Basic, "basic"; Power2, "power2"; Derivatives, "derivatives"; Full, "full" ]

    let parseExpansion (option: string) (value: string) =
        parseNamed option "expansion" expansionNames value

    let parseCompCor (value: string) =
        parseNamed
            "compcor"
            "CompCor method"
            [ AnatCombined, "anat_combined"
              AnatSeparated, "anat_separated"
              Temporal, "temporal"
              TemporalAnatCombined, "temporal_anat_combined"
              TemporalAnatSeparated, "temporal_anat_separated" ]
            value

    let parseCompCorCount (value: string) =
        match value.Trim() with
        | "all" -> AllComponents
        | s ->
            match Int32.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture) with
            | true, n -> FirstComponents n
            | _ -> raise (GlmInputException("n_compcor", $"'{value}' is neither \"all\" nor a non-negative integer"))

    let parseIcaAroma (value: string) =
        parseNamed "ica_aroma" "ICA-AROMA mode" [ AromaFull, "full"; AromaBasic, "basic" ] value

    let parseDenoiseStrategy (value: string) =
        parseNamed
            "denoise_strategy"
            "preset strategy"
            [ SimpleStrategy, "simple"
              ScrubbingStrategy, "scrubbing"
              CompCorStrategy, "compcor"
              IcaAromaStrategy, "ica_aroma" ]
            value

    let private pyList (items: string seq) =
        "[" + String.Join(", ", items |> Seq.map (fun s -> $"'{s}'")) + "]"

    let findConfoundsFile (boldPath: string) = ConfoundsFiles.findConfoundsFile boldPath

    // ---- selecting columns ----------------------------------------------------------------------------------

    /// What a component needs that the table lacks: single columns, or the whole component (nilearn's "keywords").
    type private Missing =
        { Columns: string list
          Keywords: string list }

    let private expand (names: string list) (expansion: ConfoundExpansion) =
        let suffixes =
            match expansion with
            | Basic -> []
            | Power2 -> [ "power2" ]
            | Derivatives -> [ "derivative1" ]
            | Full -> [ "derivative1"; "power2"; "derivative1_power2" ]

        names @ [ for n in names do
                      for s in suffixes -> $"{n}_{s}" ]

    /// All named columns, or the component as missing: nilearn's check_params_confounds (none found → keyword,
    /// some found → those columns).
    let private required (table: ConfoundsFiles.Table) (keyword: string) (names: string list) : Result<string list, Missing> =
        let absent = names |> List.filter (fun n -> not (Array.contains n table.Names))

        if absent.IsEmpty then Ok names
        elif absent.Length = names.Length then Error { Columns = []; Keywords = [ keyword ] }
        else Error { Columns = absent; Keywords = [] }

    let private containing (table: ConfoundsFiles.Table) (keyword: string) =
        table.Names |> Array.filter (fun n -> n.Contains(keyword, StringComparison.Ordinal)) |> List.ofArray

    /// nilearn's find_compcor: per prefix, as many names as the sidecar has keys containing "<prefix>_comp_cor",
    /// numbered from 00; aCompCor ones filtered by the sidecar's Mask, each mask cut to n_compcor.
    let private compcorColumns (sidecar: (string * string option) list) (method: CompCorMethod) (count: CompCorCount) =
        let prefixes, masks =
            match method with
            | AnatCombined -> [ "a" ], [ "combined" ]
            | AnatSeparated -> [ "a"; "w"; "c" ], [ "WM"; "CSF" ]
            | Temporal -> [ "t" ], []
            | TemporalAnatCombined -> [ "t"; "a" ], [ "combined" ]
            | TemporalAnatSeparated -> [ "t"; "a"; "w"; "c" ], [ "WM"; "CSF" ]

        let first (names: string list) =
            match count with
            | FirstComponents n when n < names.Length -> List.truncate n names
            | _ -> names

        let maskOf name =
            sidecar |> List.tryFind (fst >> (=) name) |> Option.bind snd

        [ for prefix in prefixes do
              let n =
                  sidecar |> List.filter (fun (k, _) -> k.Contains($"{prefix}_comp_cor", StringComparison.Ordinal)) |> List.length

              let names = List.init n (fun i -> $"{prefix}_comp_cor_{i:D2}")

              if prefix = "a" then
                  for mask in masks do
                      // nilearn tests `Mask in mask`: a substring test on the mask's name.
                      yield! names |> List.filter (fun c -> maskOf c |> Option.exists (fun m -> mask.Contains(m, StringComparison.Ordinal))) |> first
              else
                  yield! first names ]

    /// The columns of one component, or what is missing for it.
    let private componentColumns
        (table: ConfoundsFiles.Table)
        (sidecar: (string * string option) list)
        (options: ConfoundsOptions)
        (c: ConfoundComponent)
        : Result<string list, Missing> =
        match c with
        | Motion -> required table "motion" (expand [ "trans_x"; "trans_y"; "trans_z"; "rot_x"; "rot_y"; "rot_z" ] options.Motion)
        | WmCsf -> required table "wm_csf" (expand [ "csf"; "white_matter" ] options.WmCsf)
        | GlobalSignal -> required table "global_signal" (expand [ "global_signal" ] options.GlobalSignal)
        | CompCor -> required table "compcor" (compcorColumns sidecar options.Compcor options.NCompcor)
        | HighPass -> Ok(containing table "cosine")
        | IcaAroma ->
            match options.IcaAroma with
            | AromaFull -> Ok []
            | AromaBasic ->
                match containing table "aroma" with
                | [] -> Error { Columns = []; Keywords = [ "ica_aroma" ] }
                | names -> Ok names
        // Outlier columns are not confounds: they only build the sample mask.
        | Scrub
        | NonSteadyState -> Ok []

    // ---- the sample mask ------------------------------------------------------------------------------------

    /// nilearn's optimize_scrub: flags the volumes of kept segments shorter than `scrub` (first, last, between).
    let private removeShortSegments (outliers: int[]) (nScans: int) (scrub: int) : int[] =
        let flagged = Collections.Generic.SortedSet<int>(outliers)

        if outliers[0] < scrub then
            for i in 0 .. outliers[0] - 1 do
                flagged.Add i |> ignore

        let last = Seq.max outliers

        if nScans - (last + 1) < scrub then
            for i in last .. nScans - 1 do
                flagged.Add i |> ignore

        let sorted = Array.ofSeq flagged

        for k in 0 .. sorted.Length - 2 do
            let gap = sorted[k + 1] - sorted[k]

            if gap > 1 && gap < scrub + 1 then
                for i in sorted[k] + 1 .. sorted[k + 1] - 1 do
                    flagged.Add i |> ignore

        Array.ofSeq flagged

    let scrubOutliers (framewiseDisplacement: float[]) (stdDvars: float[]) fdThreshold stdDvarsThreshold (scrub: int) =
        let nScans = framewiseDisplacement.Length

        let outliers =
            Array.init nScans id
            |> Array.filter (fun i -> framewiseDisplacement[i] > fdThreshold || stdDvars[i] > stdDvarsThreshold)

        if scrub > 0 && outliers.Length > 0 then
            removeShortSegments outliers nScans scrub
        else
            outliers

    /// Kept volumes: those no outlier column flags (nilearn sums the one-hot columns, NaN counting as 0); None when
    /// there is no outlier column at all.
    let private sampleMask (nScans: int) (outlierColumns: float[] list) : int[] option =
        if outlierColumns.IsEmpty then
            None
        else
            Array.init nScans id
            |> Array.filter (fun i ->
                outlierColumns |> List.sumBy (fun col -> if Double.IsNaN col[i] then 0.0 else col[i]) = 0.0)
            |> Some

    // ---- the output -----------------------------------------------------------------------------------------

    /// Derivatives are NaN on the first row: nilearn copies the second row's value there (only there).
    let private fillFirstRow (values: float[,]) =
        if Array2D.length1 values > 1 then
            for j in 0 .. Array2D.length2 values - 1 do
                if Double.IsNaN values[0, j] then
                    values[0, j] <- values[1, j]

    let private nanMean (xs: float seq) =
        let finite = xs |> Seq.filter (Double.IsNaN >> not) |> Array.ofSeq
        if finite.Length = 0 then nan else Array.average finite

    /// nilearn's _demean_confounds: the mean over the kept volumes (pandas, NaN skipped), or over all volumes with
    /// sklearn's scale(with_std=False), which subtracts the mean of the result again when it is not within 1e-8.
    let private demean (values: float[,]) (kept: int[] option) =
        let n, m = Array2D.length1 values, Array2D.length2 values
        let column j = Seq.init n (fun i -> values[i, j])

        let subtract (means: float[]) =
            for i in 0 .. n - 1 do
                for j in 0 .. m - 1 do
                    values[i, j] <- values[i, j] - means[j]

        match kept with
        | Some rows -> subtract (Array.init m (fun j -> rows |> Seq.map (fun i -> values[i, j]) |> nanMean))
        | None ->
            subtract (Array.init m (column >> nanMean))
            let residual = Array.init m (column >> nanMean)

            if residual |> Array.exists (fun r -> not (abs r <= 1e-8)) then
                subtract residual

    let private checkStrategy (options: ConfoundsOptions) : string list =
        if List.contains CompCor options.Strategy && not (List.contains HighPass options.Strategy) then
            let current = pyList (options.Strategy |> List.map componentName)

            raise (GlmInputException("strategy", $"when using compcor, 'high_pass' must be included in strategy; current strategy: {current}"))

        if options.Scrub < 0 then
            raise (GlmInputException("scrub", $"must be >= 0, got {options.Scrub}"))

        match options.NCompcor with
        | FirstComponents n when n < 0 -> raise (GlmInputException("n_compcor", $"must be >= 0 or \"all\", got {n}"))
        | _ -> ()

        [ if options.Strategy.IsEmpty then
              "strategy is empty: no confound is returned."
          if List.contains NonSteadyState options.Strategy then
              "Non-steady state volumes are always detected. It doesn't need to be supplied as part of the strategy. Supplying non_steady_state in strategy will not have additional effect." ]

    let private missingError (file: string) (missing: Missing list) =
        let columns = missing |> List.collect _.Columns
        let keywords = missing |> List.collect _.Keywords

        raise (
            GlmInputException(
                file,
                $"the strategy needs what the table lacks: columns {pyList columns}, components {pyList keywords}. You may want to try a different denoising strategy."
            )
        )

    let private scrubMask (table: ConfoundsFiles.Table) (options: ConfoundsOptions) : float[] option =
        let needed = [ "framewise_displacement"; "std_dvars" ]

        match needed |> List.filter (fun c -> not (Array.contains c table.Names)) with
        | _ when not (List.contains Scrub options.Strategy) -> None
        | [] ->
            let flagged =
                scrubOutliers
                    (table.Column "framewise_displacement")
                    (table.Column "std_dvars")
                    options.FdThreshold
                    options.StdDvarsThreshold
                    options.Scrub

            if flagged.Length = 0 then
                None
            else
                let column = Array.zeroCreate (Array2D.length1 table.Values)

                for i in flagged do
                    column[i] <- 1.0

                Some column
        | absent -> missingError table.File [ { Columns = absent; Keywords = [] } ]

    let private select (table: ConfoundsFiles.Table) (sidecar: (string * string option) list) (options: ConfoundsOptions) =
        let results = options.Strategy |> List.map (componentColumns table sidecar options)

        match results |> List.choose (function Error m -> Some m | Ok _ -> None) with
        | [] ->
            results
            |> List.collect (function Ok names -> names | Error _ -> [])
            |> List.distinct
            |> List.filter (fun n -> not (n.Contains "motion_outlier" || n.Contains "non_steady_state"))
            |> List.sortWith (fun a b -> String.CompareOrdinal(a, b))
        | missing -> missingError table.File missing

    let load (boldPath: string) (options: ConfoundsOptions) : LoadedConfounds =
        let warnings = checkStrategy options
        let usesStrategy c = List.contains c options.Strategy
        ConfoundsFiles.checkImageName boldPath (usesStrategy IcaAroma && options.IcaAroma = AromaFull)
        let file = ConfoundsFiles.findConfoundsFile boldPath
        let table = ConfoundsFiles.readTable file
        let sidecarPath = Path.ChangeExtension(file, ".json")
        let anatomical = usesStrategy CompCor && options.Compcor <> Temporal

        let sidecar =
            match ConfoundsFiles.readSidecar sidecarPath, anatomical with
            | Some entries, _ -> entries
            | None, false -> []
            | None, true ->
                raise (GlmInputException(sidecarPath, "not found: anatomical CompCor needs the JSON sidecar of the confounds (fMRIPrep >= 1.4.0)"))

        let columns = select table sidecar options
        let n = Array2D.length1 table.Values

        let outliers =
            (containing table "non_steady_state" |> List.map table.Column)
            @ (scrubMask table options |> Option.toList)

        let kept = sampleMask n outliers
        let values = Array2D.init n columns.Length (fun i j -> table.Values[i, Array.IndexOf(table.Names, columns[j])])

        if columns.Length > 0 then
            fillFirstRow values

            if options.Demean then
                demean values kept

        let allScrubbed =
            match kept with
            | Some [||] -> [ "All volumes were marked as motion outliers. This would lead to all volumes in the time series to be scrubbed." ]
            | _ -> []

        { Columns = Array.ofList columns
          Values = values
          SampleMask = kept
          File = file
          Warnings = warnings @ allScrubbed }

    // ---- presets --------------------------------------------------------------------------------------------

    let presetOptions (strategy: DenoiseStrategy) (overrides: DenoiseOverrides) : ConfoundsOptions * string list =
        let name, preset, accepted =
            match strategy with
            | SimpleStrategy ->
                "simple",
                { defaults with Strategy = [ HighPass; Motion; WmCsf ]; Motion = Full; WmCsf = Basic },
                [ "motion"; "wm_csf"; "global_signal"; "demean" ]
            | ScrubbingStrategy ->
                "scrubbing",
                { defaults with
                    Strategy = [ HighPass; Motion; WmCsf; Scrub ]
                    Motion = Full
                    WmCsf = Full
                    Scrub = 5
                    FdThreshold = 0.5
                    StdDvarsThreshold = 1.5 },
                [ "motion"; "wm_csf"; "scrub"; "fd_threshold"; "std_dvars_threshold"; "global_signal"; "demean" ]
            | CompCorStrategy ->
                "compcor",
                { defaults with
                    Strategy = [ HighPass; Motion; CompCor ]
                    Motion = Full
                    NCompcor = AllComponents
                    Compcor = AnatCombined },
                [ "motion"; "n_compcor"; "compcor"; "global_signal"; "demean" ]
            | IcaAromaStrategy ->
                "ica_aroma",
                { defaults with Strategy = [ HighPass; WmCsf; IcaAroma ]; WmCsf = Basic; IcaAroma = AromaFull },
                [ "wm_csf"; "global_signal"; "demean" ]

        let given =
            [ "motion", overrides.Motion.IsSome
              "wm_csf", overrides.WmCsf.IsSome
              "global_signal", overrides.GlobalSignal.IsSome
              "scrub", overrides.Scrub.IsSome
              "fd_threshold", overrides.FdThreshold.IsSome
              "std_dvars_threshold", overrides.StdDvarsThreshold.IsSome
              "compcor", overrides.Compcor.IsSome
              "n_compcor", overrides.NCompcor.IsSome
              "ica_aroma", overrides.IcaAroma.IsSome
              "demean", overrides.Demean.IsSome ]
            |> List.filter snd
            |> List.map fst

        let accepts key = List.contains key accepted
        let pick key (value: 'a option) (current: 'a) = if accepts key then defaultArg value current else current

        let options =
            { preset with
                Motion = pick "motion" overrides.Motion preset.Motion
                WmCsf = pick "wm_csf" overrides.WmCsf preset.WmCsf
                GlobalSignal = pick "global_signal" overrides.GlobalSignal preset.GlobalSignal
                Strategy = preset.Strategy @ (if overrides.GlobalSignal.IsSome then [ GlobalSignal ] else [])
                Scrub = pick "scrub" overrides.Scrub preset.Scrub
                FdThreshold = pick "fd_threshold" overrides.FdThreshold preset.FdThreshold
                StdDvarsThreshold = pick "std_dvars_threshold" overrides.StdDvarsThreshold preset.StdDvarsThreshold
                Compcor = pick "compcor" overrides.Compcor preset.Compcor
                NCompcor = pick "n_compcor" overrides.NCompcor preset.NCompcor
                Demean = pick "demean" overrides.Demean preset.Demean }

        let notNeeded = given |> List.filter (accepts >> not)

        options,
        [ if not notNeeded.IsEmpty then
              $"The following parameters are not needed for the selected strategy '{name}': {pyList notNeeded}; parameters accepted: {pyList accepted}" ]

    let loadStrategy (boldPath: string) (strategy: DenoiseStrategy) (overrides: DenoiseOverrides) : LoadedConfounds =
        let options, warnings = presetOptions strategy overrides
        let loaded = load boldPath options
        { loaded with Warnings = warnings @ loaded.Warnings }

    // ---- consumers ------------------------------------------------------------------------------------------

    let runInput (bold: BoldSource) (events: Events option) (confounds: LoadedConfounds) : RunInput =
        { Bold = bold
          Events = events
          Confounds = Some(confounds.Columns, confounds.Values)
          DesignMatrix = None
          SampleMask = confounds.SampleMask }

    let toTsv (confounds: LoadedConfounds) : string =
        let sb = StringBuilder()
        sb.Append(String.Join('\t', confounds.Columns)).Append('\n') |> ignore

        for i in 0 .. Array2D.length1 confounds.Values - 1 do
            let cells =
                Array.init confounds.Columns.Length (fun j ->
                    let v = confounds.Values[i, j]
                    if Double.IsNaN v then "n/a" else v.ToString("R", CultureInfo.InvariantCulture))

            sb.Append(String.Join('\t', cells)).Append('\n') |> ignore

        sb.ToString()

    let sampleMaskText (confounds: LoadedConfounds) : string =
        match confounds.SampleMask with
        | None -> ""
        | Some kept -> String.Join("", kept |> Array.map (fun i -> $"{i}\n"))
