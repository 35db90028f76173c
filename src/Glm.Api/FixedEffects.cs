namespace FmriGlm;

/// <summary>Fixed-effects maps of several runs (nilearn <c>compute_fixed_effects</c> on arrays).</summary>
public sealed class FixedEffects
{
    private FixedEffects(double[] effect, double[] variance, double[] stat, double[] zScore)
    {
        Effect = effect;
        Variance = variance;
        Stat = stat;
        ZScore = zScore;
    }

    /// <summary>Combined effect per voxel.</summary>
    public IReadOnlyList<double> Effect { get; }

    /// <summary>Variance of the combined effect per voxel.</summary>
    public IReadOnlyList<double> Variance { get; }

    /// <summary>t statistic per voxel, with the summed degrees of freedom.</summary>
    public IReadOnlyList<double> Stat { get; }

    /// <summary>z-score per voxel (nilearn's convention).</summary>
    public IReadOnlyList<double> ZScore { get; }

    /// <summary>Combines runs' effect and variance maps (one value per voxel each): plain (mean effect, mean
    /// variance / runs) or precision-weighted; variances are floored at 1e-16 as nilearn does.</summary>
    /// <param name="effects">One effect map per run.</param>
    /// <param name="variances">One variance map per run.</param>
    /// <param name="dofs">Degrees of freedom per run; null gives 100 per run, as nilearn.</param>
    /// <param name="precisionWeighted">Weight runs by their precision (nilearn <c>precision_weighted</c>).</param>
    /// <exception cref="ArgumentException">No runs, or maps of different lengths.</exception>
    public static FixedEffects Compute(IReadOnlyList<double[]> effects, IReadOnlyList<double[]> variances,
        IReadOnlyList<double>? dofs = null, bool precisionWeighted = false)
    {
        ArgumentNullException.ThrowIfNull(effects);
        ArgumentNullException.ThrowIfNull(variances);
        if (effects.Concat(variances).Any(m => m is null)) throw new ArgumentNullException(nameof(effects), "a run's map is null");
        if (effects.Concat(variances).Select(m => m.Length).Distinct().Count() > 1)
            throw new ArgumentException("every effect and variance map must have the same number of voxels", nameof(variances));
        var r = Core.ContrastModule.computeFixedEffects(effects.ToArray(), variances.ToArray(),
            dofs?.ToArray() ?? Array.Empty<double>(), precisionWeighted);
        return new FixedEffects(r.Effect, r.Variance, r.Stat, r.ZScore);
    }
}
