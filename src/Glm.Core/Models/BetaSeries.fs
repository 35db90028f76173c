namespace FmriGlm.Core

open System
open System.IO

/// <summary>How single-trial betas are estimated (doc: BetaSeries.fsi).</summary>
type BetaSeriesMethod =
    | Lsa
    | Lss

/// <summary>One trial of a beta series (doc: BetaSeries.fsi).</summary>
type BetaSeriesTrial =
    { Condition: string
      Onset: float
      Duration: float
      Run: int
      Index: int }

/// <summary>Single-trial betas over the masked voxels (doc: BetaSeries.fsi).</summary>
[<NoEquality; NoComparison>]
type BetaSeriesResult =
    { Method: BetaSeriesMethod
      Shape: GridShape
      Affine: float[,]
      Mask: bool[]
      MaskedIndices: int[]
      Conditions: string[]
      Trials: BetaSeriesTrial[]
      Betas: float[][]
      Warnings: string list }

/// LSA and LSS of first-level runs (doc: BetaSeries.fsi).
module BetaSeries =

    let trialName (condition: string) (number: int) = $"{condition}__{number:D3}"

    /// One run's paradigm split into trials: per condition, its events' indices in onset order.
    type private RunTrials =
        { Events: Events
          /// per condition (as the result's Conditions), indices into Events in onset order
          ByCondition: int[][]
          /// the events with one condition per trial (trialName)
          TrialEvents: Events
          Scans: int
          Kept: int[] }

    let private glmOptions (options: FirstLevelOptions) =
        { GlmOptions.defaults with
            NoiseModel = options.NoiseModel
            Bins = options.Bins
            RandomState = options.RandomState
            Threads = max 1 options.Threads }

    let private checkOptions (options: FirstLevelOptions) =
        match options.NoiseModel with
        | Ols
        | Ar 1 -> ()
        | m ->
            raise (
                GlmInputException(
                    "noise_model",
                    $"beta series support ols and ar1, not {Regression.noiseModelName m}"
                )
            )

        if (Hrf.regressorNames "trial" options.HrfModel).Length <> 1 then
            raise (
                GlmInputException(
                    "hrf_model",
                    $"beta series need one regressor per trial; {Hrf.name options.HrfModel} gives several"
                )
            )

        match options.TR with
        | Some tr when tr > 0.0 && Double.IsFinite tr -> tr
        | Some tr -> raise (GlmInputException("t_r", $"must be a positive number of seconds, not {tr}"))
        | None -> raise (GlmInputException("t_r", "not given: it is needed to compute the designs from events"))

    let private conditionsOf (runs: RunInput[]) =
        let all = runs |> Array.collect (fun r -> r.Events.Value.TrialTypes)

        DesignMatrix.conditions
            { Onsets = Array.zeroCreate all.Length
              Durations = Array.zeroCreate all.Length
              TrialTypes = all
              Modulations = Array.create all.Length 1.0 }

    /// Splits each run's events into trials, after checking that every event lies within the run.
    let private splitRuns (options: FirstLevelOptions) (tr: float) (runs: RunInput[]) =
        runs
        |> Array.iteri (fun i run ->
            if run.DesignMatrix.IsSome then
                raise (
                    GlmInputException(
                        $"design matrix of run {i + 1}",
                        "beta series build their designs from events; give events instead"
                    )
                )

            match run.Events with
            | None -> raise (GlmInputException($"events of run {i + 1}", "beta series need the run's events"))
            | Some e -> DesignMatrix.validate $"events of run {i + 1}" e)

        let conditions = conditionsOf runs

        let split =
            runs
            |> Array.mapi (fun i run ->
                let events = run.Events.Value
                let _, _, scans, _ = RunReading.geometry i run.Bold
                let frameTimes = DesignMatrix.frameTimes scans tr options.SliceTimeRef
                let runEnd = frameTimes[scans - 1] + tr
                let modelledStart = frameTimes[0] + options.MinOnset

                for e in 0 .. events.Onsets.Length - 1 do
                    let onset, duration = events.Onsets[e], events.Durations[e]

                    if onset >= runEnd then
                        raise (
                            GlmInputException(
                                $"events of run {i + 1}, event {e + 1} ('{events.TrialTypes[e]}')",
                                $"onset {onset} s is after the run's last scan (the run ends at {runEnd} s)"
                            )
                        )

                    if onset + duration < modelledStart then
                        raise (
                            GlmInputException(
                                $"events of run {i + 1}, event {e + 1} ('{events.TrialTypes[e]}')",
                                $"ends at {onset + duration} s, before the modelled start {modelledStart} s (min_onset)"
                            )
                        )

                let byCondition =
                    conditions
                    |> Array.map (fun c ->
                        Array.init events.Onsets.Length id
                        |> Array.filter (fun e -> events.TrialTypes[e] = c)
                        |> Array.sortBy (fun e -> struct (events.Onsets[e], e)))

                let names = Array.copy events.TrialTypes

                byCondition
                |> Array.iteri (fun c indices ->
                    indices
                    |> Array.iteri (fun k e ->
                        let name = trialName conditions[c] (k + 1)

                        if Array.contains name conditions then
                            raise (
                                GlmInputException(
                                    $"events of run {i + 1}",
                                    $"the trial name '{name}' is also a condition; rename the condition"
                                )
                            )

                        names[e] <- name))

                let kept =
                    match run.SampleMask with
                    | Some k ->
                        FirstLevelFitting.checkSampleMask $"sample mask of run {i + 1}" scans k
                        k
                    | None -> Array.init scans id

                { Events = events
                  ByCondition = byCondition
                  TrialEvents = { events with TrialTypes = names }
                  Scans = scans
                  Kept = kept })

        conditions, split

    let private trialsOf (conditions: string[]) (split: RunTrials[]) =
        [| for c in 0 .. conditions.Length - 1 do
               let mutable index = 0

               for run in 0 .. split.Length - 1 do
                   let r = split[run]

                   for e in r.ByCondition[c] do
                       yield
                           { Condition = conditions[c]
                             Onset = r.Events.Onsets[e]
                             Duration = r.Events.Durations[e]
                             Run = run
                             Index = index }

                       index <- index + 1 |]

    let private columnIndex (design: DesignMatrix) (name: string) =
        Array.IndexOf(design.ColumnNames, name)

    let lsa (options: FirstLevelOptions) (runs: RunInput list) : BetaSeriesResult =
        if List.isEmpty runs then
            raise (GlmInputException("runs", "no run given"))

        let tr = checkOptions options
        let runs = Array.ofList runs
        let conditions, split = splitRuns options tr runs

        let fit =
            FirstLevelFitting.fit
                options
                (runs
                 |> Array.mapi (fun i r ->
                     { r with
                         Events = Some split[i].TrialEvents })
                 |> List.ofArray)

        let voxels = fit.MaskedIndices.Length

        let betas =
            conditions
            |> Array.mapi (fun c condition ->
                [| for run in 0 .. split.Length - 1 do
                       let glm = fit.Runs[run].Glm
                       let design = fit.Runs[run].Design

                       for k in 0 .. split[run].ByCondition[c].Length - 1 do
                           let j = columnIndex design (trialName condition (k + 1))

                           for v in 0 .. voxels - 1 do
                               yield glm.Betas[v * glm.Regressors + j] |])

        { Method = Lsa
          Shape = fit.Shape
          Affine = fit.Affine
          Mask = fit.Mask
          MaskedIndices = fit.MaskedIndices
          Conditions = conditions
          Trials = trialsOf conditions split
          Betas = betas
          Warnings = fit.Warnings }

    /// The standard and trial-wise designs of a run, rows kept by its sample mask.
    let private designs (options: FirstLevelOptions) (tr: float) (run: RunInput) (i: int) (r: RunTrials) =
        let addRegs, addNames =
            match run.Confounds with
            | None -> None, None
            | Some(names, values) ->
                if Array2D.length1 values <> r.Scans then
                    raise (
                        GlmInputException(
                            $"confounds of run {i + 1}",
                            $"{Array2D.length1 values} rows for {r.Scans} scans of {RunReading.describe run.Bold i}"
                        )
                    )

                Some values, Some names

        let designOptions =
            { DesignMatrix.defaults with
                HrfModel = options.HrfModel
                DriftModel = options.DriftModel
                AddRegs = addRegs
                AddRegNames = addNames
                MinOnset = options.MinOnset }

        let frameTimes = DesignMatrix.frameTimes r.Scans tr options.SliceTimeRef
        let standard, warnings = DesignMatrix.makeFirstLevel frameTimes (Some r.Events) designOptions
        let trialWise, _ = DesignMatrix.makeFirstLevel frameTimes (Some r.TrialEvents) designOptions
        let keep = FirstLevelFitting.subsetRows r.Kept
        keep standard, keep trialWise, List.map DesignMatrix.describe warnings

    /// The masked, scaled float32 data of every run (time-major), as the first level reads them.
    let private readData (options: FirstLevelOptions) (runs: RunInput[]) (split: RunTrials[]) =
        let geometries = runs |> Array.mapi (fun i r -> RunReading.geometry i r.Bold)
        let shape, affine, _, isSingle = geometries[0]

        geometries
        |> Array.iteri (fun i (s, a, _, _) ->
            if s <> shape then
                raise (GlmInputException(RunReading.describe runs[i].Bold i, "grid differs from the first run's"))

            if not (RunReading.sameAffine a affine) then
                raise (GlmInputException(RunReading.describe runs[i].Bold i, "affine differs from the first run's")))

        let mask, warnings, firstData =
            RunReading.resolveMask options shape affine runs[0].Bold split[0].Kept isSingle

        let masked = [| for v in 0 .. mask.Length - 1 do if mask[v] then yield v |]

        if masked.Length = 0 then
            raise (GlmInputException("mask", "the mask is empty: no voxel to analyse"))

        let warnings = ResizeArray warnings

        let data =
            runs
            |> Array.mapi (fun i run ->
                let kept = split[i].Kept

                let d =
                    match firstData with
                    | Some d when i = 0 -> d
                    | _ -> RunReading.loadMasked options shape affine masked kept run.Bold

                let values = ReadOnlySpan(d, 0, masked.Length * kept.Length)

                if values.IndexOfAnyExceptInRange(Single.MinValue, Single.MaxValue) >= 0 then
                    raise (GlmInputException(RunReading.describe run.Bold i, "the masked data hold a non-finite value"))

                if RunReading.scaleTimeMajor options.SignalScaling kept.Length masked.Length d then
                    warnings.Add
                        "Mean values of 0 observed. The data have probably been centered. Scaling might not work as expected"

                d)

        shape, affine, mask, masked, data, List.ofSeq warnings

    let lss (options: FirstLevelOptions) (runs: RunInput list) : BetaSeriesResult =
        if List.isEmpty runs then
            raise (GlmInputException("runs", "no run given"))

        if options.Bins < 1 then
            raise (GlmInputException("bins", $"must be at least 1, not {options.Bins}"))

        let tr = checkOptions options
        let runs = Array.ofList runs
        let conditions, split = splitRuns options tr runs
        let built = runs |> Array.mapi (fun i run -> designs options tr run i split[i])
        let shape, affine, mask, masked, data, readWarnings = readData options runs split
        let voxels = masked.Length
        let glm = glmOptions options

        // per run and condition: trials × voxels, voxel-major
        let perRun =
            runs
            |> Array.mapi (fun i _ ->
                let standard, trialWise, _ = built[i]
                let n = split[i].Kept.Length

                if n <= standard.ColumnNames.Length + 1 then
                    raise (
                        GlmInputException(
                            RunReading.describe runs[i].Bold i,
                            $"{n} scans are too few for {standard.ColumnNames.Length + 1} design columns"
                        )
                    )

                conditions
                |> Array.mapi (fun c condition ->
                    let indices = split[i].ByCondition[c]

                    if indices.Length = 0 then
                        [||]
                    else
                        let trialColumns =
                            Array.init indices.Length (fun k -> columnIndex trialWise (trialName condition (k + 1)))

                        trialColumns
                        |> Array.iteri (fun k j ->
                            if Seq.forall (fun t -> trialWise.Values[t, j] = 0.0) (seq { 0 .. n - 1 }) then
                                let e = indices[k]

                                raise (
                                    GlmInputException(
                                        $"events of run {i + 1}, event {e + 1} ('{condition}' at {split[i].Events.Onsets[e]} s)",
                                        "its regressor is 0 over the kept scans: the trial is outside the modelled run"
                                    )
                                ))

                        let own = columnIndex standard condition

                        let nuisanceColumns =
                            Array.init standard.ColumnNames.Length id |> Array.filter (fun j -> j <> own)

                        let trials = Array2D.init n indices.Length (fun t k -> trialWise.Values[t, trialColumns[k]])

                        let nuisance =
                            Array2D.init n nuisanceColumns.Length (fun t j -> standard.Values[t, nuisanceColumns[j]])

                        BetaSeriesArrays.lssPrefix glm trials nuisance (Float32 data[i]) true voxels))

        let betas =
            conditions
            |> Array.mapi (fun c _ ->
                [| for run in 0 .. runs.Length - 1 do
                       let b = perRun[run][c]
                       let k = split[run].ByCondition[c].Length

                       for trial in 0 .. k - 1 do
                           for v in 0 .. voxels - 1 do
                               yield b[v * k + trial] |])

        { Method = Lss
          Shape = shape
          Affine = affine
          Mask = mask
          MaskedIndices = masked
          Conditions = conditions
          Trials = trialsOf conditions split
          Betas = betas
          Warnings = readWarnings @ (built |> Array.toList |> List.collect (fun (_, _, w) -> w)) }

    let fit (method: BetaSeriesMethod) (options: FirstLevelOptions) (runs: RunInput list) : BetaSeriesResult =
        match method with
        | Lsa -> lsa options runs
        | Lss -> lss options runs

    let image (result: BetaSeriesResult) (condition: string) : float[] =
        let c = Array.IndexOf(result.Conditions, condition)

        if c < 0 then
            raise (GlmInputException("condition", $"'{condition}' is not one of the beta series' conditions"))

        let voxels = result.MaskedIndices.Length
        let betas = result.Betas[c]
        let count = betas.Length / voxels
        let grid = result.Shape.Count
        let values = Array.zeroCreate (count * grid)

        for k in 0 .. count - 1 do
            for j in 0 .. voxels - 1 do
                values[k * grid + result.MaskedIndices[j]] <- betas[k * voxels + j]

        values

    let private writeTrials (path: string) (trials: BetaSeriesTrial[]) =
        let inv (x: float) = x.ToString("R", Globalization.CultureInfo.InvariantCulture)

        let lines =
            [| yield "condition\tonset\tduration\trun\tvolume_index"
               for t in trials do
                   yield $"{t.Condition}\t{inv t.Onset}\t{inv t.Duration}\t{t.Run + 1}\t{t.Index}" |]

        File.WriteAllLines(path, lines)

    let writeOutputs (directory: string) (result: BetaSeriesResult) : unit =
        for c in result.Conditions do
            if c.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0 || c = "." || c = ".." then
                raise (GlmInputException($"condition '{c}'", "cannot be used as a file name"))

            Files.requireFileName $"condition '{c}'" $"{c}_betas.nii.gz"

        // filled under a temporary name, renamed at the end; a killed run's temporary is removed by the next one
        use folder = Files.OutputFolder.Create directory

        try
            let s = result.Shape

            for c in result.Conditions do
                let values = image result c
                let count = values.Length / s.Count

                let options =
                    { Nifti.writeOptions [| int64 s.X; int64 s.Y; int64 s.Z; int64 count |] result.Affine with
                        Datatype = NiftiDatatype.Float64 }

                Nifti.write (folder.File $"{c}_betas.nii.gz") options values

            writeTrials (folder.File "trials.tsv") result.Trials
            folder.Commit()
        with e ->
            raise (Files.writeFailure directory e)
