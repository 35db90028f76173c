namespace FmriGlm.Core

/// <summary>nipy's <c>MixedEffectsModel</c> after <c>fit</c>: the EM estimates at every test (voxel).</summary>
type MixedEffectsFit =
    {
        /// Effects, regressors × tests (nipy <c>beta_</c>).
        Beta: float[,]
        /// Between-subject variance per test (nipy <c>V2</c>, divided by n as nipy's ML estimate).
        V2: float[]
        /// Fitted values X·beta, subjects × tests (nipy <c>Y_</c> after the last step).
        Fitted: float[,]
    }

/// <summary>What nipy's <c>mfx_stat</c> returns with every <c>return_*</c> flag set, in its order (t, f, var,
/// effect; its docstring says t, f, effect, var).</summary>
type MfxStat =
    {
        /// Signed square root of the likelihood ratio: sign(beta) √f. Not a Wald t.
        T: float[]
        /// Likelihood ratio max(0, 2 (log L_full − log L_null)).
        F: float[]
        /// Between-subject variance V2 of the full model.
        Var: float[]
        /// Effect of the tested column in the full model.
        Effect: float[]
    }

/// <summary>What nipy's <c>two_level_glm</c> returns.</summary>
type TwoLevelGlm =
    {
        /// Posterior mean effects, regressors × tests.
        Beta: float[,]
        /// Between-subject variance per test.
        S2: float[]
        /// n − p.
        Dof: float
    }

/// <summary>A mixed-effects second-level model fitted on masked maps: nilearn's <c>SecondLevelModel</c> with
/// nipy's EM in place of OLS.</summary>
type MixedEffectsSecondLevelFit =
    {
        /// The design, subjects × columns.
        Design: DesignMatrix
        /// EM steps of every fit (nipy <c>n_iter</c>).
        NIter: int
        /// The EM fit of the full design (tests = voxels).
        Model: MixedEffectsFit
        /// Subject effects, subjects × voxels.
        Effects: float[,]
        /// First-level variances, subjects × voxels.
        Variances: float[,]
    }

/// <summary>Mixed-effects statistics of nipy 0.5.0 (<c>nipy.algorithms.statistics.mixed_effects_stat</c> and
/// <c>bayesian_mixed_effects</c>): y = X·beta + e1 + e2 with known first-level variances V1 = var(e1) and one
/// between-subject variance V2 = var(e2) per test estimated by EM. Arrays are numpy's layout: Y and V1 are
/// subjects × tests, X is subjects × regressors. Names and argument order are nipy's in camelCase.</summary>
module MixedEffects =

    /// <summary>nipy <c>t_stat(Y)</c>: mean / std · √(n − 1) per test, std with n (the usual one-sample t).</summary>
    val tStat: y: float[,] -> float[]

    /// <summary>nipy <c>MixedEffectsModel(X, n_iter).fit(Y, V1)</c>: beta = pinv(X)·Y and V2 = mean squared
    /// residual (divided by n), then exactly <paramref name="nIter"/> EM steps (no convergence test).</summary>
    /// <exception cref="GlmInputException">X and Y have different row counts, Y and V1 different shapes, or a
    /// variance is negative (nipy's ValueErrors).</exception>
    val mixedEffectsModel: x: float[,] -> nIter: int -> y: float[,] -> v1: float[,] -> MixedEffectsFit

    /// <summary>nipy <c>MixedEffectsModel.log_like(Y, V1)</c>: −½ Σ ((Y − X·beta)²/(V2 + V1) + log(V2 + V1) +
    /// log 2π) per test.</summary>
    val logLike: model: MixedEffectsFit -> y: float[,] -> v1: float[,] -> float[]

    /// <summary>nipy <c>mfx_stat(Y, V1, X, column, n_iter)</c>: likelihood-ratio test of one column of X, the
    /// null model being X with that column zeroed (not removed). Returns t, f, var and effect.</summary>
    /// <exception cref="GlmInputException">Shapes disagree, the column is out of range, or a variance is
    /// negative.</exception>
    val mfxStat: y: float[,] -> v1: float[,] -> x: float[,] -> column: int -> nIter: int -> MfxStat

    /// <summary>nipy <c>one_sample_ttest(Y, V1, n_iter)</c>: the t of <see cref="mfxStat"/> with X = ones.</summary>
    val oneSampleTtest: y: float[,] -> v1: float[,] -> nIter: int -> float[]

    /// <summary>nipy <c>one_sample_ftest(Y, V1, n_iter)</c>: the f of <see cref="mfxStat"/> with X = ones.</summary>
    val oneSampleFtest: y: float[,] -> v1: float[,] -> nIter: int -> float[]

    /// <summary>nipy <c>two_sample_ttest(Y, V1, group, n_iter)</c>: the t of <see cref="mfxStat"/> with
    /// X = [ones, group], testing column 1 (the group indicator). nipy checks no label here.</summary>
    val twoSampleTtest: y: float[,] -> v1: float[,] -> group: float[] -> nIter: int -> float[]

    /// <summary>nipy <c>two_sample_ftest(Y, V1, group, n_iter)</c>: the f of the same test. As nipy, labels are
    /// refused only when their sorted unique values differ from [0, 1] in every position.</summary>
    /// <exception cref="GlmInputException">One label per subject is not given, or nipy's label check fails.</exception>
    val twoSampleFtest: y: float[,] -> v1: float[,] -> group: float[] -> nIter: int -> float[]

    /// <summary>nipy <c>two_level_glm(y, vy, X, niter)</c>: variational Bayes for the same model; variances
    /// below 1e-25 (zeros included) are raised to 1e-25, and the first iteration is OLS.</summary>
    /// <exception cref="GlmInputException">n ≤ p (nipy's "Too many regressors"), or shapes disagree.</exception>
    val twoLevelGlm: y: float[,] -> vy: float[,] -> x: float[,] -> niter: int -> TwoLevelGlm

    /// <summary><c>SecondLevelModel(noise_model="mfx").fit</c> on masked maps: effects and first-level variances
    /// both subjects × voxels column-major (voxel v's subjects at <c>v·subjects</c>, the layout of
    /// <see cref="SecondLevel.fit"/>), then <see cref="mixedEffectsModel"/> with <paramref name="nIter"/> steps at
    /// every voxel.</summary>
    /// <exception cref="GlmInputException">Fewer than 2 subjects or no more subjects than columns, maps and
    /// variances of different lengths, a value not finite, or a negative variance (named by subject and voxel).</exception>
    val fitSecondLevel:
        nIter: int -> design: DesignMatrix -> effects: VoxelData -> variances: VoxelData -> MixedEffectsSecondLevelFit

    /// <summary>The maps of a one-row contrast c of a mixed-effects fit. Effect c·beta. Statistic: nipy's
    /// likelihood ratio f against the null model X·(I − cᵀ(c cᵀ)⁻¹c) (for a single column: that column zeroed, as
    /// <see cref="mfxStat"/>), reported as the t with n − p degrees of freedom that gives the same ratio under
    /// OLS: sign(c·beta) √((n − p)(exp(f/n) − 1)); p its one-sided Student p, z nilearn's z of that p. Variance:
    /// the generalised-least-squares c (Xᵀ W X)⁻¹ cᵀ with W = diag(1 / (V1 + V2·n/(n − p))). With V1 = 0 every map
    /// is the OLS second level's; with V2 = 0 the effect and variance are the subjects' fixed effects. nipy
    /// reports no p value: this mapping is ours (docs/mixed-effects.md).</summary>
    /// <exception cref="GlmInputException">The contrast has more than one row (F contrasts are not supported
    /// with "mfx"), or see <see cref="SecondLevel.contrastWeights"/>.</exception>
    val computeContrast: fit: MixedEffectsSecondLevelFit -> contrast: SecondLevelContrast -> SecondLevelMaps
