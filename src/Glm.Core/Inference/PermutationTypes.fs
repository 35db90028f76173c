namespace FmriGlm.Core

open System

/// <summary>Settings of <c>Permutation.permutedOls</c>; names and defaults are nilearn's
/// <c>non_parametric_inference</c> ones.</summary>
type PermutationOptions =
    {
        /// Number of permutations or sign flips (nilearn <c>n_perm</c>, default 10000); 0 gives the t map only.
        NPerm: int
        /// Test |t| (both signs) instead of t (nilearn <c>two_sided_test</c>, default false).
        TwoSidedTest: bool
        /// Add a constant confound unless the tested variate is the intercept (nilearn <c>model_intercept</c>, default true).
        ModelIntercept: bool
        /// Cluster-forming threshold as a p value (nilearn <c>threshold</c>); enables cluster-size and cluster-mass FWE.
        Threshold: float option
        /// Threshold-free cluster enhancement and its FWE p values (nilearn <c>tfce</c>, default false).
        Tfce: bool
        /// Seed (nilearn <c>random_state</c>). Permutation k draws from its own stream derived from (seed, k), so the
        /// result does not depend on <c>Threads</c>; the streams are not numpy's, so results match nilearn's in
        /// distribution only.
        RandomState: int
        /// Threads used.
        Threads: int
        /// Sign flipping only: run every one of the 2ⁿ sign flips (identity included) instead of <c>NPerm</c>
        /// random ones, giving the exact permutation p values #{flips with max ≥ observed} / 2ⁿ (not in nilearn).
        AllSignFlips: bool
    }

/// <summary>Defaults of <see cref="PermutationOptions"/>.</summary>
module PermutationOptions =
    /// nilearn's defaults: 10000 one-sided permutations with an intercept, no clusters, no TFCE, seed 0, every core.
    let defaults =
        { NPerm = 10000
          TwoSidedTest = false
          ModelIntercept = true
          Threshold = None
          Tfce = false
          RandomState = 0
          Threads = Environment.ProcessorCount
          AllSignFlips = false }

/// <summary>Where the masked voxels sit in the 3D grid, for cluster and TFCE inference.</summary>
type MaskedGrid =
    {
        /// The grid.
        Shape: GridShape
        /// Fortran index in the grid of each masked voxel, in the order of the data's voxels.
        Voxels: int[]
    }

/// <summary>Cluster-size and cluster-mass FWE inference at a cluster-forming threshold (nilearn's "size",
/// "logp_max_size", "mass", "logp_max_mass").</summary>
type ClusterInference =
    {
        /// The cluster-forming threshold on t (t quantile of the p threshold).
        ThresholdT: float
        /// Size (voxels) of the cluster each voxel belongs to, 0 outside clusters.
        Size: float[]
        /// −log10 FWE p value of each voxel's cluster size.
        LogPMaxSize: float[]
        /// Largest cluster size of each permutation.
        H0MaxSize: float[]
        /// Mass Σ(|t| − threshold) of the cluster each voxel belongs to, 0 outside clusters.
        Mass: float[]
        /// −log10 FWE p value of each voxel's cluster mass.
        LogPMaxMass: float[]
        /// Largest cluster mass of each permutation.
        H0MaxMass: float[]
    }

/// <summary>TFCE FWE inference (nilearn's "tfce", "logp_max_tfce").</summary>
type TfceInference =
    {
        /// TFCE value of each voxel (E = 0.5, H = 2, 100 steps, as nilearn and fslmaths).
        Tfce: float[]
        /// −log10 FWE p value from the maximum |TFCE| of each permutation.
        LogPMaxTfce: float[]
        /// Largest |TFCE| of each permutation.
        H0MaxTfce: float[]
    }

/// <summary>What <c>Permutation.permutedOls</c> returns, one value per masked voxel.</summary>
type PermutationResult =
    {
        /// t statistic of the tested variate (NaN where a voxel's data are all 0).
        T: float[]
        /// −log10 voxel-level FWE p value from the max-t distribution (nilearn "logp_max_t").
        LogPMaxT: float[]
        /// Largest t (|t| if two-sided) of each permutation (nilearn "h0_max_t", in permutation order).
        H0MaxT: float[]
        /// True when the signs were flipped (intercept test), false when the rows were permuted.
        SignFlipping: bool
        /// Permutations run.
        Permutations: int
        /// Cluster inference, when a threshold was given.
        Clusters: ClusterInference option
        /// TFCE inference, when asked for.
        Tfce: TfceInference option
        /// What nilearn would warn about, in words.
        Warnings: string list
    }
