module FmriGlm.Core.Tests.ThresholdingTests

open System
open System.IO
open System.Text.Json
open Expecto
open FsCheck
open FsCheck.FSharp
open FmriGlm.Core
open FmriGlm.Core.Tests.TestHelpers

let private config = { FsCheckConfig.defaultConfig with maxTest = 100 }

/// A JSON number, or nilearn's "inf"/"-inf"/"nan" strings.
let private jsonFloat (e: JsonElement) =
    match e.ValueKind with
    | JsonValueKind.String ->
        match e.GetString() with
        | "inf" -> infinity
        | "-inf" -> -infinity
        | _ -> nan
    | _ -> e.GetDouble()

/// The tolerance of one output file from a case's params.json.
let private tolerance (p: JsonElement) (file: string) =
    let t = p.GetProperty("tolerance").GetProperty(file)
    let get (name: string) = match t.TryGetProperty name with | true, v -> v.GetDouble() | _ -> 0.0
    { absolute = get "atol"; relative = get "rtol" }

/// A reference NIfTI image: grid, affine, zooms and values (Fortran order).
let internal image area case' file =
    let img = Nifti.read (Reference.path area case' file)
    let s = img.Header.Shape
    { X = int s[0]; Y = int s[1]; Z = int s[2] }, img.Header.Affine, img.Header.Zooms, img.Data

let private optionalMask case' =
    if File.Exists(Reference.path "thresholding" case' "mask.nii.gz") then
        let _, _, _, m = image "thresholding" case' "mask.nii.gz"
        Some(m |> Array.map (fun x -> x <> 0.0))
    else
        None

/// Standard normal z values, some shifted up to make discoveries.
let private genZ =
    gen {
        let! n = Gen.choose (1, 200)
        let! signal = Gen.choose (0, n)
        let! u = Gen.arrayOfLength n (Gen.choose (1, 999_999))
        // Φ⁻¹ by inversion of a uniform on a fine grid: finite, reproducible normal deviates
        let z = u |> Array.mapi (fun i k -> MathNet.Numerics.Distributions.Normal.InvCDF(0.0, 1.0, float k / 1e6) + (if i < signal then 3.0 else 0.0))
        return z
    }

let private genAlpha = Gen.elements [ 1e-6; 1e-4; 0.001; 0.01; 0.05; 0.1; 0.2; 0.5; 1.0 ]

/// A small grid with a z map and a mask.
let private genMap =
    gen {
        let! x = Gen.choose (1, 6)
        let! y = Gen.choose (1, 6)
        let! z = Gen.choose (1, 6)
        let shape = { X = x; Y = y; Z = z }
        let! values = Gen.arrayOfLength shape.Count (Gen.choose (-4000, 4000) |> Gen.map (fun k -> float k / 1000.0))
        let! maskBits = Gen.arrayOfLength shape.Count (Gen.elements [ true; true; true; false ])
        return shape, values, maskBits
    }

/// The GlmInputException that f raises; fails the test when it raises none.
let internal inputError (f: unit -> unit) : GlmInputException =
    try
        f ()
        failtest "no GlmInputException"
    with :? GlmInputException as e ->
        e

[<Tests>]
let tests =
    testList "Thresholding" [
        testList "parity" [
            testCase "fdr_threshold = nilearn 0.13.1 fdr_threshold (fdr_threshold, all 15 rows of expected.json, params.json tolerance rtol/atol 1e-12)" <| fun () ->
                let case' = "fdr_threshold"
                let p = Reference.parameters "thresholding" case'
                let acc = tolerance p "expected.json"
                let expected = JsonDocument.Parse(File.ReadAllText(Reference.path "thresholding" case' "expected.json")).RootElement.GetProperty("cases")
                let rows = [ for r in expected.EnumerateArray() -> r ]
                Expect.equal rows.Length 15 "rows"

                for r in rows do
                    let file = r.GetProperty("z_file").GetString()
                    let alpha = r.GetProperty("alpha").GetDouble()
                    let z = Tsv.column (Reference.path "thresholding" case' file) "z"
                    Close.all acc [| Thresholding.fdrThreshold alpha z |] [| jsonFloat (r.GetProperty "threshold") |] $"{file} alpha {alpha}"

            for case' in Reference.cases "thresholding" |> Array.filter (fun c -> c.StartsWith "threshold_stats_img") do
                testCase $"threshold_stats_img = nilearn 0.13.1 threshold_stats_img ({case'}; threshold rtol/atol 1e-12, map exact)" <| fun () ->
                    let p = Reference.parameters "thresholding" case'
                    let inputs = p.GetProperty "inputs"
                    let shape, _, _, stat = image "thresholding" case' "stat_map.nii.gz"
                    let hc = inputs.GetProperty "height_control"
                    let t = inputs.GetProperty "threshold"

                    let options =
                        { Alpha = inputs.GetProperty("alpha").GetDouble()
                          Threshold = (if t.ValueKind = JsonValueKind.Null then 3.0 else t.GetDouble())
                          HeightControl = Thresholding.parseHeightControl (if hc.ValueKind = JsonValueKind.Null then null else hc.GetString())
                          ClusterThreshold = inputs.GetProperty("cluster_threshold").GetDouble()
                          TwoSided = inputs.GetProperty("two_sided").GetBoolean() }

                    let result = Thresholding.thresholdStatsImg shape options (optionalMask case') stat
                    let expected = JsonDocument.Parse(File.ReadAllText(Reference.path "thresholding" case' "expected.json")).RootElement
                    Close.all (tolerance p "expected.json") [| result.Threshold |] [| jsonFloat (expected.GetProperty "threshold") |] "threshold"
                    let _, _, _, map = image "thresholding" case' "thresholded.nii.gz"
                    Close.all (tolerance p "thresholded.nii.gz") result.Thresholded map "thresholded map"
                    Expect.equal (result.Thresholded |> Array.filter ((<>) 0.0) |> Array.length) (expected.GetProperty("n_nonzero").GetInt32()) "n_nonzero"

            for case' in Reference.cases "thresholding" |> Array.filter (fun c -> c.StartsWith "cluster_level_inference") do
                testCase $"cluster_level_inference = nilearn 0.13.1 cluster_level_inference ({case'}; params.json tolerance rtol/atol 1e-12)" <| fun () ->
                    let p = Reference.parameters "thresholding" case'
                    let inputs = p.GetProperty "inputs"
                    let shape, _, _, stat = image "thresholding" case' "stat_map.nii.gz"
                    let t = inputs.GetProperty "threshold"
                    let thresholds = if t.ValueKind = JsonValueKind.Array then [ for x in t.EnumerateArray() -> x.GetDouble() ] else [ t.GetDouble() ]
                    let actual = Thresholding.clusterLevelInference shape thresholds (inputs.GetProperty("alpha").GetDouble()) (optionalMask case') stat
                    let _, _, _, expected = image "thresholding" case' "proportion_true_discoveries.nii.gz"
                    Close.all (tolerance p "proportion_true_discoveries.nii.gz") actual expected "proportion of true discoveries"
        ]

        testList "laws" [
            testPropertyWithConfig config "FDR threshold is monotone in alpha: alpha1 <= alpha2 gives threshold1 >= threshold2 (exact)" <|
                Prop.forAll (Arb.fromGen (Gen.zip3 genZ genAlpha genAlpha)) (fun (z, a, b) ->
                    let lo, hi = min a b, max a b
                    Thresholding.fdrThreshold lo z >= Thresholding.fdrThreshold hi z)

            testPropertyWithConfig config "every z above the Bonferroni threshold is above the FDR threshold, one-sided (exact)" <|
                Prop.forAll (Arb.fromGen (Gen.zip genZ genAlpha)) (fun (z, alpha) ->
                    let options = { Thresholding.defaultThresholdOptions with Alpha = alpha; TwoSided = false }
                    let bonferroni = Thresholding.statsThreshold { options with HeightControl = Bonferroni } z
                    let fdr = Thresholding.statsThreshold { options with HeightControl = Fdr } z
                    z |> Array.forall (fun x -> not (x > bonferroni) || x > fdr))

            // "Bonferroni threshold >= FDR threshold" holds for discoveries, not for the numbers: FDR returns the last
            // discovery's z − 1e-12, which exceeds the Bonferroni threshold when every discovery is far above it
            // (z = [10, 0]), and +inf when nothing survives. The law is therefore stated on the voxels.
            testPropertyWithConfig config "Bonferroni discoveries are FDR discoveries: no voxel between the two thresholds survives Bonferroni only (exact)" <|
                Prop.forAll (Arb.fromGen (Gen.zip genZ genAlpha)) (fun (z, alpha) ->
                    let options = { Thresholding.defaultThresholdOptions with Alpha = alpha; TwoSided = true }
                    let bonferroni = Thresholding.statsThreshold { options with HeightControl = Bonferroni } z
                    let fdr = Thresholding.statsThreshold { options with HeightControl = Fdr } z
                    z |> Array.forall (fun x -> not (abs x > bonferroni) || abs x > fdr))

            testPropertyWithConfig config "a thresholded map keeps exactly the supra-threshold voxels in the mask whose same-sign cluster has >= cluster_threshold voxels, with their values (exact)" <|
                Prop.forAll (Arb.fromGen (Gen.zip3 genMap (Gen.zip (Gen.elements [ 0.0; 0.5; 1.5; 2.5 ]) (Gen.choose (0, 6))) (Gen.elements [ true; false ]))) (fun ((shape, z, mask), (t, k), twoSided) ->
                    let out = Clusters.thresholdImg shape t (float k) twoSided (Some mask) z
                    let supra = Array.init z.Length (fun v -> mask[v] && (if twoSided then abs z[v] > t else z[v] > t))
                    let positive = Array.init z.Length (fun v -> supra[v] && z[v] > 0.0)
                    let negative = Array.init z.Length (fun v -> supra[v] && z[v] < 0.0)

                    Array.init z.Length id
                    |> Array.forall (fun v ->
                        let kept =
                            supra[v] && float (Grid.componentSize shape (if z[v] > 0.0 then positive else negative) v) >= float k

                        out[v] = (if kept then z[v] else 0.0)))

            testPropertyWithConfig config "threshold_stats_img keeps exactly the voxels of |z| > threshold in a non-empty mask (two-sided, no cluster filter; exact)" <|
                Prop.forAll (Arb.fromGen (Gen.zip3 genMap genAlpha (Gen.elements [ Fpr; Fdr; Bonferroni ]))) (fun ((shape, z, mask), alpha, hc) ->
                    Array.exists id mask ==>
                    lazy (
                    let options = { Thresholding.defaultThresholdOptions with Alpha = alpha; HeightControl = hc }
                    let r = Thresholding.thresholdStatsImg shape options (Some mask) z
                    Array.init z.Length id |> Array.forall (fun v -> r.Thresholded[v] = (if mask[v] && abs z[v] > r.Threshold then z[v] else 0.0))))

            testPropertyWithConfig config "proportion of true discoveries is in [0, 1] when the Hommel value is >= 1 (exact)" <|
                Prop.forAll (Arb.fromGen (Gen.zip3 genMap (Gen.elements [ 0.05; 0.1; 0.2 ]) (Gen.elements [ 0.5; 1.0; 2.0 ]))) (fun ((shape, z, mask), alpha, t) ->
                    let masked = Array.zip mask z |> Array.choose (fun (m, x) -> if m then Some x else None)
                    let prop = Thresholding.clusterLevelInference shape [ t ] alpha (Some mask) z
                    Thresholding.hommelValue alpha masked = 0 || prop |> Array.forall (fun p -> 0.0 <= p && p <= 1.0))

            testPropertyWithConfig config "proportion of true discoveries decreases (weakly) as alpha decreases, voxel by voxel (exact)" <|
                Prop.forAll (Arb.fromGen (Gen.zip3 genMap (Gen.zip (Gen.elements [ 0.001; 0.01; 0.05 ]) (Gen.elements [ 0.1; 0.2; 0.5 ])) (Gen.elements [ 0.5; 1.0; 2.0 ]))) (fun ((shape, z, mask), (small, large), t) ->
                    let p1 = Thresholding.clusterLevelInference shape [ t ] small (Some mask) z
                    let p2 = Thresholding.clusterLevelInference shape [ t ] large (Some mask) z
                    Array.forall2 (fun a b -> a <= b) p1 p2)

            testCase "nilearn quirk kept: with a Hommel value of 0 (every p < alpha) a cluster's proportion is (n + 1)/n" <| fun () ->
                let z = [| 5.0; 6.0; 7.0 |]
                Expect.equal (Thresholding.hommelValue 0.05 z) 0 "hommel"
                let n = float z.Length
                Expect.equal (Thresholding.truePositiveFraction 0 0.05 z) ((n + 1.0) / n) "proportion (n + 1)/n"
        ]

        testList "errors" [
            testCase "an empty mask is refused, naming the mask (nilearn load_mask_img)" <| fun () ->
                let shape = { X = 1; Y = 1; Z = 2 }
                let e = inputError (fun () -> Thresholding.thresholdStatsImg shape Thresholding.defaultThresholdOptions (Some [| false; false |]) [| 1.0; 2.0 |] |> ignore)
                Expect.equal e.Input "mask" "input"

            testCase "alpha outside [0, 1] names alpha" <| fun () ->
                let e = inputError (fun () -> Thresholding.fdrThreshold 1.5 [| 1.0 |] |> ignore)
                Expect.equal e.Input "alpha" "input"
                Expect.stringContains e.Problem "1.5" "value"

            testCase "an unknown height_control names the option and the spelling" <| fun () ->
                let e = inputError (fun () -> Thresholding.parseHeightControl "holm" |> ignore)
                Expect.equal e.Input "height_control" "input"
                Expect.stringContains e.Problem "holm" "value"

            testCase "a negative two-sided threshold names threshold" <| fun () ->
                let shape = { X = 2; Y = 1; Z = 1 }
                let options = { Thresholding.defaultThresholdOptions with HeightControl = NoControl; Threshold = -1.0 }
                let e = inputError (fun () -> Thresholding.thresholdStatsImg shape options None [| 1.0; 2.0 |] |> ignore)
                Expect.equal e.Input "threshold" "input"

            testCase "a NaN inside the mask of cluster_level_inference names the voxel" <| fun () ->
                let shape = { X = 2; Y = 2; Z = 1 }
                let e = inputError (fun () -> Thresholding.clusterLevelInference shape [ 3.0 ] 0.05 (Some [| true; true; true; true |]) [| 1.0; 2.0; nan; 4.0 |] |> ignore)
                Expect.stringContains e.Problem "(0, 1, 0)" "voxel"

            testCase "a map of the wrong length is a contract violation (ArgumentException)" <| fun () ->
                Expect.throwsT<ArgumentException> (fun () -> Thresholding.thresholdStatsImg { X = 2; Y = 2; Z = 1 } Thresholding.defaultThresholdOptions None [| 1.0 |] |> ignore) "length"
        ]
    ]
