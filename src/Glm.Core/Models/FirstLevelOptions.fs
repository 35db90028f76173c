namespace FmriGlm.Core

/// <summary>Which voxels a first-level model analyses (nilearn <c>mask_img</c>).</summary>
type MaskSource =
    /// <summary>nilearn <c>None</c>: <c>compute_epi_mask</c> on the mean of the first run (NiftiMasker,
    /// mask_strategy "epi"), as FirstLevelModel fits its masker on <c>run_imgs[0]</c>.</summary>
    | ComputeEpiMask
    /// <summary>nilearn <c>False</c>: every voxel of the grid.</summary>
    | NoMask
    /// <summary>A mask image file on the runs' grid (non-zero = in the mask).</summary>
    | MaskFile of path: string
    /// <summary>A mask over the runs' grid, Fortran order (true = in the mask).</summary>
    | MaskArray of mask: bool[]

/// <summary>nilearn's <c>signal_scaling</c>: what <c>mean_scaling</c> divides each voxel's series by.</summary>
type SignalScaling =
    /// <summary><c>0</c> (default): each voxel by its own mean over time, <c>100·(Y/max(mean, 1) − 1)</c>.</summary>
    | ScaleVoxelMeans
    /// <summary><c>(0, 1)</c>: every voxel by the grand mean of the run.</summary>
    | ScaleGrandMean
    /// <summary><c>False</c>: the data stay in raw units.</summary>
    | NoScaling

/// <summary>Settings of a first-level model; names and defaults are nilearn's <c>FirstLevelModel</c>'s.</summary>
[<NoEquality; NoComparison>]
type FirstLevelOptions =
    {
        /// <summary>Repetition time in seconds (nilearn <c>t_r</c>); needed to build designs from events.</summary>
        TR: float option
        /// <summary>Fraction of the TR at which the model is sampled (nilearn <c>slice_time_ref</c>, default 0).</summary>
        SliceTimeRef: float
        /// <summary>HRF model (nilearn <c>hrf_model</c>, default glover; <c>fir_delays</c> live in <c>Fir</c>).</summary>
        HrfModel: Hrf.HrfModel
        /// <summary>Drift model with its <c>high_pass</c> (Hz) or <c>drift_order</c> (default cosine, 0.01 Hz).</summary>
        DriftModel: DriftModel
        /// <summary>Start of the oversampled grid before the first scan, in seconds (nilearn <c>min_onset</c>, −24).</summary>
        MinOnset: float
        /// <summary>Mask (nilearn <c>mask_img</c>, default None = computed).</summary>
        Mask: MaskSource
        /// <summary>Gaussian smoothing FWHM in mm, applied to each volume before masking (nilearn
        /// <c>smoothing_fwhm</c>, default None).</summary>
        SmoothingFwhm: float option
        /// <summary>Signal scaling (nilearn <c>signal_scaling</c>, default 0).</summary>
        SignalScaling: SignalScaling
        /// <summary>nilearn <c>standardize</c>: accepted and ignored, since nilearn 0.13.1's fit resets it to False
        /// for every accepted signal_scaling (see docs/first-level.md).</summary>
        Standardize: bool
        /// <summary>Noise model (nilearn <c>noise_model</c>, default "ar1").</summary>
        NoiseModel: NoiseModel
        /// <summary>AR(1) bins / AR(p) clusters (nilearn <c>fit(bins=100)</c>).</summary>
        Bins: int
        /// <summary>Seed of the AR(p ≥ 2) clustering (nilearn <c>random_state</c>).</summary>
        RandomState: int
        /// <summary>Drop residuals, predicted values and R² (nilearn <c>minimize_memory</c>, default true).</summary>
        MinimizeMemory: bool
        /// <summary>Threads (nilearn <c>n_jobs</c>); results do not depend on it.</summary>
        Threads: int
    }

/// <summary>The BOLD data of one run: a 4D NIfTI file (streamed) or volumes in memory.</summary>
type BoldSource =
    /// <summary>A 4D .nii or .nii.gz file.</summary>
    | BoldFile of path: string
    /// <summary>Volumes in memory: grid, 4×4 affine, and one float32 array per scan (Fortran order).</summary>
    | BoldVolumes of shape: GridShape * affine: float[,] * volumes: float32[][]

/// <summary>One run's inputs (nilearn fit's <c>run_imgs[i]</c>, <c>events[i]</c>, <c>confounds[i]</c>,
/// <c>design_matrices[i]</c>, <c>sample_masks[i]</c>).</summary>
[<NoEquality; NoComparison>]
type RunInput =
    {
        /// <summary>The BOLD series.</summary>
        Bold: BoldSource
        /// <summary>The paradigm; needs <c>TR</c>. Ignored when <c>DesignMatrix</c> is given.</summary>
        Events: Events option
        /// <summary>Confound names and values (scans × confounds), added to the design after the conditions.</summary>
        Confounds: (string[] * float[,]) option
        /// <summary>A design given directly (one row per scan); events and confounds are then not used.</summary>
        DesignMatrix: DesignMatrix option
        /// <summary>Indices of the scans kept (nilearn <c>sample_masks</c>, scrubbing); None keeps all.</summary>
        SampleMask: int[] option
    }
