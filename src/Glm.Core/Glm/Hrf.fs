/// <summary>Haemodynamic response kernels and single-condition regressors, as nilearn 0.13.1's
/// <c>nilearn.glm.first_level.hemodynamic_models</c> computes them.</summary>
module FmriGlm.Core.Hrf

open System
open MathNet.Numerics
open MathNet.Numerics.LinearAlgebra
open System.Numerics.Tensors

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
let name (model: HrfModel) : string =
    match model with
    | Spm -> "spm"
    | SpmDerivative -> "spm + derivative"
    | SpmDerivativeDispersion -> "spm + derivative + dispersion"
    | Glover -> "glover"
    | GloverDerivative -> "glover + derivative"
    | GloverDerivativeDispersion -> "glover + derivative + dispersion"
    | Fir _ -> "fir"
    | Custom(n, _) -> n
    | NoHrf -> "none"

/// <summary>Parses nilearn's spelling of an HRF model ("spm", "glover + derivative", "fir", "none", …),
/// case-insensitively, as nilearn lower-cases it. <c>firDelays</c> is used by "fir" only.</summary>
/// <returns>The model, or the list of accepted spellings when the text is none of them.</returns>
let parse (firDelays: int[]) (text: string) : Result<HrfModel, string list> =
    let accepted =
        [ "spm"
          "spm + derivative"
          "spm + derivative + dispersion"
          "glover"
          "glover + derivative"
          "glover + derivative + dispersion"
          "fir"
          "none" ]

    match
        (if isNull text then
             "none"
         else
             text.Trim().ToLowerInvariant())
    with
    | "spm" -> Ok Spm
    | "spm + derivative" -> Ok SpmDerivative
    | "spm + derivative + dispersion" -> Ok SpmDerivativeDispersion
    | "glover" -> Ok Glover
    | "glover + derivative" -> Ok GloverDerivative
    | "glover + derivative + dispersion" -> Ok GloverDerivativeDispersion
    | "fir" -> Ok(Fir firDelays)
    | "none"
    | "" -> Ok NoHrf
    | _ -> Error accepted

/// numpy.linspace(start, stop, num): i·step + start, the last sample set to stop exactly.
let internal linspace (start: float) (stop: float) (num: int) : float[] =
    if num <= 0 then
        [||]
    elif num = 1 then
        [| start |]
    else
        let step = (stop - start) / float (num - 1)
        Array.init num (fun i -> if i = num - 1 then stop else float i * step + start)

/// scipy.stats.gamma.pdf(x, a, loc, scale), in scipy's log form.
let private gammaPdf (a: float) (loc: float) (scale: float) (x: float) =
    let y = (x - loc) / scale

    if y < 0.0 then
        0.0
    elif y = 0.0 then
        (if a > 1.0 then 0.0
         elif a = 1.0 then 1.0 / scale
         else infinity)
    else
        exp ((a - 1.0) * log y - y - SpecialFunctions.GammaLn a) / scale

/// nilearn's _gamma_difference_hrf: peak gamma minus ratio × undershoot gamma, normalised to sum 1.
let private gammaDifference
    (tr: float)
    (oversampling: int)
    (timeLength: float)
    (onset: float)
    (delay: float)
    (undershoot: float)
    (dispersion: float)
    (uDispersion: float)
    (ratio: float)
    =
    if tr <= 0.0 || oversampling < 1 || timeLength <= 0.0 then
        invalidArg
            (nameof tr)
            $"HRF needs t_r > 0, oversampling ≥ 1 and time_length > 0 (got {tr}, {oversampling}, {timeLength})"

    let dt = tr / float oversampling
    let n = int (Math.Round(timeLength / dt, MidpointRounding.ToEven))
    let times = linspace 0.0 timeLength n |> Array.map (fun t -> t - onset)

    let h =
        times
        |> Array.map (fun t ->
            gammaPdf (delay / dispersion) dt dispersion t
            - ratio * gammaPdf (undershoot / uDispersion) dt uDispersion t)

    let total = Array.sum h
    h |> Array.map (fun v -> v / total)

/// <summary>SPM's HRF on the grid of step t_r / oversampling over [0, time_length] shifted by onset (nilearn
/// <c>spm_hrf</c>: delay 6 s, undershoot 16 s, dispersions 1, ratio 0.167), normalised to sum 1.</summary>
let spmKernel (tr: float) (oversampling: int) (timeLength: float) (onset: float) : float[] =
    gammaDifference tr oversampling timeLength onset 6.0 16.0 1.0 1.0 0.167

/// <summary>Glover's HRF (nilearn <c>glover_hrf</c>: delay 6 s, undershoot 12 s, dispersions 0.9, ratio 0.48 in nilearn 0.13, 0.35 in older releases).</summary>
let gloverKernel (tr: float) (oversampling: int) (timeLength: float) (onset: float) : float[] =
    gammaDifference tr oversampling timeLength onset 6.0 12.0 0.9 0.9 0.48

let private timeDerivative kernel tr oversampling timeLength onset =
    // nilearn's finite difference with a 0.1 s onset step: (h(onset) − h(onset + 0.1)) / 0.1.
    let d = 0.1

    Array.map2
        (fun a b -> 1.0 / d * (a - b))
        (kernel tr oversampling timeLength onset)
        (kernel tr oversampling timeLength (onset + d))

/// <summary>Time derivative of the SPM HRF (nilearn <c>spm_time_derivative</c>), a finite difference over 0.1 s.</summary>
let spmTimeDerivative (tr: float) (oversampling: int) (timeLength: float) (onset: float) : float[] =
    timeDerivative spmKernel tr oversampling timeLength onset

/// <summary>Time derivative of the Glover HRF (nilearn <c>glover_time_derivative</c>).</summary>
let gloverTimeDerivative (tr: float) (oversampling: int) (timeLength: float) (onset: float) : float[] =
    timeDerivative gloverKernel tr oversampling timeLength onset

/// <summary>Dispersion derivative of the SPM HRF (nilearn <c>spm_dispersion_derivative</c>): finite difference
/// of the peak dispersion over 0.01.</summary>
let spmDispersionDerivative (tr: float) (oversampling: int) (timeLength: float) (onset: float) : float[] =
    let dd = 0.01

    Array.map2
        (fun a b -> 1.0 / dd * (-a + b))
        (gammaDifference tr oversampling timeLength onset 6.0 16.0 (1.0 + dd) 1.0 0.167)
        (gammaDifference tr oversampling timeLength onset 6.0 16.0 1.0 1.0 0.167)

/// <summary>Dispersion derivative of the Glover HRF (nilearn <c>glover_dispersion_derivative</c>).</summary>
/// <remarks>As in nilearn, the undershoot dispersion is left at 1, not Glover's 0.9, in both terms.</remarks>
let gloverDispersionDerivative (tr: float) (oversampling: int) (timeLength: float) (onset: float) : float[] =
    let dd = 0.01

    Array.map2
        (fun a b -> 1.0 / dd * (-a + b))
        (gammaDifference tr oversampling timeLength onset 6.0 12.0 (0.9 + dd) 1.0 0.48)
        (gammaDifference tr oversampling timeLength onset 6.0 12.0 0.9 1.0 0.48)

/// <summary>The kernels of a model at t_r and oversampling, time_length 32 s and onset 0 (nilearn
/// <c>_hrf_kernel</c>). FIR: delay d gives d·oversampling zeros then oversampling samples of 1/oversampling;
/// none: a unit impulse followed by oversampling − 1 zeros.</summary>
let kernels (model: HrfModel) (tr: float) (oversampling: int) : float[] list =
    let k f = f tr oversampling 32.0 0.0

    match model with
    | Spm -> [ k spmKernel ]
    | SpmDerivative -> [ k spmKernel; k spmTimeDerivative ]
    | SpmDerivativeDispersion -> [ k spmKernel; k spmTimeDerivative; k spmDispersionDerivative ]
    | Glover -> [ k gloverKernel ]
    | GloverDerivative -> [ k gloverKernel; k gloverTimeDerivative ]
    | GloverDerivativeDispersion -> [ k gloverKernel; k gloverTimeDerivative; k gloverDispersionDerivative ]
    | Fir delays ->
        [ for d in delays ->
              Array.append (Array.zeroCreate (d * oversampling)) (Array.create oversampling (1.0 / float oversampling)) ]
    | Custom(_, f) -> [ k f ]
    | NoHrf -> [ Array.init oversampling (fun i -> if i = 0 then 1.0 else 0.0) ]

/// <summary>Regressor names of a condition under a model (nilearn <c>_regressor_names</c>):
/// <c>c</c>, <c>c_derivative</c>, <c>c_dispersion</c>, <c>c_delay_d</c>, or <c>c_name</c> for a user kernel.</summary>
let regressorNames (condition: string) (model: HrfModel) : string list =
    match model with
    | Spm
    | Glover
    | NoHrf -> [ condition ]
    | SpmDerivative
    | GloverDerivative -> [ condition; condition + "_derivative" ]
    | SpmDerivativeDispersion
    | GloverDerivativeDispersion -> [ condition; condition + "_derivative"; condition + "_dispersion" ]
    | Fir delays -> [ for d in delays -> $"{condition}_delay_{d}" ]
    | Custom(name, _) -> [ $"{condition}_{name}" ]

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

/// numpy.searchsorted(sorted, v, side='left'): the first index whose value is ≥ v.
let internal searchSorted (sorted: float[]) (v: float) =
    let mutable lo = 0
    let mutable hi = sorted.Length

    while lo < hi do
        let mid = (lo + hi) / 2
        if sorted[mid] < v then lo <- mid + 1 else hi <- mid

    lo

/// <summary>The oversampled grid of nilearn's <c>_sample_condition</c>: linspace(min + min_onset,
/// max·(1 + 1/(n − 1)), rint((n − 1)/(max − min)·(max·(1 + 1/(n − 1)) − min − min_onset)·oversampling + 1)).</summary>
let highResolutionTimes (frameTimes: float[]) (oversampling: int) (minOnset: float) : float[] =
    let n = frameTimes.Length

    if n < 2 then
        invalidArg (nameof frameTimes) $"need at least 2 frame times, got {n}"

    let fmin = Array.min frameTimes
    let fmax = Array.max frameTimes
    let stop = fmax * (1.0 + 1.0 / float (n - 1))

    let nHr =
        float (n - 1) * 1.0 / (fmax - fmin)
        * (stop - fmin - minOnset)
        * float oversampling
        + 1.0

    linspace (fmin + minOnset) stop (int (Math.Round(nHr, MidpointRounding.ToEven)))

/// <summary>The condition's boxcars on the oversampled grid (nilearn <c>_sample_condition</c>): each onset and end
/// is placed by searchsorted (clipped to the last sample), a zero-length event lasts one sample, and the
/// steps are accumulated. Onsets before the grid start are clipped to its first sample, as in nilearn.</summary>
let sampleCondition (condition: Condition) (highResolution: float[]) : float[] =
    let tmax = highResolution.Length
    let steps = Array.zeroCreate tmax
    let n = condition.Onsets.Length

    let tOn =
        Array.init n (fun e -> min (searchSorted highResolution condition.Onsets[e]) (tmax - 1))
    // nilearn adds every onset before it subtracts any end; the same order gives the same rounding.
    for e in 0 .. n - 1 do
        steps[tOn[e]] <- steps[tOn[e]] + condition.Amplitudes[e]

    for e in 0 .. n - 1 do
        let tOff =
            min (searchSorted highResolution (condition.Onsets[e] + condition.Durations[e])) (tmax - 1)

        let tOff = if tOff < tmax - 1 && tOff = tOn[e] then tOff + 1 else tOff
        steps[tOff] <- steps[tOff] - condition.Amplitudes[e]

    let mutable acc = 0.0

    steps
    |> Array.map (fun s ->
        acc <- acc + s
        acc)

/// np.convolve(signal, kernel)[:signal.Length].
let internal convolveTruncated (signal: float[]) (kernel: float[]) =
    // out[k] = Σ_j signal[k − j]·kernel[j] is a dot product of a signal window with the reversed kernel; the SIMD
    // dot changes the summation order only (differences ~1e-16 relative, far inside the parity tolerances) and is
    // several times faster than the scalar loop on long runs.
    let m = kernel.Length
    let reversed = Array.rev kernel

    Array.init signal.Length (fun k ->
        let jmax = min k (m - 1)
        TensorPrimitives.Dot(ReadOnlySpan(signal, k - jmax, jmax + 1), ReadOnlySpan(reversed, m - 1 - jmax, jmax + 1)))

/// scipy.interpolate.interp1d(x, y)(xNew), linear, with scipy's index clipping and slope form.
let internal interpolate (x: float[]) (y: float[]) (xNew: float[]) =
    xNew
    |> Array.map (fun v ->
        if v < x[0] || v > x[x.Length - 1] then
            invalidArg (nameof xNew) $"{v} is outside the interpolation range [{x[0]}, {x[x.Length - 1]}]"

        let hi = searchSorted x v |> max 1 |> min (x.Length - 1)
        let lo = hi - 1
        let slope = (y[hi] - y[lo]) / (x[hi] - x[lo])
        slope * (v - x[lo]) + y[lo])

/// <summary>Orthogonalises each column against the preceding ones in column order (nilearn <c>_orthogonalize</c>):
/// column i −= (column i · X[:, :i]) · pinv(X[:, :i]). Columns are not normalised. Returns new columns.</summary>
let orthogonalize (columns: float[][]) : float[][] =
    let out = columns |> Array.map Array.copy

    for i in 1 .. out.Length - 1 do
        let previous = Matrix<float>.Build.DenseOfColumnArrays(out[0 .. i - 1])
        let xi = Vector<float>.Build.DenseOfArray out[i]
        let projection = (previous.TransposeThisAndMultiply xi) * Numerics.pinvMatrix previous
        out[i] <- (xi - projection).ToArray()

    out

/// <summary>nilearn's t_r inside <c>compute_regressor</c>: the smallest difference between frame times.</summary>
let minimalTR (frameTimes: float[]) : float =
    Array.pairwise frameTimes |> Array.map (fun (a, b) -> b - a) |> Array.min

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
let computeRegressor
    (model: HrfModel)
    (frameTimes: float[])
    (oversampling: int)
    (minOnset: float)
    (condition: Condition)
    : float[][] =
    if oversampling < 1 then
        invalidArg (nameof oversampling) $"oversampling must be ≥ 1, got {oversampling}"

    if
        condition.Durations.Length <> condition.Onsets.Length
        || condition.Amplitudes.Length <> condition.Onsets.Length
    then
        invalidArg (nameof condition) "onsets, durations and amplitudes differ in length"

    let tr = minimalTR frameTimes
    let hrTimes = highResolutionTimes frameTimes oversampling minOnset
    let hr = sampleCondition condition hrTimes

    let convolved =
        kernels model tr oversampling |> List.map (convolveTruncated hr) |> Array.ofList

    match model with
    | Fir _ when oversampling > 1 ->
        let times = hrTimes[.. hrTimes.Length - oversampling]

        convolved
        |> Array.map (fun c -> interpolate times c[oversampling - 1 ..] frameTimes)
    | Fir _ -> convolved |> Array.map (fun c -> interpolate hrTimes c frameTimes)
    | _ ->
        convolved
        |> Array.map (fun c -> interpolate hrTimes c frameTimes)
        |> orthogonalize
