using Microsoft.FSharp.Core;

namespace FmriGlm;

/// <summary>Settings of <see cref="NonParametric.Inference"/>; names and defaults are nilearn's
/// <c>non_parametric_inference</c> ones.</summary>
public sealed record NonParametricOptions
{
    /// <summary>Path of the mask image (nilearn <c>mask</c>); null computes nilearn's background mask.</summary>
    public string? Mask { get; init; }

    /// <summary>Smoothing FWHM in mm before masking (nilearn <c>smoothing_fwhm</c>); null for none.</summary>
    public double? SmoothingFwhm { get; init; }

    /// <summary>The tested contrast: a column name or expression (nilearn <c>second_level_contrast</c>); null for
    /// the only column of a one-column design.</summary>
    public string? SecondLevelContrast { get; init; }

    /// <summary>Number of permutations or sign flips (nilearn <c>n_perm</c>, default 10000).</summary>
    public int NPerm { get; init; } = 10000;

    /// <summary>Test |t| (nilearn <c>two_sided_test</c>, default false).</summary>
    public bool TwoSidedTest { get; init; }

    /// <summary>Add an intercept confound unless the tested variate is the intercept (nilearn <c>model_intercept</c>, default true).</summary>
    public bool ModelIntercept { get; init; } = true;

    /// <summary>Cluster-forming threshold as a p value (nilearn <c>threshold</c>); null for no cluster inference.</summary>
    public double? Threshold { get; init; }

    /// <summary>Compute TFCE and its FWE p values (nilearn <c>tfce</c>, default false).</summary>
    public bool Tfce { get; init; }

    /// <summary>Seed (nilearn <c>random_state</c>); results depend on it but not on <see cref="Threads"/>.</summary>
    public int RandomState { get; init; }

    /// <summary>Threads used (default: every core).</summary>
    public int Threads { get; init; } = Environment.ProcessorCount;
}

/// <summary>The images of nilearn's <c>non_parametric_inference</c>, as whole volumes in NIfTI (Fortran) order
/// (0 outside the mask); cluster and TFCE maps are null when not asked for.</summary>
public sealed class NonParametricResult
{
    internal NonParametricResult(Core.PermutationResult r, Func<double[], double[]> toVolume, int[] shape, double[,] affine)
    {
        Shape = shape;
        Affine = affine;
        T = toVolume(r.T);
        LogPMaxT = toVolume(r.LogPMaxT);
        H0MaxT = r.H0MaxT;
        SignFlipping = r.SignFlipping;
        Warnings = r.Warnings.ToArray();
        if (FSharpOption<Core.ClusterInference>.get_IsSome(r.Clusters))
        {
            var c = r.Clusters.Value;
            Size = toVolume(c.Size);
            LogPMaxSize = toVolume(c.LogPMaxSize);
            Mass = toVolume(c.Mass);
            LogPMaxMass = toVolume(c.LogPMaxMass);
            ThresholdT = c.ThresholdT;
        }
        if (FSharpOption<Core.TfceInference>.get_IsSome(r.Tfce))
        {
            Tfce = toVolume(r.Tfce.Value.Tfce);
            LogPMaxTfce = toVolume(r.Tfce.Value.LogPMaxTfce);
        }
    }

    /// <summary>Grid sizes X, Y, Z.</summary>
    public int[] Shape { get; }

    /// <summary>Voxel → mm affine of the maps.</summary>
    public double[,] Affine { get; }

    /// <summary>t map (nilearn "t").</summary>
    public double[] T { get; }

    /// <summary>−log10 voxel-level FWE p (nilearn "logp_max_t").</summary>
    public double[] LogPMaxT { get; }

    /// <summary>Maximum statistic of each permutation.</summary>
    public double[] H0MaxT { get; }

    /// <summary>True for a sign-flipping (intercept) test.</summary>
    public bool SignFlipping { get; }

    /// <summary>The cluster-forming threshold on t, or NaN without a threshold.</summary>
    public double ThresholdT { get; } = double.NaN;

    /// <summary>Cluster size per voxel (nilearn "size").</summary>
    public double[]? Size { get; }

    /// <summary>−log10 cluster-size FWE p (nilearn "logp_max_size").</summary>
    public double[]? LogPMaxSize { get; }

    /// <summary>Cluster mass per voxel (nilearn "mass").</summary>
    public double[]? Mass { get; }

    /// <summary>−log10 cluster-mass FWE p (nilearn "logp_max_mass").</summary>
    public double[]? LogPMaxMass { get; }

    /// <summary>TFCE map (nilearn "tfce").</summary>
    public double[]? Tfce { get; }

    /// <summary>−log10 TFCE FWE p (nilearn "logp_max_tfce").</summary>
    public double[]? LogPMaxTfce { get; }

    /// <summary>What nilearn would warn about.</summary>
    public IReadOnlyList<string> Warnings { get; }
}

/// <summary>nilearn's <c>non_parametric_inference</c>: permutation (sign flipping for a one-sample test) with max-t,
/// cluster-size, cluster-mass and TFCE family-wise error control.</summary>
public static class NonParametric
{
    /// <summary>Runs the permutation test on subject maps (3D NIfTI files in design-row order). Without a design
    /// the one-sample ("intercept") design is used.</summary>
    /// <exception cref="Core.GlmInputException">A file, the design or the contrast is wrong.</exception>
    public static NonParametricResult Inference(IReadOnlyList<string> mapPaths, NonParametricOptions options, DesignMatrix? design = null)
    {
        ArgumentNullException.ThrowIfNull(mapPaths);
        ArgumentNullException.ThrowIfNull(options);
        var input = Core.SecondLevelImages.readMaps(
            mapPaths.ToArray(),
            options.Mask is null ? FSharpOption<string>.None : FSharpOption<string>.Some(options.Mask),
            options.SmoothingFwhm is double f ? FSharpOption<double>.Some(f) : FSharpOption<double>.None);
        var coreDesign = design is null ? SecondLevelModel.Intercept(input.Subjects) : new Core.DesignMatrix(design.ColumnNames.ToArray(), design.Values);
        var coreOptions = new Core.PermutationOptions(
            options.NPerm,
            options.TwoSidedTest,
            options.ModelIntercept,
            options.Threshold is double t ? FSharpOption<double>.Some(t) : FSharpOption<double>.None,
            options.Tfce,
            options.RandomState,
            Math.Max(1, options.Threads),
            false);
        var contrast = options.SecondLevelContrast is null
            ? Core.SecondLevelContrast.Default
            : Core.SecondLevelContrast.NewExpression(options.SecondLevelContrast);
        var result = Core.Permutation.nonParametricInference(
            coreOptions, FSharpOption<Core.MaskedGrid>.Some(input.Grid), coreDesign, contrast, Core.VoxelData.NewFloat32(input.Data));
        return new NonParametricResult(
            result,
            v => Core.SecondLevelImages.toVolume(input, v),
            new[] { input.Shape.X, input.Shape.Y, input.Shape.Z },
            (double[,])input.Affine.Clone());
    }
}
