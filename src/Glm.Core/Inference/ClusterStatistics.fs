namespace FmriGlm.Core

open System

/// <summary>Cluster size and cluster mass of nilearn's <c>permuted_ols</c>, for the observed t map and for every
/// permutation's. Both label with <c>Clusters.label</c> (face connectivity, scipy's default structure, as nilearn's
/// <c>generate_binary_structure(3, 1)</c>) and add up through <see cref="tail"/>, so the null distribution cannot
/// count clusters another way than the observed map does.</summary>
module internal ClusterStatistics =

    /// Each label's size and mass Σ(|t| − threshold) over <paramref name="members"/> (grid indices) with their t
    /// values; index 0 is the background.
    let private sizeAndMass (labels: int[]) (count: int) (members: int[]) (t: int -> float) (threshold: float) =
        let size = Array.zeroCreate<float> (count + 1)
        let mass = Array.zeroCreate<float> (count + 1)

        for q in 0 .. members.Length - 1 do
            let l = labels[members[q]]
            size[l] <- size[l] + 1.0
            mass[l] <- mass[l] + (abs (t q) - threshold)

        size, mass

    /// The clusters of one tail: <paramref name="inside"/> (grid-sized) labelled by <c>Clusters.label</c>, then,
    /// over <paramref name="members"/> (the grid indices where <c>inside</c> holds, in increasing order) with
    /// their t values, each label's size and mass Σ(|t| − threshold). Index 0 of size and mass is the background.
    let tail (shape: GridShape) (inside: bool[]) (members: int[]) (t: float[]) (threshold: float) =
        let labels, count = Clusters.label shape inside
        let size, mass = sizeAndMass labels count members (fun q -> t[q]) threshold
        labels, count, size, mass

    /// Largest cluster size and mass of one permutation, from its supra-threshold voxels (grid index and t, in
    /// increasing grid order); positive and negative t form clusters separately. <paramref name="inside"/> and
    /// <paramref name="labels"/> are grid-sized scratch arrays, all false and all 0, and are left that way. The
    /// components come from the flood fill of <c>Clusters.label</c> (through <c>Clusters.labelMembers</c>), found
    /// from the members alone, so a permutation costs its supra-threshold voxels rather than a pass over the grid
    /// and a grid-sized array per tail.
    let nullMaxima (shape: GridShape) (inside: bool[]) (labels: int[]) (grid: ResizeArray<int>) (t: ResizeArray<float>) (threshold: float) =
        let mutable maxSize = 0.0
        let mutable maxMass = 0.0

        for sign in [ 1.0; -1.0 ] do
            let picked = [| for q in 0 .. grid.Count - 1 do if sign * t[q] > 0.0 then yield q |]

            if picked.Length > 0 then
                let members = picked |> Array.map (fun q -> grid[q])

                for g in members do
                    inside[g] <- true

                let count = Clusters.labelMembers shape inside members labels
                let size, mass = sizeAndMass labels count members (fun q -> t[picked[q]]) threshold

                for g in members do
                    inside[g] <- false
                    labels[g] <- 0

                maxSize <- max maxSize (Array.max size)
                maxMass <- max maxMass (Array.max mass)

        struct (maxSize, maxMass)

    /// nilearn's null_to_p(alternative="larger"): #{null ≥ value}/N, clipped to [1/N, 1 − 1/N].
    let private nullToP (sortedNull: float[]) (value: float) =
        let n = sortedNull.Length
        let p = 1.0 - float (PermutationKernel.ranksBelow sortedNull value) / float n
        let smallest = max Numerics.eps (1.0 / float n)
        max smallest (min p (1.0 - smallest))

    /// <summary>The observed clusters of the t map (on the grid, 0 outside the mask) at the cluster-forming
    /// threshold, as nilearn labels them: t &gt; threshold and, two-sided, t &lt; −threshold, the positive labels
    /// numbered after the negative ones; then each masked voxel's cluster size and mass and their FWE p values
    /// against the permutations' maxima.</summary>
    let inference
        (grid: MaskedGrid)
        (twoSided: bool)
        (threshold: float)
        (tVolume: float[])
        (h0Size: float[])
        (h0Mass: float[])
        : ClusterInference =
        let ofSign (sign: float) =
            let inside = tVolume |> Array.map (fun a -> sign * a > threshold)
            let members = [| for v in 0 .. inside.Length - 1 do if inside[v] then yield v |]
            tail grid.Shape inside members (members |> Array.map (fun v -> tVolume[v])) threshold

        let labels, _, size, mass = ofSign 1.0

        let labels, size, mass =
            if twoSided then
                let negative, negativeCount, negativeSize, negativeMass = ofSign -1.0
                let labels = Array.map2 (fun p q -> if p > 0 then p + negativeCount else q) labels negative
                labels, Array.append negativeSize size[1..], Array.append negativeMass mass[1..]
            else
                labels, size, mass

        let nPerm = h0Size.Length
        let sortedSize = Array.sort h0Size
        let sortedMass = Array.sort h0Mass
        let logP sorted (values: float[]) l = if nPerm = 0 then 0.0 else -Math.Log10(nullToP sorted values[l])
        let perVoxel f = grid.Voxels |> Array.map (fun g -> f labels[g])

        { ThresholdT = threshold
          Size = perVoxel (fun l -> size[l])
          LogPMaxSize = perVoxel (logP sortedSize size)
          H0MaxSize = h0Size
          Mass = perVoxel (fun l -> mass[l])
          LogPMaxMass = perVoxel (logP sortedMass mass)
          H0MaxMass = h0Mass }
