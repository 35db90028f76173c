namespace FmriGlm.Core

/// <summary>One row of nilearn's clusters table (<c>nilearn.reporting.get_clusters_table</c>): a cluster's peak,
/// or one of its subpeaks.</summary>
type ClusterRow =
    {
        /// "1", "2", … for a cluster's peak; "1a", "1b", "1c" for its subpeaks.
        ClusterId: string
        /// Peak position in mm (affine applied to the peak voxel).
        X: float
        /// Peak position in mm.
        Y: float
        /// Peak position in mm.
        Z: float
        /// Statistic at the peak voxel, with its sign.
        PeakStat: float
        /// Cluster volume in mm³, truncated to an integer as nilearn does; None on subpeak rows.
        ClusterSizeMm3: int option
    }

/// <summary>The clusters table with the label maps nilearn returns beside it (<c>return_label_maps=True</c>).</summary>
type ClustersTable =
    {
        /// Rows in nilearn's order: positive clusters by decreasing peak, each followed by its subpeaks, then the
        /// negative clusters (two-sided only).
        Rows: ClusterRow list
        /// One label map per tail (positive, then negative when two-sided), Fortran order: 0 outside clusters, else
        /// the cluster's rank in its tail (1 = highest peak). A tail without clusters has no map.
        LabelMaps: int[] list
        /// What nilearn would warn about (a tail without clusters), in words.
        Warnings: string list
    }

/// <summary>Connected components of thresholded maps and nilearn's clusters table: the 6-connected labelling of
/// <c>scipy.ndimage.label</c>, the voxel- and cluster-level thresholding of <c>nilearn.image.threshold_img</c>, and
/// <c>nilearn.reporting.get_clusters_table</c>. Volumes are <c>float[]</c> in NIfTI (Fortran) order on a
/// <see cref="T:FmriGlm.Core.GridShape"/>; affines are 4×4 <c>float[,]</c> mapping (i, j, k, 1) to mm.</summary>
module Clusters =

    /// <summary>Labels the 6-connected components of a binary volume as <c>scipy.ndimage.label</c> does with its
    /// default structure (face neighbours): components are numbered 1, 2, … in the order a C-order scan (k
    /// fastest) meets them; 0 is background. Every cluster of the core (tables, thresholds, the permutation null,
    /// TFCE) is labelled here.</summary>
    /// <returns>The label of every voxel (Fortran order) and the number of components.</returns>
    /// <exception cref="System.ArgumentException">The mask does not have the grid's voxel count.</exception>
    val label: shape: GridShape -> mask: bool[] -> int[] * int

    /// <summary>The same 6-connected components as <see cref="label"/>, found from <paramref name="members"/> (every
    /// voxel of <paramref name="mask"/>, any order) into <paramref name="labels"/> (grid-sized, 0 at the members),
    /// so that a permutation's few supra-threshold voxels are labelled without a pass over the grid or a new array.
    /// Labels are numbered in the order of the members, not scipy's; the caller resets <c>labels</c> at the
    /// members afterwards.</summary>
    /// <returns>The number of components.</returns>
    val internal labelMembers: shape: GridShape -> mask: bool[] -> members: int[] -> labels: int[] -> int

    /// <summary>nilearn's cluster-extent filter (<c>_apply_cluster_size_threshold</c>): positive and negative
    /// voxels form clusters separately (6-connectivity) and clusters of fewer than
    /// <paramref name="clusterThreshold"/> voxels are set to 0. Returns a new volume.</summary>
    val clusterSizeFilter: shape: GridShape -> clusterThreshold: float -> volume: float[] -> float[]

    /// <summary>nilearn's <c>threshold_img</c> with a numeric threshold: non-finite values become 0, voxels
    /// outside <paramref name="mask"/> (when given) become 0, then a voxel keeps its value when |z| &gt; t
    /// (two-sided), z &gt; t (one-sided, t ≥ 0) or z &lt; t (one-sided, t &lt; 0); finally clusters smaller than
    /// <paramref name="clusterThreshold"/> voxels are removed (when it is &gt; 0). An infinite threshold gives an
    /// all-zero map.</summary>
    /// <exception cref="T:FmriGlm.Core.GlmInputException">The threshold is NaN, or negative with two-sided.</exception>
    val thresholdImg:
        shape: GridShape ->
        threshold: float ->
        clusterThreshold: float ->
        twoSided: bool ->
        mask: bool[] option ->
        volume: float[] ->
            float[]

    /// <summary>nilearn 0.13.1's <c>get_clusters_table</c> with <c>return_label_maps=True</c>, on arrays.</summary>
    /// <remarks>The map is first thresholded by <c>thresholdImg</c> (no mask). Each tail (positive; negative when
    /// two-sided) is binarised at <paramref name="statThreshold"/> (one-sided with a negative threshold: below it),
    /// labelled with 6-connectivity and its clusters sorted by decreasing peak. A cluster gives a row for its peak
    /// and up to three subpeaks: local maxima of the 26-neighbourhood (centre of mass of flat maxima), at least
    /// <paramref name="minDistance"/> mm apart. Cluster IDs of the negative tail continue after the number of rows
    /// of the positive tail, as nilearn numbers them. Size in mm³ is <c>int(n_voxels · voxel volume)</c> with the
    /// voxel volume the float32 product of the voxel sizes (nibabel zooms are float32).</remarks>
    /// <param name="shape">Grid of the map.</param>
    /// <param name="affine">4×4 voxel-to-mm affine.</param>
    /// <param name="voxelSizes">The three voxel sizes in mm (the NIfTI header's zooms).</param>
    /// <param name="statThreshold">Cluster-forming threshold, in the map's scale.</param>
    /// <param name="clusterThreshold">Minimum cluster size in voxels (0: none).</param>
    /// <param name="twoSided">Report negative clusters too.</param>
    /// <param name="minDistance">Minimum distance between subpeaks, in mm (nilearn's default 8).</param>
    /// <param name="statMap">The statistic, Fortran order.</param>
    val getClustersTable:
        shape: GridShape ->
        affine: float[,] ->
        voxelSizes: float[] ->
        statThreshold: float ->
        clusterThreshold: float ->
        twoSided: bool ->
        minDistance: float ->
        statMap: float[] ->
            ClustersTable

    /// <summary>The clusters table as nilearn's DataFrame would be written to TSV: header
    /// <c>Cluster ID, X, Y, Z, Peak Stat, Cluster Size (mm3)</c>, tab separated, numbers as %.17g, an empty
    /// size on subpeak rows, '\n' line ends.</summary>
    val toTsv: rows: ClusterRow list -> string
