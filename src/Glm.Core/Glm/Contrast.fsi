namespace FmriGlm.Core

/// <summary>Statistic of a contrast: nilearn's "t" and "F", nipy's "tmin-conjunction".</summary>
type StatType =
    /// Student t of one contrast row.
    | T
    /// Fisher F of one or more rows.
    | F
    /// Minimum of the rows' t statistics, tested against t (Nichols et al. 2005, NeuroImage 25:653–660).
    | TminConjunction

/// <summary>How z-scores are formed from the p-values.</summary>
type ZScoreConvention =
    /// From log p or log(1 − p), whichever is smaller: no saturation in either tail.
    | Precise
    /// nilearn: norm.isf(clip(p, 1e-300, 1 − 1e-16)), or norm.ppf of the clipped 1 − p where that is negative
    /// (|z| ≤ 37.05).
    | Nilearn
    /// nipy: norm.isf(clip(p, 1e-300, 1 − 1e-16)) only, so z saturates near −8.21 in the lower tail.
    | Nipy

/// <summary>Effects, variances and degrees of freedom of one contrast at every voxel.</summary>
type ContrastSummary =
    {
        /// t, F or tmin-conjunction.
        StatType: StatType
        /// Number of contrast rows (nilearn/nipy <c>dim</c>).
        Dim: int
        /// Number of voxels.
        Voxels: int
        /// Effect sizes, Dim × Voxels row-major: row i at <c>i*Voxels</c>.
        Effect: float[]
        /// Voxels values (one variance per voxel, nilearn), or Dim·Dim·Voxels values (nipy's full covariance,
        /// element [i, j] of voxel v at <c>(i*Dim + j)*Voxels + v</c>).
        Variance: float[]
        /// Degrees of freedom.
        Dof: float
    }

/// <summary>A contrast at every voxel; contrasts of independent runs add up to their fixed-effects combination
/// (nilearn <c>Contrast.__add__</c>), with <c>Contrast.Zero</c> the identity.</summary>
[<NoEquality; NoComparison>]
type Contrast =
    /// The identity of +: no run.
    | Empty
    /// A contrast over voxels.
    | Summary of ContrastSummary

    /// <summary>Adds nothing, so <c>runContrasts |> List.sum</c> is the fixed-effects contrast.</summary>
    static member Zero: Contrast

    /// <summary>Effects, variances and degrees of freedom add (nilearn's Contrast.__add__; for F an approximate
    /// fixed effect, as nilearn warns). ArgumentException if stat types, dims, voxel counts or variance
    /// layouts differ.</summary>
    static member (+): a: Contrast * b: Contrast -> Contrast

    /// <summary>Scalar multiple (nilearn's <c>__rmul__</c>): effects times s, variances times s², same dof.</summary>
    static member (*): s: float * c: Contrast -> Contrast

    /// <summary>Scalar multiple (nilearn's <c>__mul__</c>), as <c>s * c</c>.</summary>
    static member (*): c: Contrast * s: float -> Contrast

/// <summary>Fixed effects weighted by precision (nilearn <c>compute_fixed_effects(precision_weighted=True)</c>)
/// as a monoid: Σ effect/variance and Σ 1/variance add across runs.</summary>
[<NoEquality; NoComparison>]
type PrecisionWeighted =
    {
        /// Σ effect / variance per voxel.
        WeightedEffect: float[]
        /// Σ 1 / variance per voxel.
        Precision: float[]
        /// Σ dof.
        Dof: float
    }

    /// <summary>No run: empty arrays, which add to anything.</summary>
    static member Zero: PrecisionWeighted

    /// <summary>Weighted effects, precisions and dofs add. ArgumentException if voxel counts differ.</summary>
    static member (+): a: PrecisionWeighted * b: PrecisionWeighted -> PrecisionWeighted

/// <summary>Fixed-effects maps (nilearn <c>compute_fixed_effects</c>'s effect, variance, stat, z).</summary>
type FixedEffects =
    {
        /// Combined effect per voxel.
        Effect: float[]
        /// Variance of the combined effect per voxel.
        Variance: float[]
        /// t statistic per voxel.
        Stat: float[]
        /// z score per voxel.
        ZScore: float[]
    }

/// <summary>Statistics of contrasts: stat, p-value, z-score, as nilearn's and nipy's <c>Contrast</c>.</summary>
module Contrast =
    /// <summary>A contrast from its effects (Dim × Voxels row-major), variances (one per voxel, or Dim·Dim per
    /// voxel as nipy's full covariance) and degrees of freedom. A t with Dim &gt; 1 becomes F, as nilearn.</summary>
    /// <exception cref="System.ArgumentException">The lengths do not fit Dim, or dof is not positive.</exception>
    val create: statType: StatType -> dim: int -> dof: float -> effect: float[] -> variance: float[] -> Contrast

    /// <summary>The effect sizes, Dim × Voxels row-major (nilearn <c>effect_size()</c>).</summary>
    val effectSize: c: Contrast -> float[]

    /// <summary>The effect variances (nilearn <c>effect_variance()</c>).</summary>
    val effectVariance: c: Contrast -> float[]

    /// <summary>Degrees of freedom.</summary>
    val degreesOfFreedom: c: Contrast -> float

    /// <summary>The statistic type.</summary>
    val statType: c: Contrast -> StatType

    /// <summary>The statistic against <c>baseline</c>: t = (effect − baseline)/√max(variance, 1e-50);
    /// F = Σ(effect − baseline)²/dim/max(variance, 1e-50), or (effect − baseline)ᵀ V⁻¹ (effect − baseline)/dim
    /// with a full covariance (nipy); tmin-conjunction = minimum over rows of the rows' t.</summary>
    val stat: baseline: float -> c: Contrast -> float[]

    /// log p and log(1 − p) of the statistic against baseline: the costly part of p-values and z-scores, which
    /// FirstLevel computes once per contrast for both maps.
    val internal tails: baseline: float -> c: Contrast -> struct (float * float)[]

    /// p-values from tails.
    val internal pValueOfTails: tails: struct (float * float)[] -> float[]

    /// <summary>Upper-tail p-value of the statistic (nilearn <c>p_value(baseline)</c>): t.sf or f.sf.</summary>
    val pValue: baseline: float -> c: Contrast -> float[]

    /// <summary>1 − p, computed directly as the distribution function (nilearn <c>one_minus_pvalue</c>).</summary>
    val oneMinusPValue: baseline: float -> c: Contrast -> float[]

    /// <summary>Natural log of the p-value, finite far below the float64 underflow of p itself.</summary>
    val logPValue: baseline: float -> c: Contrast -> float[]

    /// <summary>Natural log of 1 − p, precise where 1 − p is tiny (strongly negative t).</summary>
    val logOneMinusPValue: baseline: float -> c: Contrast -> float[]

    /// z-scores from tails.
    val internal zScoreOfTails: convention: ZScoreConvention -> tails: struct (float * float)[] -> float[]

    /// <summary>z-scores with the given convention (see <see cref="ZScoreConvention"/>).</summary>
    val zScoreWith: convention: ZScoreConvention -> baseline: float -> c: Contrast -> float[]

    /// <summary>z-scores precise in both tails: Φ(−z) = p exactly, without nilearn's clipping at |z| ≈ 37
    /// or nipy's saturation at z ≈ −8.2.</summary>
    val zScore: baseline: float -> c: Contrast -> float[]

    /// <summary>The fixed-effects contrast of runs: their sum times 1/n (nilearn
    /// <c>compute_fixed_effect_contrast</c>). ArgumentException on an empty list.</summary>
    val fixedEffects: runs: Contrast list -> Contrast

    /// <summary>A t contrast as a term of the precision-weighted monoid (variances clipped at 1e-16).</summary>
    val toPrecisionWeighted: c: Contrast -> PrecisionWeighted

    /// <summary>The t contrast of precision-weighted runs: effect Σ(e/v)/Σ(1/v), variance 1/Σ(1/v).</summary>
    val ofPrecisionWeighted: w: PrecisionWeighted -> Contrast

    /// <summary>nilearn's <c>compute_fixed_effects</c> on arrays: effects and variances of each run (one value
    /// per voxel), dofs per run (empty: 100 per run, as nilearn), plain or precision-weighted.</summary>
    /// <exception cref="System.ArgumentException">No run, or runs of different lengths.</exception>
    val computeFixedEffects:
        effects: float[][] -> variances: float[][] -> dofs: float[] -> precisionWeighted: bool -> FixedEffects

    /// <summary>nilearn's <c>compute_contrast(labels, results, con_val, stat_type)</c>: t (one row): effect C·θ,
    /// variance C·Cov·Cᵀ·dispersion; F: effect sqrtm(inv(C·Cov·Cᵀ))·C·θ, variance dispersion;
    /// tmin-conjunction (nipy): effect C·θ with the full covariance. Dof = df_residuals.</summary>
    /// <exception cref="System.ArgumentException">Weights do not match the design columns.</exception>
    val compute: fit: GlmFit -> weights: float[,] -> statType: StatType -> Contrast

    /// <summary>nipy's <c>GeneralLinearModel.contrast</c>: effect C·θ and the full covariance
    /// C·Cov·Cᵀ·dispersion per voxel, for t, F and tmin-conjunction alike.</summary>
    val computeWithCovariance: fit: GlmFit -> weights: float[,] -> statType: StatType -> Contrast
