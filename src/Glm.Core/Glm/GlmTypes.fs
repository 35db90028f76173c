namespace FmriGlm.Core

open System

/// <summary>Noise model of the GLM (nilearn <c>run_glm(noise_model=...)</c>).</summary>
type NoiseModel =
    /// Ordinary least squares, nilearn "ols".
    | Ols
    /// nilearn "arN": AR(1) estimates truncated to a grid of <c>bins</c> levels, AR(N ≥ 2) estimates clustered
    /// with k-means into <c>bins</c> clusters; one whitened refit per level or cluster.
    | Ar of order: int
    /// AR(1) with each voxel whitened by its own, unquantised Yule-Walker estimate (not in nilearn). Costs one
    /// pseudo-inverse and a regressors × regressors covariance per voxel.
    | Ar1Exact
    /// nipy's GeneralLinearModel(model="ar1", steps=bins): ρ = Σ r_t r_{t−1} / Σ r_t² on the OLS residuals, not
    /// demeaned, truncated to the grid of <c>bins</c> levels.
    | NipyAr1
    /// AR(1) with the bias of residual autocorrelations removed (Worsley et al. 2002, NeuroImage 15:1–15): the
    /// expected lag-0 and lag-1 sums of the OLS residuals R·ε are solved for the noise's own, through traces of
    /// the residual-forming matrix R = I − X·pinv(X); then binned to <c>bins</c> levels as nilearn does. Not in
    /// nilearn: its Yule-Walker estimate on residuals is biased towards 0, so its AR(1) under-whitens.
    | Ar1BiasCorrected

/// <summary>Settings of a GLM fit; names and defaults are nilearn's where it has them.</summary>
type GlmOptions =
    {
        /// Noise model (nilearn <c>noise_model</c>, default "ar1").
        NoiseModel: NoiseModel
        /// Number of AR(1) grid levels or AR(N) clusters (nilearn <c>bins</c>, default 100).
        Bins: int
        /// Seed of the k-means clustering of AR(N ≥ 2) coefficients (nilearn <c>random_state</c>).
        RandomState: int
        /// Voxels per chunk: each chunk is copied voxel-major (voxels × scans float64) into a pooled buffer per
        /// thread, so working memory is that copy plus a few scan-length buffers per thread.
        ChunkVoxels: int
        /// Threads used (chunks run in parallel; the results do not depend on this number).
        Threads: int
        /// Keep residuals, predicted values, whitened residuals and R² (nilearn <c>minimize_memory=False</c>).
        KeepDiagnostics: bool
        /// AR(1) only: scale the first whitened scan by √(1 − ρ²) (Prais-Winsten), so that it has the innovation
        /// variance like every other scan. nilearn leaves it unscaled (false, the default, for parity).
        ScaleFirstScan: bool
    }

/// <summary>Defaults of <see cref="GlmOptions"/>.</summary>
module GlmOptions =
    /// nilearn's defaults: AR(1), 100 bins, seed 0; chunks of 256 voxels on every core; no diagnostics.
    let defaults =
        { NoiseModel = Ar 1
          Bins = 100
          RandomState = 0
          ChunkVoxels = 256
          Threads = Environment.ProcessorCount
          KeepDiagnostics = false
          ScaleFirstScan = false }

/// <summary>Voxel time series, scans × voxels, column-major: voxel v's series is
/// <c>data[v*scans .. v*scans + scans - 1]</c>.</summary>
type VoxelData =
    /// float64 values (reference parity, tests).
    | Float64 of float[]
    /// float32 values (stored BOLD data); converted to float64 one voxel at a time.
    | Float32 of float32[]

/// <summary>The model fitted to the voxels carrying one label (nilearn's RegressionResults for that label).</summary>
type LabelModel =
    {
        /// The label as nilearn spells it: str of the binned AR(1) coefficient ("0.52"), the rounded cluster
        /// centre joined by "_" for AR(N), "0.0" for OLS.
        Label: string
        /// AR coefficients of the whitening filter (empty for OLS).
        Rho: float[]
        /// pinv(Xw)·pinv(Xw)ᵀ, regressors × regressors (nilearn <c>normalized_cov_beta</c>).
        NormalizedCovariance: float[,]
    }

/// <summary>Residuals and fitted values per voxel, kept on request (nilearn <c>minimize_memory=False</c>).</summary>
type GlmDiagnostics =
    {
        /// Y − predicted, scans × voxels column-major (Y unwhitened, as nilearn).
        Residuals: float[]
        /// Whitened design · θ, scans × voxels column-major (nilearn <c>predicted</c>).
        Predicted: float[]
        /// Whitened Y − whitened design · θ, scans × voxels column-major.
        WhitenedResiduals: float[]
        /// var(predicted) / var(whitened Y) per voxel (nilearn <c>r_square</c>).
        RSquare: float[]
    }

/// <summary>A fitted GLM (nilearn run_glm's labels and results): one label per voxel, one model per label.</summary>
type GlmFit =
    {
        /// Number of scans (time points).
        Scans: int
        /// Number of voxels.
        Voxels: int
        /// Number of design columns.
        Regressors: int
        /// Index into <c>Models</c> of each voxel's label.
        Labels: int[]
        /// One model per distinct label, labels sorted as numpy.unique sorts them.
        Models: LabelModel[]
        /// θ, regressors × voxels column-major: voxel v's betas are <c>Betas[v*Regressors ..]</c>.
        Betas: float[]
        /// Residual variance per voxel: sum of squared whitened residuals / (scans − columns) (nilearn's choice).
        Dispersion: float[]
        /// Sum of squared whitened residuals per voxel (SSE).
        Sse: float[]
        /// Log likelihood per voxel with σ² = SSE / scans (nilearn <c>logL</c>).
        LogLikelihood: float[]
        /// Raw Yule-Walker AR coefficients, order × voxels column-major (empty for OLS).
        ArCoefficients: float[]
        /// Scans (nilearn <c>df_total</c>).
        DfTotal: int
        /// Numerical rank of the unwhitened design, tol = sum|X|·eps (nilearn <c>df_model</c>).
        DfModel: int
        /// DfTotal − DfModel (nilearn <c>df_residuals</c>, the contrasts' degrees of freedom).
        DfResiduals: float
        /// Residuals, predicted values and R² when asked for; None otherwise.
        Diagnostics: GlmDiagnostics option
    }

    /// <summary>The label of voxel v as nilearn spells it.</summary>
    member f.LabelOf(v: int) = f.Models[f.Labels[v]].Label
    /// <summary>Mean squared error per voxel, SSE / df_residuals (nilearn <c>MSE</c>).</summary>
    member f.Mse = f.Sse |> Array.map (fun s -> s / f.DfResiduals)
