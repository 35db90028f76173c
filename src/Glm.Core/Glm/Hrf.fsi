/// <summary>Haemodynamic response kernels and single-condition regressors, as nilearn 0.13.1's
/// <c>nilearn.glm.first_level.hemodynamic_models</c> computes them.</summary>
module FmriGlm.Core.Hrf

/// <summary>A user-supplied HRF: (t_r in seconds, oversampling, time_length in seconds, onset in seconds) →
/// kernel sampled every t_r / oversampling seconds (nilearn accepts a callable as <c>hrf_model</c>).</summary>
type HrfFunction = float -> int -> float -> float -> float[]

/// <summary>The haemodynamic model of a condition: nilearn's <c>hrf_model</c>.</summary>
[<NoEquality; NoComparison>]
type HrfModel =
    /// <summary>"spm": SPM's canonical double gamma.</summary>
    | Spm
    /// <summary>"spm + derivative": SPM HRF and its time derivative.</summary>
    | SpmDerivative
    /// <summary>"spm + derivative + dispersion": SPM HRF, time and dispersion derivatives.</summary>
    | SpmDerivativeDispersion
    /// <summary>"glover": Glover's double gamma (nilearn's default).</summary>
    | Glover
    /// <summary>"glover + derivative".</summary>
    | GloverDerivative
    /// <summary>"glover + derivative + dispersion".</summary>
    | GloverDerivativeDispersion
    /// <summary>"fir": one boxcar regressor per delay, delays in scans.</summary>
    | Fir of delays: int[]
    /// <summary>A user kernel; its name makes the column name <c>condition_name</c>.</summary>
    | Custom of name: string * kernel: HrfFunction
    /// <summary>nilearn's <c>None</c>: the boxcars, unconvolved.</summary>
    | NoHrf

/// <summary>nilearn's spelling of an HRF model, the inverse of <c>parse</c>: "spm + derivative", "fir", "none", or
/// a custom HRF's name.</summary>
val name: model: HrfModel -> string

/// <summary>Parses nilearn's spelling of an HRF model ("spm", "glover + derivative", "fir", "none", …),
/// case-insensitively, as nilearn lower-cases it. <c>firDelays</c> is used by "fir" only.</summary>
/// <returns>The model, or the list of accepted spellings when the text is none of them.</returns>
val parse: firDelays: int[] -> text: string -> Result<HrfModel, string list>

/// numpy.linspace(start, stop, num): i·step + start, the last sample set to stop exactly.
val internal linspace: start: float -> stop: float -> num: int -> float[]

/// <summary>SPM's HRF on the grid of step t_r / oversampling over [0, time_length] shifted by onset (nilearn
/// <c>spm_hrf</c>: delay 6 s, undershoot 16 s, dispersions 1, ratio 0.167), normalised to sum 1.</summary>
val spmKernel: tr: float -> oversampling: int -> timeLength: float -> onset: float -> float[]

/// <summary>Glover's HRF (nilearn <c>glover_hrf</c>: delay 6 s, undershoot 12 s, dispersions 0.9, ratio 0.48 in nilearn 0.13, 0.35 in older releases).</summary>
val gloverKernel: tr: float -> oversampling: int -> timeLength: float -> onset: float -> float[]

/// <summary>Time derivative of the SPM HRF (nilearn <c>spm_time_derivative</c>), a finite difference over 0.1 s.</summary>
val spmTimeDerivative: tr: float -> oversampling: int -> timeLength: float -> onset: float -> float[]

/// <summary>Time derivative of the Glover HRF (nilearn <c>glover_time_derivative</c>).</summary>
val gloverTimeDerivative: tr: float -> oversampling: int -> timeLength: float -> onset: float -> float[]

/// <summary>Dispersion derivative of the SPM HRF (nilearn <c>spm_dispersion_derivative</c>): finite difference
/// of the peak dispersion over 0.01.</summary>
val spmDispersionDerivative: tr: float -> oversampling: int -> timeLength: float -> onset: float -> float[]

/// <summary>Dispersion derivative of the Glover HRF (nilearn <c>glover_dispersion_derivative</c>).</summary>
/// <remarks>As in nilearn, the undershoot dispersion is left at 1, not Glover's 0.9, in both terms.</remarks>
val gloverDispersionDerivative: tr: float -> oversampling: int -> timeLength: float -> onset: float -> float[]

/// <summary>Regressor names of a condition under a model (nilearn <c>_regressor_names</c>):
/// <c>c</c>, <c>c_derivative</c>, <c>c_dispersion</c>, <c>c_delay_d</c>, or <c>c_name</c> for a user kernel.</summary>
val regressorNames: condition: string -> model: HrfModel -> string list

/// <summary>The events of one condition: onsets and durations in seconds, amplitudes (nilearn's
/// <c>exp_condition</c> triplet). The three arrays have one element per event.</summary>
type Condition =
    {
        /// <summary>Onsets, in seconds.</summary>
        Onsets: float[]
        /// <summary>Durations, in seconds (0 for an impulse, which lasts one sample of the fine grid).</summary>
        Durations: float[]
        /// <summary>Amplitude (modulation) of each event.</summary>
        Amplitudes: float[]
    }

/// <summary>Orthogonalises each column against the preceding ones in column order (nilearn <c>_orthogonalize</c>):
/// column i −= (column i · X[:, :i]) · pinv(X[:, :i]). Columns are not normalised. Returns new columns.</summary>
val orthogonalize: columns: float[][] -> float[][]

/// <summary>Regressors of one condition sampled at the frame times (nilearn <c>compute_regressor</c>): boxcars
/// on the oversampled grid, convolved with each kernel of the model (t_r = min diff of frame times), read at
/// the frame times by linear interpolation; FIR signals are shifted by oversampling − 1 samples; other models'
/// regressors are orthogonalised in order (derivative against the main one, dispersion against both).</summary>
/// <param name="model">The HRF model.</param>
/// <param name="frameTimes">Scan times in seconds, increasing, at least two.</param>
/// <param name="oversampling">Samples per t_r on the fine grid (nilearn default 50).</param>
/// <param name="minOnset">Start of the fine grid relative to the first frame time, in seconds (default −24).</param>
/// <param name="condition">The condition's events.</param>
/// <returns>One array per regressor (each of frameTimes.Length values), in the order of
/// <see cref="regressorNames"/>.</returns>
val computeRegressor:
    model: HrfModel -> frameTimes: float[] -> oversampling: int -> minOnset: float -> condition: Condition -> float[][]
