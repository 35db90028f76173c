using FmriGlm.Core;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;

namespace FmriGlm.Api.Tests;

/// <summary>SecondLevelModel and NonParametric as a C# user meets them, checked against nilearn 0.13.1's files.</summary>
public class SecondLevelModelTests
{
    private static string Dir(string name)
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !Directory.Exists(Path.Combine(dir.FullName, "tests", "data"))) dir = dir.Parent;
        if (dir is null) throw new DirectoryNotFoundException("tests/data not found above the test binary");
        return Path.Combine(dir.FullName, "tests", "data", "second_level", name);
    }

    private static string[] Maps(string name) => Directory.GetFiles(Dir(name), "sub-*_effect.nii.gz").OrderBy(p => p, StringComparer.Ordinal).ToArray();

    private static void AssertClose(double[] actual, double[] expected, double rtol, double atol)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(actual[i] - expected[i]) <= atol + rtol * Math.Abs(expected[i]), $"voxel {i}: {actual[i]} vs {expected[i]}");
    }

    [Fact]
    public void One_sample_z_map_equals_nilearn_SecondLevelModel_rtol_1e8()
    {
        var model = new SecondLevelModel(new SecondLevelOptions { MaskImg = Path.Combine(Dir("one-sample"), "mask.nii.gz") }).Fit(Maps("one-sample"));
        var maps = model.ComputeContrast("intercept");
        Assert.Equal("t", maps.StatType);
        AssertClose(maps.ZScore, Nifti.read(Path.Combine(Dir("one-sample"), "contrast-intercept_z_score.nii.gz")).Data, 1e-8, 1e-8);
    }

    [Fact]
    public void Two_sample_expression_contrast_equals_nilearn_stat_rtol_1e8()
    {
        var design = DesignMatrix.Load(Path.Combine(Dir("two-sample"), "design_matrix.tsv"));
        var model = new SecondLevelModel(new SecondLevelOptions { MaskImg = Path.Combine(Dir("two-sample"), "mask.nii.gz") }).Fit(Maps("two-sample"), design);
        var maps = model.ComputeContrast("patients - controls");
        AssertClose(maps["stat"], Nifti.read(Path.Combine(Dir("two-sample"), "contrast-patients-minus-controls_stat.nii.gz")).Data, 1e-8, 1e-7);
        var f = model.ComputeContrast(new double[,] { { 1, 0 }, { 0, 1 } }, "F");
        Assert.Equal("F", f.StatType);
        Assert.Equal(2, f.EffectSize.Count);
    }

    [Fact]
    public void ComputeContrast_before_Fit_throws_InvalidOperationException() =>
        Assert.Throws<InvalidOperationException>(() => new SecondLevelModel().ComputeContrast("intercept"));

    [Fact]
    public void Unknown_column_throws_GlmInputException_naming_the_contrast()
    {
        var model = new SecondLevelModel(new SecondLevelOptions { MaskImg = Path.Combine(Dir("one-sample"), "mask.nii.gz") }).Fit(Maps("one-sample"));
        var e = Assert.Throws<GlmInputException>(() => model.ComputeContrast("intercep"));
        Assert.Contains("intercep", e.Message);
    }

    [Fact]
    public void NonParametric_observed_t_and_cluster_sizes_equal_nilearn_rtol_1e8()
    {
        var name = "non-parametric-one-sample";
        var result = NonParametric.Inference(Maps(name), new NonParametricOptions
        {
            Mask = Path.Combine(Dir(name), "mask.nii.gz"),
            NPerm = 60,
            Threshold = 0.01,
        });
        Assert.True(result.SignFlipping);
        AssertClose(result.T, Nifti.read(Path.Combine(Dir(name), "cluster-call_t.nii.gz")).Data, 1e-8, 1e-9);
        AssertClose(result.Size!, Nifti.read(Path.Combine(Dir(name), "cluster-call_size.nii.gz")).Data, 0, 0);
        Assert.Equal(60, result.H0MaxT.Length);
    }

    [Property(MaxTest = 20)]
    public Property NonParametric_p_values_lie_between_1_over_nperm_plus_1_and_1(PositiveInt seed)
    {
        var name = "non-parametric-one-sample";
        var result = NonParametric.Inference(Maps(name), new NonParametricOptions
        {
            Mask = Path.Combine(Dir(name), "mask.nii.gz"),
            NPerm = 20,
            RandomState = seed.Get,
            Threads = 1,
        });
        var mask = Nifti.read(Path.Combine(Dir(name), "mask.nii.gz")).Data;
        return Enumerable.Range(0, mask.Length).Where(i => mask[i] != 0)
            .All(i => result.LogPMaxT[i] >= -1e-12 && result.LogPMaxT[i] <= Math.Log10(21) + 1e-12).ToProperty();
    }

    private static FirstLevelModel FittedFirstLevel()
    {
        var dir = Path.Combine(Directory.GetParent(Dir("one-sample"))!.Parent!.FullName, "first_level", "ols-glover-cosine");
        return new FirstLevelModel(new FirstLevelOptions
        {
            TR = 2.0, NoiseModel = "ols", HighPass = 0.01, MaskImg = Path.Combine(dir, "mask.nii.gz"), NJobs = 1,
        }).Fit(Path.Combine(dir, "bold.nii.gz"), Events.FromTsv(Path.Combine(dir, "events.tsv")));
    }

    [Fact]
    public void Fit_on_identical_first_level_models_gives_their_effect_as_group_effect_rtol_1e12()
    {
        var first = FittedFirstLevel();
        var model = new SecondLevelModel(new SecondLevelOptions { Threads = 1 }).Fit(new[] { first, first, first }, "face - house");
        var group = model.ComputeContrast();
        var effect = first.ComputeContrast("face - house").EffectSize();
        Assert.Equal(first.Mask.Count(b => b), model.Mask.Count(b => b));
        for (var v = 0; v < effect.Length; v++)
            if (model.Mask[v])
                Assert.True(Math.Abs(group.EffectSize[0][v] - (float)effect[v]) <= 1e-12 * Math.Abs(effect[v]), $"voxel {v}: {group.EffectSize[0][v]} vs {effect[v]}");
    }

    [Fact]
    public void Fit_on_first_level_models_without_first_level_contrast_throws_naming_it()
    {
        var first = FittedFirstLevel();
        var e = Assert.Throws<GlmInputException>(() => new SecondLevelModel().Fit(new[] { first, first }, (string?)null));
        Assert.Contains("first_level_contrast", e.Message);
    }

    [Fact]
    public void Fit_on_first_level_models_with_weights_equals_the_expression_exactly()
    {
        var first = FittedFirstLevel();
        var names = first.DesignMatrices[0].ColumnNames.ToList();
        var w = new double[names.Count];
        w[names.IndexOf("face")] = 1; w[names.IndexOf("house")] = -1;
        var byName = new SecondLevelModel().Fit(new[] { first, first }, "face - house").ComputeContrast();
        var byWeights = new SecondLevelModel().Fit(new[] { first, first }, w).ComputeContrast();
        Assert.Equal(byName.EffectSize[0], byWeights.EffectSize[0]);
    }

    [Fact]
    public void Fit_on_an_unfitted_first_level_model_throws_naming_its_index()
    {
        var e = Assert.Throws<GlmInputException>(() => new SecondLevelModel().Fit(new[] { FittedFirstLevel(), new FirstLevelModel(2.0) }, "face"));
        Assert.Contains("second_level_input[1]", e.Message);
    }
}
