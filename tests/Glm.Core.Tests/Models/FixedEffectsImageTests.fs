module FmriGlm.Core.Tests.FixedEffectsImageTests

open System.IO
open System.Text.Json
open Expecto
open FmriGlm.Core
open FmriGlm.Core.Tests.TestHelpers

let private area = "contrast"

/// nilearn's compute_fixed_effects on images: the given mask, or NiftiMasker()'s background mask of the effect
/// images (compute_background_mask on their mean: border 2, no opening, not connected); maps are 0 outside.
let private parityCase (case': string) =
    testCase $"nilearn 0.13.1 compute_fixed_effects on NIfTI, {case'} (effect/variance/stat rtol 1e-9, z rtol 1e-6)" <| fun () ->
        let p = (Reference.parameters area case').GetProperty "inputs"
        let file = Reference.path area case'
        let runs = [ for r in 1..9 do if File.Exists(file $"run-{r}_effect.nii.gz") then yield r ]
        let effects = runs |> List.map (fun r -> Nifti.read (file $"run-{r}_effect.nii.gz"))
        let variances = runs |> List.map (fun r -> (Nifti.read (file $"run-{r}_variance.nii.gz")).Data)
        let h = effects.Head.Header
        let shape = { X = int h.Shape[0]; Y = int h.Shape[1]; Z = int h.Shape[2] }

        let mask =
            match p.GetProperty("mask").ValueKind with
            | JsonValueKind.Null ->
                let precision = if h.Datatype = NiftiDatatype.Float32 then Precision.Single else Precision.Double
                let mean = Masking.meanVolume precision (effects |> List.map (fun e -> e.Data))
                (Masking.computeBackgroundMask shape 2 0 false mean).Mask
            | _ -> (Nifti.read (file (p.GetProperty("mask").GetString()))).Data |> Array.map (fun x -> x <> 0.0)

        let inMask = [| for v in 0 .. mask.Length - 1 do if mask[v] then yield v |]
        let pick (a: float[]) = inMask |> Array.map (fun v -> a[v])

        let dofs =
            match p.GetProperty("dofs").ValueKind with
            | JsonValueKind.Null -> [||]
            | _ -> [| for d in p.GetProperty("dofs").EnumerateArray() -> d.GetDouble() |]

        let fx =
            Contrast.computeFixedEffects
                (effects |> List.map (fun e -> pick e.Data) |> Array.ofList)
                (variances |> List.map pick |> Array.ofList)
                dofs
                (p.GetProperty("precision_weighted").GetBoolean())

        let unmask (values: float[]) =
            let out = Array.zeroCreate mask.Length
            inMask |> Array.iteri (fun j v -> out[v] <- values[j])
            out

        for name, actual in [ "effect", fx.Effect; "variance", fx.Variance; "stat", fx.Stat; "z_score", fx.ZScore ] do
            let f = $"fixed_effects_{name}.nii.gz"
            Close.all (Tolerance.forColumn area case' f "") (unmask actual) (Nifti.read (file f)).Data $"{case'}/{f}"

[<Tests>]
let tests =
    testList "FixedEffectsImage" [
        testList "parity" [
            for case' in Reference.cases area do
                if case'.StartsWith "compute_fixed_effects-" then
                    yield parityCase case'
        ]
    ]
