using Microsoft.FSharp.Collections;
using Microsoft.FSharp.Core;

namespace FmriGlm;

/// <summary>Settings of a <see cref="FirstLevelModel"/>; names and defaults are nilearn's <c>FirstLevelModel</c>'s.</summary>
public sealed record FirstLevelOptions
{
    /// <summary>Repetition time in seconds (nilearn <c>t_r</c>); needed to build designs from events.</summary>
    public double? TR { get; init; }
    /// <summary>Fraction of the TR at which the model is sampled (nilearn <c>slice_time_ref</c>, default 0).</summary>
    public double SliceTimeRef { get; init; }
    /// <summary>HRF model as nilearn spells it: "glover" (default), "spm", "spm + derivative", "fir", "none", ….</summary>
    public string HrfModel { get; init; } = "glover";
    /// <summary>FIR delays in scans (nilearn <c>fir_delays</c>, default [0]); used by "fir" only.</summary>
    public IReadOnlyList<int> FirDelays { get; init; } = new[] { 0 };
    /// <summary>Drift model: "cosine" (default), "polynomial" or "none".</summary>
    public string DriftModel { get; init; } = "cosine";
    /// <summary>High-pass cut-off of the cosine drift, in Hz (nilearn <c>high_pass</c>, default 0.01).</summary>
    public double HighPass { get; init; } = 0.01;
    /// <summary>Order of the polynomial drift (nilearn <c>drift_order</c>, default 1).</summary>
    public int DriftOrder { get; init; } = 1;
    /// <summary>Start of the oversampled grid before the first scan, in seconds (nilearn <c>min_onset</c>, default −24).</summary>
    public double MinOnset { get; init; } = -24;
    /// <summary>Mask image file (nilearn <c>mask_img</c>); null with <see cref="NoMask"/> false computes an EPI mask.</summary>
    public string? MaskImg { get; init; }
    /// <summary>nilearn <c>mask_img=False</c>: analyse every voxel.</summary>
    public bool NoMask { get; init; }
    /// <summary>Gaussian smoothing FWHM in mm (nilearn <c>smoothing_fwhm</c>, default none).</summary>
    public double? SmoothingFwhm { get; init; }
    /// <summary>nilearn <c>signal_scaling</c>: "0" (default, each voxel's mean), "(0, 1)" (grand mean) or "false".</summary>
    public string SignalScaling { get; init; } = "0";
    /// <summary>nilearn <c>standardize</c>; has no effect, as in nilearn 0.13.1 (see docs/first-level.md).</summary>
    public bool Standardize { get; init; }
    /// <summary>Noise model: "ar1" (default), "ols", "ar2", ….</summary>
    public string NoiseModel { get; init; } = "ar1";
    /// <summary>AR(1) bins (nilearn <c>fit(bins=100)</c>).</summary>
    public int Bins { get; init; } = 100;
    /// <summary>Seed of the AR(p ≥ 2) clustering (nilearn <c>random_state</c>).</summary>
    public int RandomState { get; init; }
    /// <summary>Drop residuals, predicted values and R² (nilearn <c>minimize_memory</c>, default true).</summary>
    public bool MinimizeMemory { get; init; } = true;
    /// <summary>Threads (nilearn <c>n_jobs</c>); results do not depend on it.</summary>
    public int NJobs { get; init; } = Environment.ProcessorCount;

    internal Core.FirstLevelOptions ToCore()
    {
        var design = new FirstLevelDesignOptions
        {
            HrfModel = HrfModel, FirDelays = FirDelays, DriftModel = DriftModel, HighPass = HighPass,
            DriftOrder = DriftOrder, MinOnset = MinOnset,
        }.ToCore();
        var mask = NoMask ? Core.MaskSource.NoMask
            : MaskImg is null ? Core.MaskSource.ComputeEpiMask
            : Core.MaskSource.NewMaskFile(MaskImg);
        var scaling = SignalScaling.Replace(" ", "", StringComparison.Ordinal).ToLowerInvariant() switch
        {
            "0" => Core.SignalScaling.ScaleVoxelMeans,
            "(0,1)" or "0,1" => Core.SignalScaling.ScaleGrandMean,
            "false" or "none" => Core.SignalScaling.NoScaling,
            _ => throw new Core.GlmInputException("signal_scaling",
                $"'{SignalScaling}' is not supported: use 0, (0, 1) or false (nilearn 0.13.1 fails on 1)"),
        };
        return new Core.FirstLevelOptions(
            TR is { } tr ? FSharpOption<double>.Some(tr) : null,
            SliceTimeRef, design.HrfModel, design.DriftModel, MinOnset, mask,
            SmoothingFwhm is { } f ? FSharpOption<double>.Some(f) : null,
            scaling, Standardize, Interop.ParseNoiseModel(NoiseModel), Bins, RandomState, MinimizeMemory, NJobs);
    }
}

/// <summary>One run's inputs (nilearn fit's <c>run_imgs[i]</c>, <c>events[i]</c>, <c>confounds[i]</c>,
/// <c>design_matrices[i]</c>, <c>sample_masks[i]</c>).</summary>
public sealed record FirstLevelRun
{
    /// <summary>Path of the 4D BOLD image (.nii or .nii.gz).</summary>
    public required string BoldPath { get; init; }
    /// <summary>The run's events; needs <see cref="FirstLevelOptions.TR"/>.</summary>
    public Events? Events { get; init; }
    /// <summary>Confounds TSV (fMRIPrep style).</summary>
    public string? ConfoundsPath { get; init; }
    /// <summary>Confound columns to use; null uses every column.</summary>
    public IReadOnlyList<string>? ConfoundColumns { get; init; }
    /// <summary>A design given directly; events and confounds are then not used.</summary>
    public DesignMatrix? DesignMatrix { get; init; }
    /// <summary>Indices of the scans kept (nilearn <c>sample_masks</c>); null keeps all.</summary>
    public IReadOnlyList<int>? SampleMask { get; init; }
    /// <summary>fMRIPrep confounds from <see cref="FmriGlm.Confounds.Load"/>: their table is the run's confounds and
    /// their sample mask the run's (nilearn's <c>fit(..., confounds, sample_masks)</c> with load_confounds' two
    /// outputs). Excludes <see cref="ConfoundsPath"/> and <see cref="SampleMask"/>.</summary>
    public LoadedConfounds? Confounds { get; init; }

    internal Core.RunInput ToCore()
    {
        if (Confounds is not null)
        {
            if (ConfoundsPath is not null || SampleMask is not null)
                throw new Core.GlmInputException("Confounds",
                    "give loaded confounds or ConfoundsPath/SampleMask, not both: the loaded confounds carry their sample mask");
            return Core.Confounds.runInput(Core.BoldSource.NewBoldFile(BoldPath),
                Events is null ? null : FSharpOption<Core.Events>.Some(Events.CoreEvents), Confounds.CoreConfounds);
        }
        var confounds = ConfoundsPath is null
            ? null
            : FSharpOption<Tuple<string[], double[,]>>.Some(Core.Tables.readConfounds(ConfoundsPath,
                ConfoundColumns is null ? null : FSharpOption<string[]>.Some(ConfoundColumns.ToArray())));
        return new Core.RunInput(
            Core.BoldSource.NewBoldFile(BoldPath),
            Events is null ? null : FSharpOption<Core.Events>.Some(Events.CoreEvents),
            confounds,
            DesignMatrix is null ? null : FSharpOption<Core.DesignMatrix>.Some(DesignMatrix.CoreDesign),
            SampleMask is null ? null : FSharpOption<int[]>.Some(SampleMask.ToArray()));
    }
}

/// <summary>The maps of one contrast of a <see cref="FirstLevelModel"/>, on the runs' grid (Fortran order, 0 outside
/// the mask), as nilearn's <c>compute_contrast(..., output_type=...)</c> returns them.</summary>
public sealed class FirstLevelContrastMaps
{
    private readonly Core.FirstLevelFit _fit;
    internal Core.FirstLevelContrast Core { get; }

    internal FirstLevelContrastMaps(Core.FirstLevelFit fit, Core.FirstLevelContrast contrast)
    {
        _fit = fit;
        Core = contrast;
        Warnings = contrast.Warnings.ToArray();
    }

    private double[] Map(Core.OutputType output) => FmriGlm.Core.FirstLevel.outputImage(_fit, Core, output);

    /// <summary>"t" or "F".</summary>
    public string StatType => Interop.StatTypeName(FmriGlm.Core.ContrastModule.statType(Core.Contrast));
    /// <summary>Degrees of freedom (summed over runs).</summary>
    public double DegreesOfFreedom => FmriGlm.Core.ContrastModule.degreesOfFreedom(Core.Contrast);
    /// <summary>What nilearn warns about while computing the contrast.</summary>
    public IReadOnlyList<string> Warnings { get; }
    /// <summary>z scores (nilearn <c>z_score</c>).</summary>
    public double[] ZScore() => Map(FmriGlm.Core.OutputType.ZScore);
    /// <summary>t or F statistics (nilearn <c>stat</c>).</summary>
    public double[] Stat() => Map(FmriGlm.Core.OutputType.Stat);
    /// <summary>p values (nilearn <c>p_value</c>).</summary>
    public double[] PValue() => Map(FmriGlm.Core.OutputType.PValue);
    /// <summary>Effect sizes; one volume per row for an F contrast (nilearn <c>effect_size</c>).</summary>
    public double[] EffectSize() => Map(FmriGlm.Core.OutputType.EffectSize);
    /// <summary>Effect variances (nilearn <c>effect_variance</c>).</summary>
    public double[] EffectVariance() => Map(FmriGlm.Core.OutputType.EffectVariance);
}

/// <summary>GLM of one subject's runs, after nilearn's <c>FirstLevelModel</c>: <c>Fit</c> returns this, as nilearn's
/// <c>fit</c> returns self; then <c>ComputeContrast</c> and <c>WriteOutputs</c>.</summary>
public sealed class FirstLevelModel
{
    private readonly Core.FirstLevelOptions _options;
    private Core.FirstLevelFit? _fit;

    /// <summary>A model with the given settings.</summary>
    /// <exception cref="Core.GlmInputException">An option has a value nilearn would reject.</exception>
    public FirstLevelModel(FirstLevelOptions options) =>
        _options = (options ?? throw new ArgumentNullException(nameof(options))).ToCore();

    /// <summary>A model with nilearn's defaults and the given TR, in seconds.</summary>
    public FirstLevelModel(double tr) : this(new FirstLevelOptions { TR = tr }) { }

    private Core.FirstLevelFit Fitted => _fit ?? throw new InvalidOperationException("Call Fit first.");

    /// <summary>The core fit, null before <c>Fit</c> (for <see cref="SecondLevelModel"/>).</summary>
    internal Core.FirstLevelFit? CoreFit => _fit;

    /// <summary>Fits the runs (same grid and affine), as nilearn's <c>fit</c>.</summary>
    /// <exception cref="Core.GlmInputException">Bad input: see docs/first-level.md (grids, row counts, NaN, …).</exception>
    public FirstLevelModel Fit(IReadOnlyList<FirstLevelRun> runs)
    {
        ArgumentNullException.ThrowIfNull(runs);
        if (runs.Any(r => r is null)) throw new ArgumentNullException(nameof(runs), "a run is null");
        _fit = Core.FirstLevel.fit(_options, ListModule.OfSeq(runs.Select(r => r.ToCore())));
        return this;
    }

    /// <summary>Fits one run from a BOLD image and its events.</summary>
    public FirstLevelModel Fit(string boldPath, Events events, string? confoundsPath = null)
    {
        ArgumentNullException.ThrowIfNull(boldPath);
        ArgumentNullException.ThrowIfNull(events);
        return Fit(new[] { new FirstLevelRun { BoldPath = boldPath, Events = events, ConfoundsPath = confoundsPath } });
    }

    /// <summary>Fits one run from a BOLD image, its events and its fMRIPrep confounds with their sample mask
    /// (from <see cref="FmriGlm.Confounds.Load"/> or <see cref="FmriGlm.Confounds.LoadStrategy"/>).</summary>
    public FirstLevelModel Fit(string boldPath, Events events, LoadedConfounds confounds)
    {
        ArgumentNullException.ThrowIfNull(boldPath);
        ArgumentNullException.ThrowIfNull(events);
        ArgumentNullException.ThrowIfNull(confounds);
        return Fit(new[] { new FirstLevelRun { BoldPath = boldPath, Events = events, Confounds = confounds } });
    }

    /// <summary>The mask used (nilearn <c>masker_.mask_img_</c>), Fortran order.</summary>
    public IReadOnlyList<bool> Mask => Array.AsReadOnly(Fitted.Mask);
    /// <summary>The grid: X, Y, Z.</summary>
    public IReadOnlyList<int> Shape => new[] { Fitted.Shape.X, Fitted.Shape.Y, Fitted.Shape.Z };
    /// <summary>The designs used, one per run (nilearn <c>design_matrices_</c>).</summary>
    public IReadOnlyList<DesignMatrix> DesignMatrices =>
        Fitted.Runs.Select(r => new DesignMatrix(r.Design, Array.Empty<string>())).ToArray();
    /// <summary>What nilearn warns about while fitting.</summary>
    public IReadOnlyList<string> Warnings => Fitted.Warnings.ToArray();

    private FirstLevelContrastMaps Compute(IEnumerable<Core.ContrastDefinition> definitions, string? statType) =>
        new(Fitted, Core.FirstLevel.computeContrast(Fitted, ListModule.OfSeq(definitions),
            statType is null ? null : FSharpOption<Core.StatType>.Some(Interop.ParseStatType(statType))));

    /// <summary>A contrast such as <c>"face - house"</c> over every run's design columns.</summary>
    /// <exception cref="InvalidOperationException"><c>Fit</c> has not been called.</exception>
    /// <exception cref="Core.GlmInputException">The expression names an unknown column or is malformed.</exception>
    public FirstLevelContrastMaps ComputeContrast(string expression, string? statType = null)
    {
        ArgumentNullException.ThrowIfNull(expression);
        return Compute(new[] { Core.ContrastDefinition.NewExpression(expression) }, statType);
    }

    /// <summary>A t contrast from weights over the design columns, the same for every run.</summary>
    public FirstLevelContrastMaps ComputeContrast(double[] weights, string? statType = null)
    {
        ArgumentNullException.ThrowIfNull(weights);
        return ComputeContrast(new[] { weights }, statType);
    }

    /// <summary>An F contrast (rows × design columns), the same for every run.</summary>
    public FirstLevelContrastMaps ComputeContrast(double[,] weights, string? statType = null)
    {
        ArgumentNullException.ThrowIfNull(weights);
        return Compute(new[] { Core.ContrastDefinition.NewWeights((double[,])weights.Clone()) }, statType);
    }

    /// <summary>One t contrast vector per run (nilearn's list of arrays).</summary>
    public FirstLevelContrastMaps ComputeContrast(IReadOnlyList<double[]> weightsPerRun, string? statType = null)
    {
        ArgumentNullException.ThrowIfNull(weightsPerRun);
        return Compute(weightsPerRun.Select(w =>
        {
            ArgumentNullException.ThrowIfNull(w, nameof(weightsPerRun));
            var m = new double[1, w.Length];
            for (var j = 0; j < w.Length; j++) m[0, j] = w[j];
            return Core.ContrastDefinition.NewWeights(m);
        }), statType);
    }

    /// <summary>R² of a run on the grid (needs <c>MinimizeMemory = false</c>).</summary>
    public double[] RSquare(int run = 0) => Core.FirstLevel.rSquare(Fitted, run);
    /// <summary>Residuals of a run, scans volumes on the grid (needs <c>MinimizeMemory = false</c>).</summary>
    public double[] Residuals(int run = 0) => Core.FirstLevel.residuals(Fitted, run);
    /// <summary>Smoothness of a run's residuals inside the mask (SPM's estimator on the standardised residuals): FWHM
    /// per axis in voxels and mm, resels and LKCs, for <c>HeightControl = "fwe"</c> (needs <c>MinimizeMemory = false</c>).</summary>
    /// <exception cref="InvalidOperationException">The model was fitted with <c>MinimizeMemory = true</c>.</exception>
    public SmoothnessEstimate Smoothness(int run = 0)
    {
        var s = Core.FirstLevel.smoothness(Fitted, run);
        return new SmoothnessEstimate(s.FwhmVoxels, s.FwhmMm, s.Resels, s.Lkcs);
    }
    /// <summary>Predicted values of a run, scans volumes on the grid (needs <c>MinimizeMemory = false</c>).</summary>
    public double[] Predicted(int run = 0) => Core.FirstLevel.predicted(Fitted, run);

    /// <summary>Writes the maps with nilearn's BIDS-derivative names (<c>contrast-&lt;camelCase&gt;_stat-&lt;z|t|F|p|effect|variance&gt;_statmap.nii.gz</c>),
    /// the mask, the designs and the model's parameters, atomically (no partial directory on failure).</summary>
    /// <param name="directory">Output folder; must not exist or be empty.</param>
    /// <param name="contrasts">Contrast names and their maps.</param>
    /// <param name="outputType">"all" (default) or one of z_score, stat, p_value, effect_size, effect_variance.</param>
    public void WriteOutputs(string directory, IReadOnlyDictionary<string, FirstLevelContrastMaps> contrasts, string outputType = "all")
    {
        ArgumentNullException.ThrowIfNull(directory);
        ArgumentNullException.ThrowIfNull(contrasts);
        var outputs = Core.FirstLevel.parseOutputType(outputType);
        if (outputs.IsError)
            throw new ArgumentException($"unknown output type '{outputType}'; use {string.Join(", ", outputs.ErrorValue)}", nameof(outputType));
        var list = ListModule.OfSeq(contrasts.Select(kv => Tuple.Create(kv.Key, kv.Value.Core)));
        Core.FirstLevel.writeOutputs(directory, Fitted, list, outputs.ResultValue);
    }
}
