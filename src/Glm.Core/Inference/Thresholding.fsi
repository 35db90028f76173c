namespace FmriGlm.Core

/// <summary>The smoothness behind an FWE (random field theory) threshold.</summary>
type FweSmoothness =
    /// A given FWHM along i, j, k, in voxels: the search region is the mask (or background mask) at that FWHM.
    | FwhmVoxels of float[]
    /// The LKCs μ0..μ3 of the search region, e.g. <c>RandomFieldTheory.residualLkcs</c> of a model's residuals.
    | SearchLkcs of float[]

/// <summary>How the voxel-level threshold of <c>threshold_stats_img</c> is chosen (nilearn's
/// <c>height_control</c>).</summary>
type HeightControl =
    /// 'fpr': uncorrected, threshold = Φ⁻¹(1 − α′).
    | Fpr
    /// 'fdr': Benjamini–Hochberg over the voxels of the mask.
    | Fdr
    /// 'bonferroni': threshold = Φ⁻¹(1 − α′/n), n the number of voxels in the mask.
    | Bonferroni
    /// None in nilearn: the given <c>Threshold</c> is used as is.
    | NoControl
    /// 'fwe' (nilearn rejects it; SPM's default): the Gaussian random-field threshold with FWE p-value α′
    /// (<c>RandomFieldTheory.fweThreshold</c>).
    | Fwe of FweSmoothness

/// <summary>Options of <c>thresholdStatsImg</c>, with nilearn's names and defaults.</summary>
type ThresholdOptions =
    {
        /// Error rate (p or q value) turned into a z threshold (default 0.001).
        Alpha: float
        /// z threshold used when <c>HeightControl</c> is <c>NoControl</c> (default 3.0).
        Threshold: float
        /// How the threshold is chosen (default <c>Fpr</c>).
        HeightControl: HeightControl
        /// Clusters smaller than this many voxels are removed (default 0: none).
        ClusterThreshold: float
        /// Keep both tails, thresholding |z| with α halved (default true).
        TwoSided: bool
    }

/// <summary>A thresholded map and the z threshold that produced it.</summary>
type ThresholdResult =
    {
        /// The statistic where it survives, 0 elsewhere (Fortran order).
        Thresholded: float[]
        /// The voxel-level z threshold actually used; +∞ when FDR finds no discovery.
        Threshold: float
    }

/// <summary>A clusters-table row with its random-field FWE-corrected p-values.</summary>
type FweClusterRow =
    {
        /// The row as <c>Clusters.getClustersTable</c> gives it.
        Row: ClusterRow
        /// Voxel-level FWE p-value of the row's peak height |PeakStat| (<c>RandomFieldTheory.fwePValue</c>).
        PeakPFwe: float
        /// Cluster-level FWE p-value of the cluster's size at the cluster-forming threshold (SPM's spm_P_RF with
        /// c = 1); None on subpeak rows.
        ClusterPFwe: float option
    }

/// <summary>nilearn 0.13.1's voxel-level error control and All-Resolutions Inference (<c>nilearn.glm.thresholding</c>):
/// <c>fdr_threshold</c>, <c>threshold_stats_img</c> and <c>cluster_level_inference</c>, on arrays in NIfTI (Fortran)
/// order. Without a mask, the voxels counted are those of nilearn's background mask of the statistic map
/// (<c>NiftiMasker(mask_strategy="background")</c>).</summary>
module Thresholding =

    /// <summary>nilearn's defaults: α = 0.001, threshold 3.0, 'fpr', no cluster threshold, two-sided.</summary>
    val defaultThresholdOptions: ThresholdOptions

    /// <summary>Parses nilearn's spellings of <c>height_control</c>: "fpr", "fdr", "bonferroni", or null / "none"
    /// for no control.</summary>
    /// <exception cref="T:FmriGlm.Core.GlmInputException">Any other spelling, and "fwe" (it needs a smoothness: build
    /// <c>Fwe</c> directly).</exception>
    val parseHeightControl: text: string -> HeightControl

    /// <summary>Benjamini–Hochberg threshold on z values (nilearn <c>fdr_threshold</c>).</summary>
    /// <remarks>With z sorted decreasingly and p₍ₖ₎ = Φ(−z₍ₖ₎), the last k with p₍ₖ₎ &lt; α·k/m gives z₍ₖ₎ − 1e-12
    /// (Benjamini &amp; Hochberg 1995, J. R. Stat. Soc. B 57:289–300). NaNs sort last and count in m.</remarks>
    /// <returns>The threshold; +∞ when no value survives (or no values).</returns>
    /// <exception cref="T:FmriGlm.Core.GlmInputException">α is not in [0, 1].</exception>
    val fdrThreshold: alpha: float -> zValues: float[] -> float

    /// <summary>The voxel-level threshold nilearn's <c>threshold_stats_img</c> would use, without thresholding.</summary>
    /// <param name="options">α, height control, threshold and sidedness.</param>
    /// <param name="maskedStats">The statistic at the voxels of the mask.</param>
    /// <exception cref="T:FmriGlm.Core.GlmInputException">Fwe with a FWHM (it needs the mask's geometry: use
    /// <c>thresholdStatsImg</c>).</exception>
    val statsThreshold: options: ThresholdOptions -> maskedStats: float[] -> float

    /// <summary>The LKCs of the search region an FWE threshold uses (the mask, or the background mask, at the given
    /// FWHM; or the given LKCs) and the number of voxels in that mask, or None when the height control is not FWE.</summary>
    val fweLkcs: shape: GridShape -> options: ThresholdOptions -> mask: bool[] option -> statMap: float[] -> (float[] * int) option

    /// <summary>nilearn 0.13.1's <c>threshold_stats_img</c> on a 3D statistic map.</summary>
    /// <remarks>α is halved when two-sided. 'fpr': Φ⁻¹(1 − α′); 'fdr': <c>fdrThreshold</c> α′ of the (absolute,
    /// when two-sided) statistic in the mask; 'bonferroni': Φ⁻¹(1 − α′/n) with n voxels in the mask; none: the given
    /// threshold. The map is then thresholded by <c>Clusters.thresholdImg</c> with the given mask (no mask: the
    /// whole grid is thresholded, although the background mask chose the voxels counted).</remarks>
    /// <param name="shape">Grid of the map.</param>
    /// <param name="options">nilearn's parameters; see <c>defaultThresholdOptions</c>.</param>
    /// <param name="mask">Voxels of interest (Fortran order), or None for nilearn's background mask.</param>
    /// <param name="statMap">The z map, Fortran order.</param>
    /// <exception cref="T:FmriGlm.Core.GlmInputException">α is not in [0, 1], or the threshold is unusable.</exception>
    val thresholdStatsImg: shape: GridShape -> options: ThresholdOptions -> mask: bool[] option -> statMap: float[] -> ThresholdResult

    /// <summary>The Hommel value h of the z values: the size of the largest set of p values the Hommel procedure
    /// cannot reject at α (nilearn <c>_compute_hommel_value</c>), the bound of All-Resolutions Inference.</summary>
    /// <remarks>nilearn's shortcut: with p sorted increasingly, n values if p₍₁₎ &gt; α, 0 if p₍ₙ₎ &lt; α, else
    /// min(n, trunc(α / maxₖ (α − p₍ₖ₎)/(n − k))) over k &lt; n; one value gives 1 if p &gt; α else 0.</remarks>
    /// <exception cref="T:FmriGlm.Core.GlmInputException">α is not in [0, 1].</exception>
    val hommelValue: alpha: float -> zValues: float[] -> int

    /// <summary>Lower bound on the proportion of true discoveries among the z values of one cluster (nilearn
    /// <c>_true_positive_fraction</c>; Rosenblatt et al. 2018, NeuroImage 181:786–796).</summary>
    /// <remarks>With cₖ = ⌈h·p₍ₖ₎/α⌉, the bound is max over distinct c of (1 − c + #{k: cₖ ≤ c}) / n, floored at 0.
    /// nilearn's formula gives (n + 1)/n &gt; 1 when h = 0 (every voxel of the mask has p &lt; α); kept for parity.</remarks>
    /// <exception cref="System.ArgumentException">No z value (a cluster has at least one voxel).</exception>
    val truePositiveFraction: hommel: int -> alpha: float -> zValues: float[] -> float

    /// <summary>nilearn 0.13.1's <c>cluster_level_inference</c> (All-Resolutions Inference): the proportion of true
    /// discoveries of every supra-threshold cluster, at each voxel.</summary>
    /// <remarks>The Hommel value is computed once over the mask. Thresholds are processed in increasing order;
    /// at each, the map (0 outside the mask) is labelled with 6-connectivity at z &gt; t and every cluster's voxels
    /// in the mask get its proportion, so higher thresholds overwrite lower ones. Voxels in no cluster get 0.</remarks>
    /// <param name="shape">Grid of the map.</param>
    /// <param name="thresholds">Cluster-forming z thresholds (nilearn's default [3.0]).</param>
    /// <param name="alpha">Level of the bound (nilearn's default 0.05).</param>
    /// <param name="mask">Voxels of interest, or None for nilearn's background mask of the map.</param>
    /// <param name="statMap">The z map, Fortran order.</param>
    /// <returns>The proportion map, Fortran order, 0 outside the mask.</returns>
    /// <exception cref="T:FmriGlm.Core.GlmInputException">α is not in [0, 1], a threshold is NaN, or the map has a
    /// NaN inside the mask.</exception>
    val clusterLevelInference:
        shape: GridShape -> thresholds: float list -> alpha: float -> mask: bool[] option -> statMap: float[] -> float[]

    /// <summary>FWE-corrected peak and cluster p-values for the rows of a clusters table of a z map (Gaussian field).</summary>
    /// <remarks>A cluster's size is its voxel count in its tail's label map, converted to the units of μ3 as
    /// k·μ3/searchVoxels (SPM's resels per voxel, averaged over the search region).</remarks>
    /// <param name="lkcs">LKCs μ0..μ3 of the search region (e.g. <c>fweLkcs</c>).</param>
    /// <param name="searchVoxels">Voxels in the search region.</param>
    /// <param name="statThreshold">The cluster-forming z threshold the table was made with.</param>
    /// <param name="table">The table, with its label maps.</param>
    /// <exception cref="T:FmriGlm.Core.GlmInputException">searchVoxels is not positive.</exception>
    val fweClustersTable: lkcs: float[] -> searchVoxels: int -> statThreshold: float -> table: ClustersTable -> FweClusterRow list

    /// <summary><c>Clusters.toTsv</c> with two more columns, <c>Peak p FWE</c> and <c>Cluster p FWE</c> (empty on
    /// subpeak rows).</summary>
    val fweClustersToTsv: rows: FweClusterRow list -> string
