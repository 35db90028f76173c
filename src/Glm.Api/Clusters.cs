namespace FmriGlm;

/// <summary>One row of nilearn's clusters table: a cluster's peak or one of its subpeaks.</summary>
/// <param name="ClusterId">"1", "2", … for a peak; "1a", "1b", "1c" for subpeaks.</param>
/// <param name="X">Peak position in mm.</param>
/// <param name="Y">Peak position in mm.</param>
/// <param name="Z">Peak position in mm.</param>
/// <param name="PeakStat">Statistic at the peak, with its sign.</param>
/// <param name="ClusterSizeMm3">Cluster volume in mm³ (truncated); null on subpeak rows.</param>
public sealed record ClusterPeak(string ClusterId, double X, double Y, double Z, double PeakStat, int? ClusterSizeMm3);

/// <summary>What nilearn's <c>get_clusters_table(..., return_label_maps=True)</c> returns.</summary>
public sealed class ClustersTable
{
    internal ClustersTable(IReadOnlyList<ClusterPeak> rows, IReadOnlyList<int[]> labelMaps, IReadOnlyList<string> warnings)
    {
        Rows = rows;
        LabelMaps = labelMaps;
        Warnings = warnings;
    }

    /// <summary>Rows in nilearn's order: positive clusters by decreasing peak, each followed by its subpeaks, then
    /// negative clusters (two-sided), whose IDs continue after the number of positive rows.</summary>
    public IReadOnlyList<ClusterPeak> Rows { get; }

    /// <summary>One label map per tail with clusters (positive, then negative), Fortran order: 0 outside clusters,
    /// else the cluster's rank in its tail.</summary>
    public IReadOnlyList<int[]> LabelMaps { get; }

    /// <summary>What nilearn would warn about (a tail without clusters).</summary>
    public IReadOnlyList<string> Warnings { get; }

    /// <summary>The table as TSV, with nilearn's column names and an empty size on subpeak rows.</summary>
    public string ToTsv() =>
        Core.Clusters.toTsv(Microsoft.FSharp.Collections.ListModule.OfSeq(Rows.Select(r => new Core.ClusterRow(
            r.ClusterId, r.X, r.Y, r.Z, r.PeakStat,
            r.ClusterSizeMm3 is int s ? Microsoft.FSharp.Core.FSharpOption<int>.Some(s) : Microsoft.FSharp.Core.FSharpOption<int>.None))));
}

/// <summary>nilearn 0.13.1's clusters table (<c>nilearn.reporting.get_clusters_table</c>) on a 3D map given as an
/// array in NIfTI (Fortran) order.</summary>
public static class Clusters
{
    /// <summary>Clusters of a statistic map with their peaks and subpeaks, as nilearn's <c>get_clusters_table</c>.</summary>
    /// <param name="statMap">The statistic, Fortran order.</param>
    /// <param name="shape">The grid: three sizes X, Y, Z.</param>
    /// <param name="affine">4×4 voxel-to-mm affine.</param>
    /// <param name="voxelSizes">The three voxel sizes in mm (the NIfTI header's zooms).</param>
    /// <param name="statThreshold">Cluster-forming threshold, in the map's scale.</param>
    /// <param name="clusterThreshold">Minimum cluster size in voxels (default 0: none).</param>
    /// <param name="twoSided">Report negative clusters too (default false).</param>
    /// <param name="minDistance">Minimum distance between subpeaks in mm (default 8).</param>
    /// <exception cref="Core.GlmInputException">The threshold is NaN, or negative with two-sided.</exception>
    /// <exception cref="ArgumentException">Shape, affine or voxel sizes do not fit the map.</exception>
    public static ClustersTable GetClustersTable(
        double[] statMap, int[] shape, double[,] affine, double[] voxelSizes, double statThreshold,
        double clusterThreshold = 0, bool twoSided = false, double minDistance = 8.0)
    {
        ArgumentNullException.ThrowIfNull(statMap);
        ArgumentNullException.ThrowIfNull(affine);
        ArgumentNullException.ThrowIfNull(voxelSizes);
        var table = Core.Clusters.getClustersTable(Grid.Of(shape), affine, voxelSizes, statThreshold, clusterThreshold, twoSided, minDistance, statMap);
        var rows = table.Rows
            .Select(r => new ClusterPeak(r.ClusterId, r.X, r.Y, r.Z, r.PeakStat,
                Microsoft.FSharp.Core.FSharpOption<int>.get_IsSome(r.ClusterSizeMm3) ? r.ClusterSizeMm3.Value : null))
            .ToArray();
        return new ClustersTable(rows, table.LabelMaps.ToArray(), table.Warnings.ToArray());
    }
}
