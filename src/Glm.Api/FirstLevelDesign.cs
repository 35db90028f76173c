using Microsoft.FSharp.Core;

namespace FmriGlm;

/// <summary>Settings of <see cref="FirstLevelDesign.Make(double[], Events?, FirstLevelDesignOptions)"/>; names and
/// defaults are nilearn's <c>make_first_level_design_matrix</c>.</summary>
public sealed record FirstLevelDesignOptions
{
    /// <summary>HRF model as nilearn spells it: "glover" (default), "spm", "spm + derivative",
    /// "spm + derivative + dispersion", the same for glover, "fir", or "none" / null for unconvolved boxcars.</summary>
    public string? HrfModel { get; init; } = "glover";

    /// <summary>A user HRF (nilearn accepts a callable): (t_r in s, oversampling, time_length in s, onset in s) →
    /// kernel sampled every t_r / oversampling seconds. When set, it replaces <see cref="HrfModel"/>.</summary>
    public Func<double, int, double, double, double[]>? UserHrf { get; init; }

    /// <summary>Name of <see cref="UserHrf"/>; columns are named <c>condition_name</c> (nilearn uses the
    /// function's <c>__name__</c>).</summary>
    public string UserHrfName { get; init; } = "custom";

    /// <summary>Drift model: "cosine" (default), "polynomial" or "none" / null.</summary>
    public string? DriftModel { get; init; } = "cosine";

    /// <summary>Cut-off of the cosine drift, in Hz (default 0.01).</summary>
    public double HighPass { get; init; } = 0.01;

    /// <summary>Order of the polynomial drift (default 1).</summary>
    public int DriftOrder { get; init; } = 1;

    /// <summary>FIR delays in scans (default [0]).</summary>
    public IReadOnlyList<int> FirDelays { get; init; } = new[] { 0 };

    /// <summary>Additional regressors (confounds), scans × k, placed after the condition columns.</summary>
    public double[,]? AddRegs { get; init; }

    /// <summary>Names of <see cref="AddRegs"/>; default reg0, reg1, ….</summary>
    public IReadOnlyList<string>? AddRegNames { get; init; }

    /// <summary>Start of the oversampled grid relative to the first frame time, in seconds (default −24).</summary>
    public double MinOnset { get; init; } = -24;

    /// <summary>Oversampling of the convolution grid per t_r (default 50).</summary>
    public int Oversampling { get; init; } = 50;

    internal Core.FirstLevelDesignOptions ToCore()
    {
        Core.Hrf.HrfModel hrf;
        if (UserHrf is { } user)
        {
            var f = FuncConvert.FromFunc(user);
            hrf = Core.Hrf.HrfModel.NewCustom(UserHrfName, f);
        }
        else
        {
            var parsed = Core.Hrf.parse(FirDelays.ToArray(), HrfModel ?? "none");
            if (parsed.IsError)
                throw new Core.GlmInputException("hrf_model", $"unknown HRF model '{HrfModel}'; use one of {string.Join(", ", parsed.ErrorValue)}");
            hrf = parsed.ResultValue;
        }
        var drift = (DriftModel ?? "none").Trim().ToLowerInvariant() switch
        {
            "cosine" => Core.DriftModel.NewCosine(HighPass),
            "polynomial" => Core.DriftModel.NewPolynomial(DriftOrder),
            "none" or "" => Core.DriftModel.NoDrift,
            _ => throw new Core.GlmInputException("drift_model", $"unknown drift model '{DriftModel}'; use cosine, polynomial or none"),
        };
        return new Core.FirstLevelDesignOptions(
            hrf,
            drift,
            AddRegs is null ? null : FSharpOption<double[,]>.Some((double[,])AddRegs.Clone()),
            AddRegNames is null ? null : FSharpOption<string[]>.Some(AddRegNames.ToArray()),
            MinOnset,
            Oversampling);
    }
}

/// <summary>First-level design matrices, as nilearn's <c>make_first_level_design_matrix</c>.</summary>
public static class FirstLevelDesign
{
    /// <summary>Builds the design: condition regressors (conditions in numpy.unique order), additional regressors,
    /// drifts and the constant, regularised as nilearn's full_rank; warnings are in
    /// <see cref="DesignMatrix.Warnings"/>.</summary>
    /// <param name="frameTimes">Scan times in seconds, increasing (see <see cref="FrameTimes"/>).</param>
    /// <param name="events">The paradigm, or null for a design of drifts (and additional regressors) only.</param>
    /// <param name="options">Settings; <c>new FirstLevelDesignOptions()</c> gives nilearn's defaults.</param>
    /// <exception cref="Core.GlmInputException">An unknown model name, bad events or additional regressors.</exception>
    public static DesignMatrix Make(double[] frameTimes, Events? events, FirstLevelDesignOptions options)
    {
        ArgumentNullException.ThrowIfNull(frameTimes);
        ArgumentNullException.ThrowIfNull(options);
        var coreEvents = events is null ? null : FSharpOption<Core.Events>.Some(events.CoreEvents);
        var (design, warnings) = Core.DesignMatrixModule.makeFirstLevel(frameTimes, coreEvents, options.ToCore()).ToValueTuple();
        var all = (events?.Warnings ?? Array.Empty<string>()).Concat(warnings.Select(Interop.Describe)).ToArray();
        return new DesignMatrix(design, all);
    }

    /// <summary>Builds the design with nilearn's default options.</summary>
    public static DesignMatrix Make(double[] frameTimes, Events? events) => Make(frameTimes, events, new FirstLevelDesignOptions());

    /// <summary>Frame times as nilearn's FirstLevelModel builds them: linspace(slice_time_ref·t_r,
    /// (n_scans − 1 + slice_time_ref)·t_r, n_scans).</summary>
    /// <exception cref="ArgumentOutOfRangeException">t_r ≤ 0, fewer than 2 scans, or slice_time_ref outside [0, 1].</exception>
    public static double[] FrameTimes(int scanCount, double tr, double sliceTimeRef = 0)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(scanCount, 2);
        if (!(tr > 0)) throw new ArgumentOutOfRangeException(nameof(tr), tr, "t_r must be > 0");
        if (!(sliceTimeRef >= 0 && sliceTimeRef <= 1)) throw new ArgumentOutOfRangeException(nameof(sliceTimeRef), sliceTimeRef, "slice_time_ref must be in [0, 1]");
        return Core.DesignMatrixModule.frameTimes(scanCount, tr, sliceTimeRef);
    }
}

/// <summary>Second-level covariates: a subject label per row plus named numeric columns.</summary>
public sealed class SubjectCovariates
{
    internal Core.SubjectCovariates CoreCovariates { get; }

    private SubjectCovariates(Core.SubjectCovariates core) => CoreCovariates = core;

    /// <summary>Covariates from arrays: one label per row, one array (one value per row) per name.</summary>
    /// <exception cref="ArgumentException">Names and columns differ in number, or a column has the wrong length.</exception>
    public SubjectCovariates(IReadOnlyList<string> subjectLabels, IReadOnlyList<string> names, IReadOnlyList<double[]> columns)
    {
        ArgumentNullException.ThrowIfNull(subjectLabels);
        ArgumentNullException.ThrowIfNull(names);
        ArgumentNullException.ThrowIfNull(columns);
        if (names.Count != columns.Count) throw new ArgumentException($"{names.Count} names for {columns.Count} columns", nameof(names));
        if (columns.Any(c => c is null || c.Length != subjectLabels.Count))
            throw new ArgumentException("every column needs one value per subject label", nameof(columns));
        CoreCovariates = new Core.SubjectCovariates(subjectLabels.ToArray(), names.ToArray(), columns.Select(c => (double[])c.Clone()).ToArray());
    }

    /// <summary>Reads a TSV with a <c>subject_label</c> column and numeric covariate columns.</summary>
    /// <exception cref="Core.GlmInputException">No subject_label column or a non-numeric cell.</exception>
    public static SubjectCovariates FromTsv(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        return new SubjectCovariates(Core.Tables.readSubjectCovariates(path));
    }

    /// <summary>Covariate names, in table order.</summary>
    public IReadOnlyList<string> Names => Array.AsReadOnly(CoreCovariates.Names);
}

/// <summary>Second-level design matrices, as nilearn's <c>make_second_level_design_matrix</c>.</summary>
public static class SecondLevelDesign
{
    /// <summary>Covariate columns (table order) then "intercept"; rows follow <paramref name="subjectLabels"/>.</summary>
    /// <exception cref="Core.GlmInputException">A subject has no covariate row, or more than one.</exception>
    public static DesignMatrix Make(IReadOnlyList<string> subjectLabels, SubjectCovariates? covariates = null)
    {
        ArgumentNullException.ThrowIfNull(subjectLabels);
        var cov = covariates is null ? null : FSharpOption<Core.SubjectCovariates>.Some(covariates.CoreCovariates);
        var (design, warnings) = Core.DesignMatrixModule.makeSecondLevel(subjectLabels.ToArray(), cov).ToValueTuple();
        return new DesignMatrix(design, warnings.Select(Interop.Describe).ToArray());
    }
}
