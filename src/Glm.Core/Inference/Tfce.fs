namespace FmriGlm.Core

open System

/// <summary>Threshold-free cluster enhancement (Smith &amp; Nichols 2009, NeuroImage 44:83–98) as nilearn's
/// <c>calculate_tfce</c> computes it, for the observed t map and for every permutation's.</summary>
module Tfce =

    /// <summary>TFCE of a t map on the grid (zeros outside the mask), as nilearn's <c>calculate_tfce</c> with
    /// E = 0.5, H = 2 and dh = "auto": 100 thresholds from max/100 to max (max of |t| when two-sided); at each,
    /// every 6-connected cluster of voxels at or above it adds sign·extent^0.5·threshold² to its voxels (no ·dh,
    /// as fslmaths).</summary>
    let tfceMap (shape: GridShape) (twoSided: bool) (volume: float[]) : float[] =
        let result = Array.zeroCreate<float> volume.Length

        let maxScore =
            volume
            |> Array.fold (fun m x -> if Double.IsNaN x then m else max m (if twoSided then abs x else x)) Double.NegativeInfinity

        if Double.IsFinite maxScore then
            // numpy.linspace(0, max, 101)[1:]: i·(max/100), the last one exactly max
            let step = maxScore / 100.0
            let thresholds = Array.init 100 (fun s -> if s = 99 then maxScore else float (s + 1) * step)

            for sign in (if twoSided then [ -1.0; 1.0 ] else [ 1.0 ]) do
                let temp = volume |> Array.map (fun x -> sign * x)

                for h in thresholds do
                    for v in 0 .. temp.Length - 1 do
                        if temp[v] < h then temp[v] <- 0.0

                    let alive = temp |> Array.map (fun x -> x <> 0.0 && not (Double.IsNaN x))
                    let labels, count = Clusters.label shape alive

                    if count > 0 then
                        let counts = Array.zeroCreate<int> (count + 1)

                        for l in labels do
                            counts[l] <- counts[l] + 1

                        let h2 = h * h

                        for v in 0 .. labels.Length - 1 do
                            if labels[v] > 0 then
                                result[v] <- result[v] + sign * sqrt (float counts[labels[v]]) * h2

        result
