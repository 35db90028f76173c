// A runnable tour of the second level: 16 subjects' effect maps on a small grid with a planted group effect,
// nilearn's SecondLevelModel (one-sample OLS) and non_parametric_inference (sign flips, max-t and cluster FWE).
//
//   dotnet build src/Glm.Cli -c Release          (once: puts FmriGlm.Core and its dependencies in one folder)
//   dotnet fsi docs/examples/second-level.fsx
#I "../../src/Glm.Cli/bin/Release/net10.0"
#r "FmriGlm.Core.dll"
#r "MathNet.Numerics.dll"
#r "FParsec.dll"
#r "FParsecCS.dll"

open System
open FmriGlm.Core

#load "lib/Check.fsx"
open Check

// 1. Maps: 16 subjects on a 12×12×8 grid, every voxel in the mask; an effect of 1.2 (noise sd 1) in a 3×3×3 cube.
let shape = { X = 12; Y = 12; Z = 8 }
let subjects = 16
let rng = Random 7
let gauss () = sqrt (-2.0 * log (1.0 - rng.NextDouble())) * cos (2.0 * Math.PI * rng.NextDouble())
let inEffect g = let i, j, k = g % 12, (g / 12) % 12, g / 144 in i >= 4 && i < 7 && j >= 4 && j < 7 && k >= 2 && k < 5
// subjects × voxels, column-major: voxel v's subjects at v*subjects
let data = Array.init (shape.Count * subjects) (fun x -> (if inEffect (x / subjects) then 1.2 else 0.0) + gauss ())

// 2. SecondLevelModel: one-sample design, contrast "intercept", nilearn's output maps.
let design = { ColumnNames = [| "intercept" |]; Values = Array2D.create subjects 1 1.0 }
let fit = SecondLevel.fit 2 design (Float64 data)
let maps = SecondLevel.computeContrast fit (SecondLevelContrast.Expression "intercept") None |> SecondLevel.maps
let peak = Array.max maps.ZScore
printfn "one-sample t: peak z %.2f, %d voxels with z > 3.1" peak (maps.ZScore |> Array.filter (fun z -> z > 3.1) |> Array.length)

// 3. non_parametric_inference: 2,000 sign flips, clusters formed at p < 0.001, seed 0.
let grid = { Shape = shape; Voxels = Array.init shape.Count id }
let options = { PermutationOptions.defaults with NPerm = 2000; Threshold = Some 0.001 }
let r = Permutation.nonParametricInference options (Some grid) design SecondLevelContrast.Default (Float64 data)
let significant (logp: float[]) = logp |> Array.filter (fun l -> l > -log10 0.05) |> Array.length
printfn "sign flips: %b; FWE p < 0.05 in %d voxels (max-t), %d voxels (cluster size)" r.SignFlipping (significant r.LogPMaxT) (significant r.Clusters.Value.LogPMaxSize)

// The planted cube is found and nothing far from it is: every max-t survivor lies in the cube.
let survivors = [ for v in 0 .. shape.Count - 1 do if r.LogPMaxT[v] > -log10 0.05 then yield v ]
check "16 subjects, one-sample t: 15 dof" (Contrast.degreesOfFreedom (SecondLevel.computeContrast fit (SecondLevelContrast.Expression "intercept") None) = 15.0)
check "the planted cube is found: max-t FWE survivors exist" (not survivors.IsEmpty)
check "nothing outside the cube survives max-t FWE p < 0.05" (survivors |> List.forall inEffect)
