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
    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Stat _ -> "z map (NIfTI, 3D)."
            | Height_Control _ -> "fpr (default), fdr, bonferroni or none (then --threshold is used)."
            | Alpha _ -> "p or q value turned into a z threshold (default 0.001); halved when two-sided."
            | Threshold _ -> "z threshold used with --height-control none (default 3.0)."
            | Cluster_Threshold _ -> "remove clusters smaller than this many voxels (default 0)."
            | Two_Sided -> "threshold |z|, keeping both tails (the default)."
            | One_Sided -> "keep only z above the threshold."
            | Mask _ -> "mask (NIfTI on the map's grid); default: nilearn's background mask of the map."
            | Out _ -> "thresholded map to write (NIfTI)."

/// The core options from the parsed arguments; bad values become Argu errors (exit 2).
let options (results: ParseResults<ThresholdArgs>) : ThresholdOptions =
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
            results.PostProcessResult(Height_Control, Thresholding.parseHeightControl)
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
    let options = options results
    Files.requireOutputFile "--out" (results.GetResult Out) (results.GetResult Stat :: Option.toList (results.TryGetResult Mask))
    let map = StatImage.read (results.GetResult Stat)
    let mask = results.TryGetResult Mask |> Option.map (StatImage.readMask map)
    let result = Thresholding.thresholdStatsImg map.Shape options mask map.Values
    let out = results.GetResult Out
    StatImage.write map out result.Thresholded
    let kept = result.Thresholded |> Array.filter (fun x -> x <> 0.0) |> Array.length
    printfn "threshold\t%s" (result.Threshold.ToString("R", System.Globalization.CultureInfo.InvariantCulture))
    printfn "voxels kept\t%d" kept
    0
