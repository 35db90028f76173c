namespace FmriGlm.Core

open System
open System.Numerics.Tensors

/// <summary>Size of a 3D voxel grid. Volumes are stored in NIfTI (Fortran) order: i fastest, then j, then k, so
/// voxel (i, j, k) is at index <c>i + X·(j + Y·k)</c>.</summary>
[<Struct>]
type GridShape =
    { X: int
      Y: int
      Z: int }

    /// <summary>Number of voxels, X·Y·Z.</summary>
    member s.Count = s.X * s.Y * s.Z

    /// <summary>Index of voxel (i, j, k) in a Fortran-ordered volume.</summary>
    member s.Index(i: int, j: int, k: int) = i + s.X * (j + s.Y * k)

/// <summary>The floating-point type a reference computation runs in. nilearn keeps the image's dtype when it
/// averages and smooths, so a float32 image gives float32 rounding at every step; reproducing a mask bit for bit
/// needs the same rounding.</summary>
type Precision =
    /// Values are rounded to float32 after each array operation, as numpy does on float32 arrays.
    | Single
    /// Values stay float64.
    | Double

/// <summary>Options of <c>computeEpiMask</c>, with nilearn's names and defaults (<c>nilearn.masking.compute_epi_mask</c>).</summary>
type EpiMaskOptions =
    {
        /// Lower fraction of the sorted mean values where the histogram gap is searched (default 0.2).
        LowerCutoff: float
        /// Upper fraction of the sorted mean values where the histogram gap is searched (default 0.85).
        UpperCutoff: float
        /// Keep only the largest 6-connected component (default true).
        Connected: bool
        /// Iterations of the morphological opening; 0 disables it and the 1-voxel smoothing (default 2).
        Opening: int
        /// Leave zeros out of the histogram, for zero-padded images (default false).
        ExcludeZeros: bool
        /// Replace NaN and infinite means by 0 before thresholding (default true).
        EnsureFinite: bool
    }

/// <summary>Brain masks as nilearn computes them (<c>nilearn.masking</c>): the EPI heuristic of T. Nichols used by
/// <c>FirstLevelModel</c> and <c>NiftiMasker(mask_strategy="epi")</c>, the background mask, and the scipy.ndimage
/// morphology (6-connected cross, zero border) they rest on.</summary>
module Masking =

    /// <summary>nilearn's defaults: cut-offs 0.2 and 0.85, connected, opening 2, zeros kept, non-finite set to 0.</summary>
    let defaultEpiMaskOptions =
        { LowerCutoff = 0.2
          UpperCutoff = 0.85
          Connected = true
          Opening = 2
          ExcludeZeros = false
          EnsureFinite = true }

    let private rounder precision : float -> float =
        match precision with
        | Single -> fun x -> float (float32 x)
        | Double -> id

    let private checkLength (shape: GridShape) (length: int) (what: string) =
        if length <> shape.Count then
            invalidArg what $"{what} has {length} values, the grid {shape.X}×{shape.Y}×{shape.Z} has {shape.Count}"

    /// <summary>Voxel-wise mean of volumes, accumulated as numpy's <c>mean(axis=-1)</c> over an image in file order
    /// does: the first volume, then each next one added in turn, then divided by the count, rounding to
    /// <paramref name="precision"/> after each step.</summary>
    /// <exception cref="System.ArgumentException">No volume, or volumes of different lengths.</exception>
    let meanVolume (precision: Precision) (volumes: float[] seq) : float[] =
        let r = rounder precision
        let mutable sum: float[] = null
        let mutable n = 0

        for v in volumes do
            if isNull sum then
                sum <- Array.map r v
            else
                if v.Length <> sum.Length then
                    invalidArg (nameof volumes) $"volume {n} has {v.Length} voxels, volume 0 has {sum.Length}"

                for i in 0 .. sum.Length - 1 do
                    sum[i] <- r (sum[i] + r v[i])

            n <- n + 1

        if n = 0 then
            invalidArg (nameof volumes) "no volume to average"

        sum |> Array.map (fun s -> r (s / float n))

    /// <summary>scipy.ndimage's Gaussian kernel for <c>gaussian_filter1d</c>: radius <c>int(truncate·σ + 0.5)</c>,
    /// weights <c>exp(−x²/2σ²)</c> normalised to sum 1.</summary>
    let gaussianKernel (sigma: float) (truncate: float) : float[] =
        if not (sigma > 0.0) then
            invalidArg (nameof sigma) $"sigma must be positive, got {sigma}"

        let radius = int (truncate * sigma + 0.5)
        let w = Array.init (2 * radius + 1) (fun k -> let x = float (k - radius) in exp (-0.5 / (sigma * sigma) * x * x))
        let total = Array.sum w
        w |> Array.map (fun x -> x / total)

    // scipy's 'reflect' mode (d c b a | a b c d | d c b a): the edge sample is repeated.
    let private reflect (n: int) (i: int) =
        let period = 2 * n
        let m = ((i % period) + period) % period
        if m < n then m else period - 1 - m

    /// <summary>Correlates every line of a volume along one axis with a symmetric kernel, in scipy's reflect mode,
    /// summing in float64 and rounding each result to <paramref name="precision"/> (the output array's dtype).</summary>
    let rec filterAxis (precision: Precision) (shape: GridShape) (axis: int) (kernel: float[]) (volume: float[]) : float[] =
        checkLength shape volume.Length (nameof volume)
        let out = Array.zeroCreate volume.Length
        filterAxisInto precision shape axis kernel volume out
        out

    /// filterAxis into a given array (as long as the volume, not the volume itself).
    and internal filterAxisInto
        (precision: Precision)
        (shape: GridShape)
        (axis: int)
        (kernel: float[])
        (volume: float[])
        (out: float[])
        =
        let radius = kernel.Length / 2
        let n, stride =
            match axis with
            | 0 -> shape.X, 1
            | 1 -> shape.Y, shape.X
            | 2 -> shape.Z, shape.X * shape.Y
            | _ -> invalidArg (nameof axis) $"axis must be 0, 1 or 2, got {axis}"

        let single = (precision = Single)

        if stride > 1 then
            // Lines along j or k lie side by side in memory (i varies fastest): filter a whole row of them at once,
            // with the same operations in the same order per value as the line-by-line loop below.
            let width = shape.X
            let acc = Array.zeroCreate<float> width
            let pair = Array.zeroCreate<float> width

            for block in 0 .. volume.Length / (stride * n) - 1 do
                for a in 0 .. width .. stride - 1 do
                    let at (t: int) = block * stride * n + reflect n t * stride + a
                    let accs = Span acc

                    for t in 0 .. n - 1 do
                        TensorPrimitives.Multiply(ReadOnlySpan(volume, at t, width), kernel[radius], accs)

                        for k in 1 .. radius do
                            TensorPrimitives.Add(
                                ReadOnlySpan(volume, at (t - k), width),
                                ReadOnlySpan(volume, at (t + k), width),
                                Span pair
                            )

                            TensorPrimitives.Multiply(ReadOnlySpan pair, kernel[radius + k], Span pair)
                            TensorPrimitives.Add(ReadOnlySpan acc, ReadOnlySpan pair, accs)

                        let o = block * stride * n + t * stride + a

                        for i in 0 .. width - 1 do
                            out[o + i] <- if single then float (float32 acc[i]) else acc[i]
        else

        // along i (stride 1) each line is contiguous: copy it, padded with its reflections on both sides, so that
        // the taps need no index arithmetic
        let padded = Array.zeroCreate (n + 2 * radius)

        for line in 0 .. volume.Length / n - 1 do
            let start = line * n
            Array.blit volume start padded radius n

            for k in 1 .. radius do
                padded[radius - k] <- volume[start + reflect n (-k)]
                padded[radius + n - 1 + k] <- volume[start + reflect n (n - 1 + k)]

            for t in 0 .. n - 1 do
                // symmetric kernel: centre first, then pairs, as scipy's correlate1d does for symmetric weights
                let c = radius + t
                let mutable acc = padded[c] * kernel[radius]

                for k in 1 .. radius do
                    acc <- acc + (padded[c - k] + padded[c + k]) * kernel[radius + k]

                out[start + t] <- if single then float (float32 acc) else acc

    /// <summary>The widest Gaussian kernel smoothing accepts, as a multiple of the grid's longest axis: a wider one
    /// flattens the image as much (scipy reflects at the edges) but costs its width in work per voxel.</summary>
    let maxKernelAxes = 10

    /// <summary>Fails unless every FWHM is a finite non-negative number of mm whose kernel (radius 4σ) is at most
    /// <c>maxKernelAxes</c> times the longest axis: <c>1e300</c> would otherwise overflow the kernel's length.</summary>
    /// <exception cref="T:FmriGlm.Core.GlmInputException">A negative, NaN, infinite or absurdly wide FWHM.</exception>
    let checkSmoothing (shape: GridShape) (voxelSizes: float[]) (fwhm: float[]) : unit =
        let longest = max shape.X (max shape.Y shape.Z)

        for axis in 0 .. fwhm.Length - 1 do
            let f = fwhm[axis]

            if not (f >= 0.0) || Double.IsInfinity f then
                raise (GlmInputException("smoothing_fwhm", $"must be a non-negative number of mm, not {f}"))

            if f > 0.0 then
                let radius = 4.0 * f / (sqrt (8.0 * log 2.0) * voxelSizes[axis])

                if not (radius <= float (maxKernelAxes * longest)) then
                    raise (
                        GlmInputException(
                            "smoothing_fwhm",
                            $"{f} mm is a kernel of radius {radius:G3} voxels along axis {axis}, more than {maxKernelAxes} times the grid's longest axis ({longest} voxels): the image would be flat; give a smaller FWHM"
                        )
                    )

    /// <summary>Gaussian smoothing of a volume as nilearn's <c>_smooth_array</c>: non-finite values set to 0 first,
    /// then <c>gaussian_filter1d</c> (truncate 4) along each axis whose FWHM is non-zero, with
    /// σ = FWHM / (√(8 ln 2) · voxel size).</summary>
    /// <param name="precision">The dtype of the array nilearn smooths in place.</param>
    /// <param name="shape">Grid of the volume.</param>
    /// <param name="voxelSizes">Voxel size along i, j, k in mm: the norms of the affine's first three columns.</param>
    /// <param name="fwhm">Full width at half maximum along i, j, k, in mm.</param>
    /// <param name="volume">The volume, Fortran order.</param>
    let rec smooth (precision: Precision) (shape: GridShape) (voxelSizes: float[]) (fwhm: float[]) (volume: float[]) : float[] =
        // fresh work arrays: the one holding the result is this call's alone
        smoothWith precision shape voxelSizes fwhm (Array.zeroCreate volume.Length, Array.zeroCreate volume.Length) volume

    /// smooth through two work arrays (each as long as the volume) that the caller reuses from volume to volume:
    /// smoothing every volume of a run must not allocate a volume-sized array per axis. Returns the work array
    /// holding the result, valid until the next call with the same arrays.
    and internal smoothWith
        (precision: Precision)
        (shape: GridShape)
        (voxelSizes: float[])
        (fwhm: float[])
        (work: float[] * float[])
        (volume: float[])
        : float[] =
        if voxelSizes.Length <> 3 || fwhm.Length <> 3 then
            invalidArg (nameof fwhm) "voxel sizes and FWHM need one value per axis (3)"

        checkLength shape volume.Length (nameof volume)
        checkSmoothing shape voxelSizes fwhm
        let r = rounder precision
        let mutable data, spare = work

        for i in 0 .. volume.Length - 1 do
            let x = volume[i]
            data[i] <- if Double.IsFinite x then r x else 0.0

        let ratio = sqrt (8.0 * log 2.0)

        for axis in 0..2 do
            if fwhm[axis] <> 0.0 then
                let sigma = fwhm[axis] / (ratio * voxelSizes[axis])
                filterAxisInto precision shape axis (gaussianKernel sigma 4.0) data spare
                let filtered = spare
                spare <- data
                data <- filtered

        data

    // The six face neighbours of scipy.ndimage.generate_binary_structure(3, 1), visited in a fixed order without
    // allocating: the morphology below runs over every voxel several times per mask.
    let inline private forNeighbours (shape: GridShape) (v: int) ([<InlineIfLambda>] visit: int -> unit) =
        let i = v % shape.X
        let j = (v / shape.X) % shape.Y
        let k = v / (shape.X * shape.Y)
        let plane = shape.X * shape.Y

        if i > 0 then visit (v - 1)
        if i < shape.X - 1 then visit (v + 1)
        if j > 0 then visit (v - shape.X)
        if j < shape.Y - 1 then visit (v + shape.X)
        if k > 0 then visit (v - plane)
        if k < shape.Z - 1 then visit (v + plane)

    /// Whether some face neighbour of v satisfies pred (short-circuit, in the order of forNeighbours).
    let inline private anyNeighbour (shape: GridShape) (v: int) ([<InlineIfLambda>] pred: int -> bool) =
        let i = v % shape.X
        let j = (v / shape.X) % shape.Y
        let k = v / (shape.X * shape.Y)
        let plane = shape.X * shape.Y

        (i > 0 && pred (v - 1))
        || (i < shape.X - 1 && pred (v + 1))
        || (j > 0 && pred (v - shape.X))
        || (j < shape.Y - 1 && pred (v + shape.X))
        || (k > 0 && pred (v - plane))
        || (k < shape.Z - 1 && pred (v + plane))

    let private onBorder (shape: GridShape) (v: int) =
        let i = v % shape.X
        let j = (v / shape.X) % shape.Y
        let k = v / (shape.X * shape.Y)
        i = 0 || j = 0 || k = 0 || i = shape.X - 1 || j = shape.Y - 1 || k = shape.Z - 1

    /// <summary>scipy.ndimage.binary_erosion with the 6-connected cross and border value 0, repeated
    /// <paramref name="iterations"/> times: a voxel stays only if it and its six neighbours are set, and voxels
    /// outside the grid count as unset.</summary>
    let erode (shape: GridShape) (iterations: int) (mask: bool[]) : bool[] =
        checkLength shape mask.Length (nameof mask)
        let mutable m = Array.copy mask
        let mutable next = Array.zeroCreate mask.Length

        for _ in 1..iterations do
            let cur = m

            for v in 0 .. cur.Length - 1 do
                next[v] <- cur[v] && not (onBorder shape v) && not (anyNeighbour shape v (fun u -> not cur[u]))

            let prev = m
            m <- next
            next <- prev

        m

    /// <summary>scipy.ndimage.binary_dilation with the 6-connected cross and border value 0, repeated
    /// <paramref name="iterations"/> times.</summary>
    let dilate (shape: GridShape) (iterations: int) (mask: bool[]) : bool[] =
        checkLength shape mask.Length (nameof mask)
        let mutable m = Array.copy mask
        let mutable next = Array.zeroCreate mask.Length

        for _ in 1..iterations do
            let cur = m

            for v in 0 .. cur.Length - 1 do
                next[v] <- cur[v] || anyNeighbour shape v (fun u -> cur[u])

            let prev = m
            m <- next
            next <- prev

        m

    /// <summary>The largest 6-connected component of a mask (nilearn's <c>largest_connected_component</c>).
    /// Components are numbered in the order scipy.ndimage.label meets them, scanning in C order (k fastest); a tie
    /// goes to the lower number, as numpy's argmax does. An empty mask is returned unchanged.</summary>
    let largestConnectedComponent (shape: GridShape) (mask: bool[]) : bool[] =
        checkLength shape mask.Length (nameof mask)
        let labels = Array.zeroCreate<int> mask.Length
        let sizes = ResizeArray<int>()
        let stack = System.Collections.Generic.Stack<int>()

        for i in 0 .. shape.X - 1 do
            for j in 0 .. shape.Y - 1 do
                for k in 0 .. shape.Z - 1 do
                    let v = shape.Index(i, j, k)

                    if mask[v] && labels[v] = 0 then
                        let label = sizes.Count + 1
                        let mutable size = 0
                        labels[v] <- label
                        stack.Push v

                        while stack.Count > 0 do
                            let u = stack.Pop()
                            size <- size + 1

                            forNeighbours shape u (fun w ->
                                if mask[w] && labels[w] = 0 then
                                    labels[w] <- label
                                    stack.Push w)

                        sizes.Add size

        if sizes.Count <= 1 then
            Array.copy mask
        else
            let mutable best = 0

            for l in 1 .. sizes.Count - 1 do
                if sizes[l] > sizes[best] then best <- l

            labels |> Array.map (fun l -> l = best + 1)

    /// <summary>The mask's clean-up in nilearn's <c>_post_process_mask</c>: erosion (<c>opening</c> times), the
    /// largest connected component when <c>connected</c> and the mask is not empty, then dilation
    /// (2·<c>opening</c>) and erosion (<c>opening</c>).</summary>
    let postProcess (shape: GridShape) (opening: int) (connected: bool) (mask: bool[]) : bool[] =
        let eroded = if opening > 0 then erode shape opening mask else mask

        let kept =
            if connected && Array.exists id eroded then
                largestConnectedComponent shape eroded
            else
                eroded

        if opening > 0 then
            kept |> dilate shape (2 * opening) |> erode shape opening
        else
            kept

    /// <summary>The threshold of nilearn's EPI heuristic: the mid-point of the widest gap between consecutive
    /// sorted values, searched between the <c>LowerCutoff</c> and <c>UpperCutoff</c> fractions. Differences and the
    /// mid-point's sum are rounded to <paramref name="precision"/>, as numpy computes them on the image's dtype.</summary>
    /// <returns>The threshold, or NaN when fewer than two values are left to search.</returns>
    let epiThreshold (precision: Precision) (options: EpiMaskOptions) (meanValues: float[]) : float =
        let r = rounder precision
        let sorted = meanValues |> Array.filter (fun x -> not options.ExcludeZeros || x <> 0.0) |> Array.sort
        let n = sorted.Length
        let lower = int (floor (options.LowerCutoff * float n))
        let upper = min (int (floor (options.UpperCutoff * float n))) (n - 1)

        if upper <= lower || lower < 0 then
            nan
        else
            let mutable best = lower
            let mutable bestGap = r (sorted[lower + 1] - sorted[lower])

            for i in lower + 1 .. upper - 1 do
                let gap = r (sorted[i + 1] - sorted[i])
                if gap > bestGap then
                    best <- i
                    bestGap <- gap

            // numpy 1.x: float32 + float32 stays float32, × 0.5 is exact.
            r (sorted[best] + sorted[best + 1]) * 0.5

    /// <summary>The result of a mask computation: the mask (Fortran order), the threshold used, and what nilearn
    /// would have warned about (an empty mask), as values.</summary>
    type MaskResult =
        {
            /// True inside the brain, Fortran order.
            Mask: bool[]
            /// The intensity threshold applied to the mean image (NaN when none could be found).
            Threshold: float
            /// Warnings nilearn would emit, in words.
            Warnings: string list
        }

    /// The values compute_epi_mask thresholds: the mean smoothed by 1 voxel FWHM when there is an opening, NaNs
    /// kept through the smoothing, then non-finite values set to 0 when asked.
    let private epiValues (precision: Precision) (options: EpiMaskOptions) (shape: GridShape) (mean: float[]) =
        let smoothed =
            if options.Opening > 0 then
                let s = smooth precision shape [| 1.0; 1.0; 1.0 |] [| 1.0; 1.0; 1.0 |] mean
                // nilearn puts the NaNs back after smoothing; ensure_finite then sets them to 0
                Array.map2 (fun (m: float) x -> if Double.IsNaN m then nan else x) mean s
            else
                Array.copy mean

        if options.EnsureFinite then
            smoothed |> Array.map (fun x -> if Double.IsFinite x then x else 0.0)
        else
            smoothed

    /// <summary>nilearn's <c>compute_epi_mask</c> on a mean image (already averaged over volumes with
    /// <c>meanVolume</c>): 1-voxel-FWHM smoothing when <c>Opening</c> &gt; 0 (nilearn smooths with an identity
    /// affine, so the width is in voxels), non-finite values to 0, the histogram-gap threshold, <c>mean ≥
    /// threshold</c>, then <c>postProcess</c>.</summary>
    /// <param name="precision">The dtype nilearn averages the image in: Single for float32 images.</param>
    /// <param name="options">Cut-offs, opening, connectivity; see <c>defaultEpiMaskOptions</c>.</param>
    /// <param name="shape">Grid of the image.</param>
    /// <param name="mean">Mean image, Fortran order.</param>
    let computeEpiMask (precision: Precision) (options: EpiMaskOptions) (shape: GridShape) (mean: float[]) : MaskResult =
        checkLength shape mean.Length (nameof mean)

        if not (0.0 <= options.LowerCutoff && options.LowerCutoff < options.UpperCutoff && options.UpperCutoff <= 1.0) then
            invalidArg (nameof options) $"cut-offs must satisfy 0 ≤ lower < upper ≤ 1, got {options.LowerCutoff} and {options.UpperCutoff}"

        let values = epiValues precision options shape mean
        let threshold = epiThreshold precision options values
        // comparing a float32 array with a float64 scalar: numpy 1.x casts the scalar to float32
        let t = rounder precision threshold
        let raw = values |> Array.map (fun x -> x >= t)
        let mask = postProcess shape options.Opening options.Connected raw

        { Mask = mask
          Threshold = threshold
          Warnings =
            if Array.exists id mask then
                []
            else
                [ "Computed an empty mask. Are you sure that input data are EPI images not detrended." ] }

    /// <summary>A guess at a superset of the mask <c>computeEpiMask</c> will compute from a mean image close to
    /// <paramref name="mean"/> (in practice: the mean of a run's first volumes, before the run is read whole): the
    /// same smoothing and threshold search, the threshold lowered by <paramref name="margin"/> (a fraction of it),
    /// the same clean-up, then one voxel of dilation for the voxels whose value drifts across the threshold later
    /// in the run. Only a guess: the caller must check the final mask against it (on the bench's brain and the
    /// simulator's runs it holds 1.1–1.3 times the mask's voxels and has never missed one).</summary>
    let internal epiCandidates
        (precision: Precision)
        (options: EpiMaskOptions)
        (shape: GridShape)
        (margin: float)
        (mean: float[])
        : bool[] option =
        checkLength shape mean.Length (nameof mean)
        let values = epiValues precision options shape mean
        let threshold = epiThreshold precision options values

        if Double.IsNaN threshold then
            None
        else
            let t = threshold - margin * abs threshold
            let raw = values |> Array.map (fun x -> not (x < t))
            let cleaned = postProcess shape options.Opening options.Connected raw
            Some(dilate shape 1 cleaned)

    /// <summary>nilearn's <c>compute_background_mask</c> on a mean image: if the border (<paramref name="borderSize"/>
    /// voxels deep on every face) has a NaN, the mask is the non-NaN voxels; otherwise the background is the
    /// median of the border and the mask is every voxel that differs from it. Then <c>postProcess</c>
    /// (nilearn's defaults: opening 0, not connected).</summary>
    let computeBackgroundMask (shape: GridShape) (borderSize: int) (opening: int) (connected: bool) (mean: float[]) : MaskResult =
        checkLength shape mean.Length (nameof mean)
        let b = borderSize

        // nilearn's get_border_data concatenates six slabs that overlap at the edges, so edge and corner voxels
        // count two or three times in the median; the same multiset is built here.
        let border =
            [| for v in 0 .. mean.Length - 1 do
                   let i = v % shape.X
                   let j = (v / shape.X) % shape.Y
                   let k = v / (shape.X * shape.Y)

                   for inSlab in [ i < b; i >= shape.X - b; j < b; j >= shape.Y - b; k < b; k >= shape.Z - b ] do
                       if inSlab then yield mean[v] |]

        let raw, background =
            if Array.exists Double.IsNaN border then
                mean |> Array.map (Double.IsNaN >> not), nan
            else
                let sorted = Array.sort border
                let m = sorted.Length

                let median =
                    if m = 0 then nan
                    elif m % 2 = 1 then sorted[m / 2]
                    else 0.5 * (sorted[m / 2 - 1] + sorted[m / 2])

                mean |> Array.map (fun x -> x <> median), median

        let mask = postProcess shape opening connected raw

        { Mask = mask
          Threshold = background
          Warnings =
            if Array.exists id mask then
                []
            else
                [ "Computed an empty mask. Are you sure that input images have a homogeneous background." ] }
