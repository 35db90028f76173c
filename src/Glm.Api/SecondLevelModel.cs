using Microsoft.FSharp.Core;

namespace FmriGlm;

/// <summary>Settings of a <see cref="SecondLevelModel"/>; names and defaults are nilearn's.</summary>
public sealed partial record SecondLevelOptions
{
    /// <summary>Path of the mask image (nilearn <c>mask_img</c>); null computes nilearn's background mask of the
    /// mean map.</summary>
    public string? MaskImg { get; init; }

    /// <summary>Gaussian smoothing of each map before masking, FWHM in mm (nilearn <c>smoothing_fwhm</c>); null for none.</summary>
    public double? SmoothingFwhm { get; init; }

    /// <summary>Threads used; results do not depend on it (default: every core).</summary>
    public int Threads { get; init; } = Environment.ProcessorCount;
}

/// <summary>The maps of nilearn's <c>compute_contrast(output_type="all")</c> as whole volumes in NIfTI (Fortran)
/// order, 0 outside the mask.</summary>
public sealed class SecondLevelContrastMaps
{
    internal SecondLevelContrastMaps(Core.SecondLevelMaps maps, Func<double[], double[]> toVolume)
    {
        StatType = Interop.StatTypeName(maps.StatType);
        ZScore = toVolume(maps.ZScore);
        Stat = toVolume(maps.Stat);
        PValue = toVolume(maps.PValue);
        EffectVariance = toVolume(maps.EffectVariance);
        var n = maps.Stat.Length;
        EffectSize = Enumerable.Range(0, maps.Dim).Select(r => toVolume(maps.EffectSize[(r * n)..((r + 1) * n)])).ToArray();
    }

    /// <summary>"t" or "F".</summary>
    public string StatType { get; }

    /// <summary>z score (nilearn's convention).</summary>
    public double[] ZScore { get; }

    /// <summary>The t or F statistic.</summary>
    public double[] Stat { get; }

    /// <summary>One-sided p value.</summary>
    public double[] PValue { get; }

    /// <summary>Effect size: one volume per contrast row (one for t).</summary>
    public IReadOnlyList<double[]> EffectSize { get; }

    /// <summary>Effect variance.</summary>
    public double[] EffectVariance { get; }

    /// <summary>The map nilearn names <paramref name="outputType"/>: "z_score", "stat", "p_value", "effect_size"
    /// (first row) or "effect_variance".</summary>
    /// <exception cref="ArgumentException">Another name.</exception>
    public double[] this[string outputType] => outputType switch
    {
        "z_score" => ZScore,
        "stat" => Stat,
        "p_value" => PValue,
        "effect_size" => EffectSize[0],
        "effect_variance" => EffectVariance,
        _ => throw new ArgumentException($"unknown output type '{outputType}'", nameof(outputType)),
    };
}

/// <summary>Group-level GLM after nilearn's <c>SecondLevelModel</c>: one 3D map per subject, a design with one row
/// per subject, OLS at every voxel. <c>Fit</c> returns this, as nilearn's <c>fit</c> returns self.</summary>
public sealed partial class SecondLevelModel
{
    private readonly SecondLevelOptions _options;
    private Core.SecondLevelInput? _input;
    private Core.SecondLevelFit? _fit;

    /// <summary>A model with nilearn's defaults, or the given settings.</summary>
    public SecondLevelModel(SecondLevelOptions? options = null) => _options = options ?? new SecondLevelOptions();

    /// <summary>Grid sizes X, Y, Z of the fitted maps.</summary>
    /// <exception cref="InvalidOperationException"><c>Fit</c> has not been called.</exception>
    public int[] Shape { get { var i = Input; return new[] { i.Shape.X, i.Shape.Y, i.Shape.Z }; } }

    /// <summary>The mask used (given or computed), Fortran order.</summary>
    /// <exception cref="InvalidOperationException"><c>Fit</c> has not been called.</exception>
    public bool[] Mask => (bool[])Input.Mask.Clone();

    /// <summary>Voxel → mm affine of the maps.</summary>
    /// <exception cref="InvalidOperationException"><c>Fit</c> has not been called.</exception>
    public double[,] Affine => (double[,])Input.Affine.Clone();

    /// <summary>What nilearn would warn about while fitting.</summary>
    public IReadOnlyList<string> Warnings => _input is null ? Array.Empty<string>() : _input.Warnings.ToArray();

    private Core.SecondLevelInput Input => _input ?? throw new InvalidOperationException("Call Fit before using the model.");

    /// <summary>Fits the model to subject maps (3D NIfTI files, in the design's row order). Without a design, the
    /// one-sample design (a single "intercept" column) is used, as nilearn's
    /// <c>make_second_level_design_matrix</c> without confounds builds it.</summary>
    /// <exception cref="Core.GlmInputException">A file is unreadable or on another grid, or the design does not
    /// have one row per map.</exception>
    public SecondLevelModel Fit(IReadOnlyList<string> mapPaths, DesignMatrix? design = null)
    {
        ArgumentNullException.ThrowIfNull(mapPaths);
        RequireNoiseModel("ols", "Fit(mapPaths, varianceMapPaths, design)");
        var input = Core.SecondLevelImages.readMaps(
            mapPaths.ToArray(),
            _options.MaskImg is null ? FSharpOption<string>.None : FSharpOption<string>.Some(_options.MaskImg),
            _options.SmoothingFwhm is double f ? FSharpOption<double>.Some(f) : FSharpOption<double>.None);
        var coreDesign = design is null ? Intercept(input.Subjects) : new Core.DesignMatrix(design.ColumnNames.ToArray(), design.Values);
        _fit = Core.SecondLevel.fit(_options.Threads, coreDesign, Core.VoxelData.NewFloat32(input.Data));
        _mfx = null;
        _input = input;
        return this;
    }

    /// <summary>Fits the model to fitted first-level models (nilearn <c>fit(list_of_FirstLevelModel)</c> then
    /// <c>compute_contrast(first_level_contrast=...)</c>): each model's effect-size map of
    /// <paramref name="firstLevelContrast"/> is one subject, in list order (the design's rows). Without a design,
    /// the one-sample design (a single "intercept" column). Without <c>MaskImg</c>, the mask is nilearn's: the
    /// background mask of the first model's effect map of its first design column (the first-level mask, in
    /// practice). With <c>NoiseModel = "mfx"</c> each model's <c>effect_variance</c> map of the same contrast is its
    /// first-level variance (mixed effects straight from the models, no files in between).</summary>
    /// <param name="models">At least 2 fitted first-level models on the same grid and affine.</param>
    /// <param name="firstLevelContrast">The first-level contrast (expression over each model's design columns);
    /// null is refused, as nilearn refuses it.</param>
    /// <param name="design">The group design, one row per model; null for the intercept only.</param>
    /// <exception cref="Core.GlmInputException">Fewer than 2 models, a model not fitted, no first-level contrast,
    /// models on different grids or affines, a contrast with more than one row or naming an unknown column, or a
    /// design without one row per model.</exception>
    public SecondLevelModel Fit(IReadOnlyList<FirstLevelModel> models, string? firstLevelContrast, DesignMatrix? design = null) =>
        FitModels(models, firstLevelContrast is null ? FSharpOption<Core.ContrastDefinition>.None : FSharpOption<Core.ContrastDefinition>.Some(Core.ContrastDefinition.NewExpression(firstLevelContrast)), design);

    /// <summary>As <see cref="Fit(IReadOnlyList{FirstLevelModel}, string?, DesignMatrix?)"/> with the first-level
    /// contrast given as one weight per design column (the same for every run of every model).</summary>
    /// <exception cref="Core.GlmInputException">As for the expression overload; also weights not matching a
    /// model's design columns.</exception>
    public SecondLevelModel Fit(IReadOnlyList<FirstLevelModel> models, double[] firstLevelContrast, DesignMatrix? design = null)
    {
        ArgumentNullException.ThrowIfNull(firstLevelContrast);
        var w = new double[1, firstLevelContrast.Length];
        for (var j = 0; j < w.Length; j++) w[0, j] = firstLevelContrast[j];
        return FitModels(models, FSharpOption<Core.ContrastDefinition>.Some(Core.ContrastDefinition.NewWeights(w)), design);
    }

    private SecondLevelModel FitModels(IReadOnlyList<FirstLevelModel> models, FSharpOption<Core.ContrastDefinition> firstLevelContrast, DesignMatrix? design)
    {
        ArgumentNullException.ThrowIfNull(models);
        RequireNoiseModel(_options.NoiseModel == "mfx" ? "mfx" : "ols", "Fit(mapPaths, varianceMapPaths, design)");
        var fits = models.Select((m, i) =>
            (m ?? throw new ArgumentNullException(nameof(models), $"model {i} is null")).CoreFit
            ?? throw new Core.GlmInputException($"second_level_input[{i}]", "has not been fit yet")).ToArray();
        var input = Core.SecondLevelImages.ofFirstLevel(
            Microsoft.FSharp.Collections.ListModule.OfSeq(fits),
            firstLevelContrast,
            _options.MaskImg is null ? FSharpOption<bool[]>.None : FSharpOption<bool[]>.Some(Core.Nifti.read(_options.MaskImg).Data.Select(x => x != 0.0).ToArray()),
            _options.SmoothingFwhm is double f ? FSharpOption<double>.Some(f) : FSharpOption<double>.None);
        var coreDesign = design is null ? Intercept(input.Subjects) : new Core.DesignMatrix(design.ColumnNames.ToArray(), design.Values);
        if (_options.NoiseModel == "mfx")
        {
            // the variances come from the same models and contrast as the effects: nothing goes through files
            if (_options.NIter < 0) throw new Core.GlmInputException("n_iter", $"{_options.NIter} EM steps: give 0 or more");
            var variances = Core.SecondLevelImages.varianceOfFirstLevel(input, Microsoft.FSharp.Collections.ListModule.OfSeq(fits), firstLevelContrast.Value);
            _mfx = Core.MixedEffects.fitSecondLevel(_options.NIter, coreDesign, Core.VoxelData.NewFloat32(input.Data), Core.VoxelData.NewFloat32(variances));
            _fit = null;
        }
        else
        {
            _fit = Core.SecondLevel.fit(_options.Threads, coreDesign, Core.VoxelData.NewFloat32(input.Data));
            _mfx = null;
        }
        _input = input;
        return this;
    }

    /// <summary>Smoothness of the OLS fit's residuals inside the mask (SPM's estimator on the standardised
    /// residuals): FWHM per axis in voxels and mm, resels and LKCs, for <c>HeightControl = "fwe"</c> on a group map.</summary>
    /// <exception cref="InvalidOperationException"><c>Fit</c> has not been called.</exception>
    /// <exception cref="Core.GlmInputException">The model is a mixed-effects ("mfx") fit, which has no OLS residuals.</exception>
    public SmoothnessEstimate Smoothness()
    {
        if (_mfx is not null) throw new Core.GlmInputException("noise_model", "is 'mfx': the smoothness is estimated from an OLS fit's residuals");
        var fit = _fit ?? throw new InvalidOperationException("Fit has not been called");
        var s = Core.SecondLevelImages.smoothness(Input, fit);
        return new SmoothnessEstimate(s.FwhmVoxels, s.FwhmMm, s.Resels, s.Lkcs);
    }

    internal static Core.DesignMatrix Intercept(int subjects)
    {
        var values = new double[subjects, 1];
        for (var i = 0; i < subjects; i++) values[i, 0] = 1.0;
        return new Core.DesignMatrix(new[] { "intercept" }, values);
    }

    /// <summary>Computes a contrast given as a column name or an expression over column names (nilearn
    /// <c>second_level_contrast="patients - controls"</c>); null means the only column of a one-column design.</summary>
    /// <param name="contrast">Column name or expression, or null.</param>
    /// <param name="statType">"t", "F", or null for t with one row.</param>
    /// <exception cref="InvalidOperationException"><c>Fit</c> has not been called.</exception>
    /// <exception cref="Core.GlmInputException">The expression names an unknown column or is malformed.</exception>
    public SecondLevelContrastMaps ComputeContrast(string? contrast = null, string? statType = null) =>
        Compute(contrast is null ? Core.SecondLevelContrast.Default : Core.SecondLevelContrast.NewExpression(contrast), statType);

    /// <summary>Computes a contrast given as one weight per design column.</summary>
    /// <exception cref="InvalidOperationException"><c>Fit</c> has not been called.</exception>
    /// <exception cref="Core.GlmInputException">The weights do not match the design columns.</exception>
    public SecondLevelContrastMaps ComputeContrast(double[] weights, string? statType = null)
    {
        ArgumentNullException.ThrowIfNull(weights);
        return Compute(Core.SecondLevelContrast.NewWeights((double[])weights.Clone()), statType);
    }

    /// <summary>Computes an F contrast given as rows × design columns.</summary>
    /// <exception cref="InvalidOperationException"><c>Fit</c> has not been called.</exception>
    /// <exception cref="Core.GlmInputException">The matrix does not match the design columns.</exception>
    public SecondLevelContrastMaps ComputeContrast(double[,] weights, string? statType = null)
    {
        ArgumentNullException.ThrowIfNull(weights);
        return Compute(Core.SecondLevelContrast.NewWeightMatrix(weights), statType);
    }

    private SecondLevelContrastMaps Compute(Core.SecondLevelContrast contrast, string? statType)
    {
        if (_mfx is not null) return ComputeMixedEffects(contrast, statType);
        var fit = _fit ?? throw new InvalidOperationException("Call Fit before ComputeContrast.");
        var input = Input;
        var stat = statType switch
        {
            null => FSharpOption<Core.StatType>.None,
            "t" => FSharpOption<Core.StatType>.Some(Core.StatType.T),
            "F" => FSharpOption<Core.StatType>.Some(Core.StatType.F),
            _ => throw new Core.GlmInputException("second_level_stat_type", $"'{statType}' is neither 't' nor 'F'"),
        };
        var contrastValue = Core.SecondLevel.computeContrast(fit, contrast, stat);
        return new SecondLevelContrastMaps(Core.SecondLevel.maps(contrastValue), v => Core.SecondLevelImages.toVolume(input, v));
    }

    /// <summary>Writes a volume of this model's grid as a float64 NIfTI file with the maps' affine.</summary>
    /// <exception cref="InvalidOperationException"><c>Fit</c> has not been called.</exception>
    public void Save(string path, double[] volume)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(volume);
        var input = Input;
        var options = Core.Nifti.writeOptions(new long[] { input.Shape.X, input.Shape.Y, input.Shape.Z }, input.Affine);
        Core.Nifti.write(path, options, volume);
    }
}
