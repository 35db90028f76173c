namespace FmriGlm.Core

/// <summary>Single-trial betas on arrays (beta series): LSA (Rissman et al. 2004) and LSS (Mumford et al. 2012)
/// for the trials of ONE condition, the rest of the design given as nuisance columns (the other conditions,
/// confounds, drifts and constant). The run- and image-level calls are in <c>BetaSeries</c>.</summary>
module BetaSeriesArrays =

    /// <summary>LSA: one GLM of <c>[trials | nuisance]</c> (<see cref="M:FmriGlm.Core.Regression.fit"/>), the betas of
    /// the trial columns.</summary>
    /// <param name="options">Noise model, bins, threads as for <see cref="M:FmriGlm.Core.Regression.fit"/>.</param>
    /// <param name="trials">One regressor per trial, scans × trials.</param>
    /// <param name="nuisance">The other columns of the design, scans × columns.</param>
    /// <param name="data">Y, scans × voxels column-major.</param>
    /// <returns>Betas, trials × voxels column-major: voxel v's trial betas at <c>v·trials ..</c>.</returns>
    /// <exception cref="System.ArgumentException">Shapes disagree.</exception>
    val lsa: options: GlmOptions -> trials: float[,] -> nuisance: float[,] -> data: VoxelData -> float[]

    /// <summary>LSS: for each trial t, the beta of t in the GLM of <c>[T_t | Σ_{s≠t} T_s | nuisance]</c> (the trial,
    /// the rest of its condition as one regressor, the nuisance), with the noise model fitted as
    /// <see cref="M:FmriGlm.Core.Regression.fit"/> fits that design, without refitting it: the nuisance is projected
    /// out once per voxel, each trial's model is then a two-column problem in the projected space. For AR(1)
    /// (nilearn "ar1") each trial's OLS residuals give the voxel's own AR(1) estimate and bin, as a separate fit would,
    /// and the whitened fit at that bin is solved from products shared by every trial (W'W is tridiagonal, so the
    /// whitened inner products follow from u'v, u'(L+L')v and the last scan's product). The result equals the
    /// separate fits' betas to rounding; for AR(1) it needs a constant in the span of the design (every
    /// first-level design has one), as nilearn centres residuals on their grand mean, which is then 0.</summary>
    /// <param name="options">Noise model <c>Ols</c> or <c>Ar 1</c>, bins, threads; ScaleFirstScan false.</param>
    /// <param name="trials">One regressor per trial of the condition, scans × trials (one trial: no rest column).</param>
    /// <param name="nuisance">The other columns of the design, scans × columns (at least one).</param>
    /// <param name="data">Y, scans × voxels column-major.</param>
    /// <returns>Betas, trials × voxels column-major: voxel v's trial betas at <c>v·trials ..</c>.</returns>
    /// <exception cref="System.ArgumentException">Shapes disagree; another noise model; ScaleFirstScan; for AR(1)
    /// no constant in the design's span.</exception>
    val lss: options: GlmOptions -> trials: float[,] -> nuisance: float[,] -> data: VoxelData -> float[]

    /// <summary>As <see cref="lss"/> on the first <c>voxels</c> series of data, voxel-major or time-major (scan t's
    /// values at <c>t·voxels</c>, as first-level models read runs).</summary>
    val internal lssPrefix:
        options: GlmOptions ->
        trials: float[,] ->
        nuisance: float[,] ->
        data: VoxelData ->
        timeMajor: bool ->
        voxels: int ->
            float[]
