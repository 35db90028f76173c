namespace FmriGlm;

/// <summary>A GLM fitted at every voxel, after nipy's <c>GeneralLinearModel</c> with nilearn's <c>run_glm</c>
/// semantics: construct with a design, <see cref="Fit(double[], string, int, int)"/> the data, then ask for
/// contrasts.</summary>
public sealed class GeneralLinearModel
{
    private readonly double[,] _design;
    private Core.GlmFit? _fit;

    /// <summary>A model of the given design, scans × regressors.</summary>
    /// <exception cref="ArgumentException">The design has no rows or columns.</exception>
    public GeneralLinearModel(double[,] design)
    {
        ArgumentNullException.ThrowIfNull(design);
        if (design.GetLength(0) == 0 || design.GetLength(1) == 0)
            throw new ArgumentException("the design has no rows or no columns", nameof(design));
        _design = (double[,])design.Clone();
    }

    /// <summary>Threads used by <c>Fit</c> (default: every core); the results do not depend on it.</summary>
    public int Threads { get; init; } = Environment.ProcessorCount;

    /// <summary>Keep residuals, predicted values and R² (nilearn <c>minimize_memory=False</c>).</summary>
    public bool KeepDiagnostics { get; init; }

    /// <summary>AR(1) only: scale the first whitened scan by √(1 − ρ²) (Prais-Winsten); nilearn does not (default).</summary>
    public bool ScaleFirstScan { get; init; }

    /// <summary>Fits float64 data, scans × voxels column-major (voxel v's series at <c>v*scans</c>).</summary>
    /// <param name="data">The voxel time series.</param>
    /// <param name="noiseModel">"ols", "ar1" (default), "ar2", … as nilearn, "ar1-exact" (per-voxel AR(1)) or "ar1-corrected" (Worsley bias-corrected AR(1)).</param>
    /// <param name="bins">AR(1) grid levels or AR(N) clusters (nilearn <c>bins</c>).</param>
    /// <param name="randomState">Seed of the AR(N ≥ 2) clustering.</param>
    /// <returns>This model, fitted.</returns>
    /// <exception cref="Core.GlmInputException">An unknown noise model.</exception>
    /// <exception cref="ArgumentException">The data are not a whole number of scan series.</exception>
    public GeneralLinearModel Fit(double[] data, string noiseModel = "ar1", int bins = 100, int randomState = 0)
    {
        ArgumentNullException.ThrowIfNull(data);
        return FitCore(Core.VoxelData.NewFloat64(data), noiseModel, bins, randomState);
    }

    /// <summary>Fits float32 data (stored BOLD), scans × voxels column-major; computations are in float64.</summary>
    /// <param name="data">The voxel time series.</param>
    /// <param name="noiseModel">"ols", "ar1" (default), "ar2", …, "ar1-exact" or "ar1-corrected".</param>
    /// <param name="bins">AR(1) grid levels or AR(N) clusters.</param>
    /// <param name="randomState">Seed of the AR(N ≥ 2) clustering.</param>
    /// <returns>This model, fitted.</returns>
    /// <exception cref="Core.GlmInputException">An unknown noise model.</exception>
    public GeneralLinearModel Fit(float[] data, string noiseModel = "ar1", int bins = 100, int randomState = 0)
    {
        ArgumentNullException.ThrowIfNull(data);
        return FitCore(Core.VoxelData.NewFloat32(data), noiseModel, bins, randomState);
    }

    /// <summary>Fits data given as a scans × voxels matrix.</summary>
    /// <param name="data">The voxel time series, one column per voxel.</param>
    /// <param name="noiseModel">"ols", "ar1" (default), "ar2", …, "ar1-exact" or "ar1-corrected".</param>
    /// <param name="bins">AR(1) grid levels or AR(N) clusters.</param>
    /// <param name="randomState">Seed of the AR(N ≥ 2) clustering.</param>
    /// <returns>This model, fitted.</returns>
    /// <exception cref="Core.GlmInputException">An unknown noise model.</exception>
    public GeneralLinearModel Fit(double[,] data, string noiseModel = "ar1", int bins = 100, int randomState = 0)
    {
        ArgumentNullException.ThrowIfNull(data);
        var scans = data.GetLength(0);
        var voxels = data.GetLength(1);
        var flat = new double[scans * voxels];
        for (var v = 0; v < voxels; v++)
            for (var t = 0; t < scans; t++)
                flat[v * scans + t] = data[t, v];
        return FitCore(Core.VoxelData.NewFloat64(flat), noiseModel, bins, randomState);
    }

    private GeneralLinearModel FitCore(Core.VoxelData data, string noiseModel, int bins, int randomState)
    {
        ArgumentNullException.ThrowIfNull(noiseModel);
        var options = new Core.GlmOptions(Interop.ParseNoiseModel(noiseModel), bins, randomState,
            Core.GlmOptionsModule.defaults.ChunkVoxels, Threads, KeepDiagnostics, ScaleFirstScan);
        _fit = Core.Regression.fit(options, _design, data);
        return this;
    }

    private Core.GlmFit Fitted => _fit ?? throw new InvalidOperationException("Call Fit before asking for results.");

    /// <summary>θ, regressors × voxels column-major (voxel v's betas at <c>v*regressors</c>).</summary>
    /// <exception cref="InvalidOperationException"><c>Fit</c> has not been called.</exception>
    public IReadOnlyList<double> Betas => Fitted.Betas;

    /// <summary>Residual variance per voxel (nilearn's dispersion: SSE / (scans − columns)).</summary>
    /// <exception cref="InvalidOperationException"><c>Fit</c> has not been called.</exception>
    public IReadOnlyList<double> Dispersion => Fitted.Dispersion;

    /// <summary>Each voxel's label as nilearn spells it ("0.52" for a binned AR(1) coefficient).</summary>
    /// <exception cref="InvalidOperationException"><c>Fit</c> has not been called.</exception>
    public IReadOnlyList<string> Labels
    {
        get
        {
            var fit = Fitted;
            return Enumerable.Range(0, fit.Voxels).Select(v => fit.Models[fit.Labels[v]].Label).ToArray();
        }
    }

    /// <summary>Residual degrees of freedom (nilearn <c>df_residuals</c>).</summary>
    /// <exception cref="InvalidOperationException"><c>Fit</c> has not been called.</exception>
    public double DegreesOfFreedom => Fitted.DfResiduals;

    /// <summary>A t contrast (default) or a one-row F contrast of the given weights, one per design column.</summary>
    /// <exception cref="InvalidOperationException"><c>Fit</c> has not been called.</exception>
    /// <exception cref="ArgumentException">Wrong number of weights or an unknown stat type.</exception>
    public Contrast Contrast(double[] weights, string statType = "t")
    {
        ArgumentNullException.ThrowIfNull(weights);
        var matrix = new double[1, weights.Length];
        for (var j = 0; j < weights.Length; j++) matrix[0, j] = weights[j];
        return Contrast(matrix, statType);
    }

    /// <summary>An F (default) or tmin-conjunction contrast of the given rows of weights.</summary>
    /// <exception cref="InvalidOperationException"><c>Fit</c> has not been called.</exception>
    /// <exception cref="ArgumentException">Wrong number of weights or an unknown stat type.</exception>
    public Contrast Contrast(double[,] weights, string statType = "F")
    {
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentNullException.ThrowIfNull(statType);
        return new(Core.ContrastModule.compute(Fitted, (double[,])weights.Clone(), Interop.ParseStatType(statType)));
    }

    /// <summary>A contrast given as an expression over the design's column names, e.g. <c>"a - b"</c>.</summary>
    /// <exception cref="InvalidOperationException"><c>Fit</c> has not been called.</exception>
    /// <exception cref="ArgumentException">The expression is malformed or names an unknown column.</exception>
    public Contrast Contrast(string expression, IReadOnlyList<string> columnNames) =>
        Contrast(ContrastExpression.Parse(expression, columnNames));
}
