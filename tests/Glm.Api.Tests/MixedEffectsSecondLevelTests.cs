using FmriGlm.Core;
using Xunit;

namespace FmriGlm.Api.Tests;

/// <summary>SecondLevelModel with NoiseModel = "mfx" as a C# user meets it.</summary>
public class MixedEffectsSecondLevelTests
{
    private static string Dir()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !Directory.Exists(Path.Combine(dir.FullName, "tests", "data"))) dir = dir.Parent;
        if (dir is null) throw new DirectoryNotFoundException("tests/data not found above the test binary");
        return Path.Combine(dir.FullName, "tests", "data", "second_level", "one-sample");
    }

    private static string[] Maps() => Directory.GetFiles(Dir(), "sub-*_effect.nii.gz").OrderBy(p => p, StringComparer.Ordinal).ToArray();

    private static string Mask => Path.Combine(Dir(), "mask.nii.gz");

    /// <summary>One variance map per subject map, all equal to <paramref name="value"/>, in a new temporary folder.</summary>
    private static string[] VarianceMaps(string folder, double value)
    {
        var header = Nifti.read(Maps()[0]).Header;
        var shape = header.Shape.Take(3).ToArray();
        var count = (int)(shape[0] * shape[1] * shape[2]);
        return Maps().Select((_, i) =>
        {
            var path = Path.Combine(folder, $"sub-{i:00}_variance.nii.gz");
            Nifti.write(path, Nifti.writeOptions(shape, header.Affine), Enumerable.Repeat(value, count).ToArray());
            return path;
        }).ToArray();
    }

    /// <summary>A first-level model of the reference's OLS case with its own high-pass cut-off (so models differ).</summary>
    private static FirstLevelModel FirstLevel(double highPass, string dir) =>
        new FirstLevelModel(new FirstLevelOptions
        {
            TR = 2.0, NoiseModel = "ols", HighPass = highPass, MaskImg = Path.Combine(dir, "mask.nii.gz"), NJobs = 1,
        }).Fit(Path.Combine(dir, "bold.nii.gz"), Events.FromTsv(Path.Combine(dir, "events.tsv")));

    [Fact]
    public void Mfx_fitted_from_first_level_models_equals_mfx_from_their_written_effect_and_variance_maps_rtol_1e12()
    {
        var dir = Path.Combine(Directory.GetParent(Dir())!.Parent!.FullName, "first_level", "ols-glover-cosine");
        var models = new[] { 0.01, 0.02, 0.03 }.Select(hp => FirstLevel(hp, dir)).ToArray();
        var folder = Directory.CreateTempSubdirectory("fmriglm-mfx-models-").FullName;
        try
        {
            var header = Nifti.read(Path.Combine(dir, "mask.nii.gz")).Header;
            var shape = header.Shape.Take(3).ToArray();
            string Write(string name, double[] values)
            {
                var path = Path.Combine(folder, name);
                Nifti.write(path, Nifti.writeOptions(shape, header.Affine), values);
                return path;
            }
            var effects = models.Select((m, i) => Write($"effect{i}.nii.gz", m.ComputeContrast("face - house").EffectSize())).ToArray();
            var variances = models.Select((m, i) => Write($"variance{i}.nii.gz", m.ComputeContrast("face - house").EffectVariance())).ToArray();
            var options = new SecondLevelOptions { MaskImg = Path.Combine(dir, "mask.nii.gz"), NoiseModel = "mfx" };
            var fromModels = new SecondLevelModel(options).Fit(models, "face - house").ComputeContrast("intercept");
            var fromFiles = new SecondLevelModel(options).Fit(effects, variances).ComputeContrast("intercept");
            foreach (var name in new[] { "z_score", "stat", "p_value", "effect_size", "effect_variance" })
                for (var v = 0; v < fromFiles[name].Length; v++)
                    Assert.True(Math.Abs(fromModels[name][v] - fromFiles[name][v]) <= 1e-12 * Math.Max(1.0, Math.Abs(fromFiles[name][v])), $"{name} voxel {v}: {fromModels[name][v]} vs {fromFiles[name][v]}");
        }
        finally { Directory.Delete(folder, true); }
    }

    [Fact]
    public void Mfx_with_zero_variance_maps_equals_the_OLS_model_z_t_p_effect_variance_rtol_1e9()
    {
        var folder = Directory.CreateTempSubdirectory("fmriglm-mfx-").FullName;
        try
        {
            var mfx = new SecondLevelModel(new SecondLevelOptions { MaskImg = Mask, NoiseModel = "mfx" }).Fit(Maps(), VarianceMaps(folder, 0.0)).ComputeContrast("intercept");
            var ols = new SecondLevelModel(new SecondLevelOptions { MaskImg = Mask }).Fit(Maps()).ComputeContrast("intercept");
            foreach (var name in new[] { "z_score", "stat", "p_value", "effect_size", "effect_variance" })
                for (var v = 0; v < ols[name].Length; v++)
                    Assert.True(Math.Abs(mfx[name][v] - ols[name][v]) <= 1e-9 * Math.Max(1.0, Math.Abs(ols[name][v])), $"{name} voxel {v}: {mfx[name][v]} vs {ols[name][v]}");
        }
        finally { Directory.Delete(folder, true); }
    }

    [Fact]
    public void Mfx_refuses_variance_maps_of_another_count_naming_them_and_Fit_without_variances()
    {
        var folder = Directory.CreateTempSubdirectory("fmriglm-mfx-").FullName;
        try
        {
            var model = new SecondLevelModel(new SecondLevelOptions { MaskImg = Mask, NoiseModel = "mfx" });
            var count = Assert.Throws<GlmInputException>(() => model.Fit(Maps(), VarianceMaps(folder, 1.0).Skip(1).ToArray()));
            Assert.Equal("variance maps", count.Input);
            var none = Assert.Throws<GlmInputException>(() => model.Fit(Maps()));
            Assert.Equal("noise_model", none.Input);
        }
        finally { Directory.Delete(folder, true); }
    }
}
