using FmriGlm.Core;
using Xunit;

namespace FmriGlm.Api.Tests;

/// <summary>The random field theory facade as a C# user meets it, checked against nipy 0.5.0's reference files.</summary>
public class RandomFieldTheoryTests
{
    private static string Case(string name, string file)
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !Directory.Exists(Path.Combine(dir.FullName, "tests", "data"))) dir = dir.Parent;
        if (dir is null) throw new DirectoryNotFoundException("tests/data not found above the test binary");
        return Path.Combine(dir.FullName, "tests", "data", "rft", name, file);
    }

    [Fact]
    public void EcDensity_of_a_t8_field_matches_nipy_density_within_rtol_1e10()
    {
        var lines = File.ReadAllLines(Case("ec-t-dfd8", "densities.tsv")).Skip(1).Where(l => l.Length > 0);
        var field = RandomField.TStat(8.0);
        foreach (var line in lines)
        {
            var cells = line.Split('\t').Select(c => double.Parse(c, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
            for (var d = 0; d <= 3; d++)
            {
                var actual = RandomFieldTheory.EcDensity(field, d, cells[0]);
                Assert.True(Math.Abs(actual - cells[d + 1]) <= 1e-14 + 1e-10 * Math.Abs(cells[d + 1]), $"rho{d}({cells[0]}) = {actual}, nipy {cells[d + 1]}");
            }
        }
    }

    [Fact]
    public void ThresholdStatsImg_fwe_with_a_fwhm_uses_the_RFT_threshold_of_the_mask_LKCs()
    {
        int[] shape = { 10, 10, 10 };
        var mask = Enumerable.Repeat(true, 1000).ToArray();
        var stat = Enumerable.Range(0, 1000).Select(v => v == 555 ? 8.0 : 0.1).ToArray();
        var result = Thresholding.ThresholdStatsImg(stat, shape, new ThresholdStatsOptions { Alpha = 0.05, HeightControl = "fwe", FwhmVoxels = new[] { 2.0, 2.0, 2.0 } }, mask);
        var lkcs = RandomFieldTheory.MaskLkcs(mask, shape, new[] { 1.0, 1.0, 1.0 }, new[] { 2.0, 2.0, 2.0 });
        Assert.Equal(RandomFieldTheory.FweThreshold(RandomField.Gaussian(), lkcs, 0.025), result.Threshold, 12);
        Assert.Equal(8.0, result.Map[555]);
    }

    [Fact]
    public void ThresholdStatsImg_fwe_without_a_smoothness_names_height_control()
    {
        var e = Assert.Throws<GlmInputException>(() =>
            Thresholding.ThresholdStatsImg(new[] { 1.0, 2.0 }, new[] { 2, 1, 1 }, new ThresholdStatsOptions { HeightControl = "fwe" }));
        Assert.Contains("height_control", e.Message);
    }
}
