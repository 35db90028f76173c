namespace FmriGlm.Core

open System

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
    static member Zero = Empty

    /// <summary>Effects, variances and degrees of freedom add (nilearn's Contrast.__add__; for F an approximate
    /// fixed effect, as nilearn warns). ArgumentException if stat types, dims, voxel counts or variance
    /// layouts differ.</summary>
    static member (+)(a: Contrast, b: Contrast) : Contrast =
        match a, b with
        | Empty, c
        | c, Empty -> c
        | Summary x, Summary y ->
            if
                x.StatType <> y.StatType
                || x.Dim <> y.Dim
                || x.Voxels <> y.Voxels
                || x.Variance.Length <> y.Variance.Length
            then
                invalidArg
                    (nameof b)
                    $"a {y.StatType} contrast of dim {y.Dim} over {y.Voxels} voxels does not add to a {x.StatType} contrast of dim {x.Dim} over {x.Voxels} voxels"

            Summary
                { x with
                    Effect = Array.map2 (+) x.Effect y.Effect
                    Variance = Array.map2 (+) x.Variance y.Variance
                    Dof = x.Dof + y.Dof }

    /// <summary>Scalar multiple (nilearn's <c>__rmul__</c>): effects times s, variances times s², same dof.</summary>
    static member (*)(s: float, c: Contrast) : Contrast =
        match c with
        | Empty -> Empty
        | Summary x ->
            Summary
                { x with
                    Effect = x.Effect |> Array.map (fun e -> e * s)
                    Variance = x.Variance |> Array.map (fun v -> v * (s * s)) }

    /// <summary>Scalar multiple (nilearn's <c>__mul__</c>), as <c>s * c</c>.</summary>
    static member (*)(c: Contrast, s: float) : Contrast = s * c

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
    static member Zero =
        { WeightedEffect = [||]
          Precision = [||]
          Dof = 0.0 }

    /// <summary>Weighted effects, precisions and dofs add. ArgumentException if voxel counts differ.</summary>
    static member (+)(a: PrecisionWeighted, b: PrecisionWeighted) =
        if a.Precision.Length = 0 && a.Dof = 0.0 then
            b
        elif b.Precision.Length = 0 && b.Dof = 0.0 then
            a
        elif a.Precision.Length <> b.Precision.Length then
            invalidArg (nameof b) $"{b.Precision.Length} voxels do not add to {a.Precision.Length} voxels"
        else
            { WeightedEffect = Array.map2 (+) a.WeightedEffect b.WeightedEffect
              Precision = Array.map2 (+) a.Precision b.Precision
              Dof = a.Dof + b.Dof }

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
    /// Variances below this are raised to it before dividing (nilearn/nipy DEF_TINY).
    [<Literal>]
    let Tiny = 1e-50

    /// Degrees of freedom above this are treated as this (nilearn/nipy DEF_DOFMAX).
    [<Literal>]
    let DofMax = 1e10

    let private summary (c: Contrast) =
        match c with
        | Summary s -> s
        | Empty -> invalidOp "Contrast.Zero has no voxels: add at least one run's contrast first"

    /// <summary>A contrast from its effects (Dim × Voxels row-major), variances (one per voxel, or Dim·Dim per
    /// voxel as nipy's full covariance) and degrees of freedom. A t with Dim &gt; 1 becomes F, as nilearn.</summary>
    /// <exception cref="System.ArgumentException">The lengths do not fit Dim, or dof is not positive.</exception>
    let create (statType: StatType) (dim: int) (dof: float) (effect: float[]) (variance: float[]) : Contrast =
        if dim < 1 then
            invalidArg (nameof dim) $"dim must be at least 1, not {dim}"

        if effect.Length % dim <> 0 then
            invalidArg (nameof effect) $"{effect.Length} effects are not {dim} rows"

        let voxels = effect.Length / dim

        if variance.Length <> voxels && variance.Length <> dim * dim * voxels then
            invalidArg
                (nameof variance)
                $"{variance.Length} variances fit neither {voxels} voxels nor {dim}×{dim} covariances of {voxels} voxels"

        if not (dof > 0.0) then
            invalidArg (nameof dof) $"degrees of freedom must be positive, not {dof}"

        let statType = if statType = T && dim > 1 then F else statType

        Summary
            { StatType = statType
              Dim = dim
              Voxels = voxels
              Effect = effect
              Variance = variance
              Dof = dof }

    /// <summary>The effect sizes, Dim × Voxels row-major (nilearn <c>effect_size()</c>).</summary>
    let effectSize (c: Contrast) = (summary c).Effect

    /// <summary>The effect variances (nilearn <c>effect_variance()</c>).</summary>
    let effectVariance (c: Contrast) = (summary c).Variance

    /// <summary>Degrees of freedom.</summary>
    let degreesOfFreedom (c: Contrast) = (summary c).Dof

    /// <summary>The statistic type.</summary>
    let statType (c: Contrast) = (summary c).StatType

    /// <summary>The statistic against <c>baseline</c>: t = (effect − baseline)/√max(variance, 1e-50);
    /// F = Σ(effect − baseline)²/dim/max(variance, 1e-50), or (effect − baseline)ᵀ V⁻¹ (effect − baseline)/dim
    /// with a full covariance (nipy); tmin-conjunction = minimum over rows of the rows' t.</summary>
    let stat (baseline: float) (c: Contrast) : float[] =
        let s = summary c
        let n, dim = s.Voxels, s.Dim
        let full = s.Variance.Length <> n

        let varianceOf i v =
            if full then
                s.Variance[(i * dim + i) * n + v]
            else
                s.Variance[v]

        match s.StatType with
        | T -> Array.init n (fun v -> (s.Effect[v] - baseline) / sqrt (max (varianceOf 0 v) Tiny))
        | TminConjunction ->
            Array.init n (fun v ->
                let mutable m = infinity

                for i in 0 .. dim - 1 do
                    m <- min m ((s.Effect[i * n + v] - baseline) / sqrt (max (varianceOf i v) Tiny))

                m)
        | F when not full || dim = 1 ->
            Array.init n (fun v ->
                let mutable ss = 0.0

                for i in 0 .. dim - 1 do
                    let e = s.Effect[i * n + v] - baseline
                    ss <- ss + e * e

                ss / float dim / max (varianceOf 0 v) Tiny)
        | F ->
            Array.init n (fun v ->
                let cov = Array2D.init dim dim (fun i j -> s.Variance[(i * dim + j) * n + v])
                let inv = Numerics.inverse cov
                let mutable q = 0.0

                for i in 0 .. dim - 1 do
                    for j in 0 .. dim - 1 do
                        q <-
                            q
                            + (s.Effect[i * n + v] - baseline) * inv[i, j] * (s.Effect[j * n + v] - baseline)

                q / float dim)

    /// log p and log(1 − p) of each statistic: t and tmin-conjunction against Student t, F against Fisher F,
    /// with dof capped at 1e10 (nilearn's dofmax).
    let private logTails (s: ContrastSummary) (stats: float[]) =
        let dof = min s.Dof DofMax

        match s.StatType with
        | T
        | TminConjunction -> stats |> Array.map (Numerics.tLogTails dof)
        | F -> stats |> Array.map (Numerics.fLogTails (float s.Dim) dof)

    /// log p and log(1 − p) of the statistic against baseline: the costly part of p-values and z-scores, which
    /// FirstLevel computes once per contrast for both maps.
    let internal tails (baseline: float) (c: Contrast) = logTails (summary c) (stat baseline c)

    /// p-values from tails.
    let internal pValueOfTails (tails: struct (float * float)[]) =
        tails |> Array.map (fun (struct (lp, _)) -> exp lp)

    /// <summary>Upper-tail p-value of the statistic (nilearn <c>p_value(baseline)</c>): t.sf or f.sf.</summary>
    let pValue (baseline: float) (c: Contrast) : float[] = pValueOfTails (tails baseline c)

    /// <summary>1 − p, computed directly as the distribution function (nilearn <c>one_minus_pvalue</c>).</summary>
    let oneMinusPValue (baseline: float) (c: Contrast) : float[] =
        let s = summary c
        logTails s (stat baseline c) |> Array.map (fun (struct (_, lq)) -> exp lq)

    /// <summary>Natural log of the p-value, finite far below the float64 underflow of p itself.</summary>
    let logPValue (baseline: float) (c: Contrast) : float[] =
        let s = summary c
        logTails s (stat baseline c) |> Array.map (fun (struct (lp, _)) -> lp)

    /// <summary>Natural log of 1 − p, precise where 1 − p is tiny (strongly negative t).</summary>
    let logOneMinusPValue (baseline: float) (c: Contrast) : float[] =
        let s = summary c
        logTails s (stat baseline c) |> Array.map (fun (struct (_, lq)) -> lq)

    let private clip (p: float) = min (max p 1e-300) (1.0 - 1e-16)

    /// z-scores from tails.
    let internal zScoreOfTails (convention: ZScoreConvention) (tails: struct (float * float)[]) : float[] =
        match convention with
        | Precise ->
            tails
            |> Array.map (fun (struct (lp, lq)) ->
                if Double.IsNaN lp then nan
                elif lp <= lq then Numerics.normalIsfOfLog lp
                else -(Numerics.normalIsfOfLog lq))
        | Nilearn ->
            tails
            |> Array.map (fun (struct (lp, lq)) ->
                let zsf = Numerics.normalIsf (clip (exp lp))

                if zsf < 0.0 then
                    -(Numerics.normalIsf (clip (exp lq)))
                else
                    zsf)
        | Nipy -> tails |> Array.map (fun (struct (lp, _)) -> Numerics.normalIsf (clip (exp lp)))

    /// <summary>z-scores with the given convention (see <see cref="ZScoreConvention"/>).</summary>
    let zScoreWith (convention: ZScoreConvention) (baseline: float) (c: Contrast) : float[] =
        zScoreOfTails convention (tails baseline c)

    /// <summary>z-scores precise in both tails: Φ(−z) = p exactly, without nilearn's clipping at |z| ≈ 37
    /// or nipy's saturation at z ≈ −8.2.</summary>
    let zScore (baseline: float) (c: Contrast) : float[] = zScoreWith Precise baseline c

    /// <summary>The fixed-effects contrast of runs: their sum times 1/n (nilearn
    /// <c>compute_fixed_effect_contrast</c>). ArgumentException on an empty list.</summary>
    let fixedEffects (runs: Contrast list) : Contrast =
        if List.isEmpty runs then
            invalidArg (nameof runs) "no run contrasts to combine"

        (1.0 / float runs.Length) * List.sum runs

    /// <summary>A t contrast as a term of the precision-weighted monoid (variances clipped at 1e-16).</summary>
    let toPrecisionWeighted (c: Contrast) : PrecisionWeighted =
        let s = summary c

        if s.Dim <> 1 then
            invalidArg (nameof c) "precision weighting needs a one-row contrast"

        let precision = s.Variance |> Array.map (fun v -> 1.0 / max v 1e-16)

        { WeightedEffect = Array.map2 (*) s.Effect precision
          Precision = precision
          Dof = s.Dof }

    /// <summary>The t contrast of precision-weighted runs: effect Σ(e/v)/Σ(1/v), variance 1/Σ(1/v).</summary>
    let ofPrecisionWeighted (w: PrecisionWeighted) : Contrast =
        if w.Precision.Length = 0 then
            invalidOp "PrecisionWeighted.Zero has no voxels"

        let variance = w.Precision |> Array.map (fun p -> 1.0 / p)
        create T 1 w.Dof (Array.map2 (*) w.WeightedEffect variance) variance

    /// <summary>nilearn's <c>compute_fixed_effects</c> on arrays: effects and variances of each run (one value
    /// per voxel), dofs per run (empty: 100 per run, as nilearn), plain or precision-weighted.</summary>
    /// <exception cref="System.ArgumentException">No run, or runs of different lengths.</exception>
    let computeFixedEffects (effects: float[][]) (variances: float[][]) (dofs: float[]) (precisionWeighted: bool) =
        let runs = effects.Length

        if runs = 0 then
            invalidArg (nameof effects) "no runs"

        if variances.Length <> runs then
            invalidArg (nameof variances) $"{variances.Length} variance maps for {runs} runs"

        if dofs.Length <> 0 && dofs.Length <> runs then
            invalidArg (nameof dofs) $"{dofs.Length} dofs for {runs} runs"

        let dofs = if dofs.Length = 0 then Array.create runs 100.0 else dofs
        let clipped = variances |> Array.map (Array.map (fun v -> max v 1e-16))

        let combined =
            if precisionWeighted then
                Array.init runs (fun r -> toPrecisionWeighted (create T 1 dofs[r] effects[r] clipped[r]))
                |> Array.reduce (+)
                |> ofPrecisionWeighted
            else
                Array.init runs (fun r -> create T 1 dofs[r] effects[r] clipped[r])
                |> List.ofArray
                |> fixedEffects

        let s = summary combined
        let combined = Summary { s with Dof = Array.sum dofs }

        { Effect = effectSize combined
          Variance = effectVariance combined
          Stat = stat 0.0 combined
          ZScore = zScoreWith Nilearn 0.0 combined }

    let private contrastRows (fit: GlmFit) (weights: float[,]) =
        if Array2D.length2 weights <> fit.Regressors then
            invalidArg
                (nameof weights)
                $"{Array2D.length2 weights} contrast weights for {fit.Regressors} design columns"

        let q = Array2D.length1 weights

        if q < 1 then
            invalidArg (nameof weights) "the contrast has no rows"
        // C·θ per voxel, q × voxels row-major.
        let n, p = fit.Voxels, fit.Regressors
        let ctheta = Array.zeroCreate (q * n)

        for v in 0 .. n - 1 do
            for i in 0 .. q - 1 do
                let mutable s = 0.0

                for j in 0 .. p - 1 do
                    s <- s + weights[i, j] * fit.Betas[v * p + j]

                ctheta[i * n + v] <- s

        q, ctheta

    /// C·Cov·Cᵀ of each label.
    let private labelCovariances (fit: GlmFit) (weights: float[,]) =
        fit.Models
        |> Array.map (fun m -> Numerics.multiplyTransposed (Numerics.multiply weights m.NormalizedCovariance) weights)

    /// <summary>nilearn's <c>compute_contrast(labels, results, con_val, stat_type)</c>: t (one row): effect C·θ,
    /// variance C·Cov·Cᵀ·dispersion; F: effect sqrtm(inv(C·Cov·Cᵀ))·C·θ, variance dispersion;
    /// tmin-conjunction (nipy): effect C·θ with the full covariance. Dof = df_residuals.</summary>
    /// <exception cref="System.ArgumentException">Weights do not match the design columns.</exception>
    let compute (fit: GlmFit) (weights: float[,]) (statType: StatType) : Contrast =
        let q, ctheta = contrastRows fit weights
        let covs = labelCovariances fit weights
        let n = fit.Voxels

        match statType with
        | T when q = 1 ->
            create T 1 fit.DfResiduals ctheta (Array.init n (fun v -> covs[fit.Labels[v]][0, 0] * fit.Dispersion[v]))
        | T
        | F ->
            let roots = covs |> Array.map Numerics.inverseSqrtSymmetric
            let effect = Array.zeroCreate (q * n)

            for v in 0 .. n - 1 do
                let r = roots[fit.Labels[v]]

                for i in 0 .. q - 1 do
                    let mutable s = 0.0

                    for k in 0 .. q - 1 do
                        s <- s + r[i, k] * ctheta[k * n + v]

                    effect[i * n + v] <- s

            create F q fit.DfResiduals effect (Array.copy fit.Dispersion)
        | TminConjunction ->
            let variance = Array.zeroCreate (q * q * n)

            for v in 0 .. n - 1 do
                let m = covs[fit.Labels[v]]

                for i in 0 .. q - 1 do
                    for j in 0 .. q - 1 do
                        variance[(i * q + j) * n + v] <- m[i, j] * fit.Dispersion[v]

            create TminConjunction q fit.DfResiduals ctheta variance

    /// <summary>nipy's <c>GeneralLinearModel.contrast</c>: effect C·θ and the full covariance
    /// C·Cov·Cᵀ·dispersion per voxel, for t, F and tmin-conjunction alike.</summary>
    let computeWithCovariance (fit: GlmFit) (weights: float[,]) (statType: StatType) : Contrast =
        let q, ctheta = contrastRows fit weights
        let covs = labelCovariances fit weights
        let n = fit.Voxels
        let variance = Array.zeroCreate (q * q * n)

        for v in 0 .. n - 1 do
            let m = covs[fit.Labels[v]]

            for i in 0 .. q - 1 do
                for j in 0 .. q - 1 do
                    variance[(i * q + j) * n + v] <- m[i, j] * fit.Dispersion[v]

        create statType q fit.DfResiduals ctheta variance
