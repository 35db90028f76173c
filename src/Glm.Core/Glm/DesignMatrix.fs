namespace FmriGlm.Core

open System
open MathNet.Numerics.LinearAlgebra
open FmriGlm.Core.Hrf

type Events =
    {
        Onsets: float[]
        Durations: float[]
        TrialTypes: string[]
        Modulations: float[]
    }

type DesignMatrix =
    {
        ColumnNames: string[]
        Values: float[,]
    }

type DriftModel =
    | Cosine of highPass: float
    | Polynomial of order: int
    | NoDrift

[<NoEquality; NoComparison>]
type FirstLevelDesignOptions =
    {
        HrfModel: HrfModel
        DriftModel: DriftModel
        AddRegs: float[,] option
        AddRegNames: string[] option
        MinOnset: float
        Oversampling: int
    }

type DesignWarning =
    | DuplicatedEventsSummed of merged: int
    | NullDuration of conditions: string list
    | OnsetsBeforeMinOnset of earliestModelled: float
    | HighPassSaturates of highPass: float
    | SingularRegularized of conditionNumber: float
    | SingularDesign of conditionNumber: float

type SubjectCovariates =
    {
        SubjectLabels: string[]
        Names: string[]
        Columns: float[][]
    }

type DesignCheck =
    {
        Rank: int
        Columns: int
        ConditionNumber: float
        VarianceInflation: float[]
        Warnings: string list
    }

module DesignMatrix =
    let defaults: FirstLevelDesignOptions =
        { HrfModel = Glover
          DriftModel = Cosine 0.01
          AddRegs = None
          AddRegNames = None
          MinOnset = -24.0
          Oversampling = 50 }

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

    let frameTimes (scans: int) (tr: float) (sliceTimeRef: float) : float[] =
        Hrf.linspace (sliceTimeRef * tr) ((float scans - 1.0 + sliceTimeRef) * tr) scans

    let column (design: DesignMatrix) (j: int) : float[] =
        Array.init (Array2D.length1 design.Values) (fun i -> design.Values[i, j])

    let private ofColumns (names: string[]) (columns: float[][]) =
        let n = if columns.Length = 0 then 0 else columns[0].Length

        { ColumnNames = names
          Values = Array2D.init n columns.Length (fun i j -> columns[j][i]) }

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
    let private mergeDuplicates (events: Events) : Events * int =
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

    let cosineDrift (highPass: float) (frameTimes: float[]) : float[][] =
        let n = frameTimes.Length
        let dt = (frameTimes[n - 1] - frameTimes[0]) / float (n - 1)
        let order = min (n - 1) (int (floor (2.0 * float n * highPass * dt)))
        let normalizer = sqrt (2.0 / float n)

        Array.append
            (Array.init order (fun k ->
                Array.init n (fun t -> normalizer * cos (Math.PI / float n * (float t + 0.5) * float (k + 1)))))
            [| Array.create n 1.0 |]

    let polynomialDrift (order: int) (frameTimes: float[]) : float[][] =
        if order < 0 then
            raise (GlmInputException("drift_order", $"must be ≥ 0, got {order}"))

        let tmax = Array.max frameTimes

        let pol =
            Array.init (order + 1) (fun k -> frameTimes |> Array.map (fun t -> Math.Pow(t / tmax, float k)))

        let o = if pol.Length = 1 then pol else orthogonalize pol
        Array.append o[1..] o[..0]

    /// <summary>Drift columns and names (drift_1 .. drift_k, constant) of a drift model, and its warning.</summary>
    let private drift (model: DriftModel) (frameTimes: float[]) : float[][] * string[] * DesignWarning list =
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
    let private fullRank (values: float[,]) : float[,] * float option =
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

        // nilearn fails on these deep inside numpy (negative dimensions, NaN indices) or computes for hours
        if not (Double.IsFinite options.MinOnset) then
            raise (GlmInputException("min_onset", $"must be a finite number of seconds, not {options.MinOnset}"))

        // the oversampled grid starts min_onset after the first scan: later than the scan, nothing can be sampled
        // there (scipy's interp1d raises "below the interpolation range" in nilearn)
        if options.MinOnset > 0.0 && events.IsSome then
            raise (GlmInputException("min_onset", $"{options.MinOnset} s is after the first scan: the oversampled grid must start at or before it (0 or negative)"))

        // the HRF convolution costs (grid points) × (kernel length), both growing with the oversampling: bounded so
        // that an absurd factor is refused instead of computing for hours
        let maxOversampling = min 1000 (max 1 (int (1e7 / float n)))

        if options.Oversampling < 1 || options.Oversampling > maxOversampling then
            raise (GlmInputException("oversampling", $"{options.Oversampling} for {n} scans: give 1 to {maxOversampling} (at most 1000, and at most 10^7 grid points)"))

        match options.DriftModel with
        | Cosine hp when not (hp >= 0.0) || Double.IsInfinity hp ->
            raise (GlmInputException("high_pass", $"must be a finite number of Hz, at least 0, not {hp}"))
        | Polynomial order when order < 0 || order >= n ->
            raise (GlmInputException("drift_order", $"{order} for {n} scans: the order must be at least 0 and below the number of scans"))
        | _ -> ()

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
