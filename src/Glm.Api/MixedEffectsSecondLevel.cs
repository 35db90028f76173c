using Microsoft.FSharp.Core;

namespace FmriGlm;

public sealed partial record SecondLevelOptions
{
    /// <summary>"ols" (nilearn's only second-level model, the default) or "mfx": mixed effects with the subjects'
    /// first-level variances, nipy's EM (<c>nipy.algorithms.statistics.mixed_effects_stat</c>); fit it with
    /// <see cref="SecondLevelModel.Fit(IReadOnlyList{string}, IReadOnlyList{string}, DesignMatrix?)"/>.</summary>
    public string NoiseModel { get; init; } = "ols";

    /// <summary>EM steps of the "mfx" model (nipy <c>n_iter</c>, default 5).</summary>
    public int NIter { get; init; } = 5;
}

public sealed partial class SecondLevelModel
{
    private Core.MixedEffectsSecondLevelFit? _mfx;

    /// <summary>Fits the "mfx" model (<c>NoiseModel = "mfx"</c>): subject effect maps and their first-level
    /// variance maps (3D NIfTI files, one per subject, both in the design's row order). The mask is the effect
    /// maps' (given or computed); variance maps are masked by it and not smoothed. Contrasts are t only; their
    /// statistic is nipy's likelihood ratio mapped to t with n − p degrees of freedom (docs/mixed-effects.md).</summary>
    /// <exception cref="Core.GlmInputException"><c>NoiseModel</c> is not "mfx", the variance maps are not one per
    /// effect map, a file is unreadable or on another grid, a variance is negative, or the design does not have
    /// one row per map (each naming the file or input).</exception>
    public SecondLevelModel Fit(IReadOnlyList<string> mapPaths, IReadOnlyList<string> varianceMapPaths, DesignMatrix? design = null)
    {
        ArgumentNullException.ThrowIfNull(mapPaths);
        ArgumentNullException.ThrowIfNull(varianceMapPaths);
        RequireNoiseModel("mfx", "Fit(mapPaths, design)");
        if (_options.NIter < 0) throw new Core.GlmInputException("n_iter", $"{_options.NIter} EM steps: give 0 or more");
        var input = Core.SecondLevelImages.readMaps(
            mapPaths.ToArray(),
            _options.MaskImg is null ? FSharpOption<string>.None : FSharpOption<string>.Some(_options.MaskImg),
            _options.SmoothingFwhm is double f ? FSharpOption<double>.Some(f) : FSharpOption<double>.None);
        var variances = Core.SecondLevelImages.readVarianceMaps(input, varianceMapPaths.ToArray());
        var coreDesign = design is null ? Intercept(input.Subjects) : new Core.DesignMatrix(design.ColumnNames.ToArray(), design.Values);
        _mfx = Core.MixedEffects.fitSecondLevel(_options.NIter, coreDesign, Core.VoxelData.NewFloat32(input.Data), Core.VoxelData.NewFloat32(variances));
        _fit = null;
        _input = input;
        return this;
    }

    private void RequireNoiseModel(string expected, string otherFit)
    {
        if (_options.NoiseModel is not ("ols" or "mfx"))
            throw new Core.GlmInputException("noise_model", $"'{_options.NoiseModel}' is neither 'ols' nor 'mfx'");
        if (_options.NoiseModel != expected)
            throw new Core.GlmInputException("noise_model", $"is '{_options.NoiseModel}': use {otherFit}");
    }

    private SecondLevelContrastMaps ComputeMixedEffects(Core.SecondLevelContrast contrast, string? statType)
    {
        if (statType is not (null or "t"))
            throw new Core.GlmInputException("second_level_stat_type", $"'{statType}': the \"mfx\" model computes t contrasts only");
        var input = Input;
        return new SecondLevelContrastMaps(Core.MixedEffects.computeContrast(_mfx!, contrast), v => Core.SecondLevelImages.toVolume(input, v));
    }
}
