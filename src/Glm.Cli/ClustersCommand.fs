/// `fmriglm clusters`: nilearn's get_clusters_table on a statistic map, written as TSV.
module FmriGlm.Cli.ClustersCommand

open System.IO
open Argu
open FmriGlm.Core
open FmriGlm.Plotting

/// Arguments of `fmriglm clusters`; names and defaults are nilearn's.
type ClustersArgs =
    | [<MainCommand; Mandatory; Unique>] Stat of path: string
    | [<Mandatory; Unique>] Stat_Threshold of value: float
    | [<Unique>] Cluster_Threshold of voxels: int
    | [<Unique>] Two_Sided
    | [<Unique>] Min_Distance of mm: float
    | [<Unique>] Label_Maps of prefix: string
    | [<Mandatory; Unique>] Out of path: string
    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Stat _ -> "statistic map (NIfTI, 3D)."
            | Stat_Threshold _ -> "cluster-forming threshold, in the map's scale."
            | Cluster_Threshold _ -> "ignore clusters smaller than this many voxels (default 0)."
            | Two_Sided -> "report negative clusters too (default: positive only)."
            | Min_Distance _ -> "minimum distance between subpeaks, in mm (default 8)."
            | Label_Maps _ -> "also write the label maps as PREFIX-0.nii.gz (positive) and PREFIX-1.nii.gz (negative)."
            | Out _ -> "clusters table to write (TSV)."

/// Runs the command: exit code 0 when the table is written.
let run (results: ParseResults<ClustersArgs>) : int =
    let clusterThreshold =
        if results.Contains Cluster_Threshold then
            results.PostProcessResult(Cluster_Threshold, fun k -> if k >= 0 then float k else failwith $"must be ≥ 0, got {k}")
        else
            0.0

    let minDistance =
        if results.Contains Min_Distance then
            results.PostProcessResult(Min_Distance, fun d -> if d >= 0.0 then d else failwith $"must be ≥ 0, got {d}")
        else
            8.0

    Files.requireOutputFile "--out" (results.GetResult Out) [ results.GetResult Stat ]
    let map = StatImage.read (results.GetResult Stat)

    let table =
        Clusters.getClustersTable map.Shape map.Affine map.Zooms (results.GetResult Stat_Threshold) clusterThreshold (results.Contains Two_Sided) minDistance map.Values

    let out = results.GetResult Out
    Files.writeTextAtomic out (Clusters.toTsv table.Rows)

    match results.TryGetResult Label_Maps with
    | Some prefix ->
        let options = { Nifti.writeOptions [| int64 map.Shape.X; int64 map.Shape.Y; int64 map.Shape.Z |] map.Affine with Datatype = NiftiDatatype.Int32 }
        table.LabelMaps |> List.iteri (fun i labels -> Nifti.write $"{prefix}-{i}.nii.gz" options (labels |> Array.map float))
    | None -> ()

    for w in table.Warnings do
        eprintfn "fmriglm: %s" w

    printfn "clusters\t%d" (table.Rows |> List.filter (fun r -> r.ClusterSizeMm3.IsSome) |> List.length)
    0
