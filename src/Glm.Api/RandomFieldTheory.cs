using Microsoft.FSharp.Core;

namespace FmriGlm;

/// <summary>A random field of test statistics, as nipy 0.5.0's classes in <c>nipy.algorithms.statistics.rft</c>.</summary>
public sealed class RandomField
{
    internal Core.RftField Core { get; }

    private RandomField(Core.RftField core) => Core = core;

    /// <summary>Unit-variance Gaussian field (nipy <c>Gaussian()</c>).</summary>
    public static RandomField Gaussian() => new(FmriGlm.Core.RftField.Gaussian);

    /// <summary>Student t field (nipy <c>TStat(dfd)</c>).</summary>
    public static RandomField TStat(double dfd) => new(FmriGlm.Core.RftField.NewTStat(dfd));

    /// <summary>F field (nipy <c>FStat(dfn, dfd)</c>), evaluated at √(dfn·x).</summary>
    public static RandomField FStat(int dfn, double dfd) => new(FmriGlm.Core.RftField.NewFStat(dfn, dfd));

    /// <summary>χ² field (nipy <c>ChiSquared(dfn)</c>), evaluated at √x.</summary>
    public static RandomField ChiSquared(int dfn) => new(FmriGlm.Core.RftField.NewChiSquared(dfn));

    /// <summary>Hotelling's T² over a k-sphere (nipy <c>Hotelling(dfd, k)</c>), evaluated at √x.</summary>
    public static RandomField Hotelling(double dfd, int k) => new(FmriGlm.Core.RftField.NewHotelling(dfd, k));
}

/// <summary>SPM's <c>spm_P_RF</c> result for c clusters of at least k (in μD units) above u.</summary>
/// <param name="P">P(at least c clusters of size ≥ k above u).</param>
/// <param name="PerCluster">P(one cluster has size ≥ k).</param>
/// <param name="ExpectedClusters">Expected number of clusters (expected EC) above u.</param>
/// <param name="ExpectedSizePerCluster">Expected size of one cluster, in μD units.</param>
public sealed record ClusterProbabilityResult(double P, double PerCluster, double ExpectedClusters, double ExpectedSizePerCluster);

/// <summary>Smoothness of residuals in a mask.</summary>
/// <param name="FwhmVoxels">FWHM along i, j, k in voxels (SPM's estimator).</param>
/// <param name="FwhmMm">FWHM along i, j, k in mm.</param>
/// <param name="Resels">Resel counts R0..R3 of the mask at that FWHM.</param>
/// <param name="Lkcs">LKCs μ0..μ3 of the mask at that FWHM.</param>
public sealed record SmoothnessEstimate(double[] FwhmVoxels, double[] FwhmMm, double[] Resels, double[] Lkcs);

/// <summary>Random field theory (nipy 0.5.0 <c>rft</c> and <c>intvol</c>, SPM's FWE p-values): search regions are
/// Lipschitz–Killing curvatures (LKCs) μ0..μD, not resels (μd = Rd (4 ln 2)^(d/2)). Volumes are in NIfTI (Fortran)
/// order, voxel (i, j, k) at <c>i + X·(j + Y·k)</c>.</summary>
public static class RandomFieldTheory
{
    /// <summary>nipy <c>field.density(x, dim)</c>: the EC density ρ_dim(x).</summary>
    public static double EcDensity(RandomField field, int dim, double x) => Core.RandomFieldTheory.ecDensity(field.Core, dim, x);

    /// <summary>nipy <c>field(x, search)</c>: the unclipped expected Euler characteristic Σ μd ρd(x).</summary>
    public static double ExpectedEc(RandomField field, double[] search, double x) => Core.RandomFieldTheory.expectedEc(field.Core, search, x);

    /// <summary>nipy <c>field.pvalue(x, search)</c>: the same unclipped expected EC.</summary>
    public static double PValue(RandomField field, double[] search, double x) => Core.RandomFieldTheory.pvalue(field.Core, search, x);

    /// <summary>Voxel-level FWE p-value of a peak of height x (SPM <c>spm_P_RF(1, 0, x, ...)</c>): 1 − exp(−EC).</summary>
    public static double FwePValue(RandomField field, double[] lkcs, double x) => Core.RandomFieldTheory.fwePValue(field.Core, lkcs, x);

    /// <summary>The height where <see cref="FwePValue"/> equals alpha (SPM <c>spm_uc_RF</c>).</summary>
    /// <exception cref="Core.GlmInputException">alpha is not in (0, 1).</exception>
    public static double FweThreshold(RandomField field, double[] lkcs, double alpha) => Core.RandomFieldTheory.fweThreshold(field.Core, lkcs, alpha);

    /// <summary>SPM's <c>spm_P_RF(c, k, u, ...)</c> with k in μD units (k voxels · μD / voxels in the region).</summary>
    public static ClusterProbabilityResult ClusterProbability(RandomField field, double[] lkcs, int clusters, double kLkc, double u)
    {
        var r = Core.RandomFieldTheory.clusterProbability(field.Core, lkcs, clusters, kLkc, u);
        return new ClusterProbabilityResult(r.P, r.PerCluster, r.ExpectedClusters, r.ExpectedVoxelsPerCluster);
    }

    /// <summary>nipy <c>Q(dim, dfd)</c> coefficients, highest power first.</summary>
    public static double[] Q(int dim, double dfd = double.PositiveInfinity) => Core.RandomFieldTheory.q(dim, dfd);

    /// <summary>nipy <c>mu_sphere(n, j, r)</c>.</summary>
    public static double MuSphere(int n, int j, double r = 1.0) => Core.RandomFieldTheory.muSphere(n, j, r);

    /// <summary>nipy <c>mu_ball(n, j, r)</c>.</summary>
    public static double MuBall(int n, int j, double r = 1.0) => Core.RandomFieldTheory.muBall(n, j, r);

    /// <summary>nipy <c>spherical_search(n, r).mu</c>.</summary>
    public static double[] SphericalSearch(int n, double r = 1.0) => Core.RandomFieldTheory.sphericalSearch(n, r);

    /// <summary>nipy <c>ball_search(n, r).mu</c>.</summary>
    public static double[] BallSearch(int n, double r = 1.0) => Core.RandomFieldTheory.ballSearch(n, r);

    /// <summary>nipy <c>volume2ball(vol, d).mu</c>.</summary>
    public static double[] Volume2Ball(double vol, int d = 3) => Core.RandomFieldTheory.volume2ball(vol, d);

    /// <summary>nipy <c>IntrinsicVolumes(a) * IntrinsicVolumes(b)</c>: the convolution of the LKC vectors.</summary>
    public static double[] IntrinsicVolumesProduct(double[] a, double[] b) => Core.RandomFieldTheory.intrinsicVolumesProduct(a, b);

    /// <summary>nipy <c>scale_space(region, (w1, w2), kappa).mu</c>.</summary>
    public static double[] ScaleSpace(double[] region, double w1, double w2, double kappa = 1.0) =>
        Core.RandomFieldTheory.scaleSpace(region, new Tuple<double, double>(w1, w2), kappa);

    /// <summary>Resels R0..RD to LKCs: μd = Rd (4 ln 2)^(d/2).</summary>
    public static double[] ReselsToLkcs(double[] resels) => Core.RandomFieldTheory.reselsToLkcs(resels);

    /// <summary>LKCs to resels: Rd = μd / (4 ln 2)^(d/2).</summary>
    public static double[] LkcsToResels(double[] lkcs) => Core.RandomFieldTheory.lkcsToResels(lkcs);

    /// <summary>nipy <c>intvol.EC3d(mask)</c>.</summary>
    public static int Ec3d(bool[,,] mask) => Core.RandomFieldTheory.ec3d(mask);

    /// <summary>nipy <c>intvol.EC2d(mask)</c>.</summary>
    public static int Ec2d(bool[,] mask) => Core.RandomFieldTheory.ec2d(mask);

    /// <summary>nipy <c>intvol.EC1d(mask)</c>.</summary>
    public static double Ec1d(bool[] mask) => Core.RandomFieldTheory.ec1d(mask);

    /// <summary>nipy <c>intvol.Lips3d(coords, mask)</c>: [μ0, μ1, μ2, μ3]; coords[c] is coordinate c of every voxel.</summary>
    public static double[] Lips3d(double[][,,] coords, bool[,,] mask) => Core.RandomFieldTheory.lips3d(coords, mask);

    /// <summary>nipy <c>intvol.Lips2d(coords, mask)</c>: [μ0, μ1, μ2].</summary>
    public static double[] Lips2d(double[][,] coords, bool[,] mask) => Core.RandomFieldTheory.lips2d(coords, mask);

    /// <summary>nipy <c>intvol.Lips1d(coords, mask)</c>: [μ0, μ1].</summary>
    public static double[] Lips1d(double[][] coords, bool[] mask) => Core.RandomFieldTheory.lips1d(coords, mask);

    /// <summary>LKCs of a mask for a field of the given FWHM (mm along i, j, k).</summary>
    /// <exception cref="Core.GlmInputException">Empty or mismatched mask, or a FWHM that is not positive.</exception>
    public static double[] MaskLkcs(bool[] mask, int[] shape, double[] voxelSizes, double[] fwhm) =>
        Core.RandomFieldTheory.maskLkcs(Grid.Of(shape), voxelSizes, fwhm, mask);

    /// <summary>LKCs estimated from residual volumes (nipy Lips3d on the unit-norm residuals).</summary>
    /// <exception cref="Core.GlmInputException">The mask or residuals do not match the grid.</exception>
    public static double[] ResidualLkcs(double[][] residuals, int[] shape, bool[] mask) =>
        Core.RandomFieldTheory.residualLkcs(Grid.Of(shape), mask, residuals);

    /// <summary>SPM's smoothness estimate from residual volumes in a mask: FWHM, resels and LKCs.</summary>
    /// <exception cref="Core.GlmInputException">The mask or residuals do not match the grid.</exception>
    public static SmoothnessEstimate EstimateSmoothness(double[][] residuals, int[] shape, double[] voxelSizes, bool[] mask)
    {
        var s = Core.RandomFieldTheory.estimateSmoothness(Grid.Of(shape), voxelSizes, mask, residuals);
        return new SmoothnessEstimate(s.FwhmVoxels, s.FwhmMm, s.Resels, s.Lkcs);
    }
}
