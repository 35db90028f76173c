module FmriGlm.Core.Hrf

open System
open MathNet.Numerics
open MathNet.Numerics.LinearAlgebra
open System.Numerics.Tensors

type HrfFunction = float -> int -> float -> float -> float[]

[<NoEquality; NoComparison>]
type HrfModel =
    | Spm
    | SpmDerivative
    | SpmDerivativeDispersion
    | Glover
    | GloverDerivative
    | GloverDerivativeDispersion
    | Fir of delays: int[]
    | Custom of name: string * kernel: HrfFunction
    | NoHrf

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

let spmKernel (tr: float) (oversampling: int) (timeLength: float) (onset: float) : float[] =
    gammaDifference tr oversampling timeLength onset 6.0 16.0 1.0 1.0 0.167

let gloverKernel (tr: float) (oversampling: int) (timeLength: float) (onset: float) : float[] =
    gammaDifference tr oversampling timeLength onset 6.0 12.0 0.9 0.9 0.48

let private timeDerivative kernel tr oversampling timeLength onset =
    // nilearn's finite difference with a 0.1 s onset step: (h(onset) − h(onset + 0.1)) / 0.1.
    let d = 0.1

    Array.map2
        (fun a b -> 1.0 / d * (a - b))
        (kernel tr oversampling timeLength onset)
        (kernel tr oversampling timeLength (onset + d))

let spmTimeDerivative (tr: float) (oversampling: int) (timeLength: float) (onset: float) : float[] =
    timeDerivative spmKernel tr oversampling timeLength onset

let gloverTimeDerivative (tr: float) (oversampling: int) (timeLength: float) (onset: float) : float[] =
    timeDerivative gloverKernel tr oversampling timeLength onset

let spmDispersionDerivative (tr: float) (oversampling: int) (timeLength: float) (onset: float) : float[] =
    let dd = 0.01

    Array.map2
        (fun a b -> 1.0 / dd * (-a + b))
        (gammaDifference tr oversampling timeLength onset 6.0 16.0 (1.0 + dd) 1.0 0.167)
        (gammaDifference tr oversampling timeLength onset 6.0 16.0 1.0 1.0 0.167)

let gloverDispersionDerivative (tr: float) (oversampling: int) (timeLength: float) (onset: float) : float[] =
    let dd = 0.01

    Array.map2
        (fun a b -> 1.0 / dd * (-a + b))
        (gammaDifference tr oversampling timeLength onset 6.0 12.0 (0.9 + dd) 1.0 0.48)
        (gammaDifference tr oversampling timeLength onset 6.0 12.0 0.9 1.0 0.48)

/// <summary>The kernels of a model at t_r and oversampling, time_length 32 s and onset 0 (nilearn
/// <c>_hrf_kernel</c>). FIR: delay d gives d·oversampling zeros then oversampling samples of 1/oversampling;
/// none: a unit impulse followed by oversampling − 1 zeros.</summary>
let private kernels (model: HrfModel) (tr: float) (oversampling: int) : float[] list =
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

type Condition =
    {
        Onsets: float[]
        Durations: float[]
        Amplitudes: float[]
    }

/// numpy.searchsorted(sorted, v, side='left'): the first index whose value is ≥ v.
let private searchSorted (sorted: float[]) (v: float) =
    let mutable lo = 0
    let mutable hi = sorted.Length

    while lo < hi do
        let mid = (lo + hi) / 2
        if sorted[mid] < v then lo <- mid + 1 else hi <- mid

    lo

/// <summary>The oversampled grid of nilearn's <c>_sample_condition</c>: linspace(min + min_onset,
/// max·(1 + 1/(n − 1)), rint((n − 1)/(max − min)·(max·(1 + 1/(n − 1)) − min − min_onset)·oversampling + 1)).</summary>
let private highResolutionTimes (frameTimes: float[]) (oversampling: int) (minOnset: float) : float[] =
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
let private sampleCondition (condition: Condition) (highResolution: float[]) : float[] =
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
let private convolveTruncated (signal: float[]) (kernel: float[]) =
    // out[k] = Σ_j signal[k − j]·kernel[j] is a dot product of a signal window with the reversed kernel; the SIMD
    // dot changes the summation order only (differences ~1e-16 relative, far inside the parity tolerances) and is
    // several times faster than the scalar loop on long runs.
    let m = kernel.Length
    let reversed = Array.rev kernel

    Array.init signal.Length (fun k ->
        let jmax = min k (m - 1)
        TensorPrimitives.Dot(ReadOnlySpan(signal, k - jmax, jmax + 1), ReadOnlySpan(reversed, m - 1 - jmax, jmax + 1)))

/// scipy.interpolate.interp1d(x, y)(xNew), linear, with scipy's index clipping and slope form.
let private interpolate (x: float[]) (y: float[]) (xNew: float[]) =
    xNew
    |> Array.map (fun v ->
        if v < x[0] || v > x[x.Length - 1] then
            invalidArg (nameof xNew) $"{v} is outside the interpolation range [{x[0]}, {x[x.Length - 1]}]"

        let hi = searchSorted x v |> max 1 |> min (x.Length - 1)
        let lo = hi - 1
        let slope = (y[hi] - y[lo]) / (x[hi] - x[lo])
        slope * (v - x[lo]) + y[lo])

let orthogonalize (columns: float[][]) : float[][] =
    let out = columns |> Array.map Array.copy

    for i in 1 .. out.Length - 1 do
        let previous = Matrix<float>.Build.DenseOfColumnArrays(out[0 .. i - 1])
        let xi = Vector<float>.Build.DenseOfArray out[i]
        let projection = (previous.TransposeThisAndMultiply xi) * Numerics.pinvMatrix previous
        out[i] <- (xi - projection).ToArray()

    out

/// <summary>nilearn's t_r inside <c>compute_regressor</c>: the smallest difference between frame times.</summary>
let private minimalTR (frameTimes: float[]) : float =
    Array.pairwise frameTimes |> Array.map (fun (a, b) -> b - a) |> Array.min

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
