namespace FmriGlm.Core

/// <summary>A random field of test statistics, as nipy 0.5.0's classes in <c>nipy.algorithms.statistics.rft</c>.</summary>
type RftField =
    /// Unit-variance Gaussian field (nipy <c>Gaussian()</c>, i.e. <c>ECcone()</c>).
    | Gaussian
    /// Student t field with <c>dfd</c> degrees of freedom (nipy <c>TStat(dfd)</c>; infinity gives the Gaussian).
    | TStat of dfd: float
    /// F field (nipy <c>FStat(dfn, dfd)</c>), evaluated at √(dfn·x).
    | FStat of dfn: int * dfd: float
    /// χ² field (nipy <c>ChiSquared(dfn)</c>), evaluated at √x.
    | ChiSquared of dfn: int
    /// Hotelling's T² maximised over a k-sphere (nipy <c>Hotelling(dfd, k)</c>), evaluated at √x.
    | Hotelling of dfd: float * k: int

/// <summary>Smoothness of a field estimated from standardised residuals inside a mask.</summary>
type Smoothness =
    {
        /// FWHM along i, j, k in voxels (SPM's estimator, from the roughness of the normalised residuals).
        FwhmVoxels: float[]
        /// FWHM along i, j, k in mm.
        FwhmMm: float[]
        /// Resel counts R0..R3 of the mask at that FWHM (SPM's <c>spm_resels_vol</c> quantity).
        Resels: float[]
        /// Lipschitz–Killing curvatures μ0..μ3 of the mask at that FWHM: μd = Rd (4 ln 2)^(d/2).
        Lkcs: float[]
    }

/// <summary>SPM's <c>spm_P_RF</c> result for c clusters of at least k resels above u.</summary>
type ClusterProbability =
    {
        /// P(at least c clusters of size ≥ k above u): the set (c &gt; 1), cluster (c = 1, k &gt; 0) or voxel
        /// (c = 1, k = 0) level corrected p-value.
        P: float
        /// P(one cluster has size ≥ k): exp(−β k^(2/D)).
        PerCluster: float
        /// Expected number of clusters (expected EC) above u.
        ExpectedClusters: float
        /// Expected size of one cluster above u, in the units of μD (LKC units).
        ExpectedVoxelsPerCluster: float
    }

/// <summary>Random field theory, as nipy 0.5.0 (<c>nipy.algorithms.statistics.rft</c> and <c>intvol</c>) with nipy's
/// names in camelCase, plus SPM's FWE p-values (<c>spm_P_RF</c>) and smoothness estimate. Search regions are given as
/// Lipschitz–Killing curvatures (LKCs, intrinsic volumes) μ0..μD, not resels: μd = Rd (4 ln 2)^(d/2).</summary>
module RandomFieldTheory =

    /// <summary>nipy <c>binomial(n, k)</c>: n! / ((n−k)! k!) through the beta function; 0 when n ≤ k or n = 0
    /// (nipy's convention, so binomial(n, n) = 0), 1 when k = 0.</summary>
    val binomial: n: float -> k: float -> float

    /// <summary>nipy <c>Q(dim, dfd)</c>: coefficients, highest power first (numpy <c>poly1d</c> order), of the
    /// probabilists' Hermite polynomial He_(dim−1) for dfd = ∞, or Worsley's (1994) polynomial for finite dfd.</summary>
    /// <exception cref="System.ArgumentException">dim ≤ 0.</exception>
    val q: dim: int -> dfd: float -> float[]

    /// <summary>nipy <c>mu_sphere(n, j, r)</c>: μj of the sphere of radius r in Rⁿ (Adler &amp; Taylor 2007, ch. 6).</summary>
    val muSphere: n: int -> j: int -> r: float -> float

    /// <summary>nipy <c>mu_ball(n, j, r)</c>: μj of the ball of radius r in Rⁿ.</summary>
    val muBall: n: int -> j: int -> r: float -> float

    /// <summary>nipy <c>spherical_search(n, r).mu</c>: [μ0..μ(n−1)] of the sphere.</summary>
    val sphericalSearch: n: int -> r: float -> float[]

    /// <summary>nipy <c>ball_search(n, r).mu</c>: [μ0..μn] of the ball.</summary>
    val ballSearch: n: int -> r: float -> float[]

    /// <summary>nipy <c>volume2ball(vol, d).mu</c>: LKCs of the d-ball of volume vol ([1] when d ≤ 0).</summary>
    val volume2ball: vol: float -> d: int -> float[]

    /// <summary>nipy <c>IntrinsicVolumes(a) * IntrinsicVolumes(b)</c>: LKCs of a product set, the convolution of the
    /// two vectors.</summary>
    val intrinsicVolumesProduct: a: float[] -> b: float[] -> float[]

    /// <summary>nipy <c>scale_space(region, (w1, w2), kappa).mu</c>: LKCs of region × [w1, w2] in scale space
    /// (Siegmund &amp; Worsley 1995).</summary>
    val scaleSpace: region: float[] -> interval: (float * float) -> kappa: float -> float[]

    /// <summary>nipy <c>field(x, search=lkcs)</c>: the expected Euler characteristic Σd μd ρd(x) of the excursion
    /// set above x, not clipped (it exceeds 1, or is negative, at low x).</summary>
    val expectedEc: field: RftField -> search: float[] -> x: float -> float

    /// <summary>nipy <c>field.pvalue(x, search)</c>: the same unclipped expected EC as <c>expectedEc</c>.</summary>
    val pvalue: field: RftField -> search: float[] -> x: float -> float

    /// <summary>nipy <c>field.density(x, dim)</c>: the EC density ρ_dim(x), including the (2π)^(−(dim+1)/2) factor;
    /// ρ0 is the tail probability of the field's statistic.</summary>
    val ecDensity: field: RftField -> dim: int -> x: float -> float

    /// <summary>Resels R0..RD to LKCs: μd = Rd (4 ln 2)^(d/2).</summary>
    val reselsToLkcs: resels: float[] -> float[]

    /// <summary>LKCs μ0..μD to resels: Rd = μd / (4 ln 2)^(d/2).</summary>
    val lkcsToResels: lkcs: float[] -> float[]

    /// <summary>Voxel-level FWE-corrected p-value of a peak of height x: SPM's <c>spm_P_RF(1, 0, x, ...)</c>,
    /// 1 − exp(−Σd μd max(ρd(x), eps)) (Poisson clumping of the expected EC), in [0, 1].</summary>
    val fwePValue: field: RftField -> lkcs: float[] -> x: float -> float

    /// <summary>The FWE threshold: the x where <c>fwePValue</c> falls to α (SPM's <c>spm_uc_RF</c>), found on the
    /// decreasing upper branch by a downward scan and bisection.</summary>
    /// <exception cref="T:FmriGlm.Core.GlmInputException">α is not in (0, 1).</exception>
    val fweThreshold: field: RftField -> lkcs: float[] -> alpha: float -> float

    /// <summary>SPM's <c>spm_P_RF(c, k, u, df, STAT, R, 1)</c> (Friston et al. 1994, 1996; Worsley et al. 1996): the
    /// probability of at least <c>clusters</c> clusters of size ≥ kLkc above u, with the cluster size in the units
    /// of μD (k voxels · μD / voxels in the search region). Em = Σ μd ρd(u), En = ρ0(u)/ρD(u),
    /// β = (Γ(D/2+1)/En)^(2/D), p = exp(−β k^(2/D)), P = 1 − Poisson cdf(c − 1; Em·p).</summary>
    val clusterProbability: field: RftField -> lkcs: float[] -> clusters: int -> kLkc: float -> u: float -> ClusterProbability

    /// <summary>nipy <c>intvol.EC3d(mask)</c>: Euler characteristic of the mask's Kuhn triangulation (each cube of 8
    /// voxel centres cut into 6 tetrahedra along its main diagonal; a simplex counts when all its voxels are in).</summary>
    val ec3d: mask: bool[,,] -> int

    /// <summary>nipy <c>intvol.EC2d(mask)</c> (squares cut into 2 triangles along the (0,0)–(1,1) diagonal).</summary>
    val ec2d: mask: bool[,] -> int

    /// <summary>nipy <c>intvol.EC1d(mask)</c>: voxels minus neighbouring pairs, as a float as nipy returns it.</summary>
    val ec1d: mask: bool[] -> float

    /// <summary>nipy <c>intvol.Lips3d(coords, mask)</c>: LKCs [μ0, μ1, μ2, μ3] (EC, twice the mean caliper
    /// diameter, half the surface area, volume) of the triangulated mask whose voxel v sits at
    /// (coords[0][v], coords[1][v], ...) in R^N; unit-norm residual vectors as coords give the LKC estimator of
    /// Taylor &amp; Worsley (2007).</summary>
    /// <exception cref="T:FmriGlm.Core.GlmInputException">A coordinate array does not match the mask.</exception>
    val lips3d: coords: float[,,][] -> mask: bool[,,] -> float[]

    /// <summary>nipy <c>intvol.Lips2d(coords, mask)</c>: [μ0, μ1, μ2].</summary>
    /// <exception cref="T:FmriGlm.Core.GlmInputException">A coordinate array does not match the mask.</exception>
    val lips2d: coords: float[,][] -> mask: bool[,] -> float[]

    /// <summary>nipy <c>intvol.Lips1d(coords, mask)</c>: [μ0, μ1].</summary>
    /// <exception cref="T:FmriGlm.Core.GlmInputException">A coordinate array does not match the mask.</exception>
    val lips1d: coords: float[][] -> mask: bool[] -> float[]

    /// <summary>LKCs μ0..μ3 of a mask (Fortran order) for a field of the given FWHM (mm, along i, j, k):
    /// <c>Lips3d</c> on voxel coordinates scaled by voxel size · √(4 ln 2) / FWHM.</summary>
    /// <exception cref="T:FmriGlm.Core.GlmInputException">The mask is empty or does not match the grid, or a FWHM
    /// is not positive.</exception>
    val maskLkcs: shape: GridShape -> voxelSizes: float[] -> fwhm: float[] -> mask: bool[] -> float[]

    /// <summary>Residual volumes divided, voxel by voxel, by their Euclidean norm over volumes (0 where it is 0).</summary>
    /// <exception cref="T:FmriGlm.Core.GlmInputException">Fewer than 2 volumes or volumes of different sizes.</exception>
    val unitNormResiduals: residuals: float[][] -> float[][]

    /// <summary>LKCs μ0..μ3 of the field estimated from its residuals (one array per volume, Fortran order): nipy's
    /// <c>Lips3d</c> on the unit-norm residuals (Taylor &amp; Worsley 2007), in voxel-free units.</summary>
    /// <exception cref="T:FmriGlm.Core.GlmInputException">The mask or residuals do not match the grid.</exception>
    val residualLkcs: shape: GridShape -> mask: bool[] -> residuals: float[][] -> float[]

    /// <summary>SPM's smoothness estimate (Kiebel et al. 1999, <c>spm_est_smoothness</c> without its local RPV map):
    /// Λaa = mean over neighbouring in-mask voxel pairs along axis a of Σ (Δu)², u the unit-norm residuals;
    /// FWHMa = √(4 ln 2 / Λaa) voxels; resels and LKCs of the mask at that FWHM.</summary>
    /// <exception cref="T:FmriGlm.Core.GlmInputException">The mask or residuals do not match the grid.</exception>
    val estimateSmoothness: shape: GridShape -> voxelSizes: float[] -> mask: bool[] -> residuals: float[][] -> Smoothness
