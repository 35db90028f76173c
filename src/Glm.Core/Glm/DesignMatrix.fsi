namespace FmriGlm.Core

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
    val defaults: FirstLevelDesignOptions

    /// <summary>A warning in nilearn's words (with the numbers that matter).</summary>
    val describe: warning: DesignWarning -> string

    /// <summary>Frame times as nilearn's FirstLevelModel builds them: linspace(slice_time_ref·t_r,
    /// (n_scans − 1 + slice_time_ref)·t_r, n_scans), in seconds.</summary>
    val frameTimes: scans: int -> tr: float -> sliceTimeRef: float -> float[]

    /// <summary>Column j, one value per scan.</summary>
    val column: design: DesignMatrix -> j: int -> float[]

    /// <summary>Checks events as nilearn's check_events does, plus negative durations; raises
    /// <see cref="T:FmriGlm.Core.GlmInputException"/> naming <c>source</c>, the event (1-based) and the column.</summary>
    val validate: source: string -> events: Events -> unit

    /// <summary>Conditions in numpy.unique order of the trial_type column: code-point order ("B" before "a", "a10"
    /// before "a2"), except that when every trial type is a number pandas reads the column as numbers and the
    /// conditions sort numerically ("2" before "10").</summary>
    val conditions: events: Events -> string[]

    /// <summary>Cosine drift (nilearn <c>create_cosine_drift</c>): k = min(n − 1, ⌊2·n·high_pass·dt⌋) columns
    /// √(2/n)·cos(π/n·(t + ½)·j), j = 1..k, then a constant; dt = (last − first)/(n − 1).</summary>
    val cosineDrift: highPass: float -> frameTimes: float[] -> float[][]

    /// <summary>Polynomial drift (nilearn <c>_poly_drift</c>): (t / max t)^k for k = 0..order, orthogonalised in
    /// order with pinv, the constant moved last.</summary>
    val polynomialDrift: order: int -> frameTimes: float[] -> float[][]

    /// <summary>The first-level design (nilearn <c>make_first_level_design_matrix</c>): condition regressors in
    /// numpy.unique order of trial types, then additional regressors, then drifts and constant; regularised by
    /// full_rank. Events are validated, duplicates summed; warnings come back beside the design.</summary>
    /// <param name="frameTimes">Scan times in seconds, increasing.</param>
    /// <param name="events">The paradigm, or None for drifts (and additional regressors) only.</param>
    /// <param name="options">Settings; start from <see cref="defaults"/>.</param>
    /// <exception cref="T:FmriGlm.Core.GlmInputException">Bad events, additional regressors or column names.</exception>
    val makeFirstLevel:
        frameTimes: float[] ->
        events: Events option ->
        options: FirstLevelDesignOptions ->
            DesignMatrix * DesignWarning list

    /// <summary>The second-level design (nilearn <c>make_second_level_design_matrix</c>): covariate columns in table
    /// order then "intercept"; rows follow <c>subjectLabels</c>. Warns, as nilearn does, when cond(X) &gt; X.size.</summary>
    /// <exception cref="T:FmriGlm.Core.GlmInputException">A subject has no covariate row or more than one.</exception>
    val makeSecondLevel:
        subjectLabels: string[] -> covariates: SubjectCovariates option -> DesignMatrix * DesignWarning list

    /// <summary>Rank, condition number and variance inflation factor per column, with warnings in words.</summary>
    val check: design: DesignMatrix -> DesignCheck
