using System.Globalization;
using Xunit;

namespace FmriGlm.Api.Tests;

/// <summary>FirstLevelModel as a C# user calls it; expected values come from tests/data/first_level (nilearn 0.13.1).</summary>
public class FirstLevelModelTests
{
    private static readonly string Case = FindCase("ols-glover-cosine");

    private static string FindCase(string name)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "tests", "data", "first_level", name);
            if (Directory.Exists(candidate)) return candidate;
        }
        throw new DirectoryNotFoundException("tests/data not found above the test binary");
    }

    private static FirstLevelModel Fitted() =>
        new FirstLevelModel(new FirstLevelOptions
        {
            TR = 2.0, NoiseModel = "ols", HighPass = 0.01, MaskImg = Path.Combine(Case, "mask.nii.gz"), NJobs = 1,
        }).Fit(Path.Combine(Case, "bold.nii.gz"), Events.FromTsv(Path.Combine(Case, "events.tsv")));

    [Fact]
    public void Expression_contrast_t_matches_nilearn_ols_glover_cosine_within_its_tolerance()
    {
        var maps = Fitted().ComputeContrast("face - house");
        var expected = NiftiImage.Load(Path.Combine(Case, "contrast-face-minus-house_stat.nii.gz")).Data;
        var actual = maps.Stat();
        Assert.Equal(expected.Length, actual.Length);
        var max = expected.Max(Math.Abs);
        for (var v = 0; v < actual.Length; v++)
            Assert.True(Math.Abs(actual[v] - expected[v]) <= 1e-4 * max + 1e-4 * Math.Abs(expected[v]),
                $"voxel {v}: {actual[v]} vs {expected[v]}");
        Assert.Equal("t", maps.StatType);
    }

    [Fact]
    public void F_contrast_gives_one_effect_volume_per_row()
    {
        var model = Fitted();
        var columns = model.DesignMatrices[0].ColumnCount;
        var w = new double[2, columns];
        w[0, 0] = 1; w[1, 1] = 1;
        var maps = model.ComputeContrast(w);
        Assert.Equal("F", maps.StatType);
        Assert.Equal(2 * model.Mask.Count, maps.EffectSize().Length);
    }

    [Fact]
    public void ComputeContrast_before_Fit_throws_InvalidOperationException() =>
        Assert.Throws<InvalidOperationException>(() => new FirstLevelModel(2.0).ComputeContrast("face"));

    [Fact]
    public void Unknown_column_throws_GlmInputException_naming_it()
    {
        var e = Assert.Throws<Core.GlmInputException>(() => Fitted().ComputeContrast("fcae - house"));
        Assert.Contains("fcae", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unsupported_signal_scaling_is_refused_by_the_constructor() =>
        Assert.Throws<Core.GlmInputException>(() => new FirstLevelModel(new FirstLevelOptions { TR = 2, SignalScaling = "1" }));

    [Fact]
    public void WriteOutputs_writes_nilearn_bids_names()
    {
        var model = Fitted();
        var dir = Path.Combine(Path.GetTempPath(), "fl-api-" + Guid.NewGuid().ToString("N", CultureInfo.InvariantCulture));
        try
        {
            model.WriteOutputs(dir, new Dictionary<string, FirstLevelContrastMaps> { ["face - house"] = model.ComputeContrast("face - house") });
            Assert.True(File.Exists(Path.Combine(dir, "contrast-faceMinusHouse_stat-z_statmap.nii.gz")));
            Assert.True(File.Exists(Path.Combine(dir, "contrast-faceMinusHouse_stat-t_statmap.nii.gz")));
            Assert.True(File.Exists(Path.Combine(dir, "design.tsv")));
            Assert.True(File.Exists(Path.Combine(dir, "statmap.json")));
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, true);
        }
    }
}
