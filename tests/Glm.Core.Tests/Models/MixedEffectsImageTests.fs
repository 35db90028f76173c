module FmriGlm.Core.Tests.MixedEffectsImageTests

open System
open System.IO
open Expecto
open FmriGlm.Core

let private affine = Array2D.init 4 4 (fun i j -> if i = j then (if i = 3 then 1.0 else 2.0) else 0.0)

/// A temporary folder with 3D float32 maps on a 4×3×2 grid: `write name values` returns the file's path.
let private folder () =
    let dir = Path.Combine(Path.GetTempPath(), $"fmriglm-mfx-{Guid.NewGuid():N}")
    Directory.CreateDirectory dir |> ignore

    let write (name: string) (shape: int64[]) (values: float[]) =
        let path = Path.Combine(dir, $"{name}.nii.gz")
        Nifti.write path { Nifti.writeOptions shape affine with Datatype = NiftiDatatype.Float32 } values
        path

    dir, write

let private grid = [| 4L; 3L; 2L |]
let private voxels = 24

/// 8 subjects' effect maps (spread at every voxel, deterministic) and a mask of every voxel.
let private effects (write: string -> int64[] -> float[] -> string) =
    Array.init 8 (fun s -> write $"sub-{s}_effect" grid (Array.init voxels (fun v -> sin (float (7 * s + 3 * v)) + 0.1 * float s)))

let private maskOf (write: string -> int64[] -> float[] -> string) = write "mask" grid (Array.create voxels 1.0)

let private raises (f: unit -> unit) : GlmInputException =
    try
        f ()
        failtest "expected GlmInputException"
    with :? GlmInputException as e ->
        e

[<Tests>]
let tests =
    testList "MixedEffectsImages" [
        testCase "zero variance maps: every mfx map from files equals the OLS second level's from the same files (relative 1e-9)" <| fun () ->
            let dir, write = folder ()

            try
                let maps = effects write
                let zeros = Array.init maps.Length (fun s -> write $"sub-{s}_variance" grid (Array.zeroCreate voxels))
                let input = SecondLevelImages.readMaps maps (Some(maskOf write)) None
                let design = { ColumnNames = [| "intercept" |]; Values = Array2D.create maps.Length 1 1.0 }
                let variances = SecondLevelImages.readVarianceMaps input zeros
                let mfx = MixedEffects.computeContrast (MixedEffects.fitSecondLevel 5 design (Float32 input.Data) (Float32 variances)) SecondLevelContrast.Default
                let ols = SecondLevel.computeContrast (SecondLevel.fit 1 design (Float32 input.Data)) SecondLevelContrast.Default None |> SecondLevel.maps

                for name, a, b in [ "z", mfx.ZScore, ols.ZScore; "t", mfx.Stat, ols.Stat; "p", mfx.PValue, ols.PValue; "effect", mfx.EffectSize, ols.EffectSize; "variance", mfx.EffectVariance, ols.EffectVariance ] do
                    Array.iteri2 (fun v x y -> Expect.isTrue (abs (x - y) <= 1e-9 * max 1.0 (abs y)) $"{name} at voxel {v}: {x} vs {y}") a b
            finally
                Directory.Delete(dir, true)

        testCase "variance maps: a wrong count, a negative variance and another grid are refused, naming the input or file" <| fun () ->
            let dir, write = folder ()

            try
                let maps = effects write
                let input = SecondLevelImages.readMaps maps (Some(maskOf write)) None
                let good = Array.init maps.Length (fun s -> write $"sub-{s}_variance" grid (Array.create voxels 0.5))
                let count = raises (fun () -> SecondLevelImages.readVarianceMaps input good[1..] |> ignore)
                Expect.equal count.Input "variance maps" "count names the variance maps"
                Expect.stringContains count.Problem "7 variance maps for 8" "gives both counts"
                let negative = write "negative" grid (Array.init voxels (fun v -> if v = 5 then -1.0 else 0.5))
                let e = raises (fun () -> SecondLevelImages.readVarianceMaps input (Array.append good[1..] [| negative |]) |> ignore)
                Expect.equal e.Input negative "negative names the file"
                Expect.stringContains e.Problem "(1, 1, 0)" "gives the voxel"
                let other = write "other-grid" [| 4L; 3L; 3L |] (Array.create 36 0.5)
                let g = raises (fun () -> SecondLevelImages.readVarianceMaps input (Array.append [| other |] good[1..]) |> ignore)
                Expect.equal g.Input other "grid names the file"
            finally
                Directory.Delete(dir, true)
    ]
