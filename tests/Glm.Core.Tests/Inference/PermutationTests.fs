module FmriGlm.Core.Tests.PermutationTests

open System
open System.IO
open Expecto
open FsCheck
open FsCheck.FSharp
open FmriGlm.Core
open FmriGlm.Core.Tests.TestHelpers

let private config = { FsCheckConfig.defaultConfig with maxTest = 100 }
let private case' = "non-parametric-one-sample"

let private input () =
    let dir = Path.Combine(Reference.dataDir, "second_level", case')
    let maps = Directory.GetFiles(dir, "sub-*_effect.nii.gz") |> Array.sort
    SecondLevelImages.readMaps maps (Some(Path.Combine(dir, "mask.nii.gz"))) None

let private expectedVolume file = (Nifti.read (Reference.path "second_level" case' file)).Data


/// 4 to 9 subjects × 1 to 4 voxels, values uniform in [−3, 3] at full double resolution (so that two different
/// sign flips tie only when the statistic makes them tie, as ±t in a two-sided test).
let private smallStudy =
    gen {
        let! n = Gen.choose (4, 9)
        let! v = Gen.choose (1, 4)
        let! seed = Gen.choose (0, Int32.MaxValue)
        let rng = Random seed
        let values = Array.init (n * v) (fun _ -> 6.0 * rng.NextDouble() - 3.0)
        let! two = Gen.elements [ false; true ]
        return n, v, values, two
    }
    |> Gen.filter (fun (n, v, values, _) ->
        [ 0 .. v - 1 ] |> List.forall (fun k -> let y = values[k * n .. k * n + n - 1] in Array.max y - Array.min y > 0.1))
    |> Arb.fromGen

/// Subjects with a tested covariate and an extra confound (design [tested, confound, intercept]), 1 to 4 voxels.
let private covariateStudy =
    gen {
        let! n = Gen.choose (6, 14)
        let! v = Gen.choose (1, 4)
        let! tested = Gen.arrayOfLength n (Gen.choose (-2000, 2000) |> Gen.map (fun i -> float i / 1000.0))
        let! confound = Gen.arrayOfLength n (Gen.choose (-2000, 2000) |> Gen.map (fun i -> float i / 1000.0))
        let! values = Gen.arrayOfLength (n * v) (Gen.choose (-3000, 3000) |> Gen.map (fun i -> float i / 1000.0))
        return n, v, tested, confound, values
    }
    |> Gen.filter (fun (n, _, tested, confound, _) ->
        let design = Array2D.init n 3 (fun i c -> match c with 0 -> tested[i] | 1 -> confound[i] | _ -> 1.0)
        let s = MathNet.Numerics.LinearAlgebra.Matrix<float>.Build.DenseOfArray(design).Svd(false).S
        s[2] / s[0] > 0.05)
    |> Arb.fromGen

/// Smooth Gaussian noise on an 8×8×8 grid (FWHM 2 voxels), one volume per subject, from a seeded generator.
let private nullStudy (rng: Random) subjects =
    let shape = { X = 8; Y = 8; Z = 8 }

    let gauss () =
        let u1 = 1.0 - rng.NextDouble()
        let u2 = rng.NextDouble()
        sqrt (-2.0 * log u1) * cos (2.0 * Math.PI * u2)

    let volumes =
        Array.init subjects (fun _ ->
            Array.init shape.Count (fun _ -> gauss ())
            |> Masking.smooth Double shape [| 1.0; 1.0; 1.0 |] [| 2.0; 2.0; 2.0 |])

    shape, volumes

/// The central interval holding at least 1 − α of Binomial(n, p): its α/2 and 1 − α/2 quantiles.
let internal binomialInterval (alpha: float) (n: int) (p: float) =
    if p <= 0.0 then
        0, 0
    elif p >= 1.0 then
        n, n
    else
        let cdf = [| 0..n |] |> Array.map (fun k -> MathNet.Numerics.Distributions.Binomial.PMF(p, n, k)) |> Array.scan (+) 0.0 |> Array.tail
        // the last count when rounding leaves the summed probabilities a hair under 1
        let quantile q = cdf |> Array.tryFindIndex (fun c -> c >= q) |> Option.defaultValue n
        quantile (alpha / 2.0), quantile (1.0 - alpha / 2.0)

/// Two-sided binomial interval holding at least 99 % of Binomial(n, p).
let private binomial99 n p = binomialInterval 0.01 n p

/// How a permutation p value comes from n null draws: max-type (t, TFCE) p = (1 + #{null ≥ observed})/(n + 1);
/// nilearn's null_to_p (cluster size, mass) p = #{null ≥ observed}/n, clipped to [1/n, 1 − 1/n].
type internal PermutationP =
    | MaxType
    | NullToP

/// nilearn's count k = #{null ≥ observed} among its n draws, read off its −log10 p map, must lie in the 99.9 %
/// binomial(n, q) interval (clipped as null_to_p clips), q our estimate of P(null ≥ observed) from bigN draws widened
/// by 4 of its standard errors: the comparison of two random permutation p values that their draws allow, no
/// tighter (at p = 0.5 with n = 60 nilearn's own count varies by ±12).
let internal expectSameNull (kind: PermutationP) what (n: int) (bigN: int) (oursLogP: float[]) (nilearnLogP: float[]) =
    let failures =
        [ for v in 0 .. nilearnLogP.Length - 1 do
              let pa, pe = 10.0 ** -oursLogP[v], 10.0 ** -nilearnLogP[v]

              let q, k, clip =
                  match kind with
                  | MaxType -> (pa * float (bigN + 1) - 1.0) / float bigN, Math.Round(pe * float (n + 1)) - 1.0, id
                  | NullToP -> pa, Math.Round(pe * float n), (fun c -> max 1 (min (n - 1) c))

              let q = max 0.0 (min 1.0 q)
              let se = sqrt (q * (1.0 - q) / float bigN)
              let lo = binomialInterval 0.001 n (max 0.0 (q - 4.0 * se)) |> fst |> clip
              let hi = binomialInterval 0.001 n (min 1.0 (q + 4.0 * se)) |> snd |> clip

              if k < float lo || k > float hi then
                  yield $"voxel {v}: nilearn count {k} of {n} outside [{lo}, {hi}] (our P(null ≥ observed) {q})" ]

    Expect.isEmpty failures what

[<Tests>]
let tests =
    testList "Permutation" [
        testList "laws" [
            testPropertyWithConfig config "with all 2^n sign flips, max-t p values equal the exact ones from brute-force textbook t (abs 1e-12)" <|
                Prop.forAll smallStudy (fun (n, v, values, two) ->
                    let options = { PermutationOptions.defaults with AllSignFlips = true; TwoSidedTest = two; Threads = 1 }
                    let r = Permutation.permutedOls options None (Array.create n 1.0) None (Float64 values)
                    let score (t: float) = if two then abs t else t
                    let tOf (flip: int) k = Textbook.oneSampleT (Array.init n (fun i -> (if (flip >>> i) &&& 1 = 1 then -1.0 else 1.0) * values[k * n + i]))
                    let maxima = Array.init (1 <<< n) (fun flip -> [ 0 .. v - 1 ] |> List.map (tOf flip >> score) |> List.max)

                    [ 0 .. v - 1 ]
                    |> List.forall (fun k ->
                        let observed = score (tOf 0 k)
                        let exact = float (maxima |> Array.filter (fun m -> m >= observed) |> Array.length) / float maxima.Length
                        abs (10.0 ** -r.LogPMaxT[k] - exact) <= 1e-12))

            testPropertyWithConfig config "sign-flip t equals the one-sample OLS t of SecondLevel (relative 1e-9)" <|
                Prop.forAll smallStudy (fun (n, _, values, _) ->
                    let r = Permutation.permutedOls { PermutationOptions.defaults with NPerm = 0 } None (Array.create n 1.0) None (Float64 values)
                    let design = { ColumnNames = [| "intercept" |]; Values = Array2D.create n 1 1.0 }
                    let t = SecondLevel.computeContrast (SecondLevel.fit 1 design (Float64 values)) SecondLevelContrast.Default None |> Contrast.stat 0.0
                    Array.forall2 (fun a b -> abs (a - b) <= 1e-9 * abs b + 1e-12) r.T t)

            testPropertyWithConfig config "with confounds, t equals the OLS t of the tested column in [tested, confound, intercept] (relative 1e-8)" <|
                Prop.forAll covariateStudy (fun (n, _, tested, confound, values) ->
                    let confounds = Array2D.init n 2 (fun i c -> if c = 0 then confound[i] else 1.0)
                    let r = Permutation.permutedOls { PermutationOptions.defaults with NPerm = 0 } None tested (Some confounds) (Float64 values)
                    let design = { ColumnNames = [| "tested"; "confound"; "intercept" |]; Values = Array2D.init n 3 (fun i c -> match c with 0 -> tested[i] | 1 -> confound[i] | _ -> 1.0) }
                    let t = SecondLevel.computeContrast (SecondLevel.fit 1 design (Float64 values)) (SecondLevelContrast.Expression "tested") None |> Contrast.stat 0.0
                    Array.forall2 (fun a b -> abs (a - b) <= 1e-8 * abs b + 1e-10) r.T t)

            testPropertyWithConfig config "with all 2^n sign flips, the identity flip's null max cluster size and mass equal the observed maxima, on random maps with many edge and corner contacts: the null labels clusters as the observed maps do (5 subjects, 5×5×4 grid, threshold p 0.3; exact)" <|
                Prop.forAll (Gen.zip (Gen.choose (0, Int32.MaxValue)) (Gen.elements [ false; true ]) |> Arb.fromGen) (fun (seed, two) ->
                    let rng = Random seed
                    let shape = { X = 5; Y = 5; Z = 4 }
                    let n = 5
                    let values = Array.init (shape.Count * n) (fun _ -> 6.0 * rng.NextDouble() - 3.0)
                    let grid = { Shape = shape; Voxels = Array.init shape.Count id }
                    let options = { PermutationOptions.defaults with AllSignFlips = true; TwoSidedTest = two; Threshold = Some 0.3; Threads = 1 }
                    let r = Permutation.permutedOls options (Some grid) (Array.create n 1.0) None (Float64 values)
                    // flip k flips the subjects of k's set bits: k = 0 is the observed data
                    r.Clusters.Value.H0MaxSize[0] = Array.max r.Clusters.Value.Size
                    && r.Clusters.Value.H0MaxMass[0] = Array.max r.Clusters.Value.Mass)

            testPropertyWithConfig config "TFCE of a flat cluster of k voxels at height t is √k·t²·Σ(s/100)², s = 1..100 (relative 1e-12)" <|
                Prop.forAll (Gen.zip (Gen.choose (1, 6)) (Gen.choose (1, 10000)) |> Arb.fromGen) (fun (k, h) ->
                    let t = float h / 1000.0
                    let shape = { X = 8; Y = 3; Z = 2 }
                    let volume = Array.init shape.Count (fun v -> if v < k then t else 0.0)
                    let tfce = Permutation.tfceMap shape false volume
                    let expected = sqrt (float k) * t * t * (Seq.sum (seq { for s in 1..100 -> float (s * s) }) / 10000.0)
                    [ 0 .. k - 1 ] |> List.forall (fun v -> abs (tfce[v] - expected) <= 1e-12 * expected)
                    && tfce[k..] |> Array.forall ((=) 0.0))

            testCase "same seed, 1 or 2 threads: identical maps and null distributions (exact)" <| fun () ->
                let data = input ()
                let options = { PermutationOptions.defaults with NPerm = 200; Threshold = Some 0.01; Tfce = true; TwoSidedTest = true; RandomState = 7 }
                let run threads = Permutation.permutedOls { options with Threads = threads } (Some data.Grid) (Array.create data.Subjects 1.0) None (Float32 data.Data)
                let a, b = run 1, run 2
                Expect.equal a.H0MaxT b.H0MaxT "h0 max t"
                Expect.equal a.LogPMaxT b.LogPMaxT "logp max t"
                Expect.equal a.Clusters.Value.H0MaxSize b.Clusters.Value.H0MaxSize "h0 max size"
                Expect.equal a.Clusters.Value.H0MaxMass b.Clusters.Value.H0MaxMass "h0 max mass"
                Expect.equal a.Tfce.Value.H0MaxTfce b.Tfce.Value.H0MaxTfce "h0 max tfce"

            testCase "testing age in [age, sex, intercept] flips signs, as nilearn's permuted_ols decides from the one constant confound (covariate case)" <| fun () ->
                let names, columns = Tsv.columns (Reference.path "second_level" "covariate" "design_matrix.tsv")
                let design = { ColumnNames = names; Values = Array2D.init columns[0].Length names.Length (fun r c -> columns[c][r]) }
                let n = columns[0].Length
                let values = Array.init (n * 3) (fun i -> float ((i * 7919) % 17) - 8.0)
                let r = Permutation.nonParametricInference { PermutationOptions.defaults with NPerm = 10 } None design (SecondLevelContrast.Expression "age") (Float64 values)
                Expect.isTrue r.SignFlipping "one constant confound makes it an intercept test"
                let t = SecondLevel.computeContrast (SecondLevel.fit 1 design (Float64 values)) (SecondLevelContrast.Expression "age") None |> Contrast.stat 0.0
                Close.all { absolute = 1e-10; relative = 1e-8 } r.T t "t equals the OLS t of age"

            testCase "a covariate test permutes rows; a constant tested variate flips signs (nilearn's choice)" <| fun () ->
                let n = 8
                let values = Array.init (n * 2) (fun i -> float ((i * 7919) % 13) - 6.0)
                let flip = Permutation.permutedOls { PermutationOptions.defaults with NPerm = 10 } None (Array.create n 1.0) None (Float64 values)
                let tested = Array.init n float
                let shuffle = Permutation.permutedOls { PermutationOptions.defaults with NPerm = 10 } None tested None (Float64 values)
                Expect.isTrue flip.SignFlipping "intercept test flips signs"
                Expect.isFalse shuffle.SignFlipping "covariate test permutes"

            testCase "FWER of max-t and of cluster size at α = 0.05 on null smooth noise (20 subjects, 200 studies, 8×8×8, 100 sign flips each) lies in the binomial(200, 0.0495) 99% interval" <| fun () ->
                let rng = Random 20261124
                let studies = 200
                let mutable voxelHits = 0
                let mutable clusterHits = 0

                for _ in 1..studies do
                    let shape, volumes = nullStudy rng 20
                    let data = Array.init (shape.Count * 20) (fun k -> volumes[k % 20][k / 20])
                    let grid = { Shape = shape; Voxels = Array.init shape.Count id }
                    let options = { PermutationOptions.defaults with NPerm = 100; Threshold = Some 0.01; RandomState = voxelHits + 31 * clusterHits }
                    let r = Permutation.permutedOls options (Some grid) (Array.create 20 1.0) None (Float64 data)
                    if r.LogPMaxT |> Array.exists (fun l -> l >= -log10 0.05) then voxelHits <- voxelHits + 1
                    if r.Clusters.Value.LogPMaxSize |> Array.exists (fun l -> l > -log10 0.05) then clusterHits <- clusterHits + 1

                eprintfn $"calibration: max-t FWER {voxelHits}/{studies}, cluster-size FWER {clusterHits}/{studies}"
                // p = (1 + #{max ≥ t})/101 ≤ 0.05 happens with probability 5/101 under the null
                let lo, hi = binomial99 studies (5.0 / 101.0)
                Expect.isTrue (voxelHits >= lo && voxelHits <= hi) $"max-t FWER {voxelHits}/{studies} outside [{lo}, {hi}]"
                // cluster size: p = #{h0 ≥ size}/100 ≤ 0.05 (null_to_p) — at most 5/100, fewer with ties
                let lo, hi = binomial99 studies 0.05
                Expect.isTrue (clusterHits <= hi) $"cluster-size FWER {clusterHits}/{studies} above {hi} (interval [{lo}, {hi}])"
        ]
        testList "parity" [
            testCase "observed t, cluster size and cluster mass = nilearn 0.13.1 non_parametric_inference(threshold=0.01) (non-parametric-one-sample, rtol 1e-8, atol 1e-9)" <| fun () ->
                let data = input ()
                let options = { PermutationOptions.defaults with NPerm = 60; Threshold = Some 0.01; RandomState = 0 }
                let r = Permutation.permutedOls options (Some data.Grid) (Array.create data.Subjects 1.0) None (Float32 data.Data)
                let tol = { absolute = 1e-9; relative = 1e-8 }
                Close.all tol (SecondLevelImages.toVolume data r.T) (expectedVolume "cluster-call_t.nii.gz") "t"
                Close.all tol (SecondLevelImages.toVolume data r.Clusters.Value.Size) (expectedVolume "cluster-call_size.nii.gz") "size"
                Close.all tol (SecondLevelImages.toVolume data r.Clusters.Value.Mass) (expectedVolume "cluster-call_mass.nii.gz") "mass"

            testCase "voxel-level FWE p agrees with nilearn 0.13.1 in distribution, and voxels clearly on one side of p = 0.05 are on the same side (non-parametric-one-sample, n_perm 1000; nilearn's count of null ≥ observed in the binomial 99.9 percent interval of our 10000-flip estimate ± 4 SE)" <| fun () ->
                let data = input ()
                let n, bigN = 1000, 10000
                let r = Permutation.permutedOls { PermutationOptions.defaults with NPerm = bigN; RandomState = 0 } None (Array.create data.Subjects 1.0) None (Float32 data.Data)
                let expected = expectedVolume "logp_max_t.nii.gz"
                let nilearn = data.Grid.Voxels |> Array.map (fun g -> expected[g])
                expectSameNull MaxType "logp_max_t" n bigN r.LogPMaxT nilearn
                // "clearly": the interval nilearn's p may take given ours lies wholly below or above 0.05
                let side (v: int) =
                    let q = (10.0 ** -r.LogPMaxT[v] * float (bigN + 1) - 1.0) / float bigN
                    let se = sqrt (q * (1.0 - q) / float bigN)
                    let lo = fst (binomialInterval 0.001 n (max 0.0 (q - 4.0 * se)))
                    let hi = snd (binomialInterval 0.001 n (min 1.0 (q + 4.0 * se)))
                    if float (hi + 1) / float (n + 1) <= 0.05 then Some true
                    elif float (lo + 1) / float (n + 1) > 0.05 then Some false
                    else None

                let clear = [ for v in 0 .. nilearn.Length - 1 do match side v with Some s -> yield v, s | None -> () ]
                Expect.isTrue (clear |> List.exists snd) "some voxel is clearly significant (the check is not empty)"

                for v, significant in clear do
                    Expect.equal (10.0 ** -nilearn[v] <= 0.05) significant $"voxel {v}: nilearn p {10.0 ** -nilearn[v]} vs ours {10.0 ** -r.LogPMaxT[v]} at 0.05"

            testCase "cluster-level FWE p agrees with nilearn 0.13.1 in distribution (non-parametric-one-sample, n_perm 60, threshold 0.01; size, mass and voxel FWE: nilearn's count of null ≥ observed in the binomial 99.9 percent interval of our 2000-flip estimate ± 4 SE)" <| fun () ->
                let data = input ()
                let n, bigN = 60, 2000
                let options = { PermutationOptions.defaults with NPerm = bigN; Threshold = Some 0.01; RandomState = 0 }
                let r = Permutation.permutedOls options (Some data.Grid) (Array.create data.Subjects 1.0) None (Float32 data.Data)

                for kind, file, values in [ NullToP, "cluster-call_logp_max_size.nii.gz", r.Clusters.Value.LogPMaxSize
                                            NullToP, "cluster-call_logp_max_mass.nii.gz", r.Clusters.Value.LogPMaxMass
                                            MaxType, "cluster-call_logp_max_t.nii.gz", r.LogPMaxT ] do
                    let expected = expectedVolume file
                    expectSameNull kind file n bigN values (data.Grid.Voxels |> Array.map (fun g -> expected[g]))
        ]
        testList "errors" [
            testCase "a threshold without the voxels' grid is a contract violation" <| fun () ->
                Expect.throwsT<ArgumentException> (fun () ->
                    Permutation.permutedOls { PermutationOptions.defaults with Threshold = Some 0.01; NPerm = 5 } None (Array.create 3 1.0) None (Float64 [| 1.0; 2.0; 3.0 |]) |> ignore) "no grid"
            testCase "a threshold outside (0, 1) is refused" <| fun () ->
                Expect.throwsT<ArgumentException> (fun () ->
                    Permutation.permutedOls { PermutationOptions.defaults with Threshold = Some 3.1; NPerm = 5 } None (Array.create 3 1.0) None (Float64 [| 1.0; 2.0; 3.0 |]) |> ignore) "p-scale threshold"
        ]
    ]
