namespace FmriGlm.Core

open System
open MathNet.Numerics

type FweSmoothness =
    | FwhmVoxels of float[]
    | SearchLkcs of float[]

type HeightControl =
    | Fpr
    | Fdr
    | Bonferroni
    | NoControl
    | Fwe of FweSmoothness

type ThresholdOptions =
    { Alpha: float
      Threshold: float
      HeightControl: HeightControl
      ClusterThreshold: float
      TwoSided: bool }

type ThresholdResult = { Thresholded: float[]; Threshold: float }

type FweClusterRow =
    { Row: ClusterRow
      PeakPFwe: float
      ClusterPFwe: float option }

module Thresholding =

    let defaultThresholdOptions =
        { Alpha = 0.001
          Threshold = 3.0
          HeightControl = Fpr
          ClusterThreshold = 0.0
          TwoSided = true }

    let parseHeightControl (text: string) : HeightControl =
        match (if isNull text then "none" else text.Trim().ToLowerInvariant()) with
        | "fpr" -> Fpr
        | "fdr" -> Fdr
        | "bonferroni" -> Bonferroni
        | "none" | "" -> NoControl
        | "fwe" -> raise (GlmInputException("height_control", "'fwe' needs the smoothness: use Fwe (FwhmVoxels ... | SearchLkcs ...)"))
        | other -> raise (GlmInputException("height_control", $"'{other}' is not one of 'fpr', 'fdr', 'bonferroni', 'fwe' or None"))

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

    let statsThreshold (options: ThresholdOptions) (maskedStats: float[]) : float =
        checkAlpha options.Alpha
        let alpha' = if options.TwoSided then options.Alpha / 2.0 else options.Alpha

        match options.HeightControl with
        | Fpr -> normIsf alpha'
        | NoControl -> options.Threshold
        | Fdr -> fdrThreshold alpha' (if options.TwoSided then Array.map abs maskedStats else maskedStats)
        | Bonferroni -> normIsf (alpha' / float maskedStats.Length)
        | Fwe(SearchLkcs lkcs) -> RandomFieldTheory.fweThreshold Gaussian lkcs alpha'
        | Fwe(FwhmVoxels _) ->
            raise (GlmInputException("height_control", "Fwe (FwhmVoxels ...) needs the mask's geometry: use thresholdStatsImg"))

    /// FWHM in voxels becomes the LKCs of the voxels counted (mask or background), with unit voxels.
    let private resolveFwe (shape: GridShape) (voxels: bool[]) (control: HeightControl) =
        match control with
        | Fwe(FwhmVoxels fwhm) -> Fwe(SearchLkcs(RandomFieldTheory.maskLkcs shape [| 1.0; 1.0; 1.0 |] fwhm voxels))
        | other -> other

    let fweLkcs (shape: GridShape) (options: ThresholdOptions) (mask: bool[] option) (statMap: float[]) : (float[] * int) option =
        let voxels = maskOrBackground shape mask statMap
        match resolveFwe shape voxels options.HeightControl with
        | Fwe(SearchLkcs lkcs) -> Some(lkcs, voxels |> Array.filter id |> Array.length)
        | _ -> None

    let thresholdStatsImg (shape: GridShape) (options: ThresholdOptions) (mask: bool[] option) (statMap: float[]) : ThresholdResult =
        checkLength shape statMap.Length (nameof statMap)

        // nilearn's load_mask_img refuses a mask with no voxel; without this check the voxel count of the
        // Bonferroni and FDR corrections would be 0.
        match mask with
        | Some m when not (Array.exists id m) -> raise (GlmInputException("mask", "the mask is empty: it masks all data"))
        | _ -> ()

        let voxels = maskOrBackground shape mask statMap
        let masked = Array.zip voxels statMap |> Array.choose (fun (inside, z) -> if inside then Some z else None)
        let options = { options with HeightControl = resolveFwe shape voxels options.HeightControl }
        let threshold = statsThreshold options masked
        let thresholded = Clusters.thresholdImg shape threshold options.ClusterThreshold options.TwoSided mask statMap
        { Thresholded = thresholded; Threshold = threshold }

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

    let fweClustersTable
        (lkcs: float[])
        (searchVoxels: int)
        (statThreshold: float)
        (table: ClustersTable)
        : FweClusterRow list =
        if searchVoxels <= 0 then raise (GlmInputException("searchVoxels", $"must be positive, got {searchVoxels}"))
        let positive, negative =
            match table.LabelMaps with
            | [ p; n ] -> Some p, Some n
            | [ m ] ->
                // one map: the tail that has clusters
                if table.Rows |> List.exists (fun r -> r.PeakStat > 0.0) then Some m, None else None, Some m
            | _ -> None, None
        let sizeOf (row: ClusterRow) =
            let map = if row.PeakStat >= 0.0 then positive else negative
            match map, Int32.TryParse row.ClusterId with
            | Some labels, (true, id) -> labels |> Array.sumBy (fun l -> if l = id then 1 else 0)
            | _ -> 0
        let perVoxel = lkcs[lkcs.Length - 1] / float searchVoxels
        table.Rows
        |> List.map (fun row ->
            { Row = row
              PeakPFwe = RandomFieldTheory.fwePValue Gaussian lkcs (abs row.PeakStat)
              ClusterPFwe =
                row.ClusterSizeMm3
                |> Option.map (fun _ ->
                    (RandomFieldTheory.clusterProbability Gaussian lkcs 1 (float (sizeOf row) * perVoxel) (abs statThreshold)).P) })

    let fweClustersToTsv (rows: FweClusterRow list) : string =
        let g (v: float) = v.ToString("R", Globalization.CultureInfo.InvariantCulture)
        let plain = Clusters.toTsv (rows |> List.map (fun r -> r.Row))
        let lines = plain.Split('\n', StringSplitOptions.RemoveEmptyEntries)
        let sb = Text.StringBuilder()
        sb.Append(lines[0]).Append("\tPeak p FWE\tCluster p FWE\n") |> ignore
        List.iteri (fun i (r: FweClusterRow) ->
            let cluster = match r.ClusterPFwe with Some p -> g p | None -> ""
            sb.Append(lines[i + 1]).Append('\t').Append(g r.PeakPFwe).Append('\t').Append(cluster).Append('\n') |> ignore) rows
        sb.ToString()
