module FmriGlm.Core.Tests.SecondLevelTests

open System
open System.IO
open System.Text.Json
open Expecto
open FsCheck
open FsCheck.FSharp
open FmriGlm.Core
open FmriGlm.Core.Tests.TestHelpers

let private config = { FsCheckConfig.defaultConfig with maxTest = 100 }

/// Subject maps (sub-XX_effect.nii.gz, in label order), mask and smoothing of a second_level case, as its
/// params.json gives them.
let private inputOf (case': string) =
    let p = Reference.parameters "second_level" case'
    let dir = Path.Combine(Reference.dataDir, "second_level", case')
    let maps = Directory.GetFiles(dir, "sub-*_effect.nii.gz") |> Array.sort

    let model =
        match p.GetProperty("inputs").TryGetProperty "SecondLevelModel" with
        | true, m -> Some m
        | _ -> None

    let mask =
        model
        |> Option.bind (fun m -> match m.TryGetProperty "mask_img" with | true, v -> Some(Path.Combine(dir, v.GetString())) | _ -> None)

    let smoothing =
        model
        |> Option.bind (fun m -> match m.TryGetProperty "smoothing_fwhm" with | true, v -> Some(v.GetDouble()) | _ -> None)

    p, SecondLevelImages.readMaps maps mask smoothing

let private designOf (case': string) =
    let names, columns = Tsv.columns (Reference.path "second_level" case' "design_matrix.tsv")
    { ColumnNames = names; Values = Array2D.init columns[0].Length names.Length (fun r c -> columns[c][r]) }

/// nilearn's second_level_contrast as params.json spells it: a string, a vector or a matrix.
let private contrastOf (e: JsonElement) =
    match e.ValueKind with
    | JsonValueKind.String -> SecondLevelContrast.Expression(e.GetString())
    | JsonValueKind.Null -> SecondLevelContrast.Default
    | _ ->
        let rows = [ for r in e.EnumerateArray() -> r ]

        if rows.Head.ValueKind = JsonValueKind.Array then
            SecondLevelContrast.WeightMatrix(array2D [ for r in rows -> [ for v in r.EnumerateArray() -> v.GetDouble() ] ])
        else
            SecondLevelContrast.Weights [| for v in rows -> v.GetDouble() |]

let private statTypeOf (e: JsonElement) =
    match e.ValueKind with
    | JsonValueKind.String when e.GetString() = "F" -> Some F
    | JsonValueKind.String -> Some T
    | _ -> None

let private parityCases =
    Reference.cases "second_level" |> Array.filter (fun c -> c <> "non-parametric-one-sample")


/// 3 to 12 subjects × 1 to 5 voxels of values in [−3, 3] with spread (no voxel is constant).
let private subjectsByVoxels =
    gen {
        let! n = Gen.choose (3, 12)
        let! v = Gen.choose (1, 5)
        let! values = Gen.arrayOfLength (n * v) (Gen.choose (-3000, 3000) |> Gen.map (fun i -> float i / 1000.0))
        return n, v, values
    }
    |> Gen.filter (fun (n, v, values) ->
        [ 0 .. v - 1 ]
        |> List.forall (fun k ->
            let y = values[k * n .. k * n + n - 1]
            Array.max y - Array.min y > 0.1))
    |> Arb.fromGen

[<Tests>]
let tests =
    testList "SecondLevel" [
        testList "laws" [
            testPropertyWithConfig config "one-sample t equals mean/(sd/√n) at every voxel (relative 1e-9)" <|
                Prop.forAll subjectsByVoxels (fun (n, v, values) ->
                    let design = { ColumnNames = [| "intercept" |]; Values = Array2D.create n 1 1.0 }
                    let fit = SecondLevel.fit 1 design (Float64 values)
                    let t = SecondLevel.computeContrast fit SecondLevelContrast.Default None |> Contrast.stat 0.0

                    [ 0 .. v - 1 ]
                    |> List.forall (fun k ->
                        let expected = Textbook.oneSampleT values[k * n .. k * n + n - 1]
                        abs (t[k] - expected) <= 1e-9 * abs expected + 1e-12))

            testPropertyWithConfig config "scaling the intercept column leaves t unchanged (relative 1e-9)" <|
                Prop.forAll subjectsByVoxels (fun (n, _, values) ->
                    let t scale =
                        let design = { ColumnNames = [| "intercept" |]; Values = Array2D.create n 1 scale }
                        SecondLevel.computeContrast (SecondLevel.fit 1 design (Float64 values)) SecondLevelContrast.Default None |> Contrast.stat 0.0

                    Array.forall2 (fun a b -> abs (a - b) <= 1e-9 * abs a + 1e-12) (t 1.0) (t 2.5))
        ]
        testList "parity" [
            for case' in parityCases do
                testCase $"mask and every output of compute_contrast(output_type='all') = nilearn 0.13.1 SecondLevelModel ({case'}, params.json tolerances: rtol 1e-8, p rtol 1e-6, mask exact)" <| fun () ->
                    let p, input = inputOf case'
                    let expectedMask = (Nifti.read (Reference.path "second_level" case' "mask_computed.nii.gz")).Data |> Array.map (fun x -> x <> 0.0)
                    Expect.equal input.Mask expectedMask "mask_computed (exact)"
                    let fit = SecondLevel.fit 2 (designOf case') (Float32 input.Data)

                    for c in p.GetProperty("inputs").GetProperty("contrasts").EnumerateObject() do
                        let contrast = contrastOf (c.Value.GetProperty "second_level_contrast")
                        let statType = statTypeOf (c.Value.GetProperty "second_level_stat_type")
                        let maps = SecondLevel.computeContrast fit contrast statType |> SecondLevel.maps

                        let outputs =
                            [ "z_score", maps.ZScore
                              "stat", maps.Stat
                              "p_value", maps.PValue
                              "effect_variance", maps.EffectVariance ]
                            @ [ for row in 0 .. maps.Dim - 1 ->
                                    "effect_size", maps.EffectSize[row * maps.Stat.Length .. (row + 1) * maps.Stat.Length - 1] ]

                        let count = input.Shape.Count

                        outputs
                        |> List.groupBy fst
                        |> List.iter (fun (name, rows) ->
                            let file = $"contrast-{c.Name}_{name}.nii.gz"
                            let expected = (Nifti.read (Reference.path "second_level" case' file)).Data
                            let actual = rows |> List.map (snd >> SecondLevelImages.toVolume input) |> Array.concat
                            Expect.equal actual.Length expected.Length $"{file}: {rows.Length} volume(s) of {count}"
                            Close.all (Tolerance.forColumn "second_level" case' file "") actual expected $"{case'} {file}")
        ]
        testList "images" [
            testCase "a 4D image of the maps reads as the list of 3D maps (exact)" <| fun () ->
                let _, listed = inputOf "one-sample"
                let dir = Path.Combine(Reference.dataDir, "second_level", "one-sample")
                let maps = Directory.GetFiles(dir, "sub-*_effect.nii.gz") |> Array.sort
                let volumes = maps |> Array.collect (fun m -> (Nifti.readFloat32 m).Data)
                let h = Nifti.readHeader maps[0]
                let path = Path.Combine(Path.GetTempPath(), $"fmriglm-4d-{Guid.NewGuid():N}.nii.gz")

                try
                    Nifti.writeFloat32 path { Nifti.writeOptions (Array.append (Array.truncate 3 h.Shape) [| int64 maps.Length |]) h.Affine with Datatype = NiftiDatatype.Float32 } volumes
                    let stacked = SecondLevelImages.read4D path (Some(Path.Combine(dir, "mask.nii.gz"))) None
                    Expect.equal stacked.Data listed.Data "masked data"
                    Expect.equal stacked.Grid.Voxels listed.Grid.Voxels "masked voxels"
                finally
                    File.Delete path
        ]
        testList "errors" [
            testCase "an unknown column in the contrast names the contrast" <| fun () ->
                let design = { ColumnNames = [| "patients"; "controls" |]; Values = array2D [ [ 1.0; 0.0 ]; [ 0.0; 1.0 ]; [ 1.0; 0.0 ] ] }
                let fit = SecondLevel.fit 1 design (Float64 [| 1.0; 2.0; 3.0 |])
                try
                    SecondLevel.computeContrast fit (SecondLevelContrast.Expression "patient - controls") None |> ignore
                    failtest "expected GlmInputException"
                with :? GlmInputException as e ->
                    Expect.equal e.Input "second_level_contrast 'patient - controls'" "names the contrast"
                    Expect.stringContains e.Problem "'patient' is not a design column" "names the unknown column"

            testCase "no contrast with two columns is refused, naming the columns" <| fun () ->
                let design = { ColumnNames = [| "patients"; "controls" |]; Values = array2D [ [ 1.0; 0.0 ]; [ 0.0; 1.0 ]; [ 1.0; 0.0 ] ] }
                let fit = SecondLevel.fit 1 design (Float64 [| 1.0; 2.0; 3.0 |])

                try
                    SecondLevel.computeContrast fit SecondLevelContrast.Default None |> ignore
                    failtest "expected GlmInputException"
                with :? GlmInputException as e ->
                    Expect.stringContains e.Message "patients, controls" "message names the columns"

            testCase "a design with another row count than the maps is refused" <| fun () ->
                let design = { ColumnNames = [| "intercept" |]; Values = Array2D.create 4 1 1.0 }
                Expect.throwsT<GlmInputException> (fun () -> SecondLevel.fit 1 design (Float64 [| 1.0; 2.0; 3.0 |]) |> ignore) "3 values, 4 rows"
        ]
    ]

// ------------------------------------------------------------ second level on fitted first-level models

let private flGrid = { X = 3; Y = 3; Z = 2 }
let private flScans = 16

let private flAffine =
    Array2D.init 4 4 (fun r c -> if r = c then (if r = 3 then 1.0 else 2.0) else 0.0)

/// A first-level OLS fit of seeded uniform volumes on a given design (task, constant): the given mask, no scaling.
let private firstLevelFitMasked (mask: MaskSource) (shape: GridShape) (seed: int) =
    let rng = Random seed
    let task = Array.init flScans (fun t -> if t % 4 < 2 then 1.0 else 0.0)
    let design = { ColumnNames = [| "task"; "constant" |]; Values = Array2D.init flScans 2 (fun t c -> if c = 0 then task[t] else 1.0) }

    let volumes =
        Array.init flScans (fun t -> Array.init shape.Count (fun v -> float32 (100.0 + float (v % 5) * task[t] + 10.0 * rng.NextDouble())))

    let options = { FirstLevel.defaults with Mask = mask; NoiseModel = Ols; SignalScaling = NoScaling; Threads = 1 }

    FirstLevel.fit
        options
        [ { Bold = BoldVolumes(shape, flAffine, volumes)
            Events = None
            Confounds = None
            DesignMatrix = Some design
            SampleMask = None } ]

let private firstLevelFit = firstLevelFitMasked NoMask

let private intercept n = { ColumnNames = [| "intercept" |]; Values = Array2D.create n 1 1.0 }

let private groupMaps (input: SecondLevelInput) =
    let fit = SecondLevel.fit 1 (intercept input.Subjects) (Float32 input.Data)
    SecondLevel.maps (SecondLevel.computeContrast fit SecondLevelContrast.Default None)

let private temp (what: string) = Path.Combine(Path.GetTempPath(), $"fmriglm-flm-{what}-{Guid.NewGuid():N}.nii.gz")

[<Tests>]
let firstLevelInputTests =
    testList "SecondLevelInputs" [
        testPropertyWithConfig { config with maxTest = 15 } "group maps from first-level models equal those from their effect maps written as float32 files and read as a list of maps (exact, 0 tolerance)" <| fun (seed: int) (extra: byte) ->
            let n = 2 + int extra % 4
            let fits = List.init n (fun s -> firstLevelFit flGrid (seed + 7919 * s))
            let fromModels = SecondLevelImages.ofFirstLevel fits (Some(ContrastDefinition.Expression "task")) None None

            let paths = Array.init n (fun i -> temp $"sub{i}")
            let maskPath = temp "mask"

            try
                fits
                |> List.iteri (fun i f ->
                    let c = FirstLevel.computeContrast f [ ContrastDefinition.Expression "task" ] None
                    Nifti.write paths[i] { Nifti.writeOptions [| 3L; 3L; 2L |] flAffine with Datatype = NiftiDatatype.Float32 } (FirstLevel.outputImage f c EffectSize))

                Nifti.write maskPath { Nifti.writeOptions [| 3L; 3L; 2L |] flAffine with Datatype = NiftiDatatype.UInt8 } (fromModels.Mask |> Array.map (fun b -> if b then 1.0 else 0.0))
                let fromFiles = SecondLevelImages.readMaps paths (Some maskPath) None
                let a, b = groupMaps fromModels, groupMaps fromFiles

                fromModels.Data = fromFiles.Data
                && fromModels.Grid.Voxels = fromFiles.Grid.Voxels
                && a.EffectSize = b.EffectSize
                && a.Stat = b.Stat
                && a.EffectVariance = b.EffectVariance
            finally
                for p in Array.append paths [| maskPath |] do
                    if File.Exists p then File.Delete p

        testCase "identical subjects: the one-sample group effect is the first-level effect (rtol 1e-12) with zero variance (atol 1e-20)" <| fun () ->
            // 6×6×6 with the first-level mask inside the 2-voxel border: the border is mostly 0, so nilearn's
            // background mask of the sample map is the first-level mask.
            let shape = { X = 6; Y = 6; Z = 6 }
            let inside k = k >= 1 && k <= 4
            let mask = Array.init shape.Count (fun v -> inside (v % 6) && inside (v / 6 % 6) && inside (v / 36))
            let f = firstLevelFitMasked (MaskArray mask) shape 11
            let input = SecondLevelImages.ofFirstLevel [ f; f; f; f ] (Some(ContrastDefinition.Expression "task")) None None
            let first = FirstLevel.maskedOutput (FirstLevel.computeContrast f [ ContrastDefinition.Expression "task" ] None) EffectSize
            let maps = groupMaps input
            Expect.equal input.Grid.Voxels f.MaskedIndices "the mask of the sample map is the first-level mask"
            let expected = first |> Array.map (float32 >> float)
            Close.all { absolute = 0.0; relative = 1e-12 } maps.EffectSize expected "group effect = first-level effect"
            Close.all { absolute = 1e-20; relative = 0.0 } maps.EffectVariance (Array.zeroCreate expected.Length) "no between-subject variance"

        testCase "no first-level contrast is refused, naming first_level_contrast" <| fun () ->
            let fits = [ firstLevelFit flGrid 1; firstLevelFit flGrid 2 ]

            try
                SecondLevelImages.ofFirstLevel fits None None None |> ignore
                failtest "expected GlmInputException"
            with :? GlmInputException as e ->
                Expect.stringContains e.Message "first_level_contrast" "names the argument"

        testCase "models on different grids are refused, naming the model's index" <| fun () ->
            let fits = [ firstLevelFit flGrid 1; firstLevelFit { X = 3; Y = 2; Z = 2 } 2 ]

            try
                SecondLevelImages.ofFirstLevel fits (Some(ContrastDefinition.Expression "task")) None None |> ignore
                failtest "expected GlmInputException"
            with :? GlmInputException as e ->
                Expect.stringContains e.Message "second_level_input[1]" "names the model"

        testCase "a single model and a two-row first-level contrast are refused" <| fun () ->
            let f = firstLevelFit flGrid 3
            Expect.throwsT<GlmInputException> (fun () -> SecondLevelImages.ofFirstLevel [ f ] (Some(ContrastDefinition.Expression "task")) None None |> ignore) "one model"

            Expect.throwsT<GlmInputException>
                (fun () -> SecondLevelImages.ofFirstLevel [ f; f ] (Some(ContrastDefinition.Weights(array2D [ [ 1.0; 0.0 ]; [ 0.0; 1.0 ] ]))) None None |> ignore)
                "an F contrast gives two maps per subject"
    ]
