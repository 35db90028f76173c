namespace FmriGlm.Core

/// <summary>How single-trial betas are estimated.</summary>
type BetaSeriesMethod =
    /// <summary>Least squares – all (Rissman et al. 2004): one model with one regressor per trial.</summary>
    | Lsa
    /// <summary>Least squares – separate (Mumford et al. 2012): per trial, a model with that trial as one regressor,
    /// the rest of its condition as another and the other conditions as usual.</summary>
    | Lss

/// <summary>One trial of a beta series.</summary>
type BetaSeriesTrial =
    {
        /// <summary>Its condition (the events' trial_type).</summary>
        Condition: string
        /// <summary>Onset in seconds.</summary>
        Onset: float
        /// <summary>Duration in seconds.</summary>
        Duration: float
        /// <summary>Run it belongs to, 0-based.</summary>
        Run: int
        /// <summary>Its volume in the condition's 4D map: trials in run order, then onset order.</summary>
        Index: int
    }

/// <summary>Single-trial betas of every condition over the masked voxels.</summary>
[<NoEquality; NoComparison>]
type BetaSeriesResult =
    {
        /// <summary>LSA or LSS.</summary>
        Method: BetaSeriesMethod
        /// <summary>The runs' grid.</summary>
        Shape: GridShape
        /// <summary>The runs' 4×4 affine.</summary>
        Affine: float[,]
        /// <summary>The mask used, Fortran order.</summary>
        Mask: bool[]
        /// <summary>Fortran index of each masked voxel, increasing.</summary>
        MaskedIndices: int[]
        /// <summary>The conditions, in nilearn's (numpy.unique) order.</summary>
        Conditions: string[]
        /// <summary>Every trial, grouped by condition (as <c>Conditions</c>), then by <c>Index</c>.</summary>
        Trials: BetaSeriesTrial[]
        /// <summary>Per condition (as <c>Conditions</c>): trials × masked voxels, trial k's betas at
        /// <c>k·voxels ..</c>.</summary>
        Betas: float[][]
        /// <summary>What nilearn would warn about, in words.</summary>
        Warnings: string list
    }

/// <summary>Single-trial betas (beta series) of first-level runs: LSA and LSS with the settings of a first-level
/// model (<see cref="T:FmriGlm.Core.FirstLevelOptions"/>: HRF, drift, slice_time_ref, mask, smoothing, signal
/// scaling, noise model ols or ar1, confounds, sample masks). Each run's trials are fitted within their run.</summary>
module BetaSeries =

    /// <summary>The trial-wise condition name of nilearn's plot_beta_series example: <c>condition__NNN</c>, NNN the
    /// trial's 1-based number within its condition, three digits at least.</summary>
    val trialName: condition: string -> number: int -> string

    /// <summary>LSA: one first-level model (<see cref="M:FmriGlm.Core.FirstLevel.fit"/>) whose events have one
    /// condition per trial (<see cref="trialName"/>); each trial's beta is its column's.</summary>
    /// <exception cref="T:FmriGlm.Core.GlmInputException">As <see cref="lss"/>.</exception>
    val lsa: options: FirstLevelOptions -> runs: RunInput list -> BetaSeriesResult

    /// <summary>LSS: per trial, the beta of that trial in the first-level model whose events give it a condition
    /// of its own (the rest of its condition keeping its name), computed without refitting
    /// (<see cref="M:FmriGlm.Core.BetaSeriesArrays.lss"/>): the designs are built as the first level builds them,
    /// the data read, masked and scaled once.</summary>
    /// <exception cref="T:FmriGlm.Core.GlmInputException">No run; no TR; a run without events, or with a design
    /// matrix instead; a noise model other than ols or ar1; an HRF with more than one regressor per trial; an
    /// event starting after the run's last scan or ending before its modelled start; a trial whose regressor is 0
    /// over the kept scans; the first level's own input errors.</exception>
    val lss: options: FirstLevelOptions -> runs: RunInput list -> BetaSeriesResult

    /// <summary><see cref="lsa"/> or <see cref="lss"/>.</summary>
    val fit: method: BetaSeriesMethod -> options: FirstLevelOptions -> runs: RunInput list -> BetaSeriesResult

    /// <summary>A condition's betas on the grid, one volume per trial (Fortran order, 0 outside the mask).</summary>
    /// <exception cref="T:FmriGlm.Core.GlmInputException">No such condition.</exception>
    val image: result: BetaSeriesResult -> condition: string -> float[]

    /// <summary>Writes <c>&lt;condition&gt;_betas.nii.gz</c> (float64, 4D, one volume per trial) for every
    /// condition and <c>trials.tsv</c> (condition, onset, duration, run, volume_index) into <c>directory</c>,
    /// through a temporary folder beside it renamed at the end.</summary>
    /// <exception cref="T:FmriGlm.Core.GlmInputException">The directory exists and is not empty, is a file, cannot
    /// be written, or a condition name is not usable as a file name.</exception>
    val writeOutputs: directory: string -> result: BetaSeriesResult -> unit
