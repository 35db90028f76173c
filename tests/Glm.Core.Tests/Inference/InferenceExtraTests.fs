/// Parity with nilearn 0.13.1 on the inference_extra reference area: EPI masks whose threshold decides many voxels,
/// and cluster inference (clusters table, threshold_stats_img, non_parametric_inference's size, mass and TFCE) on
/// clusters that touch only along an edge or at a corner, so that anything but face (6-) connectivity fails.
module FmriGlm.Core.Tests.InferenceExtraTests

open System
open System.IO
open System.Text.Json
open Expecto
open FmriGlm.Core
open FmriGlm.Core.Tests.TestHelpers

let private area = "inference_extra"
let private file case' name = Reference.path area case' name
let private json case' name = JsonDocument.Parse(File.ReadAllText(file case' name)).RootElement
/// The params.json tolerance of one file ("exact" files have none: atol = rtol = 0).
let private tolerance case' name = Tolerance.forColumn area case' name ""
let private volume case' name = (Nifti.read (file case' name)).Data
let private ints (e: JsonElement) = [ for x in e.EnumerateArray() -> x.GetInt32() ]
let private casesStarting (prefix: string) = Reference.cases area |> Array.filter (fun c -> c.StartsWith prefix)

// ---------------------------------------------------------------- EPI masks

/// The soft-edge EPI, averaged over volumes in float32 as nilearn averages a float32 image.
let private epiMean case' =
    let image = Nifti.read (file case' "epi.nii.gz")
    let s = image.Header.Shape
    let shape = { X = int s[0]; Y = int s[1]; Z = int s[2] }
    let volumes = image.Data.Length / shape.Count
    shape, Masking.meanVolume Single (Seq.init volumes (fun t -> image.Data[t * shape.Count .. (t + 1) * shape.Count - 1]))

let private expectSameMask (actual: bool[]) (expected: bool[]) what =
    let differing = [ for v in 0 .. expected.Length - 1 do if actual[v] <> expected[v] then yield v ]
    Expect.isEmpty differing $"{what}: voxels (Fortran index) where the mask differs from nilearn's"

let private epiTests =
    [ for case' in Array.append (casesStarting "compute_epi_mask") (casesStarting "firstlevelmodel") do
          let expected = json case' "expected.json"
          let reference = volume case' "mask.nii.gz" |> Array.map (fun x -> x <> 0.0)

          testCase $"compute_epi_mask = nilearn 0.13.1 compute_epi_mask ({case'}; mask exact, n_voxels exact, threshold rtol 1e-9)" <| fun () ->
              let shape, mean = epiMean case'
              let result = Masking.computeEpiMask Single Masking.defaultEpiMaskOptions shape mean
              expectSameMask result.Mask reference case'
              Expect.equal (result.Mask |> Array.filter id |> Array.length) (expected.GetProperty("n_voxels").GetInt32()) "n_voxels"
              Close.all (tolerance case' "expected.json") [| result.Threshold |] [| expected.GetProperty("threshold").GetDouble() |] "threshold"

          testCase $"smoothed mean = nilearn 0.13.1 compute_mean(smooth=1), 1 voxel FWHM ({case'}; mean_smoothed.nii.gz, params.json atol 9.2e-4 rtol 1e-6)" <| fun () ->
              let shape, mean = epiMean case'
              let smoothed = Masking.smooth Single shape [| 1.0; 1.0; 1.0 |] [| 1.0; 1.0; 1.0 |] mean
              Close.all (tolerance case' "mean_smoothed.nii.gz") smoothed (volume case' "mean_smoothed.nii.gz") "mean_smoothed"

          testCase $"the threshold is the float32 mid-point of the widest gap of the sorted smoothed mean at nilearn's cut-off and gap indices ({case'}; expected.json indices exact)" <| fun () ->
              let shape, mean = epiMean case'
              let sorted = Masking.smooth Single shape [| 1.0; 1.0; 1.0 |] [| 1.0; 1.0; 1.0 |] mean |> Array.sort
              let n = sorted.Length
              let lower, upper = int (floor (0.2 * float n)), min (int (floor (0.85 * float n))) (n - 1)
              Expect.equal lower (expected.GetProperty("lower_cutoff_index").GetInt32()) "lower cut-off index"
              Expect.equal upper (expected.GetProperty("upper_cutoff_index").GetInt32()) "upper cut-off index"
              let gap i = float32 sorted[i + 1] - float32 sorted[i]
              let widest = [ lower .. upper - 1 ] |> List.maxBy gap
              Expect.equal widest (expected.GetProperty("gap_index_in_sorted").GetInt32()) "gap index in the sorted values"
              let threshold = (Masking.computeEpiMask Single Masking.defaultEpiMaskOptions shape mean).Threshold
              Expect.equal threshold (float ((float32 sorted[widest] + float32 sorted[widest + 1]) * 0.5f)) "threshold at that gap" ]

let private firstLevelMaskTest =
    let case' = "firstlevelmodel-default-mask-soft-edge"

    testCase $"FirstLevel.fit with a computed mask = nilearn 0.13.1 FirstLevelModel(mask_img=None).masker_.mask_img_ ({case'}; exact)" <| fun () ->
        let scans = 10
        let design = { ColumnNames = [| "constant" |]; Values = Array2D.create scans 1 1.0 }
        let run = { FirstLevel.runFromFiles (file case' "epi.nii.gz") None None None with DesignMatrix = Some design }
        let fit = FirstLevel.fit { FirstLevel.defaults with NoiseModel = Ols; Threads = 1 } [ run ]
        let reference = volume case' "mask.nii.gz" |> Array.map (fun x -> x <> 0.0)
        expectSameMask fit.Mask reference case'
        Expect.equal (fit.Mask |> Array.filter id |> Array.length) ((json case' "expected.json").GetProperty("n_voxels").GetInt32()) "n_voxels"

// ---------------------------------------------------------------- clusters table and threshold_stats_img

/// Sorted sizes of the 6-connected clusters of the voxels where `inside` holds.
let private sortedSizes shape (inside: bool[]) =
    let labels, count = Clusters.label shape inside
    let sizes = Array.zeroCreate<int> (count + 1)
    labels |> Array.iter (fun l -> if l > 0 then sizes[l] <- sizes[l] + 1)
    sizes[1..] |> Array.sort |> List.ofArray

let private clustersTableTests =
    [ for case' in casesStarting "get_clusters_table" do
          testCase $"get_clusters_table = nilearn 0.13.1 get_clusters_table ({case'}; IDs, X/Y/Z, sizes, label maps and expected.json exact, Peak Stat rtol/atol 1e-10)" <| fun () ->
              let inputs = (Reference.parameters area case').GetProperty "inputs"
              let shape, affine, zooms, stat = ThresholdingTests.image area case' "stat_map.nii.gz"
              let threshold = inputs.GetProperty("stat_threshold").GetDouble()
              let twoSided = inputs.GetProperty("two_sided").GetBoolean()

              let table =
                  Clusters.getClustersTable shape affine zooms threshold (inputs.GetProperty("cluster_threshold").GetDouble()) twoSided
                      (inputs.GetProperty("min_distance").GetDouble()) stat

              let _, expectedRows = Tsv.read (file case' "clusters_table.tsv")
              let actual = table.Rows |> Array.ofList
              Expect.equal actual.Length expectedRows.Length "rows"
              let cellTolerance = tolerance case' "clusters_table.tsv"

              for r in 0 .. expectedRows.Length - 1 do
                  let e, a = expectedRows[r], actual[r]
                  Expect.equal a.ClusterId e[0] $"row {r}: Cluster ID"
                  Expect.equal [| a.X; a.Y; a.Z |] (e[1..3] |> Array.map float) $"row {r}: X, Y, Z"
                  Close.all cellTolerance [| a.PeakStat |] [| float e[4] |] $"row {r}: Peak Stat"
                  Expect.equal (a.ClusterSizeMm3 |> Option.map string |> Option.defaultValue "") (if e.Length > 5 then e[5] else "") $"row {r}: size"

              let maps = [ 0..1 ] |> List.filter (fun m -> File.Exists(file case' $"label_map-{m}.nii.gz"))
              Expect.equal table.LabelMaps.Length maps.Length "number of label maps"

              for m in maps do
                  Expect.equal (table.LabelMaps[m] |> Array.map float) (volume case' $"label_map-{m}.nii.gz") $"label map {m}"

              let expected = json case' "expected.json"
              Expect.equal actual.Length (expected.GetProperty("n_rows").GetInt32()) "n_rows"
              let bySign = expected.GetProperty "cluster_sizes_by_connectivity"
              Expect.equal (sortedSizes shape (stat |> Array.map (fun z -> z > threshold))) (ints (bySign.GetProperty("positive").GetProperty "6")) "positive cluster sizes, 6-connectivity"

              if twoSided then
                  Expect.equal (sortedSizes shape (stat |> Array.map (fun z -> z < -threshold))) (ints (bySign.GetProperty("negative").GetProperty "6")) "negative cluster sizes, 6-connectivity"

      for case' in casesStarting "threshold_stats_img" do
          testCase $"threshold_stats_img = nilearn 0.13.1 threshold_stats_img ({case'}; map rtol 1e-12 atol 0, threshold and n_voxels_kept exact)" <| fun () ->
              let inputs = (Reference.parameters area case').GetProperty "inputs"
              let shape, _, _, stat = ThresholdingTests.image area case' "stat_map.nii.gz"

              let options =
                  { Thresholding.defaultThresholdOptions with
                      HeightControl = NoControl
                      Threshold = inputs.GetProperty("threshold").GetDouble()
                      ClusterThreshold = inputs.GetProperty("cluster_threshold").GetDouble()
                      TwoSided = inputs.GetProperty("two_sided").GetBoolean() }

              let result = Thresholding.thresholdStatsImg shape options None stat
              Close.all (tolerance case' "thresholded.nii.gz") result.Thresholded (volume case' "thresholded.nii.gz") "thresholded map"
              let expected = json case' "expected.json"
              Expect.equal result.Threshold (expected.GetProperty("threshold").GetDouble()) "threshold"
              Expect.equal (result.Thresholded |> Array.filter ((<>) 0.0) |> Array.length) (expected.GetProperty("n_voxels_kept").GetInt32()) "n_voxels_kept" ]

// ---------------------------------------------------------------- non_parametric_inference

/// A case's maps (one 4D float32 file), mask, design and contrast, as nilearn's call receives them.
let private npiInput case' =
    let data = SecondLevelImages.read4D (file case' "maps.nii.gz") (Some(file case' "mask.nii.gz")) None
    let names, columns = Tsv.columns (file case' "design_matrix.tsv")
    let design = { ColumnNames = names; Values = Array2D.init columns[0].Length names.Length (fun r c -> columns[c][r]) }
    let inputs = (Reference.parameters area case').GetProperty "inputs"
    let contrast = SecondLevelContrast.Expression(inputs.GetProperty("second_level_contrast").GetString())
    data, design, contrast, inputs

let private npiRun case' (permutations: int) (allSignFlips: bool) (tfce: bool) =
    let data, design, contrast, inputs = npiInput case'

    let options =
        { PermutationOptions.defaults with
            NPerm = permutations
            AllSignFlips = allSignFlips
            TwoSidedTest = inputs.GetProperty("two_sided_test").GetBoolean()
            Threshold = Some(inputs.GetProperty("threshold").GetDouble())
            Tfce = tfce
            RandomState = 0 }

    data, Permutation.nonParametricInference options (Some data.Grid) design contrast (Float32 data.Data)

/// Sorted cluster sizes read off a size map: a cluster of s voxels puts s on each of its s voxels.
let private sizesOfSizeMap (sizes: float[]) (keep: int -> bool) =
    sizes
    |> Array.indexed
    |> Array.filter (fun (v, s) -> s > 0.0 && keep v)
    |> Array.countBy snd
    |> Array.collect (fun (s, voxels) -> Array.create (voxels / int s) (int s))
    |> Array.sort
    |> List.ofArray

let private npiDeterministicTests =
    [ for case' in casesStarting "npi-" do
          testCase $"observed t, tfce, size and mass = nilearn 0.13.1 non_parametric_inference(tfce=True, threshold) ({case'}; params.json atol/rtol per map, size exact, expected.json rtol 1e-10, threshold_t 1e-9 as scipy's t.isf is 1.7e-10 off, integers exact)" <| fun () ->
              let data, r = npiRun case' 0 false true
              let maps = [ "t.nii.gz", r.T; "tfce.nii.gz", r.Tfce.Value.Tfce; "size.nii.gz", r.Clusters.Value.Size; "mass.nii.gz", r.Clusters.Value.Mass ]

              for name, values in maps do
                  Close.all (tolerance case' name) (SecondLevelImages.toVolume data values) (volume case' name) name

              let expected = json case' "expected.json"
              let relative = { absolute = 0.0; relative = 1e-10 }
              let twoSided = (Reference.parameters area case').GetProperty("inputs").GetProperty("two_sided_test").GetBoolean()
              // scipy 1.10's t.isf (cephes stdtri) is off by 1.7e-10 relative at p = 0.005, df = 13: it gives
              // 3.0122758382071839 where the root of sf(t) = 0.005 is 3.01227583871658 (mpmath, 40 digits), which is
              // what tIsf finds; so the threshold gets 1e-9.
              Close.all { absolute = 0.0; relative = 1e-9 } [| r.Clusters.Value.ThresholdT |] [| expected.GetProperty("threshold_t").GetDouble() |] "threshold_t"
              let maxScore = r.T |> Array.map (fun t -> if twoSided then abs t else t) |> Array.max
              Close.all relative [| maxScore |] [| expected.GetProperty("max_score_for_tfce").GetDouble() |] "max_score_for_tfce"
              let size = r.Clusters.Value.Size
              Expect.equal (size |> Array.filter (fun s -> s > 0.0) |> Array.length) (expected.GetProperty("n_voxels_above").GetInt32()) "n_voxels_above"
              Expect.equal (int (Array.max size)) (expected.GetProperty("max_size").GetInt32()) "max_size"
              let bySign = expected.GetProperty "cluster_sizes_by_connectivity"
              Expect.equal (sizesOfSizeMap size (fun v -> r.T[v] > 0.0)) (ints (bySign.GetProperty("positive").GetProperty "6")) "positive cluster sizes, 6-connectivity"

              match bySign.TryGetProperty "negative" with
              | true, negative -> Expect.equal (sizesOfSizeMap size (fun v -> r.T[v] < 0.0)) (ints (negative.GetProperty "6")) "negative cluster sizes, 6-connectivity"
              | _ -> () ]

let private npiStatisticalTests =
    [ for case' in casesStarting "npi-" do
          testCase $"logp_max_t, logp_max_tfce, logp_max_size and logp_max_mass agree with nilearn 0.13.1 in distribution ({case'}; nilearn's 60-draw count of null ≥ observed in the binomial 99.9 percent interval of our 1000-draw estimate ± 4 SE)" <| fun () ->
              let n = (Reference.parameters area case').GetProperty("inputs").GetProperty("n_perm").GetInt32()
              let bigN = 1000
              let data, r = npiRun case' bigN false true
              let masked name = let v = volume case' name in data.Grid.Voxels |> Array.map (fun g -> v[g])
              let compare kind name (ours: float[]) = PermutationTests.expectSameNull kind name n bigN ours (masked $"{name}.nii.gz")
              compare PermutationTests.MaxType "logp_max_t" r.LogPMaxT
              compare PermutationTests.MaxType "logp_max_tfce" r.Tfce.Value.LogPMaxTfce
              compare PermutationTests.NullToP "logp_max_size" r.Clusters.Value.LogPMaxSize
              compare PermutationTests.NullToP "logp_max_mass" r.Clusters.Value.LogPMaxMass ]

let private nullLaws =
    [ for case' in casesStarting "npi-diagonal-clusters" do
          testCase $"with all 2^14 sign flips, the identity flip's null max t, size and mass are the observed maxima: the null labels clusters as the observed maps do ({case'}; exact)" <| fun () ->
              let _, r = npiRun case' 0 true false
              let two = (Reference.parameters area case').GetProperty("inputs").GetProperty("two_sided_test").GetBoolean()
              // AllSignFlips enumerates flip k by the bits of k: k = 0 flips no sign
              Expect.equal r.H0MaxT[0] (r.T |> Array.map (fun t -> if two then abs t else t) |> Array.max) "max t"
              Expect.equal r.Clusters.Value.H0MaxSize[0] (Array.max r.Clusters.Value.Size) "max cluster size"
              Expect.equal r.Clusters.Value.H0MaxMass[0] (Array.max r.Clusters.Value.Mass) "max cluster mass" ]

[<Tests>]
let tests =
    testList "InferenceExtra" [
        testList "parity" (epiTests @ [ firstLevelMaskTest ] @ clustersTableTests @ npiDeterministicTests @ npiStatisticalTests)
        testList "laws" nullLaws
    ]
