// A runnable tour of the F# core: build a nilearn design matrix, simulate AR(1) data with a planted effect,
// fit nilearn's AR(1) GLM, compute a contrast from an expression and look at the z scores.
//
//   dotnet build src/Glm.Cli -c Release          (once: puts FmriGlm.Core and its dependencies in one folder)
//   dotnet fsi docs/examples/design-fit-contrast.fsx
#I "../../src/Glm.Cli/bin/Release/net10.0"
#r "FmriGlm.Core.dll"
#r "MathNet.Numerics.dll"
#r "FParsec.dll"
#r "FParsecCS.dll"

open System
open FmriGlm.Core

#load "lib/Check.fsx"
open Check

// 1. A block design: two conditions, 20 s blocks, TR 2 s, 120 scans (nilearn make_first_level_design_matrix).
let tr, scans = 2.0, 120
let frameTimes = DesignMatrix.frameTimes scans tr 0.0
let onsets = [| 10.0 .. 40.0 .. 210.0 |]
let events: Events =
    { Onsets = Array.append onsets (onsets |> Array.map ((+) 20.0))
      Durations = Array.create (2 * onsets.Length) 20.0
      TrialTypes = Array.append (Array.create onsets.Length "face") (Array.create onsets.Length "house")
      Modulations = Array.create (2 * onsets.Length) 1.0 }
let design, warnings = DesignMatrix.makeFirstLevel frameTimes (Some events) DesignMatrix.defaults
printfn "design: %d scans × %d columns: %s" scans design.ColumnNames.Length (String.Join(", ", design.ColumnNames))
warnings |> List.iter (DesignMatrix.describe >> printfn "warning: %s")

// 2. 2,000 voxels of AR(1) noise (ρ = 0.3); the first 200 respond to faces only.
let voxels = 2000
let rng = Random 42
let gauss () = sqrt (-2.0 * log (1.0 - rng.NextDouble())) * cos (2.0 * Math.PI * rng.NextDouble())
let face = Array.IndexOf(design.ColumnNames, "face")
let data = Array.zeroCreate<float32> (scans * voxels)          // scans × voxels, column-major
for v in 0 .. voxels - 1 do
    let mutable e = 0.0
    for t in 0 .. scans - 1 do
        e <- 0.3 * e + gauss ()
        let signal = if v < 200 then 2.0 * design.Values[t, face] else 0.0
        data[v * scans + t] <- float32 (100.0 + signal + e)

// 3. nilearn's run_glm(noise_model="ar1", bins=100), then compute_contrast("face - house").
let fit = Regression.fit { GlmOptions.defaults with NoiseModel = Ar 1 } design.Values (Float32 data)
let weights =
    match ContrastExpression.parse (List.ofArray design.ColumnNames) "face - house" with
    | Ok w -> array2D [ w ]
    | Error e -> failwith (string e)
let contrast = Contrast.compute fit weights T
let z = Contrast.zScore 0.0 contrast
let planted, null' = z[.. 199], z[200 ..]
printfn "AR(1) labels: %d; mean z where planted: %.2f; elsewhere: %.2f" fit.Models.Length (Array.average planted) (Array.average null')
printfn "voxels with z > 3.1: %d of 200 planted, %d of 1800 null" (planted |> Array.filter (fun x -> x > 3.1) |> Array.length) (null' |> Array.filter (fun x -> x > 3.1) |> Array.length)

// 4. Two runs combine by fixed effects: contrasts add (nilearn Contrast.__add__).
let twoRuns = [ contrast; contrast ] |> List.sum
printfn "two identical runs: t grows by %.4f (√2 = %.4f)" ((Contrast.stat 0.0 twoRuns)[0] / (Contrast.stat 0.0 contrast)[0]) (sqrt 2.0)

// 5. What the run must show: the planted effect found, the null left alone, nilearn's dof, the fixed-effects law.
check "120 scans - 7 columns = 113 residual dof" (Contrast.degreesOfFreedom contrast = 113.0)
check "the planted effect is recovered: at least 190 of 200 planted voxels at z > 3.1" (planted |> Array.filter (fun x -> x > 3.1) |> Array.length >= 190)
check "the null is left alone: mean |z| < 0.2 and at most 1% of 1800 null voxels at z > 3.1"
    (abs (Array.average null') < 0.2 && (null' |> Array.filter (fun x -> x > 3.1) |> Array.length) <= 18)
check "two identical runs: t × √2 (relative 1e-9)"
    (Array.forall2 (fun t2 t -> abs (t2 - sqrt 2.0 * t) <= 1e-9 * abs t2) (Contrast.stat 0.0 twoRuns) (Contrast.stat 0.0 contrast))
