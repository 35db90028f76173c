using Microsoft.FSharp.Collections;
using Microsoft.FSharp.Core;

namespace FmriGlm;

/// <summary>Parameters of <see cref="Confounds.Load"/>, with nilearn 0.13.1's <c>load_confounds</c> names, spellings
/// and defaults. A parameter is used only when its component is in <see cref="Strategy"/>.</summary>
public sealed record ConfoundsOptions
{
    /// <summary>Noise components: "motion", "high_pass", "wm_csf", "global_signal", "compcor", "ica_aroma", "scrub",
    /// "non_steady_state" (default motion, high_pass, wm_csf).</summary>
    public IReadOnlyList<string> Strategy { get; init; } = new[] { "motion", "high_pass", "wm_csf" };
    /// <summary><c>motion</c>: "basic", "power2", "derivatives" or "full" (default).</summary>
    public string Motion { get; init; } = "full";
    /// <summary><c>scrub</c>: kept segments shorter than this many volumes are also left out (default 5; 0: none).</summary>
    public int Scrub { get; init; } = 5;
    /// <summary><c>fd_threshold</c>, framewise displacement in mm (default 0.5).</summary>
    public double FdThreshold { get; init; } = 0.5;
    /// <summary><c>std_dvars_threshold</c> (default 1.5).</summary>
    public double StdDvarsThreshold { get; init; } = 1.5;
    /// <summary><c>wm_csf</c>: "basic" (default), "power2", "derivatives" or "full".</summary>
    public string WmCsf { get; init; } = "basic";
    /// <summary><c>global_signal</c>: "basic" (default), "power2", "derivatives" or "full".</summary>
    public string GlobalSignal { get; init; } = "basic";
    /// <summary><c>compcor</c>: "anat_combined" (default), "anat_separated", "temporal", "temporal_anat_combined" or
    /// "temporal_anat_separated".</summary>
    public string Compcor { get; init; } = "anat_combined";
    /// <summary><c>n_compcor</c>: "all" (default) or a number of components per mask, such as "5".</summary>
    public string NCompcor { get; init; } = "all";
    /// <summary><c>ica_aroma</c>: "full" (default) or "basic".</summary>
    public string IcaAroma { get; init; } = "full";
    /// <summary><c>demean</c>: subtract each column's mean over the kept volumes (default true).</summary>
    public bool Demean { get; init; } = true;

    internal Core.ConfoundsOptions ToCore() => new(
        ListModule.OfSeq((Strategy ?? throw new Core.GlmInputException("strategy", "must not be null"))
            .Select(Core.Confounds.parseComponent)),
        Core.Confounds.parseExpansion("motion", Motion), Scrub, FdThreshold, StdDvarsThreshold,
        Core.Confounds.parseExpansion("wm_csf", WmCsf), Core.Confounds.parseExpansion("global_signal", GlobalSignal),
        Core.Confounds.parseCompCor(Compcor), Core.Confounds.parseCompCorCount(NCompcor),
        Core.Confounds.parseIcaAroma(IcaAroma), Demean);
}

/// <summary>The keyword arguments of <see cref="Confounds.LoadStrategy"/> (nilearn <c>load_confounds_strategy</c>):
/// null keeps the preset's value; a value the preset does not accept is ignored with nilearn's warning; a
/// <see cref="GlobalSignal"/> adds the global_signal component.</summary>
public sealed record ConfoundsStrategyOptions
{
    /// <summary><c>motion</c>.</summary>
    public string? Motion { get; init; }
    /// <summary><c>wm_csf</c>.</summary>
    public string? WmCsf { get; init; }
    /// <summary><c>global_signal</c>; adds global_signal to the preset's strategy.</summary>
    public string? GlobalSignal { get; init; }
    /// <summary><c>scrub</c>.</summary>
    public int? Scrub { get; init; }
    /// <summary><c>fd_threshold</c>.</summary>
    public double? FdThreshold { get; init; }
    /// <summary><c>std_dvars_threshold</c>.</summary>
    public double? StdDvarsThreshold { get; init; }
    /// <summary><c>compcor</c>.</summary>
    public string? Compcor { get; init; }
    /// <summary><c>n_compcor</c>: "all" or a number.</summary>
    public string? NCompcor { get; init; }
    /// <summary><c>demean</c>.</summary>
    public bool? Demean { get; init; }

    private static FSharpOption<T>? Some<T>(T? value) where T : class =>
        value is null ? null : FSharpOption<T>.Some(value);

    private static FSharpOption<T>? Some<T>(T? value) where T : struct =>
        value is { } v ? FSharpOption<T>.Some(v) : null;

    internal Core.DenoiseOverrides ToCore() => new(
        Some(Motion is null ? null : Core.Confounds.parseExpansion("motion", Motion)),
        Some(WmCsf is null ? null : Core.Confounds.parseExpansion("wm_csf", WmCsf)),
        Some(GlobalSignal is null ? null : Core.Confounds.parseExpansion("global_signal", GlobalSignal)),
        Some(Scrub), Some(FdThreshold), Some(StdDvarsThreshold),
        Some(Compcor is null ? null : Core.Confounds.parseCompCor(Compcor)),
        Some(NCompcor is null ? null : Core.Confounds.parseCompCorCount(NCompcor)),
        null, Some(Demean));
}

/// <summary>What nilearn's <c>load_confounds</c> returns for one image: the confounds (every volume, also the
/// left-out ones) and the sample mask. Give it to <see cref="FirstLevelRun.Confounds"/> or
/// <see cref="FirstLevelModel.Fit(string, Events, LoadedConfounds)"/>.</summary>
public sealed class LoadedConfounds
{
    internal Core.LoadedConfounds CoreConfounds { get; }

    internal LoadedConfounds(Core.LoadedConfounds loaded)
    {
        CoreConfounds = loaded;
        Columns = loaded.Columns.ToArray();
        Values = Interop.ToRows(loaded.Values);
        SampleMask = loaded.SampleMask is null ? null : loaded.SampleMask.Value.ToArray();
        ConfoundsFile = loaded.File;
        Warnings = loaded.Warnings.ToArray();
    }

    /// <summary>Column names, sorted as nilearn returns them.</summary>
    public IReadOnlyList<string> Columns { get; }
    /// <summary>Values, one row per volume (volumes × columns).</summary>
    public double[][] Values { get; }
    /// <summary>0-based indices of the volumes kept (nilearn <c>sample_mask</c>); null when no volume is flagged
    /// (the table has no non-steady-state column and scrubbing found no outlier).</summary>
    public int[]? SampleMask { get; }
    /// <summary>The confounds TSV that was read.</summary>
    public string ConfoundsFile { get; }
    /// <summary>nilearn's warnings, in words.</summary>
    public IReadOnlyList<string> Warnings { get; }

    /// <summary>One column's values, by name.</summary>
    /// <exception cref="KeyNotFoundException">No such column.</exception>
    public double[] Column(string name)
    {
        var j = Array.IndexOf(CoreConfounds.Columns, name);
        if (j < 0) throw new KeyNotFoundException($"no confound column '{name}'; columns: {string.Join(", ", Columns)}");
        return Values.Select(row => row[j]).ToArray();
    }

    /// <summary>The table as TSV text (header, one row per volume, "n/a" for NaN).</summary>
    public string ToTsv() => Core.Confounds.toTsv(CoreConfounds);
}

/// <summary>nilearn 0.13.1's fMRIPrep interface (<c>nilearn.interfaces.fmriprep</c>): the confounds of a
/// preprocessed BOLD file, found beside it, selected by a denoising strategy.</summary>
public static class Confounds
{
    /// <summary><c>load_confounds(img_files, ...)</c> for one BOLD file.</summary>
    /// <param name="boldPath">fMRIPrep's <c>*_desc-preproc_bold.nii.gz</c> (or <c>*_desc-smoothAROMAnonaggr_bold</c>
    /// for ica_aroma "full", or <c>*_bold.dtseries.nii</c>); the image itself is not read.</param>
    /// <param name="options">Strategy and parameters; null for nilearn's defaults.</param>
    /// <exception cref="Core.GlmInputException">A strategy nilearn rejects, a missing or ambiguous confounds file,
    /// missing columns (the message names the file and the columns), an unknown option value.</exception>
    public static LoadedConfounds Load(string boldPath, ConfoundsOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(boldPath);
        return new LoadedConfounds(Core.Confounds.load(boldPath, (options ?? new ConfoundsOptions()).ToCore()));
    }

    /// <summary><c>load_confounds_strategy(img_files, denoise_strategy, **kwargs)</c> for one BOLD file.</summary>
    /// <param name="boldPath">As for <see cref="Load"/>.</param>
    /// <param name="denoiseStrategy">"simple" (default), "scrubbing", "compcor" or "ica_aroma".</param>
    /// <param name="options">Overrides of the preset's parameters; null for none.</param>
    /// <exception cref="Core.GlmInputException">As <see cref="Load"/>; an unknown preset.</exception>
    public static LoadedConfounds LoadStrategy(string boldPath, string denoiseStrategy = "simple",
        ConfoundsStrategyOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(boldPath);
        ArgumentNullException.ThrowIfNull(denoiseStrategy);
        return new LoadedConfounds(Core.Confounds.loadStrategy(boldPath,
            Core.Confounds.parseDenoiseStrategy(denoiseStrategy), (options ?? new ConfoundsStrategyOptions()).ToCore()));
    }
}
