/// `fmriglm threshold`: nilearn's threshold_stats_img on a z map: writes the thresholded map and prints the threshold.
module FmriGlm.Cli.ThresholdCommand

open Argu
open FmriGlm.Core
open FmriGlm.Plotting

/// Arguments of `fmriglm threshold`; names and defaults are nilearn's.
type ThresholdArgs =
    | [<MainCommand; Mandatory; Unique>] Stat of path: string
    | [<Unique>] Height_Control of method: string
    | [<Unique>] Alpha of alpha: float
    | [<Unique>] Threshold of z: float
    | [<Unique>] Cluster_Threshold of voxels: int
    | [<Unique>] Two_Sided
    | [<Unique>] One_Sided
    | [<Unique>] Mask of path: string
    | [<Mandatory; Unique>] Out of path: string
    | [<Unique>] Fwhm of mm: float list
    | [<Unique>] Residuals of path: string
    | [<Unique>] Clusters_Table of path: string
    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Stat _ -> "z map (NIfTI, 3D)."
            | Height_Control _ -> "fpr (default), fdr, bonferroni, fwe (random field theory: needs --fwhm or --residuals) or none (then --threshold is used)."
            | Alpha _ -> "p or q value turned into a z threshold (default 0.001); halved when two-sided."
            | Threshold _ -> "z threshold used with --height-control none (default 3.0)."
            | Cluster_Threshold _ -> "remove clusters smaller than this many voxels (default 0)."
            | Two_Sided -> "threshold |z|, keeping both tails (the default)."
            | One_Sided -> "keep only z above the threshold."
            | Mask _ -> "mask (NIfTI on the map's grid); default: nilearn's background mask of the map."
            | Out _ -> "thresholded map to write (NIfTI)."
            | Fwhm _ -> "with fwe: the map's smoothness, FWHM in mm (one value, or three along i, j, k)."
            | Residuals _ -> "with fwe: 4D residuals of the model; LKCs estimated from them (nipy Lips3d) in --mask, else where they are non-zero."
            | Clusters_Table _ -> "with fwe: also write the clusters table (TSV) with FWE peak and cluster p columns at the threshold used."

/// The FWE smoothness from --fwhm (mm, converted to voxels with the map's voxel sizes) or --residuals.
let private fweSmoothness (results: ParseResults<ThresholdArgs>) (map: StatImage.StatMap) (mask: bool[] option) =
    match results.TryGetResult Fwhm, results.TryGetResult Residuals with
    | Some _, Some _ -> results.Raise("--fwhm and --residuals exclude each other", showUsage = false)
    | None, None -> raise (GlmInputException("--height-control fwe", "needs the smoothness: --fwhm MM or --residuals RES.nii.gz"))
    | Some fwhm, None ->
        let fwhm =
            match fwhm with
            | [ f ] -> [| f; f; f |]
            | [ a; b; c ] -> [| a; b; c |]
            | _ -> raise (GlmInputException("--fwhm", $"needs one or three values, got {fwhm.Length}"))
        if fwhm |> Array.exists (fun f -> not (f > 0.0)) then
            raise (GlmInputException("--fwhm", "values must be positive"))
        FwhmVoxels(Array.map2 (/) fwhm map.Zooms)
    | None, Some path ->
        let residuals = SmoothnessCommand.readResiduals path
        if residuals.Shape <> map.Shape then
            raise (GlmInputException(path, $"has grid {residuals.Shape.X}×{residuals.Shape.Y}×{residuals.Shape.Z}, the map {map.Path} has {map.Shape.X}×{map.Shape.Y}×{map.Shape.Z}"))
        let search = mask |> Option.defaultWith (fun () -> SmoothnessCommand.residualSupport residuals)
        SearchLkcs(RandomFieldTheory.residualLkcs residuals.Shape search residuals.Volumes)

/// The core options from the parsed arguments; bad values become Argu errors (exit 2).
let options (results: ParseResults<ThresholdArgs>) (map: StatImage.StatMap) (mask: bool[] option) : ThresholdOptions =
    let d = Thresholding.defaultThresholdOptions

    if results.Contains Two_Sided && results.Contains One_Sided then
        results.Raise("--two-sided and --one-sided exclude each other", showUsage = false)

    { Alpha =
        if results.Contains Alpha then
            results.PostProcessResult(Alpha, fun a -> if a >= 0.0 && a <= 1.0 then a else failwith $"must be in [0, 1], got {a}")
        else
            d.Alpha
      Threshold = results.GetResult(Threshold, d.Threshold)
      HeightControl =
        if results.Contains Height_Control then
            match results.GetResult Height_Control with
            | h when h.Trim().ToLowerInvariant() = "fwe" -> Fwe(fweSmoothness results map mask)
            | _ -> results.PostProcessResult(Height_Control, Thresholding.parseHeightControl)
        else
            d.HeightControl
      ClusterThreshold =
        if results.Contains Cluster_Threshold then
            results.PostProcessResult(Cluster_Threshold, fun k -> if k >= 0 then float k else failwith $"must be ≥ 0, got {k}")
        else
            d.ClusterThreshold
      TwoSided = not (results.Contains One_Sided) }

/// Runs the command: exit code 0 when the map is written.
let run (results: ParseResults<ThresholdArgs>) : int =
    Files.requireOutputFile "--out" (results.GetResult Out) (results.GetResult Stat :: Option.toList (results.TryGetResult Mask) @ Option.toList (results.TryGetResult Residuals) @ Option.toList (results.TryGetResult Clusters_Table))
    let map = StatImage.read (results.GetResult Stat)
    let mask = results.TryGetResult Mask |> Option.map (StatImage.readMask map)
    let options = options results map mask
    let result = Thresholding.thresholdStatsImg map.Shape options mask map.Values
    let out = results.GetResult Out
    StatImage.write map out result.Thresholded
    let kept = result.Thresholded |> Array.filter (fun x -> x <> 0.0) |> Array.length
    printfn "threshold\t%s" (result.Threshold.ToString("R", System.Globalization.CultureInfo.InvariantCulture))
    printfn "voxels kept\t%d" kept
    match Thresholding.fweLkcs map.Shape options mask map.Values with
    | Some(lkcs, searchVoxels) ->
        printfn "lkcs\t%s" (System.String.Join('\t', lkcs |> Array.map (fun v -> v.ToString("R", System.Globalization.CultureInfo.InvariantCulture))))
        match results.TryGetResult Clusters_Table with
        | Some path ->
            let table = Clusters.getClustersTable map.Shape map.Affine map.Zooms result.Threshold options.ClusterThreshold options.TwoSided 8.0 map.Values
            let rows = Thresholding.fweClustersTable lkcs searchVoxels result.Threshold table
            Files.writeTextAtomic path (Thresholding.fweClustersToTsv rows)
        | None -> ()
    | None ->
        if results.Contains Clusters_Table then
            raise (GlmInputException("--clusters-table", "is written only with --height-control fwe"))
    0
