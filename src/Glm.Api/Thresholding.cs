using Microsoft.FSharp.Collections;
using Microsoft.FSharp.Core;

namespace FmriGlm;

/// <summary>Settings of <see cref="Thresholding.ThresholdStatsImg"/>; names and defaults are nilearn's
/// (<c>nilearn.glm.threshold_stats_img</c>).</summary>
public sealed record ThresholdStatsOptions
{
    /// <summary>Error rate (p or q value) turned into a z threshold (nilearn <c>alpha</c>, default 0.001).</summary>
    public double Alpha { get; init; } = 0.001;

    /// <summary>z threshold used when <see cref="HeightControl"/> is null (nilearn <c>threshold</c>, default 3.0).</summary>
    public double Threshold { get; init; } = 3.0;

    /// <summary>"fpr" (default), "fdr", "bonferroni", "fwe" (random field theory; needs <see cref="FwhmVoxels"/> or
    /// <see cref="SearchLkcs"/>), or null for none, as nilearn spells <c>height_control</c>.</summary>
    public string? HeightControl { get; init; } = "fpr";

    /// <summary>With "fwe": the map's FWHM along i, j, k in voxels; the search region is the mask at that FWHM.</summary>
    public double[]? FwhmVoxels { get; init; }

    /// <summary>With "fwe": the LKCs μ0..μ3 of the search region (e.g. <see cref="RandomFieldTheory.ResidualLkcs"/>).</summary>
    public double[]? SearchLkcs { get; init; }

    /// <summary>Clusters smaller than this many voxels are removed (nilearn <c>cluster_threshold</c>, default 0).</summary>
    public double ClusterThreshold { get; init; }

    /// <summary>Keep both tails, thresholding |z| with alpha halved (nilearn <c>two_sided</c>, default true).</summary>
    public bool TwoSided { get; init; } = true;
}

/// <summary>A thresholded map and the z threshold that produced it (what nilearn's <c>threshold_stats_img</c>
/// returns).</summary>
/// <param name="Map">The statistic where it survives, 0 elsewhere; same order as the input map.</param>
/// <param name="Threshold">The voxel-level z threshold used; positive infinity when FDR finds no discovery.</param>
public sealed record ThresholdedMap(double[] Map, double Threshold);

/// <summary>nilearn 0.13.1's voxel-level error control and All-Resolutions Inference (<c>nilearn.glm</c>) on 3D maps
/// given as arrays in NIfTI (Fortran) order: voxel (i, j, k) at <c>i + X·(j + Y·k)</c>.</summary>
public static class Thresholding
{
    /// <summary>Benjamini–Hochberg threshold on z values (nilearn <c>fdr_threshold</c>): the z of the last sorted
    /// value with p &lt; alpha·k/n, minus 1e-12.</summary>
    /// <returns>The threshold; positive infinity when nothing survives.</returns>
    /// <exception cref="Core.GlmInputException">alpha is not in [0, 1].</exception>
    public static double FdrThreshold(IReadOnlyList<double> zValues, double alpha)
    {
        ArgumentNullException.ThrowIfNull(zValues);
        return Core.Thresholding.fdrThreshold(alpha, zValues.ToArray());
    }

    /// <summary>Thresholds a z map as nilearn's <c>threshold_stats_img</c> does and returns the threshold used.</summary>
    /// <param name="statMap">The z map, Fortran order.</param>
    /// <param name="shape">The grid: three sizes X, Y, Z.</param>
    /// <param name="options">nilearn's parameters; <c>new ThresholdStatsOptions()</c> gives its defaults.</param>
    /// <param name="mask">Voxels of interest, Fortran order; null for nilearn's background mask of the map.</param>
    /// <exception cref="Core.GlmInputException">An option has a value nilearn would reject.</exception>
    /// <exception cref="ArgumentException">The shape is not three positive sizes matching the map and mask.</exception>
    public static ThresholdedMap ThresholdStatsImg(double[] statMap, int[] shape, ThresholdStatsOptions options, bool[]? mask = null)
    {
        ArgumentNullException.ThrowIfNull(statMap);
        ArgumentNullException.ThrowIfNull(options);
        var grid = Grid.Of(shape);
        var core = new Core.ThresholdOptions(
            options.Alpha,
            options.Threshold,
            HeightControlOf(options),
            options.ClusterThreshold,
            options.TwoSided);
        var result = Core.Thresholding.thresholdStatsImg(grid, core, Grid.Mask(mask), statMap);
        return new ThresholdedMap(result.Thresholded, result.Threshold);
    }

    private static Core.HeightControl HeightControlOf(ThresholdStatsOptions options)
    {
        if (!string.Equals(options.HeightControl?.Trim(), "fwe", StringComparison.OrdinalIgnoreCase))
            return Core.Thresholding.parseHeightControl(options.HeightControl!);
        if (options.FwhmVoxels is not null && options.SearchLkcs is not null)
            throw new Core.GlmInputException("height_control", "'fwe' takes FwhmVoxels or SearchLkcs, not both");
        if (options.FwhmVoxels is not null)
            return Core.HeightControl.NewFwe(Core.FweSmoothness.NewFwhmVoxels(options.FwhmVoxels));
        if (options.SearchLkcs is not null)
            return Core.HeightControl.NewFwe(Core.FweSmoothness.NewSearchLkcs(options.SearchLkcs));
        throw new Core.GlmInputException("height_control", "'fwe' needs FwhmVoxels or SearchLkcs");
    }

    /// <summary>nilearn's <c>cluster_level_inference</c> (All-Resolutions Inference, Rosenblatt et al. 2018): the
    /// lower bound on the proportion of true discoveries of each cluster formed at each threshold, at every voxel;
    /// higher thresholds overwrite lower ones.</summary>
    /// <param name="statMap">The z map, Fortran order.</param>
    /// <param name="shape">The grid: three sizes X, Y, Z.</param>
    /// <param name="thresholds">Cluster-forming z thresholds (nilearn's default is a single 3.0).</param>
    /// <param name="alpha">Level of the bound (nilearn's default 0.05).</param>
    /// <param name="mask">Voxels of interest, Fortran order; null for nilearn's background mask of the map.</param>
    /// <returns>The proportion map, Fortran order, 0 outside clusters.</returns>
    /// <exception cref="Core.GlmInputException">alpha is not in [0, 1], a threshold is NaN, or the map has a NaN
    /// inside the mask.</exception>
    public static double[] ClusterLevelInference(double[] statMap, int[] shape, IReadOnlyList<double> thresholds, double alpha = 0.05, bool[]? mask = null)
    {
        ArgumentNullException.ThrowIfNull(statMap);
        ArgumentNullException.ThrowIfNull(thresholds);
        return Core.Thresholding.clusterLevelInference(Grid.Of(shape), ListModule.OfSeq(thresholds), alpha, Grid.Mask(mask), statMap);
    }
}

/// <summary>Conversions of this facade's grid arguments to the core's types.</summary>
internal static class Grid
{
    /// <summary>The core's grid from three positive sizes.</summary>
    internal static Core.GridShape Of(int[] shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        if (shape.Length != 3 || shape.Any(n => n <= 0))
            throw new ArgumentException($"a 3D grid has three positive sizes, got [{string.Join(", ", shape)}]", nameof(shape));
        return new Core.GridShape(shape[0], shape[1], shape[2]);
    }

    /// <summary>An optional mask as the core's option.</summary>
    internal static FSharpOption<bool[]>? Mask(bool[]? mask) => mask is null ? FSharpOption<bool[]>.None : FSharpOption<bool[]>.Some(mask);
}
