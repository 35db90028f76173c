// A first-level GLM on a small synthetic run, in memory: fit, one contrast, a summary.
// Run after a Release build, from the repository root:
//     dotnet build FmriGlm.sln -c Release && dotnet fsi docs/examples/first-level.fsx
#r "nuget: MathNet.Numerics, 5.0.0"
#r "nuget: FParsec, 1.1.1"
#r "nuget: Sylvan.Data.Csv, 1.4.4"
#r "nuget: System.Numerics.Tensors, 10.0.0"
#r "../../src/Glm.Core/bin/Release/net10.0/FmriGlm.Core.dll"

open System
open FmriGlm.Core

#load "lib/Check.fsx"
open Check

// 1. A 12 × 12 × 6 run of 120 scans (TR 2 s): two conditions in blocks, "face" planted in one corner.
let shape = { X = 12; Y = 12; Z = 6 }
let tr, scans = 2.0, 120
let affine = Array2D.init 4 4 (fun i j -> if i = j then (if i < 3 then 3.0 else 1.0) else 0.0)

let events =
    { Onsets = Array.init 12 (fun e -> 10.0 + 20.0 * float e)
      Durations = Array.create 12 10.0
      TrialTypes = Array.init 12 (fun e -> if e % 2 = 0 then "face" else "house")
      Modulations = Array.create 12 1.0 }

let design, _ = DesignMatrix.makeFirstLevel (DesignMatrix.frameTimes scans tr 0.0) (Some events) DesignMatrix.defaults
let face = DesignMatrix.column design 0
let rng = Random 42
let planted (v: int) = v % shape.X < 4 && v / shape.X % shape.Y < 4

let volumes =
    Array.init scans (fun t ->
        Array.init shape.Count (fun v ->
            let noise = rng.NextDouble() + rng.NextDouble() + rng.NextDouble() - 1.5
            float32 (800.0 * (1.0 + (if planted v then 0.02 * face[t] else 0.0) + 0.01 * noise))))

// 2. nilearn's FirstLevelModel(t_r=2, mask_img=False).fit(run, events) — AR(1), glover, cosine drift.
let options = { FirstLevel.defaults with TR = Some tr; Mask = NoMask }

let run =
    { Bold = BoldVolumes(shape, affine, volumes)
      Events = Some events
      Confounds = None
      DesignMatrix = None
      SampleMask = None }

let fit = FirstLevel.fit options [ run ]

// 3. compute_contrast("face - house", output_type="z_score")
let contrast = FirstLevel.computeContrast fit [ Expression "face - house" ] None
let z = FirstLevel.outputImage fit contrast ZScore
let inside = [| for v in 0 .. shape.Count - 1 do if planted v then yield z[v] |]
let outside = [| for v in 0 .. shape.Count - 1 do if not (planted v) then yield z[v] |]

printfn "design columns: %s" (String.Join(", ", fit.Runs[0].Design.ColumnNames))
printfn "voxels analysed: %d, AR(1) labels: %d" fit.MaskedIndices.Length fit.Runs[0].Glm.Models.Length
printfn "z (face - house): mean %.2f where planted (%d voxels), mean %.2f elsewhere (%d voxels)"
    (Array.average inside) inside.Length (Array.average outside) outside.Length
printfn "voxels with z > 3.1: %d planted, %d elsewhere"
    (inside |> Array.filter (fun x -> x > 3.1) |> Array.length) (outside |> Array.filter (fun x -> x > 3.1) |> Array.length)

// 4. What the fit must show: every voxel kept (no mask), nilearn's dof, the planted corner found, the rest left alone.
check "no mask: all 864 voxels analysed" (fit.MaskedIndices.Length = shape.Count)
check "120 scans - 7 columns = 113 residual dof" (Contrast.degreesOfFreedom contrast.Contrast = 113.0)
check "the planted effect is recovered: all 96 planted voxels at z > 3.1" (inside |> Array.forall (fun x -> x > 3.1))
check "the rest is left alone: mean |z| < 0.2 and at most 1% of 768 voxels at z > 3.1"
    (abs (Array.average outside) < 0.2 && (outside |> Array.filter (fun x -> x > 3.1) |> Array.length) <= 7)
