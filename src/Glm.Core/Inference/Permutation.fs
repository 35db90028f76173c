namespace FmriGlm.Core

/// <summary>nilearn's <c>permuted_ols</c> (Freedman &amp; Lane 1983 scheme; Winkler et al. 2014, NeuroImage
/// 92:381–397) for one tested variate: t by OLS after removing the confounds, max-type FWE over voxels, cluster
/// size/mass and TFCE (Smith &amp; Nichols 2009, NeuroImage 44:83–98).</summary>
module Permutation =

    /// <summary>nilearn's <c>permuted_ols</c> for one tested variate, with its choices: the test is a sign-flipping
    /// one when the tested variate is constant or when the confounds hold exactly one constant column (the
    /// latter then stays a confound); several constant columns are dropped and one intercept is modelled; with
    /// <c>ModelIntercept</c> a constant confound is added unless the test is an intercept test. Targets and
    /// tested variate are normalised and the confounds (orthonormalised by SVD) regressed out; then
    /// t = b·√((dof − 1)/(1 − a² − b²)), b the correlation with the tested variate, a² the squared correlations
    /// with the confounds, dof = subjects − confounds. Voxel-level FWE p = (1 + #{max ≥ t})/(1 + NPerm); cluster
    /// and TFCE p values as nilearn's <c>null_to_p</c> and ranks.</summary>
    /// <param name="options">Permutations, sidedness, threshold, TFCE, seed, threads.</param>
    /// <param name="grid">Where the voxels sit; needed for a threshold or TFCE.</param>
    /// <param name="tested">Tested variate, one value per subject (design · contrast).</param>
    /// <param name="confounds">Subjects × confounds, or None.</param>
    /// <param name="data">Subjects × voxels, column-major (voxel v's subjects at <c>v·subjects</c>).</param>
    /// <exception cref="System.ArgumentException">Sizes disagree, or a threshold/TFCE is asked for without a grid.</exception>
    let permutedOls (options: PermutationOptions) (grid: MaskedGrid option) (tested: float[]) (confounds: float[,] option) (data: VoxelData) =
        PermutedOls.run options grid tested confounds data

    /// <summary>TFCE of a t map on the grid, as <c>Tfce.tfceMap</c> (kept here for callers of the module).</summary>
    let tfceMap (shape: GridShape) (twoSided: bool) (volume: float[]) : float[] = Tfce.tfceMap shape twoSided volume

    /// <summary>nilearn's <c>non_parametric_inference</c> on arrays: the tested variate is design · contrast (one
    /// row), the design columns the contrast leaves at 0 are the confounds, then <see cref="permutedOls"/>.</summary>
    /// <exception cref="GlmInputException">The contrast is not one row over the design's columns, or the design's
    /// row count differs from the number of maps.</exception>
    /// <summary>Refuses, before allocating, a request whose null distributions (one float64 per permutation and
    /// statistic: max-t, and max size and mass with clusters, max TFCE with TFCE) would not fit in half of the
    /// memory this process may use.</summary>
    /// <exception cref="T:FmriGlm.Core.GlmInputException">The estimate and the limit, in MiB.</exception>
    let requireMemory (options: PermutationOptions) : unit =
        let statistics = 1 + (if options.Threshold.IsSome then 2 else 0) + (if options.Tfce then 1 else 0)
        let bytes = (float options.NPerm + 1.0) * 8.0 * float statistics
        let limit = float (System.GC.GetGCMemoryInfo().TotalAvailableMemoryBytes) / 2.0

        if bytes > limit then
            raise (
                GlmInputException(
                    "n_perm",
                    $"{options.NPerm} permutations need about {bytes / 1048576.0:F0} MiB for the null distributions, more than the limit of {limit / 1048576.0:F0} MiB (half the memory available): use fewer"
                )
            )

    let nonParametricInference
        (options: PermutationOptions)
        (grid: MaskedGrid option)
        (design: DesignMatrix)
        (contrast: SecondLevelContrast)
        (data: VoxelData)
        : PermutationResult =
        let weights = SecondLevel.contrastWeights design contrast
        let rows, columns = Array2D.length1 design.Values, Array2D.length2 design.Values
        requireMemory options

        if Array2D.length1 weights <> 1 then
            raise (GlmInputException("second_level_contrast", $"non_parametric_inference tests one contrast row, not {Array2D.length1 weights}"))

        let length =
            match data with
            | Float64 a -> a.Length
            | Float32 a -> a.Length

        if length % rows <> 0 then
            raise (GlmInputException("design_matrix", $"{rows} rows do not match the maps ({length} values)"))

        let tested = Array.init rows (fun r -> Seq.sum (seq { for c in 0 .. columns - 1 -> design.Values[r, c] * weights[0, c] }))
        let kept = [| for c in 0 .. columns - 1 do if weights[0, c] = 0.0 then yield c |]

        let confounds =
            if kept.Length = 0 then None
            else Some(Array2D.init rows kept.Length (fun r k -> design.Values[r, kept[k]]))

        permutedOls options grid tested confounds data
