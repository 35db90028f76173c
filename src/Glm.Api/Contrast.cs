namespace FmriGlm;

/// <summary>A contrast at every voxel: effect sizes, effect variances and degrees of freedom, from which the
/// statistic, p-values and z-scores follow (nilearn's and nipy's <c>Contrast</c>). Contrasts of independent runs
/// add up to their fixed-effects combination; <see cref="Zero"/> is the identity of <c>+</c>.</summary>
public sealed class Contrast
{
    internal Core.Contrast Value { get; }

    internal Contrast(Core.Contrast value) => Value = value;

    /// <summary>The identity of <c>+</c>: no run. Its statistics throw <see cref="InvalidOperationException"/>.</summary>
    public static Contrast Zero { get; } = new(Core.Contrast.Empty);

    /// <summary>A t contrast from one effect and one variance per voxel (nilearn <c>Contrast(effect, variance,
    /// dof=dof, stat_type="t")</c>).</summary>
    /// <exception cref="ArgumentException">The arrays differ in length or dof is not positive.</exception>
    public static Contrast T(double[] effect, double[] variance, double degreesOfFreedom)
    {
        ArgumentNullException.ThrowIfNull(effect);
        ArgumentNullException.ThrowIfNull(variance);
        return new(Core.ContrastModule.create(Core.StatType.T, 1, degreesOfFreedom, (double[])effect.Clone(), (double[])variance.Clone()));
    }

    /// <summary>An F contrast from effects (rows × voxels) and one variance per voxel (nilearn
    /// <c>Contrast(effect, variance, dim=rows, dof=dof, stat_type="F")</c>).</summary>
    /// <exception cref="ArgumentException">The shapes disagree or dof is not positive.</exception>
    public static Contrast F(double[,] effect, double[] variance, double degreesOfFreedom)
    {
        ArgumentNullException.ThrowIfNull(effect);
        ArgumentNullException.ThrowIfNull(variance);
        return new(Core.ContrastModule.create(Core.StatType.F, effect.GetLength(0), degreesOfFreedom, Interop.Flatten(effect), (double[])variance.Clone()));
    }

    /// <summary>Combines two contrasts of independent runs: effects, variances and degrees of freedom add
    /// (nilearn's <c>Contrast.__add__</c>).</summary>
    /// <exception cref="ArgumentException">Stat types, dimensions or voxel counts differ.</exception>
    public static Contrast operator +(Contrast a, Contrast b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        return new(a.Value + b.Value);
    }

    /// <summary>Scalar multiple: effects times <paramref name="s"/>, variances times s², same degrees of freedom.</summary>
    public static Contrast operator *(double s, Contrast c)
    {
        ArgumentNullException.ThrowIfNull(c);
        return new(s * c.Value);
    }

    /// <summary>Scalar multiple, as <c>s * c</c>.</summary>
    public static Contrast operator *(Contrast c, double s) => s * c;

    /// <summary>Combines the contrasts of runs: their sum times 1/n (nilearn <c>compute_fixed_effect_contrast</c>).</summary>
    /// <exception cref="ArgumentException">No runs, or runs that do not add.</exception>
    public static Contrast FixedEffects(IEnumerable<Contrast> runs)
    {
        ArgumentNullException.ThrowIfNull(runs);
        return new(Core.ContrastModule.fixedEffects(Microsoft.FSharp.Collections.ListModule.OfSeq(runs.Select(r => r.Value))));
    }

    /// <summary>Adds two contrasts: the same as <c>a + b</c>, for languages without operators.</summary>
    public static Contrast Add(Contrast a, Contrast b) => a + b;

    /// <summary>Scales a contrast: the same as <c>s * c</c>, for languages without operators.</summary>
    public static Contrast Multiply(double s, Contrast c) => s * c;

    /// <summary>Effect sizes, rows × voxels row-major (one per voxel for a t contrast).</summary>
    public IReadOnlyList<double> EffectSize => Core.ContrastModule.effectSize(Value);

    /// <summary>Effect variances: one per voxel, or the full rows × rows covariance per voxel for nipy-style
    /// contrasts (element [i, j] of voxel v at <c>(i*Dim + j)*voxels + v</c>).</summary>
    public IReadOnlyList<double> EffectVariance => Core.ContrastModule.effectVariance(Value);

    /// <summary>The statistic as nilearn/nipy spell it: "t", "F" or "tmin-conjunction".</summary>
    public string StatType => Interop.StatTypeName(Core.ContrastModule.statType(Value));

    /// <summary>Degrees of freedom (summed over runs).</summary>
    public double DegreesOfFreedom => Core.ContrastModule.degreesOfFreedom(Value);

    /// <summary>The statistic at every voxel against <paramref name="baseline"/> (nilearn <c>stat(baseline)</c>).</summary>
    public double[] Stat(double baseline = 0.0) => Core.ContrastModule.stat(baseline, Value);

    /// <summary>Upper-tail p-values (nilearn <c>p_value(baseline)</c>), precise down to the float64 limit.</summary>
    public double[] PValue(double baseline = 0.0) => Core.ContrastModule.pValue(baseline, Value);

    /// <summary>1 − p computed directly (nilearn <c>one_minus_pvalue(baseline)</c>).</summary>
    public double[] OneMinusPValue(double baseline = 0.0) => Core.ContrastModule.oneMinusPValue(baseline, Value);

    /// <summary>z-scores with Φ(−z) = p in both tails, without nilearn's clipping at |z| ≈ 37 or nipy's
    /// saturation at z ≈ −8.2.</summary>
    public double[] ZScore(double baseline = 0.0) => Core.ContrastModule.zScore(baseline, Value);

    /// <summary>z-scores in a given convention: "precise" (default of <see cref="ZScore(double)"/>), "nilearn"
    /// (clipped as nilearn 0.13.1) or "nipy".</summary>
    /// <exception cref="ArgumentException">An unknown convention.</exception>
    public double[] ZScore(string convention, double baseline = 0.0)
    {
        ArgumentNullException.ThrowIfNull(convention);
        var c = convention switch
        {
            "precise" => Core.ZScoreConvention.Precise,
            "nilearn" => Core.ZScoreConvention.Nilearn,
            "nipy" => Core.ZScoreConvention.Nipy,
            _ => throw new ArgumentException($"unknown z-score convention '{convention}': use precise, nilearn or nipy", nameof(convention)),
        };
        return Core.ContrastModule.zScoreWith(c, baseline, Value);
    }
}
