namespace FmriGlm.Core

open System
open MathNet.Numerics

/// <summary>How the voxel-level threshold of <c>threshold_stats_img</c> is chosen (nilearn's
/// <c>height_control</c>).</summary>
type HeightControl =
    /// 'fpr': uncorrected, threshold = Φ⁻¹(1 − α′).
    | Fpr
    /// 'fdr': Benjamini–Hochberg over the voxels of the mask.
    | Fdr
    /// 'bonferroni': threshold = Φ⁻¹(1 − α′/n), n the number of voxels in the mask.
    | Bonferroni
    /// None in nilearn: the given <c>Threshold</c> is used as is.
    | NoControl

/// <summary>Options of <c>thresholdStatsImg</c>, with nilearn's names and defaults.</summary>
type ThresholdOptions =
    {
        /// Error rate (p or q value) turned into a z threshold (default 0.001).
        Alpha: float
        /// z threshold used when <c>HeightControl</c> is <c>NoControl</c> (default 3.0).
        Threshold: float
        /// How the threshold is chosen (default <c>Fpr</c>).
        HeightControl: HeightControl
        /// Clusters smaller than this many voxels are removed (default 0: none).
        ClusterThreshold: float
        /// Keep both tails, thresholding |z| with α halved (default true).
        TwoSided: bool
    }

/// <summary>A thresholded map and the z threshold that produced it.</summary>
type ThresholdResult =
    {
        /// The statistic where it survives, 0 elsewhere (Fortran order).
        Thresholded: float[]
        /// The voxel-level z threshold actually used; +∞ when FDR finds no discovery.
        Threshold: float
    }

/// <summary>nilearn 0.13.1's voxel-level error control and All-Resolutions Inference (<c>nilearn.glm.thresholding</c>):
/// <c>fdr_threshold</c>, <c>threshold_stats_img</c> and <c>cluster_level_inference</c>, on arrays in NIfTI (Fortran)
/// order. Without a mask, the voxels counted are those of nilearn's background mask of the statistic map
/// (<c>NiftiMasker(mask_strategy="background")</c>).</summary>
module Thresholding =

    /// <summary>nilearn's defaults: α = 0.001, threshold 3.0, 'fpr', no cluster threshold, two-sided.</summary>
    let defaultThresholdOptions =
        { Alpha = 0.001
          Threshold = 3.0
          HeightControl = Fpr
          ClusterThreshold = 0.0
          TwoSided = true }

    /// <summary>Parses nilearn's spellings of <c>height_control</c>: "fpr", "fdr", "bonferroni", or null / "none"
    /// for no control.</summary>
    /// <exception cref="T:FmriGlm.Core.GlmInputException">Any other spelling.</exception>
    let parseHeightControl (text: string) : HeightControl =
        match (if isNull text then "none" else text.Trim().ToLowerInvariant()) with
        | "fpr" -> Fpr
        | "fdr" -> Fdr
        | "bonferroni" -> Bonferroni
        | "none" | "" -> NoControl
        | other -> raise (GlmInputException("height_control", $"'{other}' is not one of 'fpr', 'fdr', 'bonferroni' or None"))

    // Standard normal tails through erfc, accurate far into the tail (scipy's norm.sf / norm.isf).
    let private normSf = Numerics.normalSf
    let private normIsf = Numerics.normalIsf

    let private checkAlpha (alpha: float) =
        if not (alpha >= 0.0 && alpha <= 1.0) then
            raise (GlmInputException("alpha", $"{alpha} is not between 0 and 1"))

    // z sorted in decreasing order with NaNs last, as nilearn's -np.sort(-z) leaves them.
    let private sortDescending (z: float[]) =
        let finiteOrInf = z |> Array.filter (Double.IsNaN >> not) |> Array.sortDescending
        Array.append finiteOrInf (Array.create (z.Length - finiteOrInf.Length) nan)

    /// <summary>Benjamini–Hochberg threshold on z values (nilearn <c>fdr_threshold</c>).</summary>
    /// <remarks>With z sorted decreasingly and p₍ₖ₎ = Φ(−z₍ₖ₎), the last k with p₍ₖ₎ &lt; α·k/m gives z₍ₖ₎ − 1e-12
    /// (Benjamini &amp; Hochberg 1995, J. R. Stat. Soc. B 57:289–300). NaNs sort last and count in m.</remarks>
    /// <returns>The threshold; +∞ when no value survives (or no values).</returns>
    /// <exception cref="T:FmriGlm.Core.GlmInputException">α is not in [0, 1].</exception>
    let fdrThreshold (alpha: float) (zValues: float[]) : float =
        checkAlpha alpha
        let z = sortDescending zValues
        let n = z.Length
        let mutable last = -1

        for k in 0 .. n - 1 do
            // numpy's linspace(1/n, 1, n) is start + k·step with step = (1 − 1/n)/(n − 1), and exactly 1 at the end.
            let fraction =
                if k = n - 1 then 1.0 else 1.0 / float n + float k * ((1.0 - 1.0 / float n) / float (n - 1))

            if normSf z[k] < alpha * fraction then last <- k

        // The 1e-12 taken off is nilearn's: a voxel sitting exactly on the k-th z stays above the threshold.
        if last < 0 then infinity else z[last] - 1.0e-12

    let private checkLength (shape: GridShape) (length: int) (what: string) =
        if length <> shape.Count then
            invalidArg what $"has {length} voxels but the grid {shape.X}×{shape.Y}×{shape.Z} has {shape.Count}"

    /// The voxels nilearn's masker keeps: the given mask, or the background mask of the map itself.
    let private maskOrBackground (shape: GridShape) (mask: bool[] option) (statMap: float[]) =
        match mask with
        | Some m ->
            checkLength shape m.Length (nameof mask)
            m
        | None -> (Masking.computeBackgroundMask shape 2 0 false statMap).Mask

    /// <summary>The voxel-level threshold nilearn's <c>threshold_stats_img</c> would use, without thresholding.</summary>
    /// <param name="options">α, height control, threshold and sidedness.</param>
    /// <param name="maskedStats">The statistic at the voxels of the mask.</param>
    let statsThreshold (options: ThresholdOptions) (maskedStats: float[]) : float =
        checkAlpha options.Alpha
        let alpha' = if options.TwoSided then options.Alpha / 2.0 else options.Alpha

        match options.HeightControl with
        | Fpr -> normIsf alpha'
        | NoControl -> options.Threshold
        | Fdr -> fdrThreshold alpha' (if options.TwoSided then Array.map abs maskedStats else maskedStats)
        | Bonferroni -> normIsf (alpha' / float maskedStats.Length)

    /// <summary>nilearn 0.13.1's <c>threshold_stats_img</c> on a 3D statistic map.</summary>
    /// <remarks>α is halved when two-sided. 'fpr': Φ⁻¹(1 − α′); 'fdr': <c>fdrThreshold</c> α′ of the (absolute,
    /// when two-sided) statistic in the mask; 'bonferroni': Φ⁻¹(1 − α′/n) with n voxels in the mask; none: the given
    /// threshold. The map is then thresholded by <c>Clusters.thresholdImg</c> with the given mask (no mask: the
    /// whole grid is thresholded, although the background mask chose the voxels counted).</remarks>
    /// <param name="shape">Grid of the map.</param>
    /// <param name="options">nilearn's parameters; see <c>defaultThresholdOptions</c>.</param>
    /// <param name="mask">Voxels of interest (Fortran order), or None for nilearn's background mask.</param>
    /// <param name="statMap">The z map, Fortran order.</param>
    /// <exception cref="T:FmriGlm.Core.GlmInputException">α is not in [0, 1], or the threshold is unusable.</exception>
    let thresholdStatsImg (shape: GridShape) (options: ThresholdOptions) (mask: bool[] option) (statMap: float[]) : ThresholdResult =
        checkLength shape statMap.Length (nameof statMap)

        // nilearn's load_mask_img refuses a mask with no voxel; without this check the voxel count of the
        // Bonferroni and FDR corrections would be 0.
        match mask with
        | Some m when not (Array.exists id m) -> raise (GlmInputException("mask", "the mask is empty: it masks all data"))
        | _ -> ()

        let voxels = maskOrBackground shape mask statMap
        let masked = Array.zip voxels statMap |> Array.choose (fun (inside, z) -> if inside then Some z else None)
        let threshold = statsThreshold options masked
        let thresholded = Clusters.thresholdImg shape threshold options.ClusterThreshold options.TwoSided mask statMap
        { Thresholded = thresholded; Threshold = threshold }

    /// <summary>The Hommel value h of the z values: the size of the largest set of p values the Hommel procedure
    /// cannot reject at α (nilearn <c>_compute_hommel_value</c>), the bound of All-Resolutions Inference.</summary>
    /// <remarks>nilearn's shortcut: with p sorted increasingly, n values if p₍₁₎ &gt; α, 0 if p₍ₙ₎ &lt; α, else
    /// min(n, trunc(α / maxₖ (α − p₍ₖ₎)/(n − k))) over k &lt; n; one value gives 1 if p &gt; α else 0.</remarks>
    /// <exception cref="T:FmriGlm.Core.GlmInputException">α is not in [0, 1].</exception>
    let hommelValue (alpha: float) (zValues: float[]) : int =
        checkAlpha alpha
        let p = sortDescending zValues |> Array.map normSf
        let n = p.Length

        if n = 0 then 0
        elif n = 1 then (if p[0] > alpha then 1 else 0)
        elif p[0] > alpha then n
        elif p[n - 1] < alpha then 0
        else
            let mutable slope = -infinity

            for k in 0 .. n - 2 do
                slope <- max slope ((alpha - p[k]) / float (n - 1 - k))

            let h = Math.Truncate(alpha / slope)
            if Double.IsNaN h || h >= float n then n else int h

    /// <summary>Lower bound on the proportion of true discoveries among the z values of one cluster (nilearn
    /// <c>_true_positive_fraction</c>; Rosenblatt et al. 2018, NeuroImage 181:786–796).</summary>
    /// <remarks>With cₖ = ⌈h·p₍ₖ₎/α⌉, the bound is max over distinct c of (1 − c + #{k: cₖ ≤ c}) / n, floored at 0.
    /// nilearn's formula gives (n + 1)/n &gt; 1 when h = 0 (every voxel of the mask has p &lt; α); kept for parity.</remarks>
    let truePositiveFraction (hommel: int) (alpha: float) (zValues: float[]) : float =
        let n = zValues.Length

        if n = 0 then
            invalidArg (nameof zValues) "a cluster has at least one voxel"

        let c = sortDescending zValues |> Array.map (fun z -> Math.Ceiling(float hommel * normSf z / alpha)) |> Array.sort
        let mutable best = -infinity

        for k in 0 .. n - 1 do
            // the last of each run of equal c counts every value ≤ c
            if k = n - 1 || c[k + 1] <> c[k] then
                best <- max best (1.0 - c[k] + float (k + 1))

        max 0.0 (best / float n)

    /// <summary>nilearn 0.13.1's <c>cluster_level_inference</c> (All-Resolutions Inference): the proportion of true
    /// discoveries of every supra-threshold cluster, at each voxel.</summary>
    /// <remarks>The Hommel value is computed once over the mask. Thresholds are processed in increasing order;
    /// at each, the map (0 outside the mask) is labelled with 6-connectivity at z &gt; t and every cluster's voxels
    /// in the mask get its proportion, so higher thresholds overwrite lower ones. Voxels in no cluster get 0.</remarks>
    /// <param name="shape">Grid of the map.</param>
    /// <param name="thresholds">Cluster-forming z thresholds (nilearn's default [3.0]).</param>
    /// <param name="alpha">Level of the bound (nilearn's default 0.05).</param>
    /// <param name="mask">Voxels of interest, or None for nilearn's background mask of the map.</param>
    /// <param name="statMap">The z map, Fortran order.</param>
    /// <returns>The proportion map, Fortran order, 0 outside the mask.</returns>
    /// <exception cref="T:FmriGlm.Core.GlmInputException">α is not in [0, 1], a threshold is NaN, or the map has a
    /// NaN inside the mask.</exception>
    let clusterLevelInference (shape: GridShape) (thresholds: float list) (alpha: float) (mask: bool[] option) (statMap: float[]) : float[] =
        checkLength shape statMap.Length (nameof statMap)
        checkAlpha alpha

        if thresholds |> List.exists Double.IsNaN then
            raise (GlmInputException("threshold", "is NaN"))

        let voxels = maskOrBackground shape mask statMap

        for v in 0 .. statMap.Length - 1 do
            if voxels[v] && Double.IsNaN statMap[v] then
                let i, j, k = v % shape.X, (v / shape.X) % shape.Y, v / (shape.X * shape.Y)
                raise (GlmInputException("stat map", $"NaN at voxel ({i}, {j}, {k}) inside the mask"))

        let inMask = Array.init statMap.Length (fun v -> if voxels[v] then statMap[v] else 0.0)
        let masked = Array.zip voxels statMap |> Array.choose (fun (inside, z) -> if inside then Some z else None)
        let hommel = hommelValue alpha masked
        let proportion = Array.zeroCreate statMap.Length

        for t in List.sort thresholds do
            let labels, count = Clusters.label shape (inMask |> Array.map (fun z -> z > t))
            let members = Array.init (count + 1) (fun _ -> ResizeArray<int>())

            for v in 0 .. labels.Length - 1 do
                if labels[v] > 0 && voxels[v] then members[labels[v]].Add v

            for l in 1..count do
                if members[l].Count > 0 then
                    let tdp = truePositiveFraction hommel alpha (members[l] |> Seq.map (fun v -> statMap[v]) |> Array.ofSeq)
                    for v in members[l] do
                        proportion[v] <- tdp

        proportion
