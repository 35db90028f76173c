using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;

namespace FmriGlm.Api.Tests;

public class GeneralLinearModelTests
{
    private const int Scans = 60;

    private static double[,] Design()
    {
        var x = new double[Scans, 2];
        for (var t = 0; t < Scans; t++)
        {
            x[t, 0] = (t / 6) % 2 == 0 ? 1.0 : 0.0;
            x[t, 1] = 1.0;
        }
        return x;
    }

    private static double[] Data(int voxels, int seed)
    {
        var rng = new Random(seed);
        var y = new double[Scans * voxels];
        for (var v = 0; v < voxels; v++)
            for (var t = 0; t < Scans; t++)
                y[v * Scans + t] = 2.0 * ((t / 6) % 2 == 0 ? 1.0 : 0.0) + 10.0 + rng.NextDouble();
        return y;
    }

    [Fact]
    public void Fit_then_Contrast_gives_a_t_map_per_voxel()
    {
        var glm = new GeneralLinearModel(Design()).Fit(Data(5, 1), "ar1");
        var c = glm.Contrast(new[] { 1.0, 0.0 });
        Assert.Equal(5, c.Stat().Length);
        Assert.All(c.Stat(), t => Assert.True(t > 10));
        Assert.Equal(58.0, glm.DegreesOfFreedom);
    }

    [Fact]
    public void Float32_and_matrix_inputs_fit_like_float64()
    {
        var y = Data(3, 2);
        var matrix = new double[Scans, 3];
        for (var v = 0; v < 3; v++)
            for (var t = 0; t < Scans; t++)
                matrix[t, v] = y[v * Scans + t];
        var a = new GeneralLinearModel(Design()).Fit(y, "ols");
        var b = new GeneralLinearModel(Design()).Fit(matrix, "ols");
        var c = new GeneralLinearModel(Design()).Fit(y.Select(x => (float)x).ToArray(), "ols");
        Assert.Equal(a.Betas, b.Betas);
        for (var k = 0; k < a.Betas.Count; k++) Assert.Equal(a.Betas[k], c.Betas[k], 4);
    }

    [Fact]
    public void Contrast_before_Fit_throws_InvalidOperationException() =>
        Assert.Throws<InvalidOperationException>(() => new GeneralLinearModel(Design()).Contrast(new[] { 1.0, 0.0 }));

    [Fact]
    public void Unknown_noise_model_throws_GlmInputException() =>
        Assert.Throws<FmriGlm.Core.GlmInputException>(() => new GeneralLinearModel(Design()).Fit(Data(1, 1), "arma"));

    [Fact]
    public void Expression_contrast_equals_the_weights_contrast()
    {
        var glm = new GeneralLinearModel(Design()).Fit(Data(4, 3), "ar1");
        Assert.Equal(glm.Contrast(new[] { 1.0, -1.0 }).Stat(), glm.Contrast("block - constant", new[] { "block", "constant" }).Stat());
    }

    [Property(MaxTest = 30)]
    public Property Scaling_the_data_leaves_t_unchanged(PositiveInt scale)
    {
        var y = Data(2, 4);
        var a = (double)scale.Get;
        var t1 = new GeneralLinearModel(Design()).Fit(y, "ar1").Contrast(new[] { 1.0, 0.0 }).Stat();
        var t2 = new GeneralLinearModel(Design()).Fit(y.Select(x => x * a).ToArray(), "ar1").Contrast(new[] { 1.0, 0.0 }).Stat();
        return t1.Zip(t2, (p, q) => Math.Abs(p - q) <= 1e-8 * Math.Abs(p)).All(ok => ok).ToProperty();
    }
}
