using System.Globalization;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using Xunit;

namespace FmriGlm.Api.Tests;

public class ContrastTests
{
    private static readonly double[] Effect = { 1.5, -2.0, 0.25 };
    private static readonly double[] Variance = { 0.5, 2.0, 1.0 };

    [Fact]
    public void Sum_of_two_runs_adds_effects_variances_and_degrees_of_freedom()
    {
        var a = Contrast.T(Effect, Variance, 50);
        var b = Contrast.T(new[] { 0.5, 1.0, 0.75 }, new[] { 1.0, 1.0, 1.0 }, 37);
        var sum = a + b;
        Assert.Equal(new[] { 2.0, -1.0, 1.0 }, sum.EffectSize);
        Assert.Equal(new[] { 1.5, 3.0, 2.0 }, sum.EffectVariance);
        Assert.Equal(a.DegreesOfFreedom + b.DegreesOfFreedom, sum.DegreesOfFreedom);
        Assert.Equal("t", sum.StatType);
    }

    [Fact]
    public void Zero_is_the_identity_of_plus()
    {
        var a = Contrast.T(Effect, Variance, 50);
        Assert.Equal(a.EffectSize, (Contrast.Zero + a).EffectSize);
        Assert.Equal(a.Stat(), (a + Contrast.Zero).Stat());
    }

    [Fact]
    public void Scalar_multiple_scales_effect_by_s_and_variance_by_s_squared()
    {
        var c = 2.0 * Contrast.T(Effect, Variance, 50);
        Assert.Equal(new[] { 3.0, -4.0, 0.5 }, c.EffectSize);
        Assert.Equal(new[] { 2.0, 8.0, 4.0 }, c.EffectVariance);
        Assert.Equal(c.EffectSize, (Contrast.T(Effect, Variance, 50) * 2.0).EffectSize);
    }

    [Fact]
    public void PValue_and_ZScore_agree_with_the_normal_tail_far_beyond_nilearns_clip()
    {
        // nilearn's clip: the z_score nilearn gave the largest t of the reference case with dof 30 (t = 1e25).
        var rows = File.ReadAllLines(NiftiImageTests.Data("contrast", "nilearn-t-dof-30", "expected.tsv")).Skip(1)
            .Where(l => l.Length > 0).Select(l => l.Split('\t').Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray()).ToArray();
        var nilearnClip = rows.MaxBy(r => r[0])![3];
        var c = Contrast.T(new[] { 1e12 }, new[] { 1.0 }, 30);
        var z = c.ZScore();
        Assert.True(z[0] > nilearnClip && double.IsFinite(z[0]), $"{z[0]} beyond nilearn's clip {nilearnClip}");
        Assert.Equal(nilearnClip, c.ZScore("nilearn")[0], 1e-9);
    }

    [Fact]
    public void Adding_a_t_and_an_F_contrast_throws_ArgumentException()
    {
        var t = Contrast.T(Effect, Variance, 50);
        var f = Contrast.F(new double[,] { { 1, 2, 3 }, { 1, 2, 3 } }, Variance, 50);
        Assert.Throws<ArgumentException>(() => t + f);
    }

    [Fact]
    public void Statistics_of_Zero_throw_InvalidOperationException() =>
        Assert.Throws<InvalidOperationException>(() => Contrast.Zero.Stat());

    [Property(MaxTest = 100)]
    public Property Plus_is_commutative_exactly(NormalFloat e1, NormalFloat e2, PositiveInt v1, PositiveInt v2)
    {
        var a = Contrast.T(new[] { e1.Get }, new[] { (double)v1.Get }, 10);
        var b = Contrast.T(new[] { e2.Get }, new[] { (double)v2.Get }, 20);
        return ((a + b).EffectSize[0] == (b + a).EffectSize[0] && (a + b).EffectVariance[0] == (b + a).EffectVariance[0]).ToProperty();
    }
}

public class FixedEffectsTests
{
    [Fact]
    public void Plain_fixed_effects_equal_the_mean_of_summed_run_contrasts()
    {
        var e = new[] { new[] { 1.0, 2.0 }, new[] { 3.0, -2.0 } };
        var v = new[] { new[] { 1.0, 4.0 }, new[] { 1.0, 2.0 } };
        var fx = FixedEffects.Compute(e, v, new[] { 20.0, 30.0 });
        var folded = Contrast.FixedEffects(new[] { Contrast.T(e[0], v[0], 20), Contrast.T(e[1], v[1], 30) });
        Assert.Equal(folded.EffectSize, fx.Effect);
        Assert.Equal(folded.EffectVariance, fx.Variance);
    }

    [Fact]
    public void Precision_weighting_favours_the_precise_run()
    {
        var fx = FixedEffects.Compute(new[] { new[] { 0.0 }, new[] { 10.0 } }, new[] { new[] { 100.0 }, new[] { 1.0 } }, precisionWeighted: true);
        Assert.True(fx.Effect[0] > 9.0);
    }

    [Fact]
    public void Maps_of_different_lengths_throw_ArgumentException() =>
        Assert.Throws<ArgumentException>(() => FixedEffects.Compute(new[] { new[] { 1.0 }, new[] { 1.0, 2.0 } }, new[] { new[] { 1.0 }, new[] { 1.0, 1.0 } }));
}
