namespace FmriGlm;

/// <summary>An experimental paradigm: onset, duration, trial type and modulation of each event (BIDS events.tsv,
/// nilearn's events DataFrame).</summary>
public sealed class Events
{
    internal Events(Core.Events core, IReadOnlyList<string> warnings)
    {
        CoreEvents = core;
        Warnings = warnings;
    }

    internal Core.Events CoreEvents { get; }

    /// <summary>Reads a BIDS events.tsv: tab separated, <c>onset</c> and <c>duration</c> required, <c>trial_type</c>
    /// (else one condition "dummy") and <c>modulation</c> (else 1) optional, <c>n/a</c> for missing cells.</summary>
    /// <exception cref="Core.GlmInputException">A missing column, a non-numeric or missing onset, a missing
    /// or negative duration; the message names the file, line and column.</exception>
    public static Events FromTsv(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var (events, warnings) = Core.Tables.readEvents(path).ToValueTuple();
        return new Events(events, warnings.Select(Interop.Describe).ToArray());
    }

    /// <summary>Events from arrays of equal length; trial types default to "dummy", modulations to 1.</summary>
    /// <exception cref="ArgumentException">The arrays differ in length.</exception>
    /// <exception cref="Core.GlmInputException">A non-finite onset, a missing or negative duration.</exception>
    public static Events FromArrays(double[] onsets, double[] durations, string[]? trialTypes = null, double[]? modulations = null)
    {
        ArgumentNullException.ThrowIfNull(onsets);
        ArgumentNullException.ThrowIfNull(durations);
        var n = onsets.Length;
        trialTypes ??= Enumerable.Repeat("dummy", n).ToArray();
        modulations ??= Enumerable.Repeat(1.0, n).ToArray();
        if (durations.Length != n || trialTypes.Length != n || modulations.Length != n)
            throw new ArgumentException("onsets, durations, trial types and modulations must have the same length");
        var core = new Core.Events((double[])onsets.Clone(), (double[])durations.Clone(), (string[])trialTypes.Clone(), (double[])modulations.Clone());
        Core.DesignMatrixModule.validate("events", core);
        return new Events(core, Array.Empty<string>());
    }

    /// <summary>Number of events.</summary>
    public int Count => CoreEvents.Onsets.Length;

    /// <summary>Onsets in seconds.</summary>
    public IReadOnlyList<double> Onsets => Array.AsReadOnly(CoreEvents.Onsets);

    /// <summary>Durations in seconds.</summary>
    public IReadOnlyList<double> Durations => Array.AsReadOnly(CoreEvents.Durations);

    /// <summary>Condition of each event.</summary>
    public IReadOnlyList<string> TrialTypes => Array.AsReadOnly(CoreEvents.TrialTypes);

    /// <summary>Amplitude of each event.</summary>
    public IReadOnlyList<double> Modulations => Array.AsReadOnly(CoreEvents.Modulations);

    /// <summary>Conditions in nilearn's column order (numpy.unique: code-point order).</summary>
    public IReadOnlyList<string> Conditions => Core.DesignMatrixModule.conditions(CoreEvents);

    /// <summary>What reading the table warned about (no trial_type column, unexpected columns).</summary>
    public IReadOnlyList<string> Warnings { get; }
}
