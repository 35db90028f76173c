module FmriGlm.Core.Tests.ClustersTests

open System
open Expecto
open FsCheck
open FsCheck.FSharp
open FmriGlm.Core
open FmriGlm.Core.Tests.TestHelpers
open FmriGlm.Core.Tests.ThresholdingTests

let private config = { FsCheckConfig.defaultConfig with maxTest = 100 }

/// A small grid, a z map with values to three decimals, an identity-like affine with 2 mm voxels.
let private genCase =
    gen {
        let! x = Gen.choose (1, 7)
        let! y = Gen.choose (1, 7)
        let! z = Gen.choose (1, 5)
        let shape = { X = x; Y = y; Z = z }
        let! values = Gen.arrayOfLength shape.Count (Gen.choose (-5000, 5000) |> Gen.map (fun k -> float k / 1000.0))
        let! threshold = Gen.elements [ 0.5; 1.0; 2.0; 3.0 ]
        let! clusterThreshold = Gen.choose (0, 4)
        let! twoSided = Gen.elements [ true; false ]
        return shape, values, threshold, float clusterThreshold, twoSided
    }

let private affine2mm = Array2D.init 4 4 (fun r c -> if r = c then (if r < 3 then 2.0 else 1.0) elif c = 3 && r < 3 then -10.0 else 0.0)

/// The rows of a reference clusters table, as text cells.
let private referenceRows case' =
    let _, rows = Tsv.read (Reference.path "thresholding" case' "clusters_table.tsv")
    rows

[<Tests>]
let tests =
    testList "Clusters" [
        testList "parity" [
            for case' in Reference.cases "thresholding" |> Array.filter (fun c -> c.StartsWith "get_clusters_table") do
                testCase $"get_clusters_table = nilearn 0.13.1 get_clusters_table ({case'}; IDs, X/Y/Z, sizes and label maps exact, Peak Stat rtol/atol 1e-10)" <| fun () ->
                    let inputs = (Reference.parameters "thresholding" case').GetProperty "inputs"
                    let shape, affine, zooms, stat = image "thresholding" case' "stat_map.nii.gz"

                    let table =
                        Clusters.getClustersTable shape affine zooms
                            (inputs.GetProperty("stat_threshold").GetDouble())
                            (inputs.GetProperty("cluster_threshold").GetDouble())
                            (inputs.GetProperty("two_sided").GetBoolean())
                            (inputs.GetProperty("min_distance").GetDouble())
                            stat

                    let expected = referenceRows case'
                    let actual = table.Rows |> Array.ofList
                    Expect.equal actual.Length expected.Length "rows"

                    for r in 0 .. expected.Length - 1 do
                        let e = expected[r]
                        let a = actual[r]
                        Expect.equal a.ClusterId e[0] $"row {r}: Cluster ID"
                        Expect.equal [| a.X; a.Y; a.Z |] (e[1..3] |> Array.map float) $"row {r}: X, Y, Z"
                        Close.all { absolute = 1e-10; relative = 1e-10 } [| a.PeakStat |] [| float e[4] |] $"row {r}: Peak Stat"
                        Expect.equal (a.ClusterSizeMm3 |> Option.map string |> Option.defaultValue "") (if e.Length > 5 then e[5] else "") $"row {r}: size"

                    for m in 0..1 do
                        let file = $"label_map-{m}.nii.gz"

                        if IO.File.Exists(Reference.path "thresholding" case' file) then
                            let _, _, _, expectedMap = image "thresholding" case' file
                            Expect.equal (table.LabelMaps[m] |> Array.map float) expectedMap $"label map {m}"
        ]

        testList "laws" [
            testPropertyWithConfig config "cluster sizes sum to the number of supra-threshold voxels that survive the cluster filter (1 mm³ voxels; exact)" <|
                Prop.forAll (Arb.fromGen genCase) (fun (shape, z, t, k, twoSided) ->
                    let table = Clusters.getClustersTable shape affine2mm [| 1.0; 1.0; 1.0 |] t k twoSided 8.0 z
                    let kept = Clusters.thresholdImg shape t k twoSided None z |> Array.filter (fun x -> if twoSided then abs x > t else x > t)
                    let total = table.Rows |> List.sumBy (fun r -> defaultArg r.ClusterSizeMm3 0)
                    total = kept.Length)

            testPropertyWithConfig config "label maps cover exactly the supra-threshold voxels of their tail, numbered 1..n by decreasing peak (exact)" <|
                Prop.forAll (Arb.fromGen genCase) (fun (shape, z, t, _, twoSided) ->
                    let table = Clusters.getClustersTable shape affine2mm [| 2.0; 2.0; 2.0 |] t 0.0 twoSided 8.0 z
                    let tails = if twoSided then [ 1.0; -1.0 ] else [ 1.0 ]
                    let nonEmpty = tails |> List.filter (fun s -> z |> Array.exists (fun x -> x * s > t))
                    List.length table.LabelMaps = nonEmpty.Length
                    && List.forall2
                        (fun (s: float) (labels: int[]) ->
                            let covers = Array.forall2 (fun (x: float) l -> (l > 0) = (x * s > t)) z labels
                            let n = Array.max labels
                            let peaks = Array.init n (fun c -> Array.fold2 (fun m (x: float) l -> if l = c + 1 then max m (x * s) else m) -infinity z labels)
                            covers && Array.pairwise peaks |> Array.forall (fun (a, b) -> a >= b))
                        nonEmpty
                        table.LabelMaps)

            testPropertyWithConfig config "with distinct values, each cluster's peak row is its maximum voxel: value and position in mm (exact)" <|
                Prop.forAll (Arb.fromGen genCase) (fun (shape, z, t, _, _) ->
                    // distinct values: rank order of z plus a tiny index-dependent offset
                    let distinct = z |> Array.mapi (fun v x -> x + float v * 1e-7)
                    let table = Clusters.getClustersTable shape affine2mm [| 2.0; 2.0; 2.0 |] t 0.0 false 8.0 distinct

                    match table.LabelMaps with
                    | [] -> table.Rows.IsEmpty
                    | labels :: _ ->
                        let peaks = table.Rows |> List.filter (fun r -> r.ClusterSizeMm3.IsSome)

                        peaks
                        |> List.mapi (fun c row ->
                            let best = Array.init distinct.Length id |> Array.filter (fun v -> labels[v] = c + 1) |> Array.maxBy (fun v -> distinct[v])
                            let i, j, k = best % shape.X, (best / shape.X) % shape.Y, best / (shape.X * shape.Y)
                            row.PeakStat = distinct[best] && row.X = 2.0 * float i - 10.0 && row.Y = 2.0 * float j - 10.0 && row.Z = 2.0 * float k - 10.0)
                        |> List.forall id)

            testPropertyWithConfig config "label gives the 6-connected components: each voxel's label set has the flood-fill size (exact)" <|
                Prop.forAll (Arb.fromGen genCase) (fun (shape, z, t, _, _) ->
                    let inSet = z |> Array.map (fun x -> x > t)
                    let labels, count = Clusters.label shape inSet
                    let sizes = Array.zeroCreate (count + 1)
                    labels |> Array.iter (fun l -> sizes[l] <- sizes[l] + 1)
                    Array.init z.Length id
                    |> Array.forall (fun v -> if inSet[v] then sizes[labels[v]] = Grid.componentSize shape inSet v else labels[v] = 0))

            testCase "the TSV has nilearn's header and an empty size on subpeak rows" <| fun () ->
                let rows =
                    [ { ClusterId = "1"; X = -6.25; Y = 1.0; Z = 2.0; PeakStat = 6.5; ClusterSizeMm3 = Some 15 }
                      { ClusterId = "1a"; X = 0.1; Y = 1.0; Z = 2.0; PeakStat = 5.0; ClusterSizeMm3 = None } ]

                Expect.equal
                    (Clusters.toTsv rows)
                    "Cluster ID\tX\tY\tZ\tPeak Stat\tCluster Size (mm3)\n1\t-6.25\t1\t2\t6.5\t15\n1a\t0.10000000000000001\t1\t2\t5\t\n"
                    "tsv"
        ]

        testList "errors" [
            testCase "a negative two-sided cluster-forming threshold names threshold" <| fun () ->
                let e = inputError (fun () -> Clusters.getClustersTable { X = 1; Y = 1; Z = 1 } affine2mm [| 2.0; 2.0; 2.0 |] -1.0 0.0 true 8.0 [| 1.0 |] |> ignore)
                Expect.equal e.Input "threshold" "input"

            testCase "voxel sizes that are not three values are a contract violation" <| fun () ->
                Expect.throwsT<ArgumentException> (fun () -> Clusters.getClustersTable { X = 1; Y = 1; Z = 1 } affine2mm [| 2.0 |] 1.0 0.0 true 8.0 [| 1.0 |] |> ignore) "voxel sizes"

            testCase "an affine that is not 4×4 is a contract violation" <| fun () ->
                Expect.throwsT<ArgumentException> (fun () -> Clusters.getClustersTable { X = 1; Y = 1; Z = 1 } (Array2D.zeroCreate 3 3) [| 2.0; 2.0; 2.0 |] 1.0 0.0 true 8.0 [| 1.0 |] |> ignore) "affine"
        ]
    ]
