/// FsCheck generators for the GLM laws: finite effects, positive variances, well-conditioned designs.
module FmriGlm.Core.Tests.GlmGenerators

open FsCheck
open FsCheck.FSharp
open FmriGlm.Core

/// A finite float in [−scale, scale].
let finite (scale: float) : Gen<float> =
    Gen.choose (-1_000_000, 1_000_000) |> Gen.map (fun i -> float i / 1e6 * scale)

/// A positive variance in [0.01, 100].
let positiveVariance: Gen<float> =
    Gen.choose (1, 10_000) |> Gen.map (fun i -> float i / 100.0)

/// A t contrast over `voxels` voxels with dof in [5, 200].
let tContrast (voxels: int) : Gen<Contrast> =
    gen {
        let! effect = Gen.arrayOfLength voxels (finite 10.0)
        let! variance = Gen.arrayOfLength voxels positiveVariance
        let! dof = Gen.choose (5, 200)
        return Contrast.create T 1 (float dof) effect variance
    }

/// Three t contrasts on one grid of 1–20 voxels.
let threeContrastsOnOneGrid: Arbitrary<Contrast * Contrast * Contrast> =
    gen {
        let! voxels = Gen.choose (1, 20)
        let! a = tContrast voxels
        let! b = tContrast voxels
        let! c = tContrast voxels
        return a, b, c
    }
    |> Arb.fromGen

/// A well-conditioned design (scans × regressors): a constant, a block regressor and smooth random columns
/// with their own offsets, 40–80 scans and 2–5 columns; and a data matrix of 1–8 voxels with noise.
let designAndData: Arbitrary<float[,] * float[] * int> =
    gen {
        let! scans = Gen.choose (40, 80)
        let! regressors = Gen.choose (2, 5)
        let! seed = Gen.choose (0, 100_000)
        let! voxels = Gen.choose (1, 8)
        let rng = System.Random seed

        let design =
            Array2D.init scans regressors (fun t j ->
                if j = regressors - 1 then
                    1.0
                elif j = 0 then
                    (if (t / 8) % 2 = 0 then 1.0 else 0.0)
                else
                    sin (float (t + 1) * float j * 0.37 + rng.NextDouble()) + rng.NextDouble())

        let data = Array.init (scans * voxels) (fun _ -> rng.NextDouble() * 4.0 - 2.0)
        return design, data, voxels
    }
    |> Arb.fromGen
