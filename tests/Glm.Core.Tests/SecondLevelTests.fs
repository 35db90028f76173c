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
                let e = Expect.throwsT<GlmInputException> (fun () -> SecondLevel.computeContrast fit (SecondLevelContrast.Expression "patient - controls") None |> ignore)
                ignore e

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
