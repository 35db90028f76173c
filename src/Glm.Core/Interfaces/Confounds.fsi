namespace FmriGlm.Core

/// <summary>A noise component of nilearn's <c>load_confounds</c> strategy.</summary>
type ConfoundComponent =
    /// <summary>"motion": the six head-motion parameters, expanded by <c>Motion</c>.</summary>
    | Motion
    /// <summary>"high_pass": fMRIPrep's discrete cosine drift regressors (<c>cosineXX</c>).</summary>
    | HighPass
    /// <summary>"wm_csf": mean white-matter and CSF signals, expanded by <c>WmCsf</c>.</summary>
    | WmCsf
    /// <summary>"global_signal": the global signal, expanded by <c>GlobalSignal</c>.</summary>
    | GlobalSignal
    /// <summary>"compcor": CompCor components chosen from the JSON sidecar; needs <c>HighPass</c>.</summary>
    | CompCor
    /// <summary>"ica_aroma": ICA-AROMA noise components ("basic") or nothing for an already denoised image ("full").</summary>
    | IcaAroma
    /// <summary>"scrub": volumes with high framewise displacement or std DVARS left out of the sample mask.</summary>
    | Scrub
    /// <summary>"non_steady_state": accepted with a warning; non-steady-state volumes are always left out.</summary>
    | NonSteadyState

/// <summary>How a motion, wm_csf or global_signal component is expanded (nilearn's "basic", "power2",
/// "derivatives", "full").</summary>
type ConfoundExpansion =
    /// <summary>"basic": the parameters themselves.</summary>
    | Basic
    /// <summary>"power2": the parameters and their squares (<c>_power2</c>).</summary>
    | Power2
    /// <summary>"derivatives": the parameters and their temporal derivatives (<c>_derivative1</c>).</summary>
    | Derivatives
    /// <summary>"full": parameters, derivatives, squares and squared derivatives.</summary>
    | Full

/// <summary>nilearn's <c>compcor</c> choice: which CompCor components (by method and anatomical mask).</summary>
type CompCorMethod =
    /// <summary>"anat_combined": aCompCor on the combined WM+CSF mask.</summary>
    | AnatCombined
    /// <summary>"anat_separated": aCompCor on the WM and the CSF masks, each counted separately.</summary>
    | AnatSeparated
    /// <summary>"temporal": tCompCor.</summary>
    | Temporal
    /// <summary>"temporal_anat_combined": tCompCor and aCompCor on the combined mask.</summary>
    | TemporalAnatCombined
    /// <summary>"temporal_anat_separated": tCompCor and aCompCor on the WM and CSF masks.</summary>
    | TemporalAnatSeparated

/// <summary>nilearn's <c>n_compcor</c>: every component the sidecar lists, or the first n per mask.</summary>
type CompCorCount =
    /// <summary>"all".</summary>
    | AllComponents
    /// <summary>At most this many components per method and mask.</summary>
    | FirstComponents of count: int

/// <summary>nilearn's <c>ica_aroma</c> choice.</summary>
type IcaAromaMode =
    /// <summary>"full": the image is fMRIPrep's <c>desc-smoothAROMAnonaggr_bold</c>; no regressor is added.</summary>
    | AromaFull
    /// <summary>"basic": the <c>aroma_motion_XX</c> noise components are added.</summary>
    | AromaBasic

/// <summary>Parameters of <c>load_confounds</c>, with nilearn 0.13.1's names and defaults. A parameter is used
/// only when its component is in <c>Strategy</c>.</summary>
type ConfoundsOptions =
    {
        /// <summary>Noise components (default motion, high_pass, wm_csf).</summary>
        Strategy: ConfoundComponent list
        /// <summary><c>motion</c> (default full).</summary>
        Motion: ConfoundExpansion
        /// <summary><c>scrub</c>: kept segments shorter than this many volumes are also left out (default 5; 0: none).</summary>
        Scrub: int
        /// <summary><c>fd_threshold</c> in mm (default 0.5).</summary>
        FdThreshold: float
        /// <summary><c>std_dvars_threshold</c> (default 1.5).</summary>
        StdDvarsThreshold: float
        /// <summary><c>wm_csf</c> (default basic).</summary>
        WmCsf: ConfoundExpansion
        /// <summary><c>global_signal</c> (default basic).</summary>
        GlobalSignal: ConfoundExpansion
        /// <summary><c>compcor</c> (default anat_combined).</summary>
        Compcor: CompCorMethod
        /// <summary><c>n_compcor</c> (default all).</summary>
        NCompcor: CompCorCount
        /// <summary><c>ica_aroma</c> (default full).</summary>
        IcaAroma: IcaAromaMode
        /// <summary><c>demean</c>: subtract each column's mean over the kept volumes (default true).</summary>
        Demean: bool
    }

/// <summary>A preset of nilearn's <c>load_confounds_strategy</c> (<c>denoise_strategy</c>).</summary>
type DenoiseStrategy =
    /// <summary>"simple": high_pass, motion full, wm_csf basic.</summary>
    | SimpleStrategy
    /// <summary>"scrubbing": high_pass, motion full, wm_csf full, scrub 5, fd 0.5, std_dvars 1.5.</summary>
    | ScrubbingStrategy
    /// <summary>"compcor": high_pass, motion full, compcor anat_combined, n_compcor all.</summary>
    | CompCorStrategy
    /// <summary>"ica_aroma": high_pass, wm_csf basic, ica_aroma full.</summary>
    | IcaAromaStrategy

/// <summary>The keyword arguments a user passes to <c>load_confounds_strategy</c>; None keeps the preset's value.
/// A value the preset does not accept is ignored with nilearn's warning; a <c>GlobalSignal</c> adds the
/// global_signal component.</summary>
type DenoiseOverrides =
    {
        /// <summary><c>motion</c>.</summary>
        Motion: ConfoundExpansion option
        /// <summary><c>wm_csf</c>.</summary>
        WmCsf: ConfoundExpansion option
        /// <summary><c>global_signal</c>: adds global_signal to the preset's strategy.</summary>
        GlobalSignal: ConfoundExpansion option
        /// <summary><c>scrub</c>.</summary>
        Scrub: int option
        /// <summary><c>fd_threshold</c>.</summary>
        FdThreshold: float option
        /// <summary><c>std_dvars_threshold</c>.</summary>
        StdDvarsThreshold: float option
        /// <summary><c>compcor</c>.</summary>
        Compcor: CompCorMethod option
        /// <summary><c>n_compcor</c>.</summary>
        NCompcor: CompCorCount option
        /// <summary><c>ica_aroma</c>: no preset accepts it (ica_aroma is always "full"); warned about and ignored.</summary>
        IcaAroma: IcaAromaMode option
        /// <summary><c>demean</c>.</summary>
        Demean: bool option
    }

/// <summary>What <c>load_confounds</c> returns for one image: the confounds table (every volume, also the left-out
/// ones) and the sample mask.</summary>
[<NoEquality; NoComparison>]
type LoadedConfounds =
    {
        /// <summary>Column names, sorted as nilearn returns them.</summary>
        Columns: string[]
        /// <summary>Values, volumes × columns.</summary>
        Values: float[,]
        /// <summary>0-based indices of the volumes kept (nilearn <c>sample_mask</c>); None when the table flags no
        /// volume at all (no non-steady-state column and no scrubbing outlier).</summary>
        SampleMask: int[] option
        /// <summary>The confounds TSV that was read.</summary>
        File: string
        /// <summary>nilearn's warnings, in words.</summary>
        Warnings: string list
    }

/// <summary>nilearn 0.13.1's fMRIPrep interface (<c>nilearn.interfaces.fmriprep.load_confounds</c> and
/// <c>load_confounds_strategy</c>): finds the confounds TSV and JSON sidecar of a preprocessed BOLD file, selects
/// the columns of a denoising strategy and builds the sample mask (non-steady-state volumes and scrubbing).</summary>
module Confounds =

    /// <summary>nilearn's defaults: strategy (motion, high_pass, wm_csf), motion full, scrub 5, fd_threshold 0.5,
    /// std_dvars_threshold 1.5, wm_csf basic, global_signal basic, compcor anat_combined, n_compcor all,
    /// ica_aroma full, demean true.</summary>
    val defaults: ConfoundsOptions

    /// <summary>No override: the preset as nilearn defines it.</summary>
    val noOverrides: DenoiseOverrides

    /// <summary>Parses a strategy component as nilearn spells it ("motion", "high_pass", "wm_csf", "global_signal",
    /// "compcor", "ica_aroma", "scrub", "non_steady_state").</summary>
    /// <exception cref="T:FmriGlm.Core.GlmInputException">Any other name (input "strategy").</exception>
    val parseComponent: name: string -> ConfoundComponent

    /// <summary>Parses "basic", "power2", "derivatives" or "full" given to the named option.</summary>
    /// <exception cref="T:FmriGlm.Core.GlmInputException">Any other value (input: the option).</exception>
    val parseExpansion: option: string -> value: string -> ConfoundExpansion

    /// <summary>Parses a <c>compcor</c> value ("anat_combined", "anat_separated", "temporal",
    /// "temporal_anat_combined", "temporal_anat_separated").</summary>
    /// <exception cref="T:FmriGlm.Core.GlmInputException">Any other value (input "compcor").</exception>
    val parseCompCor: value: string -> CompCorMethod

    /// <summary>Parses an <c>n_compcor</c> value: "all" or a non-negative integer.</summary>
    /// <exception cref="T:FmriGlm.Core.GlmInputException">Any other value (input "n_compcor").</exception>
    val parseCompCorCount: value: string -> CompCorCount

    /// <summary>Parses an <c>ica_aroma</c> value ("full" or "basic").</summary>
    /// <exception cref="T:FmriGlm.Core.GlmInputException">Any other value (input "ica_aroma").</exception>
    val parseIcaAroma: value: string -> IcaAromaMode

    /// <summary>Parses a <c>denoise_strategy</c> ("simple", "scrubbing", "compcor", "ica_aroma").</summary>
    /// <exception cref="T:FmriGlm.Core.GlmInputException">Any other value (input "denoise_strategy").</exception>
    val parseDenoiseStrategy: value: string -> DenoiseStrategy

    /// <summary>The nilearn name of a component ("high_pass", …).</summary>
    val componentName: ConfoundComponent -> string

    /// <summary>The confounds TSV of a BOLD file, found as nilearn finds it: in the image's folder, the names made
    /// of every subset of the image's BIDS entities that keeps <c>desc-confounds</c>, ending
    /// <c>_timeseries.tsv</c> (fMRIPrep ≥ 20.2) or <c>_regressors.tsv</c>; exactly one must exist.</summary>
    /// <exception cref="T:FmriGlm.Core.GlmInputException">None or several exist (input: the BOLD path).</exception>
    val findConfoundsFile: boldPath: string -> string

    /// <summary>Volumes flagged by scrubbing (nilearn's <c>_load_scrub</c>): framewise displacement above
    /// <paramref name="fdThreshold"/> or std DVARS above <paramref name="stdDvarsThreshold"/> (NaN flags nothing);
    /// then, when <paramref name="scrub"/> &gt; 0 and some volume is flagged, the volumes of every kept segment
    /// shorter than <paramref name="scrub"/> volumes.</summary>
    /// <returns>Sorted 0-based indices of the flagged volumes.</returns>
    val scrubOutliers:
        framewiseDisplacement: float[] -> stdDvars: float[] -> fdThreshold: float -> stdDvarsThreshold: float ->
        scrub: int -> int[]

    /// <summary><c>load_confounds(img_files, ...)</c> for one image. The table keeps every volume; non-steady-state
    /// volumes (<c>non_steady_state_outlierXX</c> columns) and scrubbing outliers are left out of the sample mask
    /// only. NaN on the first row are replaced by the second row's values; with <c>Demean</c>, each column's mean
    /// over the kept volumes is subtracted.</summary>
    /// <exception cref="T:FmriGlm.Core.GlmInputException">A strategy nilearn rejects (compcor without high_pass), a
    /// BOLD name the strategy cannot use, a missing or ambiguous confounds file, a missing JSON sidecar for
    /// anatomical CompCor, columns the strategy needs that the table lacks (naming the file and columns), an
    /// fMRIPrep &lt; 1.2 table.</exception>
    val load: boldPath: string -> options: ConfoundsOptions -> LoadedConfounds

    /// <summary>The <c>load_confounds</c> parameters of a <c>load_confounds_strategy</c> preset with the user's
    /// overrides, and nilearn's warning for overrides the preset does not accept.</summary>
    val presetOptions: strategy: DenoiseStrategy -> overrides: DenoiseOverrides -> ConfoundsOptions * string list

    /// <summary><c>load_confounds_strategy(img_files, denoise_strategy, **kwargs)</c> for one image.</summary>
    /// <exception cref="T:FmriGlm.Core.GlmInputException">As <see cref="load"/>.</exception>
    val loadStrategy: boldPath: string -> strategy: DenoiseStrategy -> overrides: DenoiseOverrides -> LoadedConfounds

    /// <summary>A first-level run with these confounds and their sample mask (nilearn's
    /// <c>fit(run_imgs, events, confounds, sample_masks)</c> with <c>load_confounds</c>' two outputs).</summary>
    val runInput: bold: BoldSource -> events: Events option -> confounds: LoadedConfounds -> RunInput

    /// <summary>The table as TSV text: a header, one row per volume, round-trip numbers, "n/a" for NaN (as
    /// fMRIPrep writes it), "\n" line ends.</summary>
    val toTsv: confounds: LoadedConfounds -> string

    /// <summary>The sample mask as text: one kept index per line, or nothing when there is no sample mask.</summary>
    val sampleMaskText: confounds: LoadedConfounds -> string
