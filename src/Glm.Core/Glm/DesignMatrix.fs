namespace FmriGlm.Core

open System
open MathNet.Numerics.LinearAlgebra
open FmriGlm.Core.Hrf

/// <summary>An experimental paradigm (nilearn's events DataFrame): one element per event in each array.</summary>
type Events =
    {
        /// <summary>Onsets, in seconds.</summary>
        Onsets: float[]
        /// <summary>Durations, in seconds (0 for an impulse).</summary>
        Durations: float[]
        /// <summary>Condition of each event (nilearn <c>trial_type</c>; "dummy" when the table has none).</summary>
        TrialTypes: string[]
        /// <summary>Amplitude of each event (nilearn <c>modulation</c>; 1 when the table has none).</summary>
        Modulations: float[]
    }

/// <summary>A design matrix: named columns over scans, values scans × columns.</summary>
type DesignMatrix =
    {
        /// <summary>Column names in nilearn's order.</summary>
        ColumnNames: string[]
        /// <summary>Values, scans × columns.</summary>
        Values: float[,]
    }

/// <summary>nilearn's <c>drift_model</c>.</summary>
type DriftModel =
    /// <summary>"cosine": DCT-II basis up to <c>highPass</c> Hz (nilearn <c>create_cosine_drift</c>).</summary>
    | Cosine of highPass: float
    /// <summary>"polynomial": orthogonalised powers of frame_times / max(frame_times) up to <c>order</c>.</summary>
    | Polynomial of order: int
    /// <summary>None: the constant column only.</summary>
    | NoDrift

/// <summary>Settings of <c>make_first_level_design_matrix</c>; <see cref="M:FmriGlm.Core.DesignMatrixModule.defaults"/>
/// holds nilearn's defaults.</summary>
[<NoEquality; NoComparison>]
type FirstLevelDesignOptions =
    {
        /// <summary>HRF model (default Glover).</summary>
        HrfModel: HrfModel
        /// <summary>Drift model (default cosine at 0.01 Hz).</summary>
        DriftModel: DriftModel
        /// <summary>Additional regressors (confounds), scans × k, placed after the condition columns.</summary>
        AddRegs: float[,] option
        /// <summary>Names of the additional regressors; default reg0, reg1, ….</summary>
        AddRegNames: string[] option
        /// <summary>Start of the oversampled grid relative to the first frame time, in seconds (default −24).</summary>
        MinOnset: float
        /// <summary>Oversampling of the convolution grid per t_r (default 50).</summary>
        Oversampling: int
    }

/// <summary>What nilearn only warns about, returned as values beside the design.</summary>
type DesignWarning =
    /// <summary>Events with the same trial_type, onset and duration were merged and their modulations summed.</summary>
    | DuplicatedEventsSummed of merged: int
    /// <summary>These conditions contain events of zero duration.</summary>
    | NullDuration of conditions: string list
    /// <summary>Some onsets are earlier than frame_times[0] + min_onset; as in nilearn 0.13.1 they are clipped to
    /// the first sample of the grid, not removed.</summary>
    | OnsetsBeforeMinOnset of earliestModelled: float
    /// <summary>The cosine high-pass spans all frequencies (high_pass · dt ≥ 0.5).</summary>
    | HighPassSaturates of highPass: float
    /// <summary>Condition number reached 1e15: nilearn's full_rank regularised the matrix.</summary>
    | SingularRegularized of conditionNumber: float
    /// <summary>Second level: the condition number exceeds the matrix size (nilearn's singularity warning).</summary>
    | SingularDesign of conditionNumber: float

/// <summary>Second-level covariates: one row per subject, <c>subject_label</c> plus named columns.</summary>
type SubjectCovariates =
    {
        /// <summary>Subject label of each row.</summary>
        SubjectLabels: string[]
        /// <summary>Covariate names, in table order (without subject_label).</summary>
        Names: string[]
        /// <summary>One array per covariate, one value per row.</summary>
        Columns: float[][]
    }

/// <summary>Collinearity diagnostics of a design (not in nilearn).</summary>
type DesignCheck =
    {
        /// <summary>Numerical rank (numpy matrix_rank tolerance: smax · max(n, p) · ε).</summary>
        Rank: int
        /// <summary>Number of columns.</summary>
        Columns: int
        /// <summary>Largest over smallest singular value (∞ when singular).</summary>
        ConditionNumber: float
        /// <summary>Variance inflation factor of each column: 1 / (1 − R²) of the column regressed on the others
        /// plus an intercept; NaN for a constant column, ∞ for a column the others reproduce.</summary>
        VarianceInflation: float[]
        /// <summary>Warnings in words: rank deficiency and the columns with VIF above 10.</summary>
        Warnings: string list
    }

/// <summary>First- and second-level design matrices as nilearn 0.13.1 builds them
/// (<c>make_first_level_design_matrix</c>, <c>make_second_level_design_matrix</c>).</summary>
module DesignMatrix =
    /// <summary>nilearn's defaults: glover, cosine 0.01 Hz, no additional regressors, min_onset −24, oversampling 50.</summary>
    let defaults: FirstLevelDesignOptions =
        { HrfModel = Glover
          DriftModel = Cosine 0.01
          AddRegs = None
          AddRegNames = None
          MinOnset = -24.0
          Oversampling = 50 }

    /// <summary>A warning in nilearn's words (with the numbers that matter).</summary>
    let describe (warning: DesignWarning) : string =
        match warning with
        | DuplicatedEventsSummed merged ->
            $"Duplicated events were detected ({merged} merged). Amplitudes of these events will be summed."
        | NullDuration conditions ->
            let names = conditions |> List.map (fun c -> $"'{c}'")
            $"""The following conditions contain events with null duration: {String.Join(", ", names)}"""
        | OnsetsBeforeMinOnset earliest ->
            $"Some stimulus onsets are earlier than {earliest} in the experiment; as in nilearn 0.13.1 they are clipped to the start of the oversampled grid."
        | HighPassSaturates highPass ->
            $"High-pass filter will span all accessible frequencies and saturate the design matrix (high_pass {highPass} Hz)."
        | SingularRegularized cond ->
            $"Matrix is singular at working precision (condition number {cond:G3}), regularizing..."
        | SingularDesign cond ->
            $"Attention: Design matrix is singular (condition number {cond:G3}). Aberrant estimates are expected."

    /// <summary>Frame times as nilearn's FirstLevelModel builds them: linspace(slice_time_ref·t_r,
    /// (n_scans − 1 + slice_time_ref)·t_r, n_scans), in seconds.</summary>
    let frameTimes (scans: int) (tr: float) (sliceTimeRef: float) : float[] =
        Hrf.linspace (sliceTimeRef * tr) ((float scans - 1.0 + sliceTimeRef) * tr) scans

    /// <summary>Column j, one value per scan.</summary>
    let column (design: DesignMatrix) (j: int) : float[] =
        Array.init (Array2D.length1 design.Values) (fun i -> design.Values[i, j])

    let private ofColumns (names: string[]) (columns: float[][]) =
        let n = if columns.Length = 0 then 0 else columns[0].Length

        { ColumnNames = names
          Values = Array2D.init n columns.Length (fun i j -> columns[j][i]) }

    /// <summary>Checks events as nilearn's check_events does, plus negative durations; raises
    /// <see cref="T:FmriGlm.Core.GlmInputException"/> naming <c>source</c>, the event (1-based) and the column.</summary>
    let validate (source: string) (events: Events) : unit =
        let n = events.Onsets.Length

        if
            events.Durations.Length <> n
            || events.TrialTypes.Length <> n
            || events.Modulations.Length <> n
        then
            invalidArg (nameof events) "onsets, durations, trial types and modulations differ in length"

        for i in 0 .. n - 1 do
            let at column =
                $"{source}, event {i + 1}, column '{column}'"

            if not (Double.IsFinite events.Onsets[i]) then
                raise (GlmInputException(at "onset", $"onset must be a finite number, got {events.Onsets[i]}"))

            if Double.IsNaN events.Durations[i] then
                raise (GlmInputException(at "duration", "duration is missing (NaN)"))

            if events.Durations[i] < 0.0 then
                raise (GlmInputException(at "duration", $"negative duration {events.Durations[i]}"))

            if Double.IsNaN events.Modulations[i] then
                raise (GlmInputException(at "modulation", "modulation is missing (NaN)"))

            if isNull events.TrialTypes[i] then
                raise (GlmInputException(at "trial_type", "trial_type is missing"))

    /// <summary>Merges events with equal trial_type, onset and duration (first-appearance order), summing their
    /// modulations, as nilearn 0.13.1 does; returns the merged events and how many rows were merged away.</summary>
    let mergeDuplicates (events: Events) : Events * int =
        let keys = Collections.Generic.Dictionary<struct (string * float * float), int>()
        let order = ResizeArray()
        let sums = ResizeArray<float>()

        for i in 0 .. events.Onsets.Length - 1 do
            let key = struct (events.TrialTypes[i], events.Onsets[i], events.Durations[i])

            match keys.TryGetValue key with
            | true, k -> sums[k] <- sums[k] + events.Modulations[i]
            | _ ->
                keys[key] <- order.Count
                order.Add i
                sums.Add events.Modulations[i]

        let idx = order.ToArray()

        { Onsets = idx |> Array.map (fun i -> events.Onsets[i])
          Durations = idx |> Array.map (fun i -> events.Durations[i])
          TrialTypes = idx |> Array.map (fun i -> events.TrialTypes[i])
          Modulations = sums.ToArray() },
        events.Onsets.Length - idx.Length

    /// <summary>Conditions in numpy.unique order of the trial_type column: code-point order ("B" before "a", "a10"
    /// before "a2"), except that when every trial type is a number pandas reads the column as numbers and the
    /// conditions sort numerically ("2" before "10").</summary>
    let conditions (events: Events) : string[] =
        let distinct = Array.distinct events.TrialTypes

        let number (t: string) =
            match Double.TryParse(t, Globalization.NumberStyles.Float, Globalization.CultureInfo.InvariantCulture) with
            | true, v when Double.IsFinite v -> Some v
            | _ -> None

        let numbers = distinct |> Array.map number

        if distinct.Length > 0 && numbers |> Array.forall Option.isSome then
            Array.zip distinct numbers
            |> Array.sortWith (fun (a, x) (b, y) ->
                match compare x y with
                | 0 -> String.CompareOrdinal(a, b)
                | c -> c)
            |> Array.map fst
        else
            distinct |> Array.sortWith (fun a b -> String.CompareOrdinal(a, b))

    /// <summary>Cosine drift (nilearn <c>create_cosine_drift</c>): k = min(n − 1, ⌊2·n·high_pass·dt⌋) columns
    /// √(2/n)·cos(π/n·(t + ½)·j), j = 1..k, then a constant; dt = (last − first)/(n − 1).</summary>
    let cosineDrift (highPass: float) (frameTimes: float[]) : float[][] =
        let n = frameTimes.Length
        let dt = (frameTimes[n - 1] - frameTimes[0]) / float (n - 1)
        let order = min (n - 1) (int (floor (2.0 * float n * highPass * dt)))
        let normalizer = sqrt (2.0 / float n)

        Array.append
            (Array.init order (fun k ->
                Array.init n (fun t -> normalizer * cos (Math.PI / float n * (float t + 0.5) * float (k + 1)))))
            [| Array.create n 1.0 |]

    /// <summary>Polynomial drift (nilearn <c>_poly_drift</c>): (t / max t)^k for k = 0..order, orthogonalised in
    /// order with pinv, the constant moved last.</summary>
    let polynomialDrift (order: int) (frameTimes: float[]) : float[][] =
        if order < 0 then
            raise (GlmInputException("drift_order", $"must be ≥ 0, got {order}"))

        let tmax = Array.max frameTimes

        let pol =
            Array.init (order + 1) (fun k -> frameTimes |> Array.map (fun t -> Math.Pow(t / tmax, float k)))

        let o = if pol.Length = 1 then pol else orthogonalize pol
        Array.append o[1..] o[..0]

    /// <summary>Drift columns and names (drift_1 .. drift_k, constant) of a drift model, and its warning.</summary>
    let drift (model: DriftModel) (frameTimes: float[]) : float[][] * string[] * DesignWarning list =
        let columns, warnings =
            match model with
            | Cosine highPass ->
                let n = frameTimes.Length
                let dt = (frameTimes[n - 1] - frameTimes[0]) / float (n - 1)

                cosineDrift highPass frameTimes,
                (if highPass * dt >= 0.5 then
                     [ HighPassSaturates highPass ]
                 else
                     [])
            | Polynomial order -> polynomialDrift order frameTimes, []
            | NoDrift -> [| Array.create frameTimes.Length 1.0 |], []

        let names =
            Array.append (Array.init (columns.Length - 1) (fun k -> $"drift_{k + 1}")) [| "constant" |]

        columns, names, warnings

    /// <summary>nilearn's <c>full_rank</c>: when smax/smin ≥ 1e15, adds (smax − 1e15·smin)/(1e15 − 1) to every
    /// singular value and rebuilds the matrix; returns the matrix and the condition number when regularised.</summary>
    let fullRank (values: float[,]) : float[,] * float option =
        let m = Matrix<float>.Build.DenseOfArray values
        let s = m.Svd(false).S
        let smax, smin = s.Maximum(), s.Minimum()
        let cmax = 1e15

        if smax / smin < cmax then
            values, None
        else
            let lda = (smax - cmax * smin) / (cmax - 1.0)
            let u, s, vt = Numerics.thinSvd m

            let d = Matrix<float>.Build.DiagonalOfDiagonalVector(s.Map(fun v -> v + lda))

            (u * d * vt).ToArray(), Some(smax / smin)

    /// <summary>The first-level design (nilearn <c>make_first_level_design_matrix</c>): condition regressors in
    /// numpy.unique order of trial types, then additional regressors, then drifts and constant; regularised by
    /// full_rank. Events are validated, duplicates summed; warnings come back beside the design.</summary>
    /// <param name="frameTimes">Scan times in seconds, increasing.</param>
    /// <param name="events">The paradigm, or None for drifts (and additional regressors) only.</param>
    /// <param name="options">Settings; start from <see cref="defaults"/>.</param>
    /// <exception cref="T:FmriGlm.Core.GlmInputException">Bad events, additional regressors or column names.</exception>
    let makeFirstLevel
        (frameTimes: float[])
        (events: Events option)
        (options: FirstLevelDesignOptions)
        : DesignMatrix * DesignWarning list =
        if isNull frameTimes || frameTimes.Length < 2 then
            invalidArg (nameof frameTimes) "need at least 2 frame times"

        if frameTimes |> Array.pairwise |> Array.exists (fun (a, b) -> not (b > a)) then
            invalidArg (nameof frameTimes) "frame times must be finite and strictly increasing"

        let n = frameTimes.Length
        let warnings = ResizeArray<DesignWarning>()
        let names = ResizeArray<string>()
        let columns = ResizeArray<float[]>()

        match events with
        | None -> ()
        | Some raw ->
            validate "events" raw
            let ev, merged = mergeDuplicates raw

            if merged > 0 then
                warnings.Add(DuplicatedEventsSummed merged)

            let conds = conditions ev

            let nullDuration =
                conds
                |> Array.filter (fun c -> Array.exists2 (fun t d -> t = c && d = 0.0) ev.TrialTypes ev.Durations)

            if nullDuration.Length > 0 then
                warnings.Add(NullDuration(List.ofArray nullDuration))

            let earliest = frameTimes[0] + options.MinOnset

            if ev.Onsets |> Array.exists (fun o -> o < earliest) then
                warnings.Add(OnsetsBeforeMinOnset earliest)

            for c in conds do
                let pick (xs: float[]) =
                    Array.zip ev.TrialTypes xs
                    |> Array.filter (fun (t, _) -> t = c)
                    |> Array.map snd

                let condition =
                    { Onsets = pick ev.Onsets
                      Durations = pick ev.Durations
                      Amplitudes = pick ev.Modulations }

                columns.AddRange(
                    computeRegressor options.HrfModel frameTimes options.Oversampling options.MinOnset condition
                )

                names.AddRange(regressorNames c options.HrfModel)

        match options.AddRegs with
        | None ->
            match options.AddRegNames with
            | Some regNames when regNames.Length > 0 ->
                raise (
                    GlmInputException("add_reg_names", $"{regNames.Length} names given but no additional regressors")
                )
            | _ -> ()
        | Some regs ->
            if Array2D.length1 regs <> n then
                raise (GlmInputException("add_regs", $"{Array2D.length1 regs} rows, but there are {n} frame times"))

            let k = Array2D.length2 regs

            let regNames =
                options.AddRegNames
                |> Option.defaultWith (fun () -> Array.init k (fun j -> $"reg{j}"))

            if regNames.Length <> k then
                raise (
                    GlmInputException("add_reg_names", $"{regNames.Length} names given for {k} additional regressors")
                )

            for j in 0 .. k - 1 do
                columns.Add(Array.init n (fun i -> regs[i, j]))

            names.AddRange regNames

        let driftColumns, driftNames, driftWarnings = drift options.DriftModel frameTimes
        columns.AddRange driftColumns
        names.AddRange driftNames
        warnings.AddRange driftWarnings

        let duplicates =
            names
            |> Seq.countBy id
            |> Seq.filter (fun (_, c) -> c > 1)
            |> Seq.map fst
            |> List.ofSeq

        if not duplicates.IsEmpty then
            raise (GlmInputException("design", $"""column names are not unique: {String.Join(", ", duplicates)}"""))

        let design = ofColumns (names.ToArray()) (columns.ToArray())
        let values, regularised = fullRank design.Values
        regularised |> Option.iter (fun c -> warnings.Add(SingularRegularized c))
        { design with Values = values }, List.ofSeq warnings

    /// <summary>The second-level design (nilearn <c>make_second_level_design_matrix</c>): covariate columns in table
    /// order then "intercept"; rows follow <c>subjectLabels</c>. Warns, as nilearn does, when cond(X) &gt; X.size.</summary>
    /// <exception cref="T:FmriGlm.Core.GlmInputException">A subject has no covariate row or more than one.</exception>
    let makeSecondLevel
        (subjectLabels: string[])
        (covariates: SubjectCovariates option)
        : DesignMatrix * DesignWarning list =
        if isNull subjectLabels then
            nullArg (nameof subjectLabels)

        let names, columns =
            match covariates with
            | None -> [| "intercept" |], [| Array.create subjectLabels.Length 1.0 |]
            | Some cov ->
                let rows =
                    subjectLabels
                    |> Array.map (fun s ->
                        match cov.SubjectLabels |> Array.indexed |> Array.filter (fun (_, l) -> l = s) with
                        | [| (r, _) |] -> r
                        | [||] ->
                            raise (
                                GlmInputException(
                                    "confounds, column 'subject_label'",
                                    $"confounds not specified for subject {s}"
                                )
                            )
                        | _ ->
                            raise (
                                GlmInputException(
                                    "confounds, column 'subject_label'",
                                    $"more than one row for subject {s}"
                                )
                            ))

                let all = Array.append cov.Names [| "intercept" |]

                if (Array.distinct all).Length <> all.Length then
                    raise (GlmInputException("confounds", "design matrix columns do not have unique names"))

                all,
                Array.append
                    (cov.Columns |> Array.map (fun c -> rows |> Array.map (fun r -> c[r])))
                    [| Array.create subjectLabels.Length 1.0 |]

        let design = ofColumns names columns
        let s = Matrix<float>.Build.DenseOfArray(design.Values).Svd(false).S
        let cond = s.Maximum() / s.Minimum()

        design,
        (if cond > float design.Values.Length then
             [ SingularDesign cond ]
         else
             [])

    /// <summary>Rank, condition number and variance inflation factor per column, with warnings in words.</summary>
    let check (design: DesignMatrix) : DesignCheck =
        let m = Matrix<float>.Build.DenseOfArray design.Values
        let n, p = m.RowCount, m.ColumnCount
        let s = m.Svd(false).S
        let smax = s.Maximum()
        // numpy.linalg.matrix_rank's default tolerance; .NET's Double.Epsilon is the smallest subnormal, not ε.
        let tol = smax * float (max n p) * Math.Pow(2.0, -52.0)
        let rank = s |> Seq.filter (fun v -> v > tol) |> Seq.length
        let cond = if s.Minimum() = 0.0 then infinity else smax / s.Minimum()

        let vif =
            Array.init p (fun j ->
                let x = m.Column j
                let mean = x.Sum() / float n
                let tss = (x - mean).DotProduct(x - mean)

                if tss <= 1e-24 * float n * (abs mean + 1.0) ** 2.0 then
                    nan
                else
                    let others =
                        [| for k in 0 .. p - 1 do
                               if k <> j then
                                   yield m.Column(k).ToArray()
                           yield Array.create n 1.0 |]

                    let a = Matrix<float>.Build.DenseOfColumnArrays others
                    let fitted = a * (Numerics.pinvMatrix a * x)
                    let rss = (x - fitted).DotProduct(x - fitted)
                    let r2 = 1.0 - rss / tss
                    if r2 >= 1.0 - 1e-13 then infinity else 1.0 / (1.0 - r2))

        let warnings =
            [ if rank < p then
                  $"rank deficient: rank {rank} < {p} columns"
              for j in 0 .. p - 1 do
                  if vif[j] > 10.0 then
                      $"column '{design.ColumnNames[j]}' is collinear with the others (VIF {vif[j]:G4})" ]

        { Rank = rank
          Columns = p
          ConditionNumber = cond
          VarianceInflation = vif
          Warnings = warnings }
