/// Random field theory: parity with nipy 0.5.0's rft and intvol (tests/data/rft), laws of EC densities and
/// intrinsic volumes, and the FWE calibration on simulated smooth Gaussian null fields.
module FmriGlm.Core.Tests.Inference.RandomFieldTheoryTests

open System
open System.IO
open System.Text.Json
open Expecto
open FsCheck
open FmriGlm.Core
open FmriGlm.Core.Tests.TestHelpers

module Rft = RandomFieldTheory

let private area = "rft"

let private json case' file =
    JsonDocument.Parse(File.ReadAllText(Reference.path area case' file)).RootElement

let private numbers (e: JsonElement) = [| for v in e.EnumerateArray() -> v.GetDouble() |]

let private inputs case' = (Reference.parameters area case').GetProperty "inputs"

// ---------------------------------------------------------------------------------------------------------
// Parity

let private densityCases =
    [ "ec-gaussian", Gaussian
      "ec-t-dfd8", TStat 8.0
      "ec-t-dfd30", TStat 30.0
      "ec-F-dfn2-dfd20", FStat(2, 20.0)
      "ec-F-dfn3-dfd50", FStat(3, 50.0)
      "ec-chi2-dfn1", ChiSquared 1
      "ec-chi2-dfn3", ChiSquared 3
      "ec-hotelling", Hotelling(20.0, 2) ]

let private densityParity =
    [ for case', field in densityCases ->
          let file = Reference.path area case' "densities.tsv"
          let acc = Tolerance.forColumn area case' "densities.tsv" "rho0"
          testCase $"nipy 0.5.0 rft density(x, 0..3): {case'} (atol {acc.absolute}, rtol {acc.relative})"
          <| fun () ->
              let x = Tsv.column file "x"
              for d in 0..3 do
                  let actual = x |> Array.map (Rft.ecDensity field d)
                  Close.all acc actual (Tsv.column file $"rho{d}") $"{case'} rho{d}" ]

let private qParity =
    testCase "nipy 0.5.0 rft.Q(dim, dfd) coefficients: Q-polynomials (atol 1e-14, rtol 1e-12)"
    <| fun () ->
        let file = Reference.path area "Q-polynomials" "coefficients.tsv"
        let acc = Tolerance.forColumn area "Q-polynomials" "coefficients.tsv" "x0"
        let _, cols = Tsv.columns file
        for row in 0 .. cols[0].Length - 1 do
            let dfd = cols[0][row]
            let dim = int (cols[1].[row])
            let coeffs = Rft.q dim dfd
            // the file holds the coefficient of x^p in column x_p; ours are highest power first
            let byPower = Array.init 5 (fun p -> if p < coeffs.Length then coeffs[coeffs.Length - 1 - p] else 0.0)
            Close.all acc byPower (Array.init 5 (fun p -> cols[2 + p][row])) $"Q({dim}, {dfd})"

let private fweParity =
    testCase "nipy 0.5.0 rft field(x, search) and pvalue with resels as LKCs: fwe-pvalues (atol 1e-14, rtol 1e-10)"
    <| fun () ->
        let file = Reference.path area "fwe-pvalues" "pvalues.tsv"
        let acc = Tolerance.forColumn area "fwe-pvalues" "pvalues.tsv" "gaussian_lkc"
        let x = Tsv.column file "x"
        let lkcs = numbers ((inputs "fwe-pvalues").GetProperty "lkcs")
        let resels = numbers ((inputs "fwe-pvalues").GetProperty "resels")
        let asLkcs = Rft.reselsToLkcs resels
        Close.all acc asLkcs (numbers ((inputs "fwe-pvalues").GetProperty "resels_as_lkcs")) "resels as LKCs"
        for name, field in [ "gaussian", Gaussian; "t8", TStat 8.0; "F2_20", FStat(2, 20.0); "chi2_3", ChiSquared 3 ] do
            Close.all acc (x |> Array.map (Rft.expectedEc field lkcs)) (Tsv.column file $"{name}_lkc") $"{name}_lkc"
            Close.all acc (x |> Array.map (Rft.pvalue field asLkcs)) (Tsv.column file $"{name}_resels") $"{name}_resels"

let private searchParity =
    testCase "nipy 0.5.0 rft mu_sphere, mu_ball, searches, volume2ball, product, scale_space: search-volumes (atol 1e-14, rtol 1e-12)"
    <| fun () ->
        let acc = Tolerance.forColumn area "search-volumes" "mu.tsv" "value"
        let header, rows = Tsv.read (Reference.path area "search-volumes" "mu.tsv")
        ignore header
        let actual =
            rows
            |> Array.map (fun r ->
                let n, j, radius = int r[1], int r[2], float r[3]
                if r[0] = "mu_sphere" then Rft.muSphere n j radius else Rft.muBall n j radius)
        Close.all acc actual (rows |> Array.map (fun r -> float r[4])) "mu.tsv"
        let vectors = json "search-volumes" "vectors.json"
        let expect key (value: float[]) = Close.all acc value (numbers (vectors.GetProperty(key: string))) key
        expect "spherical_search(3, r=1.0)" (Rft.sphericalSearch 3 1.0)
        expect "ball_search(3, r=1.0)" (Rft.ballSearch 3 1.0)
        expect "spherical_search(3, r=2.5)" (Rft.sphericalSearch 3 2.5)
        expect "ball_search(3, r=2.5)" (Rft.ballSearch 3 2.5)
        for vol in [ 100.0; 1500.0 ] do
            for d in 1..3 do
                expect $"volume2ball({vol:F1}, d={d})" (Rft.volume2ball vol d)
        expect "IntrinsicVolumes([1.0, 31.7, 295.4]) * IntrinsicVolumes([1.0, 2.5])"
            (Rft.intrinsicVolumesProduct [| 1.0; 31.7; 295.4 |] [| 1.0; 2.5 |])
        expect "scale_space([1.0, 10.0, 50.0, 120.0], (1.0, 4.0), kappa=1.0)"
            (Rft.scaleSpace [| 1.0; 10.0; 50.0; 120.0 |] (1.0, 4.0) 1.0)

/// A reference NIfTI as an Array3D (Fortran order on disk), with its voxel sizes.
let private readVolume case' file =
    let image = Nifti.read (Reference.path area case' file)
    let shape = image.Header.Shape |> Array.map int
    let nx, ny, nz = shape[0], shape[1], shape[2]
    image, nx, ny, nz, image.Header.Pixdim[1..3]

let private maskOf case' =
    let image, nx, ny, nz, zooms = readVolume case' "mask.nii.gz"
    Array3D.init nx ny nz (fun i j k -> image.Data[i + nx * (j + ny * k)] <> 0.0), zooms

let private maskCases =
    [ "box"; "components"; "ellipsoid"; "hollow-shell"; "random"; "ring" ]

let private intvolParity =
    [ for name in maskCases ->
          let case' = $"intvol-mask-{name}"
          let acc = Tolerance.forColumn area case' "expected.json" ""
          testCase $"nipy 0.5.0 intvol EC3d/Lips3d/EC2d/Lips2d/EC1d/Lips1d: {case'} (EC exact, atol {acc.absolute}, rtol {acc.relative})"
          <| fun () ->
              let mask, zooms = maskOf case'
              let nx, ny, nz = Array3D.length1 mask, Array3D.length2 mask, Array3D.length3 mask
              let expected = json case' "expected.json"
              let coords = Array.init 3 (fun a -> Array3D.init nx ny nz (fun i j k -> float ([| i; j; k |].[a]) * zooms[a]))
              Expect.equal (Rft.ec3d mask) (expected.GetProperty("EC3d").GetInt32()) "EC3d"
              Close.all acc (Rft.lips3d coords mask) (numbers (expected.GetProperty "Lips3d")) "Lips3d"
              let p = inputs case'
              let sk, li = p.GetProperty("slice_k").GetInt32(), p.GetProperty("line_i").GetInt32()
              let m2 = Array2D.init nx ny (fun i j -> mask[i, j, sk])
              Expect.equal (Rft.ec2d m2) (expected.GetProperty("EC2d").GetInt32()) "EC2d"
              let c2 = Array.init 2 (fun a -> Array2D.init nx ny (fun i j -> coords[a][i, j, sk]))
              Close.all acc (Rft.lips2d c2 m2) (numbers (expected.GetProperty "Lips2d")) "Lips2d"
              let m1 = Array.init ny (fun j -> mask[li, j, sk])
              Expect.equal (Rft.ec1d m1) (expected.GetProperty("EC1d").GetDouble()) "EC1d"
              Close.all acc (Rft.lips1d [| Array.init ny (fun j -> coords[1][li, j, sk]) |] m1) (numbers (expected.GetProperty "Lips1d")) "Lips1d" ]

let private residualParity =
    let case' = "intvol-lkc-residuals"
    let acc = Tolerance.forColumn area case' "expected.json" ""
    testCase $"nipy 0.5.0 intvol Lips3d on unit-norm residuals and raw fields: {case'} (atol {acc.absolute}, rtol {acc.relative})"
    <| fun () ->
        let mask, _ = maskOf case'
        let image, nx, ny, nz, _ = readVolume case' "field.nii.gz"
        let n = nx * ny * nz
        let volumes = int image.Header.Shape[3]
        let field = Array.init volumes (fun t -> image.Data[t * n .. (t + 1) * n - 1])
        let mean = Array.init n (fun v -> (field |> Array.sumBy (fun f -> f[v])) / float volumes)
        let resid = field |> Array.map (fun f -> Array.init n (fun v -> f[v] - mean[v]))
        let shape = { X = nx; Y = ny; Z = nz }
        let flatMask = Array.init n (fun v -> mask[v % nx, (v / nx) % ny, v / (nx * ny)])
        let expected = json case' "expected.json"
        Close.all acc (Rft.residualLkcs shape flatMask resid) (numbers (expected.GetProperty "lkcs")) "lkcs"
        let as3d (f: float[]) = Array3D.init nx ny nz (fun i j k -> f[i + nx * (j + ny * k)])
        Close.all acc (Rft.lips3d (field |> Array.map as3d) mask) (numbers (expected.GetProperty "lkcs_raw")) "lkcs_raw"

// ---------------------------------------------------------------------------------------------------------
// Laws

let private config = { FsCheckConfig.defaultConfig with maxTest = 100 }

let private boxMask (nx, ny, nz) (a, b, c) (sa, sb, sc) =
    Array3D.init nx ny nz (fun i j k -> i >= a && i < a + sa && j >= b && j < b + sb && k >= c && k < c + sc)

let private laws =
    testList
        "laws"
        [ testPropertyWithConfig config "the dimension-0 EC density of a Gaussian field is its survival function Φ(−x)"
          <| fun (x: NormalFloat) ->
              let x = max -8.0 (min 8.0 (float x))
              let sf = 0.5 * MathNet.Numerics.SpecialFunctions.Erfc(x / sqrt 2.0)
              abs (Rft.ecDensity Gaussian 0 x - sf) <= 1e-15 + 1e-12 * sf

          testPropertyWithConfig config "the dimension-0 EC density of a t field is its survival function"
          <| fun (x: NormalFloat) (PositiveInt dof) ->
              let x = max -8.0 (min 8.0 (float x))
              let dof = float (1 + dof % 60)
              let sf = 1.0 - MathNet.Numerics.Distributions.StudentT.CDF(0.0, 1.0, dof, x)
              abs (Rft.ecDensity (TStat dof) 0 x - sf) <= 1e-10

          testPropertyWithConfig config "the expected EC is linear in the LKCs of the search region"
          <| fun (x: NormalFloat) ->
              let x = max -6.0 (min 6.0 (float x))
              let lkcs = [| 1.0; 20.0; 150.0; 400.0 |]
              let sum = Array.init 4 (fun d -> lkcs[d] * Rft.ecDensity (TStat 12.0) d x) |> Array.sum
              abs (Rft.expectedEc (TStat 12.0) lkcs x - sum) <= 1e-12 * (1.0 + abs sum)

          testPropertyWithConfig config "the LKCs of a box mask equal the box's closed form (EC 1, edges, half surface, volume)"
          <| fun (PositiveInt a) (PositiveInt b) (PositiveInt c) ->
              let sa, sb, sc = 1 + a % 5, 1 + b % 5, 1 + c % 5
              let zx, zy, zz = 2.0, 2.5, 3.0
              let mask = boxMask (sa + 2, sb + 2, sc + 2) (1, 1, 1) (sa, sb, sc)
              let coords = Array.init 3 (fun ax -> Array3D.init (sa + 2) (sb + 2) (sc + 2) (fun i j k -> float ([| i; j; k |].[ax]) * [| zx; zy; zz |].[ax]))
              let lx, ly, lz = float (sa - 1) * zx, float (sb - 1) * zy, float (sc - 1) * zz
              let expected = [| 1.0; lx + ly + lz; lx * ly + ly * lz + lx * lz; lx * ly * lz |]
              let actual = Rft.lips3d coords mask
              Array.forall2 (fun (u: float) v -> abs (u - v) <= 1e-9 * (1.0 + abs v)) actual expected

          testPropertyWithConfig config "the LKCs of a mask are invariant under translating the mask in the grid"
          <| fun (seed: int) (PositiveInt shift) ->
              let rng = Random seed
              let shape = { X = 8; Y = 7; Z = 6 }
              let shift = 1 + shift % 3
              let blob = Array3D.init 5 4 4 (fun _ _ _ -> rng.NextDouble() < 0.7)
              let place offset = Array.init shape.Count (fun v ->
                  let i, j, k = v % shape.X - offset, (v / shape.X) % shape.Y, v / (shape.X * shape.Y)
                  i >= 0 && i < 5 && j < 4 && k < 4 && blob[i, j, k])
              let m0, m1 = place 0, place shift
              if not (Array.exists id m0) then true
              else
                  let a = Rft.maskLkcs shape [| 2.0; 2.0; 2.0 |] [| 6.0; 6.0; 6.0 |] m0
                  let b = Rft.maskLkcs shape [| 2.0; 2.0; 2.0 |] [| 6.0; 6.0; 6.0 |] m1
                  Array.forall2 (fun (u: float) v -> abs (u - v) <= 1e-10 * (1.0 + abs v)) a b

          testPropertyWithConfig config "EC3d equals components minus tunnels plus cavities: one per separated box"
          <| fun (PositiveInt n) ->
              let n = 1 + n % 4
              let mask = Array3D.init (3 * n + 1) 4 4 (fun i j k -> i % 3 <> 0 && j > 0 && j < 3 && k > 0 && k < 3)
              Rft.ec3d mask = n

          testPropertyWithConfig config "the FWE p-value decreases as the threshold rises (x ≥ 2) and stays in [0, 1]"
          <| fun (a: NormalFloat) (b: NormalFloat) ->
              let lkcs = [| 1.0; 30.0; 300.0; 1200.0 |]
              let x1, x2 = 2.0 + abs (float a) % 8.0, 2.0 + abs (float b) % 8.0
              let lo, hi = min x1 x2, max x1 x2
              let pLo, pHi = Rft.fwePValue Gaussian lkcs lo, Rft.fwePValue Gaussian lkcs hi
              pHi <= pLo && pLo <= 1.0 && pHi >= 0.0

          testCase "the FWE threshold has FWE p-value α"
          <| fun () ->
              let lkcs = [| 1.0; 30.0; 300.0; 1200.0 |]
              for alpha in [ 0.01; 0.05; 0.1 ] do
                  let u = Rft.fweThreshold (TStat 20.0) lkcs alpha
                  Close.all { absolute = 1e-9; relative = 0.0 } [| Rft.fwePValue (TStat 20.0) lkcs u |] [| alpha |] $"α = {alpha}"

          testCase "spm_P_RF with k = 0 and one cluster is the voxel-level FWE p-value; larger clusters are rarer"
          <| fun () ->
              let lkcs = [| 1.0; 30.0; 300.0; 1200.0 |]
              let voxel = Rft.clusterProbability Gaussian lkcs 1 0.0 3.5
              Close.all { absolute = 0.0; relative = 1e-12 } [| voxel.P |] [| Rft.fwePValue Gaussian lkcs 3.5 |] "k = 0"
              let small = (Rft.clusterProbability Gaussian lkcs 1 1.0 3.0).P
              let large = (Rft.clusterProbability Gaussian lkcs 1 10.0 3.0).P
              Expect.isLessThan large small "P(k = 10) < P(k = 1)"

          testCase "a bad mask is reported by name"
          <| fun () ->
              let shape = { X = 2; Y = 2; Z = 2 }
              try
                  Rft.maskLkcs shape [| 1.0; 1.0; 1.0 |] [| 1.0; 1.0; 1.0 |] (Array.create 8 false) |> ignore
                  failtest "an empty mask was accepted"
              with :? GlmInputException as e ->
                  Expect.stringContains e.Message "mask" "names the mask" ]

// ---------------------------------------------------------------------------------------------------------
// Calibration: smooth Gaussian null fields of known FWHM

/// One null field: white noise on a grid padded by the kernel radius, convolved ("valid") with a sampled
/// Gaussian of the given FWHM (voxels) along each axis, normalised to unit variance, n³ voxels.
let private nullField (rng: Random) (n: int) (fwhmVox: float) =
    let sigma = fwhmVox / sqrt (8.0 * log 2.0)
    let radius = int (ceil (4.0 * sigma))
    let kernel = Array.init (2 * radius + 1) (fun t -> exp (-0.5 * (float (t - radius) / sigma) ** 2.0))
    let norm = sqrt (kernel |> Array.sumBy (fun v -> v * v))
    let kernel = kernel |> Array.map (fun v -> v / norm)
    let gauss () =
        let u1, u2 = 1.0 - rng.NextDouble(), rng.NextDouble()
        sqrt (-2.0 * log u1) * cos (2.0 * Math.PI * u2)
    let m = n + 2 * radius
    let mutable data = Array.init (m * m * m) (fun _ -> gauss ())
    let mutable dims = [| m; m; m |]
    // convolve along axis a (valid mode), keeping the layout i + X (j + Y k)
    for a in 0..2 do
        let nd = Array.copy dims
        nd[a] <- dims[a] - 2 * radius
        let out = Array.zeroCreate (nd[0] * nd[1] * nd[2])
        let stride = [| 1; dims[0]; dims[0] * dims[1] |][a]
        for k in 0 .. nd[2] - 1 do
            for j in 0 .. nd[1] - 1 do
                for i in 0 .. nd[0] - 1 do
                    let src = i + dims[0] * (j + dims[1] * k)
                    let mutable s = 0.0
                    for t in 0 .. kernel.Length - 1 do s <- s + kernel[t] * data[src + t * stride]
                    out[i + nd[0] * (j + nd[1] * k)] <- s
        data <- out
        dims <- nd
    data

/// Fraction of `fields` null fields (n³, FWHM in voxels, seed fixed) whose maximum exceeds the RFT FWE threshold at α.
let fweRate (fields: int) (n: int) (fwhmVox: float) (alpha: float) =
    let rng = Random 20261202
    let shape = { X = n; Y = n; Z = n }
    let lkcs = Rft.maskLkcs shape [| 1.0; 1.0; 1.0 |] [| fwhmVox; fwhmVox; fwhmVox |] (Array.create shape.Count true)
    let u = Rft.fweThreshold Gaussian lkcs alpha
    let hits = Seq.init fields (fun _ -> Array.max (nullField rng n fwhmVox) > u) |> Seq.filter id |> Seq.length
    hits, u

/// `count` null fields (n³, FWHM in voxels, fixed seed) with their mean over fields removed: residuals of an
/// intercept-only model with count − 1 degrees of freedom.
let nullFields (count: int) (n: int) (fwhmVox: float) =
    let rng = Random 7
    let fields = Array.init count (fun _ -> nullField rng n fwhmVox)
    let mean = Array.init (n * n * n) (fun v -> (fields |> Array.sumBy (fun f -> f[v])) / float count)
    fields |> Array.map (fun f -> Array.mapi (fun v x -> x - mean[v]) f)

let private calibration =
    testCase "FWE rate at α = 0.05 on 200 smooth Gaussian null fields (24³, FWHM 5 voxels) is inside the binomial 99% interval"
    <| fun () ->
        let fields = 200
        let hits, u = fweRate fields 24 5.0 0.05
        let binomial = MathNet.Numerics.Distributions.Binomial(0.05, fields)
        let lower = Seq.find (fun h -> binomial.CumulativeDistribution(float h) > 0.005) (Seq.initInfinite id)
        let upper = Seq.find (fun h -> binomial.CumulativeDistribution(float h) >= 0.995) (Seq.initInfinite id)
        Expect.isTrue (hits >= lower && hits <= upper) $"{hits} of {fields} maxima above u = {u:F3}; 99%% interval [{lower}, {upper}]"

let private integration =
    let shape = { X = 12; Y = 12; Z = 10 }
    let mask = Array.init shape.Count (fun v -> let i, j = v % 12, (v / 12) % 12 in i > 0 && i < 11 && j > 0 && j < 11)
    let statMap =
        Array.init shape.Count (fun v ->
            let i, j, k = v % 12, (v / 12) % 12, v / 144
            6.0 * exp (-0.2 * float ((i - 5) * (i - 5) + (j - 5) * (j - 5) + (k - 5) * (k - 5))) - 0.5)
    let options = { Thresholding.defaultThresholdOptions with Alpha = 0.05; HeightControl = Fwe(FwhmVoxels [| 3.0; 3.0; 3.0 |]) }
    testList
        "threshold_stats_img fwe"
        [ testCase "height_control fwe with a FWHM thresholds at the RFT threshold of the mask's LKCs, α halved when two-sided"
          <| fun () ->
              let result = Thresholding.thresholdStatsImg shape options (Some mask) statMap
              let lkcs = Rft.maskLkcs shape [| 1.0; 1.0; 1.0 |] [| 3.0; 3.0; 3.0 |] mask
              Close.all { absolute = 0.0; relative = 1e-12 } [| result.Threshold |] [| Rft.fweThreshold Gaussian lkcs 0.025 |] "threshold"
              let viaLkcs = Thresholding.thresholdStatsImg shape { options with HeightControl = Fwe(SearchLkcs lkcs) } (Some mask) statMap
              Expect.equal viaLkcs.Threshold result.Threshold "FwhmVoxels and the same LKCs agree"

          testCase "the FWE clusters table keeps the plain table's columns byte for byte and adds the peak and cluster p"
          <| fun () ->
              let lkcs, searchVoxels = (Thresholding.fweLkcs shape options (Some mask) statMap).Value
              Expect.equal searchVoxels (mask |> Array.filter id |> Array.length) "search voxels are the mask's"
              let table = Clusters.getClustersTable shape (Array2D.init 4 4 (fun a b -> if a = b then 1.0 else 0.0)) [| 1.0; 1.0; 1.0 |] 3.0 0.0 true 8.0 statMap
              let rows = Thresholding.fweClustersTable lkcs (mask |> Array.filter id |> Array.length) 3.0 table
              let plain = (Clusters.toTsv table.Rows).Split('\n', StringSplitOptions.RemoveEmptyEntries)
              let extended = (Thresholding.fweClustersToTsv rows).Split('\n', StringSplitOptions.RemoveEmptyEntries)
              Expect.equal extended.Length plain.Length "rows"
              for a, b in Array.zip plain extended do
                  Expect.isTrue (b.StartsWith(a + "\t")) $"'{b}' extends '{a}'"
              let first = List.head rows
              Expect.equal first.PeakPFwe (Rft.fwePValue Gaussian lkcs (abs first.Row.PeakStat)) "peak p"
              Expect.isSome first.ClusterPFwe "cluster p on the peak row"
              let size = table.LabelMaps.Head |> Array.filter ((=) 1) |> Array.length
              let expected = (Rft.clusterProbability Gaussian lkcs 1 (float size * lkcs[3] / float searchVoxels) 3.0).P
              Expect.equal first.ClusterPFwe (Some expected) "cluster p is spm_P_RF of the cluster's voxel count in μ3 units"
              Expect.isTrue (expected > 0.0 && expected < 1.0) $"cluster p {expected} in (0, 1)" ]

let private smoothness =
    testList
        "smoothness"
        [ testCase "SPM's smoothness estimate recovers the FWHM of 30 smoothed white-noise fields (16³, FWHM 4 voxels) within 5% per axis (measured 2%)"
          <| fun () ->
              let shape = { X = 16; Y = 16; Z = 16 }
              let mask = Array.create shape.Count true
              let s = Rft.estimateSmoothness shape [| 2.0; 2.0; 2.0 |] mask (nullFields 30 16 4.0)
              for a in 0..2 do
                  Expect.isLessThan (abs (s.FwhmVoxels[a] / 4.0 - 1.0)) 0.05 $"axis {a}: {s.FwhmVoxels[a]} voxels"
                  Expect.floatClose Accuracy.veryHigh s.FwhmMm[a] (2.0 * s.FwhmVoxels[a]) "mm = voxels · voxel size"
              Close.all { absolute = 0.0; relative = 1e-12 } s.Resels (Rft.lkcsToResels s.Lkcs) "resels"

          testCase "FirstLevel.smoothness of an intercept-only fit of 30 smoothed null volumes (16³, FWHM 4 voxels, 2 mm) recovers 4 voxels and 8 mm within 5% per axis"
          <| fun () ->
              let n = 16
              let shape = { X = n; Y = n; Z = n }
              let affine = Array2D.init 4 4 (fun i j -> if i = j then (if i = 3 then 1.0 else 2.0) else 0.0)
              let volumes = nullFields 30 n 4.0 |> Array.map (Array.map float32)
              let design = { ColumnNames = [| "constant" |]; Values = Array2D.create volumes.Length 1 1.0 }

              let run =
                  { Bold = BoldVolumes(shape, affine, volumes)
                    Events = None
                    Confounds = None
                    DesignMatrix = Some design
                    SampleMask = None }

              let options =
                  { FirstLevel.defaults with
                      Mask = NoMask
                      SignalScaling = NoScaling
                      NoiseModel = Ols
                      MinimizeMemory = false }

              let fit = FirstLevel.fit options [ run ]
              let s = FirstLevel.smoothness fit 0

              for a in 0..2 do
                  Expect.isLessThan (abs (s.FwhmVoxels[a] / 4.0 - 1.0)) 0.05 $"axis {a}: {s.FwhmVoxels[a]} voxels"
                  Expect.isLessThan (abs (s.FwhmMm[a] / 8.0 - 1.0)) 0.05 $"axis {a}: {s.FwhmMm[a]} mm (2 mm voxels)"

          testCase "SecondLevelImages.smoothness of a one-sample fit of 30 smoothed null maps plus one rough map common to all (16³, FWHM 4 voxels, 2 mm) recovers 4 voxels within 5% per axis: the group effect is removed"
          <| fun () ->
              let n = 16
              let shape = { X = n; Y = n; Z = n }
              let affine = Array2D.init 4 4 (fun i j -> if i = j then (if i = 3 then 1.0 else 2.0) else 0.0)
              // white noise shared by every subject: the intercept absorbs it, raw maps would look rough
              let rng = Random 11
              let common = Array.init shape.Count (fun _ -> 5.0 * (rng.NextDouble() - 0.5))
              let maps = nullFields 30 n 4.0 |> Array.map (Array.mapi (fun v x -> float32 (x + common[v])))
              let input = SecondLevelImages.ofVolumes "maps" shape affine maps (Some(Array.create shape.Count true)) None
              let design = { ColumnNames = [| "intercept" |]; Values = Array2D.create maps.Length 1 1.0 }
              let fit = SecondLevel.fit 1 design (Float32 input.Data)
              let s = SecondLevelImages.smoothness input fit

              for a in 0..2 do
                  Expect.isLessThan (abs (s.FwhmVoxels[a] / 4.0 - 1.0)) 0.05 $"axis {a}: {s.FwhmVoxels[a]} voxels"
                  Expect.isLessThan (abs (s.FwhmMm[a] / 8.0 - 1.0)) 0.05 $"axis {a}: {s.FwhmMm[a]} mm (2 mm voxels)"

          testCase "LKCs from unit-norm residuals (nipy Lips3d route) are within 10% of the box's LKCs at the known FWHM (16³, FWHM 4, measured ≤ 5.3%)"
          <| fun () ->
              let shape = { X = 16; Y = 16; Z = 16 }
              let mask = Array.create shape.Count true
              let estimated = Rft.residualLkcs shape mask (nullFields 30 16 4.0)
              let known = Rft.maskLkcs shape [| 1.0; 1.0; 1.0 |] [| 4.0; 4.0; 4.0 |] mask
              Expect.equal estimated[0] 1.0 "μ0 is the box's EC"
              for d in 1..3 do
                  Expect.isLessThan (abs (estimated[d] / known[d] - 1.0)) 0.10 $"μ{d}: {estimated[d]} vs {known[d]}" ]

[<Tests>]
let tests =
    testList
        "random field theory"
        [ testList "parity" (densityParity @ [ qParity; fweParity; searchParity; residualParity ] @ intvolParity)
          laws
          integration
          smoothness
          calibration ]
