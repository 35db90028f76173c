module FmriGlm.Core.Tests.FirstLevelTests

open System
open System.IO
open System.Text.Json
open Expecto
open FsCheck
open FsCheck.FSharp
open FmriGlm.Core
open FmriGlm.Core.Tests.TestHelpers

let private area = "first_level"
let private config = { FsCheckConfig.defaultConfig with maxTest = 30 }

let private file case' name = Reference.path area case' name
let private exists case' name = File.Exists(file case' name)

/// FirstLevelModel(...) keyword arguments of a case as our options.
let private optionsOf (case': string) =
    let p = (Reference.parameters area case').GetProperty("inputs").GetProperty("FirstLevelModel")

    let get (name: string) =
        match p.TryGetProperty name with
        | true, v -> Some v
        | _ -> None

    let number name d = get name |> Option.map (fun v -> v.GetDouble()) |> Option.defaultValue d
    let firDelays = get "fir_delays" |> Option.map (fun v -> [| for x in v.EnumerateArray() -> x.GetInt32() |]) |> Option.defaultValue [| 0 |]

    let hrf =
        match get "hrf_model" with
        | Some v -> (match Hrf.parse firDelays (v.GetString()) with Ok h -> h | Error e -> failwithf "%A" e)
        | None -> Hrf.Glover

    let drift =
        match get "drift_model" with
        | Some v when v.ValueKind = JsonValueKind.Null -> NoDrift
        | Some v when v.GetString() = "polynomial" -> Polynomial(int (number "drift_order" 1.0))
        | _ -> Cosine(number "high_pass" 0.01)

    let mask =
        match get "mask_img" with
        | Some v when v.ValueKind = JsonValueKind.Null -> ComputeEpiMask
        | Some v when v.ValueKind = JsonValueKind.False -> NoMask
        | Some v -> MaskFile(file case' (v.GetString()))
        | None -> ComputeEpiMask

    let scaling =
        match get "signal_scaling" with
        | Some v when v.ValueKind = JsonValueKind.False -> NoScaling
        | Some v when v.ValueKind = JsonValueKind.Array -> ScaleGrandMean
        | _ -> ScaleVoxelMeans

    { FirstLevel.defaults with
        TR = get "t_r" |> Option.map (fun v -> v.GetDouble())
        SliceTimeRef = number "slice_time_ref" 0.0
        HrfModel = hrf
        DriftModel = drift
        Mask = mask
        SmoothingFwhm = get "smoothing_fwhm" |> Option.map (fun v -> v.GetDouble())
        SignalScaling = scaling
        Standardize = (get "standardize" |> Option.exists (fun v -> v.ValueKind = JsonValueKind.String))
        NoiseModel = (match FirstLevel.parseNoiseModel ((get "noise_model" |> Option.get).GetString()) with Ok m -> m | Error e -> failwith e)
        MinimizeMemory = (get "minimize_memory" |> Option.map (fun v -> v.GetBoolean()) |> Option.defaultValue true)
        Threads = 2 }

/// Run prefixes of a case: [""] for one run, ["run-1_"; "run-2_"] for two.
let private prefixes case' =
    if exists case' "bold.nii.gz" then [ "" ]
    else [ for r in 1..9 do if exists case' $"run-{r}_bold.nii.gz" then yield $"run-{r}_" ]

let private runsOf case' =
    let fitArgs = (Reference.parameters area case').GetProperty("inputs").GetProperty("fit")

    let sampleMask =
        match fitArgs.TryGetProperty "sample_masks" with
        | true, v -> Some [| for x in v.EnumerateArray() -> x.GetInt32() |]
        | _ -> None

    [ for prefix in prefixes case' ->
        let optional name = if exists case' (prefix + name) then Some(file case' (prefix + name)) else None
        let run = FirstLevel.runFromFiles (file case' (prefix + "bold.nii.gz")) (optional "events.tsv") (optional "confounds.tsv") None

        { run with
            DesignMatrix = optional "design_matrix_input.tsv" |> Option.map Tables.readDesign
            SampleMask = sampleMask } ]

let private contrastsOf case' =
    let c = (Reference.parameters area case').GetProperty("inputs").GetProperty("contrasts")

    let row (v: JsonElement) = [| for x in v.EnumerateArray() -> x.GetDouble() |]
    let matrix (rows: float[][]) = Array2D.init rows.Length rows[0].Length (fun i j -> rows[i][j])

    [ for prop in c.EnumerateObject() ->
        let d = prop.Value.GetProperty "contrast_def"

        let defs =
            match prop.Value.GetProperty("kind").GetString() with
            | "expression" -> [ ContrastDefinition.Expression(d.GetString()) ]
            | "t vector" -> [ ContrastDefinition.Weights(matrix [| row d |]) ]
            | "F matrix" -> [ ContrastDefinition.Weights(matrix [| for r in d.EnumerateArray() -> row r |]) ]
            | "one vector per run" -> [ for r in d.EnumerateArray() -> ContrastDefinition.Weights(matrix [| row r |]) ]
            | k -> failwith $"unknown contrast kind {k}"

        prop.Name, defs ]

let private imageData path = (Nifti.read path).Data

let private parityCase (case': string) =
    testCase $"nilearn 0.13.1 FirstLevelModel, {case'} (design rtol 1e-9 atol 1e-10, mask and AR(1) labels exact, maps per params.json)" <| fun () ->
        let fit = FirstLevel.fit (optionsOf case') (runsOf case')
        // the mask actually used
        let expectedMask = imageData (file case' "mask_computed.nii.gz") |> Array.map (fun x -> x <> 0.0)
        let differing = [ for v in 0 .. expectedMask.Length - 1 do if fit.Mask[v] <> expectedMask[v] then yield v ]
        Expect.isEmpty differing $"{case'}: mask voxels (Fortran index) differing from nilearn's"
        let position = Collections.Generic.Dictionary<int, int>()
        fit.MaskedIndices |> Array.iteri (fun j v -> position[v] <- j)

        prefixes case'
        |> List.iteri (fun r prefix ->
            let designFile = $"{prefix}design_matrix.tsv"
            let header, _ = Tsv.columns (file case' designFile)
            let run = fit.Runs[r]
            Expect.sequenceEqual run.Design.ColumnNames header $"{case'}/{designFile}: column names"
            Close.matrix (Tolerance.forColumn area case' designFile "") run.Design.Values (Tsv.matrix (file case' designFile)) $"{case'}/{designFile}"
            let labelsFile = $"{prefix}ar1_labels.tsv"

            if exists case' labelsFile then
                let h, cols = Tsv.columns (file case' labelsFile)
                let col name = cols[Array.findIndex ((=) name) h]
                let i, j, k, label = col "i", col "j", col "k", col "label"
                Expect.equal i.Length fit.MaskedIndices.Length $"{case'}/{labelsFile}: voxel count"

                let wrong =
                    [ for n in 0 .. i.Length - 1 do
                          let v = fit.Shape.Index(int i[n], int j[n], int k[n])
                          let ours = float (run.Glm.LabelOf position[v])
                          if ours <> label[n] then yield (int i[n], int j[n], int k[n], ours, label[n]) ]

                Expect.isEmpty (List.truncate 5 wrong) $"{case'}/{labelsFile}: AR(1) labels differing (i, j, k, ours, nilearn's), {wrong.Length} in all")

        // contrasts: every output of output_type='all'
        for name, defs in contrastsOf case' do
            let c = FirstLevel.computeContrast fit defs None

            for output in [ ZScore; Stat; PValue; EffectSize; EffectVariance ] do
                let f = $"contrast-{name}_{FirstLevel.outputName output}.nii.gz"
                let acc = Tolerance.forColumn area case' f ""
                Close.all acc (FirstLevel.outputImage fit c output) (imageData (file case' f)) $"{case'}/{f}"

        // minimize_memory=False diagnostics
        if exists case' "r_square.nii.gz" then
            for f, actual in [ "r_square.nii.gz", FirstLevel.rSquare fit 0; "residuals.nii.gz", FirstLevel.residuals fit 0; "predicted.nii.gz", FirstLevel.predicted fit 0 ] do
                Close.all (Tolerance.forColumn area case' f "") actual (imageData (file case' f)) $"{case'}/{f}"

// ------------------------------------------------------------------ simulated data for the laws

let private grid = { X = 4; Y = 3; Z = 2 }
let private identity = Array2D.init 4 4 (fun i j -> if i = j then 1.0 else 0.0)
let private tr = 2.0
let private scans = 60

let private events =
    { Onsets = [| 10.0; 40.0; 70.0; 100.0 |]
      Durations = [| 10.0; 10.0; 10.0; 10.0 |]
      TrialTypes = [| "task"; "task"; "task"; "task" |]
      Modulations = [| 1.0; 1.0; 1.0; 1.0 |] }

let private taskRegressor =
    let d, _ = DesignMatrix.makeFirstLevel (DesignMatrix.frameTimes scans tr 0.0) (Some events) DesignMatrix.defaults
    DesignMatrix.column d 0

/// Volumes of a seeded simulation: baseline 1000, Gaussian noise of sd 5, effect·task in the planted voxels.
let private simulate (seed: int) (effect: float) (planted: int -> bool) =
    let rng = Random seed
    let gauss () = sqrt (-2.0 * log (1.0 - rng.NextDouble())) * cos (2.0 * Math.PI * rng.NextDouble())
    Array.init scans (fun t -> Array.init grid.Count (fun v -> float32 (1000.0 + 5.0 * gauss () + (if planted v then effect * taskRegressor[t] else 0.0))))

let private run volumes =
    { Bold = BoldVolumes(grid, identity, volumes)
      Events = Some events
      Confounds = None
      DesignMatrix = None
      SampleMask = None }

/// Voxels of a grid inside a sphere (centre in voxel coordinates, squared radius).
let private sphere (g: GridShape) (ci: float, cj: float, ck: float) (radius2: float) (v: int) =
    let i, j, k = v % g.X, v / g.X % g.Y, v / (g.X * g.Y)
    (float i - ci) ** 2.0 + (float j - cj) ** 2.0 + (float k - ck) ** 2.0 < radius2

/// Runs body in a new temporary folder, deleted afterwards.
let private inTemporaryFolder (body: string -> unit) =
    let dir = Path.Combine(Path.GetTempPath(), $"fmriglm-test-{Guid.NewGuid():N}")
    Directory.CreateDirectory dir |> ignore
    try body dir finally Directory.Delete(dir, true)

/// Writes volumes as a 4D .nii.gz with the identity affine; returns its path.
let private writeRun (dir: string) (name: string) (g: GridShape) (datatype: NiftiDatatype) (volumes: float32[][]) =
    let path = Path.Combine(dir, name)
    let o = { Nifti.writeOptions [| int64 g.X; int64 g.Y; int64 g.Z; int64 volumes.Length |] identity with Datatype = datatype }
    let w = Nifti.createWriter path o
    for v in volumes do w.WriteVolume(ReadOnlySpan v)
    w.Complete()
    path

/// z, t, effect and variance of the "task" contrast, masked voxels.
let private taskMaps (fit: FirstLevelFit) =
    let c = FirstLevel.computeContrast fit [ ContrastDefinition.Expression "task" ] None
    [ for o in [ ZScore; Stat; EffectSize; EffectVariance ] -> FirstLevel.maskedOutput c o ]

let private simOptions = { FirstLevel.defaults with TR = Some tr; Mask = NoMask; NoiseModel = Ols; Threads = 1 }

[<Tests>]
let tests =
    testList "FirstLevel" [
        testList "parity" [ for case' in Reference.cases area -> parityCase case' ]

        testList "laws" [
            testCase "a planted effect is recovered: effect within its 99.9% CI, |z| > 5 where planted, |z| < 4 elsewhere (seed 7)" <| fun () ->
                let planted v = v < 6
                let fit = FirstLevel.fit { simOptions with SignalScaling = NoScaling } [ run (simulate 7 20.0 planted) ]
                let c = FirstLevel.computeContrast fit [ ContrastDefinition.Expression "task" ] None
                let effect = FirstLevel.maskedOutput c EffectSize
                let variance = FirstLevel.maskedOutput c EffectVariance
                let z = FirstLevel.maskedOutput c ZScore

                for v in 0 .. grid.Count - 1 do
                    let truth = if planted v then 20.0 else 0.0
                    Expect.isLessThan (abs (effect[v] - truth)) (3.3 * sqrt variance[v]) $"voxel {v}: effect {effect[v]} vs {truth}"
                    if planted v then Expect.isGreaterThan z[v] 5.0 $"voxel {v}: z" else Expect.isLessThan (abs z[v]) 4.0 $"voxel {v}: z"

            testPropertyWithConfig config "permuting voxel order permutes every output (exactly, OLS and AR(1))" <|
                Prop.forAll (Arb.fromGen (Gen.choose (0, 100000))) (fun seed ->
                    let volumes = simulate seed 10.0 (fun v -> v % 3 = 0)
                    let perm = Array.init grid.Count id |> Array.sortBy (fun v -> (v * 7919 + seed) % 101, v)
                    let permuted = volumes |> Array.map (fun vol -> Array.init grid.Count (fun v -> vol[perm[v]]))

                    [ Ols; Ar 1 ]
                    |> List.forall (fun noise ->
                        let o = { simOptions with NoiseModel = noise }
                        let a = FirstLevel.computeContrast (FirstLevel.fit o [ run volumes ]) [ ContrastDefinition.Expression "task" ] None
                        let b = FirstLevel.computeContrast (FirstLevel.fit o [ run permuted ]) [ ContrastDefinition.Expression "task" ] None

                        [ Stat; EffectSize; EffectVariance ]
                        |> List.forall (fun out ->
                            let x, y = FirstLevel.maskedOutput a out, FirstLevel.maskedOutput b out
                            Array.init grid.Count (fun v -> y[v] = x[perm[v]]) |> Array.forall id)))

            testPropertyWithConfig config "two identical runs give a fixed-effects t = √2 × the single run's t (relative 1e-12)" <|
                Prop.forAll (Arb.fromGen (Gen.choose (0, 100000))) (fun seed ->
                    let volumes = simulate seed 8.0 (fun v -> v % 2 = 0)
                    let one = FirstLevel.computeContrast (FirstLevel.fit simOptions [ run volumes ]) [ ContrastDefinition.Expression "task" ] None
                    let two = FirstLevel.computeContrast (FirstLevel.fit simOptions [ run volumes; run volumes ]) [ ContrastDefinition.Expression "task" ] None
                    let t1, t2 = FirstLevel.maskedOutput one Stat, FirstLevel.maskedOutput two Stat
                    Array.forall2 (fun a b -> abs (b - sqrt 2.0 * a) <= 1e-12 * abs b + 1e-300) t1 t2)

            testCase "results do not depend on the thread count (1 vs 2 threads, exactly equal, AR(1), seed 11)" <| fun () ->
                let volumes = simulate 11 10.0 (fun v -> v % 3 = 0)
                let go threads =
                    let fit = FirstLevel.fit { simOptions with NoiseModel = Ar 1; Threads = threads } [ run volumes ]
                    let c = FirstLevel.computeContrast fit [ ContrastDefinition.Expression "task" ] None
                    [ for o in [ ZScore; Stat; EffectSize; EffectVariance ] -> FirstLevel.maskedOutput c o ]
                Expect.equal (go 1) (go 2) "maps with 1 and 2 threads"

            testCase "a computed mask gives the same maps as that mask given, also when the first volume misleads the one-pass read (exactly)" <| fun () ->
                let g = { X = 10; Y = 10; Z = 8 }
                let rng = Random 3
                let brain v =
                    let i, j, k = v % g.X, v / g.X % g.Y, v / (g.X * g.Y)
                    (float i - 4.5) ** 2.0 + (float j - 4.5) ** 2.0 + (float k - 3.5) ** 2.0 < 12.0
                let volumes =
                    Array.init scans (fun t ->
                        Array.init g.Count (fun v ->
                            float32 ((if brain v then 1000.0 + 20.0 * taskRegressor[t] else 10.0) + 5.0 * rng.NextDouble())))
                let centre = g.Index(5, 5, 4)
                // a brain voxel whose first scan is 0: the one-pass read does not store it, the mask holds it
                volumes[0][centre] <- 0.0f
                let runOn vs = { run vs with Bold = BoldVolumes(g, identity, vs) }
                let computed = FirstLevel.fit { simOptions with Mask = ComputeEpiMask } [ runOn volumes ]
                Expect.isTrue computed.Mask[centre] "the misled voxel is in the computed mask"
                let given = FirstLevel.fit { simOptions with Mask = MaskArray computed.Mask } [ runOn volumes ]
                let stat f = FirstLevel.outputImage f (FirstLevel.computeContrast f [ ContrastDefinition.Expression "task" ] None) Stat
                Expect.equal (stat computed) (stat given) "t maps"

            testList "a run read once from its file gives exactly the fit of the same run in memory, with 1 or 2 threads (AR(1), computed mask)" [
                let g = { X = 12; Y = 12; Z = 9 }
                let volumes (misleading: bool) =
                    let rng = Random 17
                    Array.init scans (fun t ->
                        Array.init g.Count (fun v ->
                            // misleading: the brain's right half is dark in the first 10 scans, so the guess of the
                            // mask made from the first volumes misses it and the run is read a second time
                            let dark = misleading && t < 10 && v % g.X >= 6
                            let level = if sphere g (5.5, 5.5, 4.0) 16.0 v && not dark then 1000.0 + 20.0 * taskRegressor[t] else 10.0
                            float32 (level + 5.0 * rng.NextDouble())))
                for misleading in [ false; true ] ->
                    testCase (if misleading then "first volumes mislead the guess of the mask" else "first volumes predict the mask") <| fun () ->
                        let vs = volumes misleading
                        inTemporaryFolder (fun dir ->
                            let path = writeRun dir "bold.nii.gz" g NiftiDatatype.Float32 vs
                            let o = { simOptions with Mask = ComputeEpiMask; NoiseModel = Ar 1; Threads = 2 }
                            let fromFile = FirstLevel.fit o [ { run vs with Bold = BoldFile path } ]
                            let inMemory = FirstLevel.fit o [ { run vs with Bold = BoldVolumes(g, identity, vs) } ]
                            Expect.equal fromFile.Mask inMemory.Mask "masks"
                            Expect.isGreaterThan fromFile.MaskedIndices.Length 100 "a brain-sized mask"
                            Expect.equal (taskMaps fromFile) (taskMaps inMemory) "z, t, effect and variance maps"
                            let oneThread = FirstLevel.fit { o with Threads = 1 } [ { run vs with Bold = BoldFile path } ]
                            Expect.equal (taskMaps oneThread) (taskMaps fromFile) "1 and 2 threads")
            ]

            testList "the one-pass read of a computed mask gives exactly the fit with that mask given (datatype × smoothing × sample mask × runs)" [
                let g = { X = 11; Y = 10; Z = 8 }
                let volumes seed =
                    let rng = Random seed
                    Array.init scans (fun t ->
                        Array.init g.Count (fun v ->
                            let level = if sphere g (5.0, 4.5, 3.5) 12.0 v then 1000.0 + 20.0 * taskRegressor[t] else 10.0
                            float32 (Math.Round(level + 8.0 * rng.NextDouble()))))
                let kept = Array.append [| 0; 1; 1 |] [| 3 .. scans - 1 |]
                for datatype in [ NiftiDatatype.Float32; NiftiDatatype.Int16 ] do
                    for smoothing in [ None; Some 6.0 ] do
                        for sampleMask in [ None; Some kept ] do
                            for runCount in [ 1; 2 ] do
                                if runCount = 1 || (smoothing.IsNone && sampleMask.IsNone) then
                                    let name =
                                        $"{datatype}, smoothing {smoothing}, sample mask {sampleMask.IsSome}, {runCount} run(s)"
                                    testCase name <| fun () ->
                                        inTemporaryFolder (fun dir ->
                                            let runs =
                                                [ for r in 1 .. runCount ->
                                                    let path = writeRun dir $"run{r}_bold.nii.gz" g datatype (volumes (40 + r))
                                                    { run [||] with Bold = BoldFile path; SampleMask = sampleMask } ]
                                            let o = { simOptions with NoiseModel = Ar 1; SmoothingFwhm = smoothing; Threads = 2 }
                                            let computed = FirstLevel.fit { o with Mask = ComputeEpiMask } runs
                                            let given = FirstLevel.fit { o with Mask = MaskArray computed.Mask } runs
                                            Expect.isGreaterThan computed.MaskedIndices.Length 50 "a brain-sized mask"
                                            Expect.equal (taskMaps computed) (taskMaps given) "z, t, effect and variance maps")
            ]

            testPropertyWithConfig config "scaling time-major data equals scaling the same series voxel-major (exactly, both scalings)" <|
                Prop.forAll (Arb.fromGen (Gen.choose (0, 100000))) (fun seed ->
                    let rng = Random seed
                    let n, voxels = 1 + rng.Next 30, 1 + rng.Next 40
                    let byVoxel = Array.init (n * voxels) (fun _ -> float32 (100.0 + 900.0 * rng.NextDouble()))
                    // exact in both orders: float64 sums of these float32 values need fewer than 53 bits
                    // a zero-mean voxel takes the max(mean, 1) branch
                    for t in 0 .. n - 1 do byVoxel[t] <- 0.0f
                    let byTime = Array.init (n * voxels) (fun k -> byVoxel[(k % voxels) * n + k / voxels])
                    [ ScaleVoxelMeans; ScaleGrandMean ]
                    |> List.forall (fun scaling ->
                        let a, b = Array.copy byVoxel, Array.copy byTime
                        let za = FirstLevel.scaleSignals scaling n a
                        let zb = RunReading.scaleTimeMajor scaling n voxels b
                        za = zb && Array.init (n * voxels) (fun k -> b[k] = a[(k % voxels) * n + k / voxels]) |> Array.forall id))

            testCase "the ROI GLM on a time-by-region table equals the image path on the same series (exactly)" <| fun () ->
                let volumes = simulate 5 10.0 (fun v -> v < 4)
                let table = Array2D.init scans grid.Count (fun t v -> float (volumes[t][v]))
                let fromTable = FirstLevel.fitSignals simOptions table (run [||])
                let fromImage = FirstLevel.fit simOptions [ run volumes ]
                let stat f = FirstLevel.maskedOutput (FirstLevel.computeContrast f [ ContrastDefinition.Expression "task" ] None) Stat
                Expect.equal (stat fromTable) (stat fromImage) "t per region = t per voxel"

            testPropertyWithConfig config "voxel-mean scaling maps every series to mean ≈ 0 in percent of its mean (float32, abs 1e-3)" <|
                Prop.forAll (Arb.fromGen (Gen.choose (0, 100000))) (fun seed ->
                    let rng = Random seed
                    let n = 20
                    let data = Array.init (n * 5) (fun _ -> float32 (100.0 + 900.0 * rng.NextDouble()))
                    FirstLevel.scaleSignals ScaleVoxelMeans n data |> ignore
                    Array.init 5 (fun v -> Array.sub data (v * n) n |> Array.averageBy float) |> Array.forall (fun m -> abs m < 1e-3))

            testCase "contrast file names are nilearn's camelCase (_clean_contrast_name)" <| fun () ->
                Expect.equal (FirstLevel.contrastFileName "face - house") "faceMinusHouse" "face - house"
                Expect.equal (FirstLevel.contrastFileName "effects-of-interest") "effectsMinusOfMinusInterest" "hyphens"
                Expect.equal (FirstLevel.contrastFileName "task_face+task_house") "taskFacePlusTaskHouse" "underscores and plus"
        ]

        testList "errors" [
            testCase "runs on different grids name the second run" <| fun () ->
                let other = BoldVolumes({ X = 3; Y = 3; Z = 2 }, identity, Array.init scans (fun _ -> Array.zeroCreate 18))

                let e =
                    try
                        FirstLevel.fit simOptions [ run (simulate 1 0.0 (fun _ -> false)); { run [||] with Bold = other } ] |> ignore
                        None
                    with :? GlmInputException as e -> Some e.Message

                Expect.stringContains (Option.defaultValue "no exception" e) "run 2" "names the run"

            testCase "confounds with the wrong number of rows name the run's confounds" <| fun () ->
                let r = { run (simulate 1 0.0 (fun _ -> false)) with Confounds = Some([| "x" |], Array2D.zeroCreate 10 1) }
                Expect.throwsT<GlmInputException> (fun () -> FirstLevel.fit simOptions [ r ] |> ignore) "wrong rows"

            testCase "a contrast naming an unknown column is a GlmInputException naming it" <| fun () ->
                let fit = FirstLevel.fit simOptions [ run (simulate 1 0.0 (fun _ -> false)) ]

                let message =
                    try
                        FirstLevel.computeContrast fit [ ContrastDefinition.Expression "tsak" ] None |> ignore
                        ""
                    with :? GlmInputException as e -> e.Message

                Expect.stringContains message "tsak" "names the column"

            testCase "a mask on another grid is refused naming the mask" <| fun () ->
                let o = { simOptions with Mask = MaskArray(Array.create 5 true) }
                Expect.throwsT<GlmInputException> (fun () -> FirstLevel.fit o [ run (simulate 1 0.0 (fun _ -> false)) ] |> ignore) "mask grid"

            testCase "NaN in the masked data names the voxel" <| fun () ->
                let volumes = simulate 1 0.0 (fun _ -> false)
                volumes[3][5] <- nanf

                let message =
                    try
                        FirstLevel.fit simOptions [ run volumes ] |> ignore
                        ""
                    with :? GlmInputException as e -> e.Message

                Expect.stringContains message "(1, 1, 0)" "voxel index"

            testCase "fewer kept scans than design columns is refused" <| fun () ->
                let r = { run (simulate 1 0.0 (fun _ -> false)) with SampleMask = Some [| 0; 1; 2 |] }
                Expect.throwsT<GlmInputException> (fun () -> FirstLevel.fit simOptions [ r ] |> ignore) "too few scans"

            testCase "a failed write leaves no output directory" <| fun () ->
                let fit = FirstLevel.fit simOptions [ run (simulate 1 0.0 (fun _ -> false)) ]
                let parent = Path.Combine(Path.GetTempPath(), $"fl-{Guid.NewGuid():N}")
                Directory.CreateDirectory parent |> ignore
                let out = Path.Combine(parent, "out")
                // a contrast whose map cannot be computed (Zero has no voxels) fails midway
                let bad = { Contrast = Contrast.Zero; Warnings = [] }
                Expect.throws (fun () -> FirstLevel.writeOutputs out fit [ "bad", bad ] [ ZScore ]) "write fails"
                Expect.isEmpty (Directory.GetFileSystemEntries parent) "nothing left beside the target"
                let good = FirstLevel.computeContrast fit [ ContrastDefinition.Expression "task" ] None
                FirstLevel.writeOutputs out fit [ "task", good ] [ ZScore; Stat ]
                Expect.isTrue (File.Exists(Path.Combine(out, "contrast-task_stat-t_statmap.nii.gz"))) "t map written"
                Expect.isTrue (File.Exists(Path.Combine(out, "design.tsv"))) "design written"
                Directory.Delete(parent, true)
        ]
    ]
