namespace FmriGlm.Core

open System

type StatType =
    | T
    | F
    | TminConjunction

type ZScoreConvention =
    | Precise
    | Nilearn
    | Nipy

type ContrastSummary =
    {
        StatType: StatType
        Dim: int
        Voxels: int
        Effect: float[]
        Variance: float[]
        Dof: float
    }

[<NoEquality; NoComparison>]
type Contrast =
    | Empty
    | Summary of ContrastSummary

    static member Zero = Empty

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

    static member (*)(s: float, c: Contrast) : Contrast =
        match c with
        | Empty -> Empty
        | Summary x ->
            Summary
                { x with
                    Effect = x.Effect |> Array.map (fun e -> e * s)
                    Variance = x.Variance |> Array.map (fun v -> v * (s * s)) }

    static member (*)(c: Contrast, s: float) : Contrast = s * c

[<NoEquality; NoComparison>]
type PrecisionWeighted =
    {
        WeightedEffect: float[]
        Precision: float[]
        Dof: float
    }

    static member Zero =
        { WeightedEffect = [||]
          Precision = [||]
          Dof = 0.0 }

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

type FixedEffects =
    {
        Effect: float[]
        Variance: float[]
        Stat: float[]
        ZScore: float[]
    }

module Contrast =
    /// Variances below this are raised to it before dividing (nilearn/nipy DEF_TINY).
    [<Literal>]
    let private Tiny = 1e-50

    /// Degrees of freedom above this are treated as this (nilearn/nipy DEF_DOFMAX).
    [<Literal>]
    let private DofMax = 1e10

    let private summary (c: Contrast) =
        match c with
        | Summary s -> s
        | Empty -> invalidOp "Contrast.Zero has no voxels: add at least one run's contrast first"

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

    let effectSize (c: Contrast) = (summary c).Effect

    let effectVariance (c: Contrast) = (summary c).Variance

    let degreesOfFreedom (c: Contrast) = (summary c).Dof

    let statType (c: Contrast) = (summary c).StatType

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

    let internal tails (baseline: float) (c: Contrast) = logTails (summary c) (stat baseline c)

    let internal pValueOfTails (tails: struct (float * float)[]) =
        tails |> Array.map (fun (struct (lp, _)) -> exp lp)

    let pValue (baseline: float) (c: Contrast) : float[] = pValueOfTails (tails baseline c)

    let oneMinusPValue (baseline: float) (c: Contrast) : float[] =
        let s = summary c
        logTails s (stat baseline c) |> Array.map (fun (struct (_, lq)) -> exp lq)

    let logPValue (baseline: float) (c: Contrast) : float[] =
        let s = summary c
        logTails s (stat baseline c) |> Array.map (fun (struct (lp, _)) -> lp)

    let logOneMinusPValue (baseline: float) (c: Contrast) : float[] =
        let s = summary c
        logTails s (stat baseline c) |> Array.map (fun (struct (_, lq)) -> lq)

    let private clip (p: float) = min (max p 1e-300) (1.0 - 1e-16)

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

    let zScoreWith (convention: ZScoreConvention) (baseline: float) (c: Contrast) : float[] =
        zScoreOfTails convention (tails baseline c)

    let zScore (baseline: float) (c: Contrast) : float[] = zScoreWith Precise baseline c

    let fixedEffects (runs: Contrast list) : Contrast =
        if List.isEmpty runs then
            invalidArg (nameof runs) "no run contrasts to combine"

        (1.0 / float runs.Length) * List.sum runs

    let toPrecisionWeighted (c: Contrast) : PrecisionWeighted =
        let s = summary c

        if s.Dim <> 1 then
            invalidArg (nameof c) "precision weighting needs a one-row contrast"

        let precision = s.Variance |> Array.map (fun v -> 1.0 / max v 1e-16)

        { WeightedEffect = Array.map2 (*) s.Effect precision
          Precision = precision
          Dof = s.Dof }

    let ofPrecisionWeighted (w: PrecisionWeighted) : Contrast =
        if w.Precision.Length = 0 then
            invalidOp "PrecisionWeighted.Zero has no voxels"

        let variance = w.Precision |> Array.map (fun p -> 1.0 / p)
        create T 1 w.Dof (Array.map2 (*) w.WeightedEffect variance) variance

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
