using Microsoft.FSharp.Collections;

namespace FmriGlm;

/// <summary>One trial of a beta series: its condition, timing, run and volume in the condition's 4D map.</summary>
/// <param name="Condition">The events' trial_type.</param>
/// <param name="Onset">Onset in seconds.</param>
/// <param name="Duration">Duration in seconds.</param>
/// <param name="Run">Run it belongs to, 0-based.</param>
/// <param name="VolumeIndex">Its volume in the condition's 4D map (run order, then onset order).</param>
public sealed record BetaSeriesTrial(string Condition, double Onset, double Duration, int Run, int VolumeIndex);

/// <summary>Single-trial betas of every condition (from <see cref="BetaSeries.Lss"/> or <see cref="BetaSeries.Lsa"/>).</summary>
public sealed class BetaSeriesResult
{
    private readonly Core.BetaSeriesResult _result;

    internal BetaSeriesResult(Core.BetaSeriesResult result)
    {
        _result = result;
        Conditions = result.Conditions.ToArray();
        Trials = result.Trials
            .Select(t => new BetaSeriesTrial(t.Condition, t.Onset, t.Duration, t.Run, t.Index)).ToArray();
        Warnings = result.Warnings.ToArray();
    }

    /// <summary>"lss" or "lsa".</summary>
    public string Method => _result.Method.IsLss ? "lss" : "lsa";
    /// <summary>The conditions, in nilearn's (numpy.unique) order.</summary>
    public IReadOnlyList<string> Conditions { get; }
    /// <summary>Every trial, grouped by condition, then by volume index.</summary>
    public IReadOnlyList<BetaSeriesTrial> Trials { get; }
    /// <summary>The grid: X, Y, Z.</summary>
    public IReadOnlyList<int> Shape => new[] { _result.Shape.X, _result.Shape.Y, _result.Shape.Z };
    /// <summary>The mask used, Fortran order.</summary>
    public IReadOnlyList<bool> Mask => Array.AsReadOnly(_result.Mask);
    /// <summary>What nilearn would warn about, in words.</summary>
    public IReadOnlyList<string> Warnings { get; }

    /// <summary>A condition's betas on the grid, one volume per trial (Fortran order, 0 outside the mask).</summary>
    /// <exception cref="Core.GlmInputException">No such condition.</exception>
    public double[] Betas(string condition)
    {
        ArgumentNullException.ThrowIfNull(condition);
        return Core.BetaSeries.image(_result, condition);
    }

    /// <summary>Writes <c>&lt;condition&gt;_betas.nii.gz</c> per condition and <c>trials.tsv</c> into a new (or empty)
    /// folder, atomically.</summary>
    /// <exception cref="Core.GlmInputException">The folder is not empty or cannot be written.</exception>
    public void WriteOutputs(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        Core.BetaSeries.writeOutputs(directory, _result);
    }
}

/// <summary>Single-trial betas (beta series) with the settings of a <see cref="FirstLevelModel"/>: LSS (Mumford et al.
/// 2012), computed without refitting a model per trial, and LSA (Rissman et al. 2004). nilearn shows both only as a
/// recipe (examples/07_advanced/plot_beta_series.py); the betas equal that recipe's.</summary>
public static class BetaSeries
{
    private static Core.BetaSeriesResult Run(Core.BetaSeriesMethod method, FirstLevelOptions options,
        IReadOnlyList<FirstLevelRun> runs)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(runs);
        if (runs.Any(r => r is null)) throw new ArgumentNullException(nameof(runs), "a run is null");
        return Core.BetaSeries.fit(method, options.ToCore(), ListModule.OfSeq(runs.Select(r => r.ToCore())));
    }

    /// <summary>LSS: per trial, its beta in the model where it alone has its own condition (the rest of its
    /// condition keeping its name); noise model "ols" or "ar1", an HRF with one regressor per trial.</summary>
    /// <exception cref="Core.GlmInputException">Bad input, named: no TR, a run without events, an event outside the
    /// run, another noise model or HRF, and the first level's own input errors.</exception>
    public static BetaSeriesResult Lss(FirstLevelOptions options, IReadOnlyList<FirstLevelRun> runs) =>
        new(Run(Core.BetaSeriesMethod.Lss, options, runs));

    /// <summary>LSA: one first-level model with one condition per trial (named <c>condition__NNN</c>).</summary>
    /// <exception cref="Core.GlmInputException">As <see cref="Lss"/>.</exception>
    public static BetaSeriesResult Lsa(FirstLevelOptions options, IReadOnlyList<FirstLevelRun> runs) =>
        new(Run(Core.BetaSeriesMethod.Lsa, options, runs));
}
