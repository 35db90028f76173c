using System.Globalization;
using System.Text.Json;
using FmriGlm.Core;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;

namespace FmriGlm.Api.Tests;

/// <summary>The thresholding facade as a C# user meets it, checked against nilearn 0.13.1's reference files.</summary>
public class ThresholdingTests
{
    internal static string Case(string name, string file)
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !Directory.Exists(Path.Combine(dir.FullName, "tests", "data"))) dir = dir.Parent;
        if (dir is null) throw new DirectoryNotFoundException("tests/data not found above the test binary");
        return Path.Combine(dir.FullName, "tests", "data", "thresholding", name, file);
    }

    internal static (double[] Data, int[] Shape, double[,] Affine, double[] Zooms) Image(string name, string file)
    {
        var img = Nifti.read(Case(name, file));
        var shape = img.Header.Shape.Take(3).Select(n => (int)n).ToArray();
        return (img.Data, shape, img.Header.Affine, img.Header.Zooms);
    }

    private static double JsonDouble(JsonElement e) =>
        e.ValueKind == JsonValueKind.String ? (e.GetString() == "inf" ? double.PositiveInfinity : double.NaN) : e.GetDouble();

    private static bool Close(double actual, double expected, double tol) =>
        double.IsInfinity(expected) ? actual == expected : Math.Abs(actual - expected) <= tol + tol * Math.Abs(expected);

    [Fact]
    public void FdrThreshold_matches_nilearn_fdr_threshold_on_every_reference_row_within_1e12()
    {
        var expected = JsonDocument.Parse(File.ReadAllText(Case("fdr_threshold", "expected.json"))).RootElement.GetProperty("cases");
        var rows = 0;
        foreach (var row in expected.EnumerateArray())
        {
            var z = File.ReadAllLines(Case("fdr_threshold", row.GetProperty("z_file").GetString()!))
                .Skip(1).Where(l => l.Length > 0).Select(l => double.Parse(l, CultureInfo.InvariantCulture)).ToArray();
            var alpha = row.GetProperty("alpha").GetDouble();
            var threshold = Thresholding.FdrThreshold(z, alpha);
            Assert.True(Close(threshold, JsonDouble(row.GetProperty("threshold")), 1e-12), $"alpha {alpha}: {threshold}");
            rows++;
        }
        Assert.Equal(15, rows);
    }

    [Fact]
    public void ThresholdStatsImg_with_fdr_two_sided_matches_nilearn_map_exactly_and_threshold_within_1e12()
    {
        const string name = "threshold_stats_img-fdr-alpha-0.05-two-sided";
        var (stat, shape, _, _) = Image(name, "stat_map.nii.gz");
        var mask = Image(name, "mask.nii.gz").Data.Select(x => x != 0).ToArray();
        var result = Thresholding.ThresholdStatsImg(stat, shape, new ThresholdStatsOptions { Alpha = 0.05, HeightControl = "fdr" }, mask);
        var expected = JsonDocument.Parse(File.ReadAllText(Case(name, "expected.json"))).RootElement;
        Assert.True(Close(result.Threshold, expected.GetProperty("threshold").GetDouble(), 1e-12));
        Assert.Equal(Image(name, "thresholded.nii.gz").Data, result.Map);
    }

    [Fact]
    public void ClusterLevelInference_matches_nilearn_within_1e12()
    {
        const string name = "cluster_level_inference-threshold-2.5-3.5-alpha-0.05";
        var (stat, shape, _, _) = Image(name, "stat_map.nii.gz");
        var mask = Image(name, "mask.nii.gz").Data.Select(x => x != 0).ToArray();
        var proportion = Thresholding.ClusterLevelInference(stat, shape, new[] { 2.5, 3.5 }, 0.05, mask);
        var expected = Image(name, "proportion_true_discoveries.nii.gz").Data;
        Assert.All(Enumerable.Range(0, expected.Length), v => Assert.True(Close(proportion[v], expected[v], 1e-12), $"voxel {v}"));
    }

    [Fact]
    public void ThresholdStatsImg_with_an_unknown_height_control_throws_GlmInputException_naming_it()
    {
        var e = Assert.Throws<GlmInputException>(() =>
            Thresholding.ThresholdStatsImg(new[] { 1.0, 2.0 }, new[] { 2, 1, 1 }, new ThresholdStatsOptions { HeightControl = "holm" }));
        Assert.Equal("height_control", e.Input);
    }

    [Fact]
    public void ThresholdStatsImg_with_null_height_control_uses_the_given_threshold()
    {
        var result = Thresholding.ThresholdStatsImg(new[] { 1.0, -2.5, 3.5 }, new[] { 3, 1, 1 },
            new ThresholdStatsOptions { HeightControl = null, Threshold = 2.0 }, new[] { true, true, true });
        Assert.Equal(2.0, result.Threshold);
        Assert.Equal(new[] { 0.0, -2.5, 3.5 }, result.Map);
    }

    [Fact]
    public void A_shape_that_does_not_have_three_sizes_throws_ArgumentException()
    {
        Assert.Throws<ArgumentException>(() => Thresholding.ThresholdStatsImg(new[] { 1.0 }, new[] { 1, 1 }, new ThresholdStatsOptions()));
        Assert.Throws<ArgumentNullException>(() => Thresholding.FdrThreshold(null!, 0.05));
    }

    [Property(MaxTest = 100)]
    public Property FdrThreshold_is_monotone_in_alpha_exactly(NormalFloat[] z, byte a, byte b)
    {
        var values = z.Select(x => x.Get).ToArray();
        var lo = Math.Min(a, b) / 255.0;
        var hi = Math.Max(a, b) / 255.0;
        return (Thresholding.FdrThreshold(values, lo) >= Thresholding.FdrThreshold(values, hi)).ToProperty();
    }
}

/// <summary>The clusters table facade as a C# user meets it.</summary>
public class ClustersTableTests
{
    [Fact]
    public void GetClustersTable_ToTsv_is_nilearn_clusters_table_tsv_byte_for_byte()
    {
        const string name = "get_clusters_table-threshold-2.5-two-sided-cluster-0-min-distance-4";
        var (stat, shape, affine, zooms) = ThresholdingTests.Image(name, "stat_map.nii.gz");
        var table = Clusters.GetClustersTable(stat, shape, affine, zooms, 2.5, twoSided: true, minDistance: 4.0);
        Assert.Equal(File.ReadAllText(ThresholdingTests.Case(name, "clusters_table.tsv")), table.ToTsv());
        Assert.Equal(2, table.LabelMaps.Count);
        Assert.Null(table.Rows[1].ClusterSizeMm3);
        Assert.Equal("1a", table.Rows[1].ClusterId);
    }

    [Fact]
    public void GetClustersTable_above_every_value_is_empty_with_a_warning_per_tail()
    {
        var table = Clusters.GetClustersTable(new[] { 1.0, -1.0 }, new[] { 2, 1, 1 }, new double[,] { { 1, 0, 0, 0 }, { 0, 1, 0, 0 }, { 0, 0, 1, 0 }, { 0, 0, 0, 1 } },
            new[] { 1.0, 1.0, 1.0 }, 50.0, twoSided: true);
        Assert.Empty(table.Rows);
        Assert.Equal(2, table.Warnings.Count);
        Assert.Equal("Cluster ID\tX\tY\tZ\tPeak Stat\tCluster Size (mm3)\n", table.ToTsv());
    }
}
