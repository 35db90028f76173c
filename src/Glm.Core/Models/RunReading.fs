namespace FmriGlm.Core

open System
open System.Numerics.Tensors

/// Reading a first-level model's runs: geometry, streamed volumes, smoothing, the mask (one pass over the first run
/// when it is computed), the masked float32 data and its signal scaling.
module internal RunReading =

    /// The mean of the first count values of a float32 array: numpy sums the whole array pairwise; a float64 sum
    /// rounded once is as close as numpy gets.
    let private grandMean (data: float32[]) (count: int) =
        let mutable s = 0.0

        for k in 0 .. count - 1 do
            s <- s + float data[k]

        float32 (s / float count)

    /// nilearn's mean_scaling in float32, in place on scans × voxels column-major data (doc: FirstLevel.scaleSignals).
    let scaleSignals (scaling: SignalScaling) (scans: int) (data: float32[]) : bool =
        if scans < 1 || data.Length % scans <> 0 then
            invalidArg (nameof data) $"{data.Length} values are not whole {scans}-scan series"

        let voxels = data.Length / scans

        let apply (v: int) (mean: float32) =
            let m = max mean 1.0f

            for t in v * scans .. v * scans + scans - 1 do
                data[t] <- 100.0f * (data[t] / m - 1.0f)

        match scaling with
        | NoScaling -> false
        | ScaleVoxelMeans ->
            let mutable zero = false

            for v in 0 .. voxels - 1 do
                let mutable s = 0.0f

                for t in v * scans .. v * scans + scans - 1 do
                    s <- s + data[t]

                let mean = s / float32 scans

                if mean = 0.0f then
                    zero <- true

                apply v mean

            zero
        | ScaleGrandMean ->
            let mean = grandMean data data.Length

            for v in 0 .. voxels - 1 do
                apply v mean

            mean = 0.0f

    /// scaleSignals on time-major data (scan t's values of the voxels at t·voxels, the first scans·voxels values
    /// of data): the same float32 arithmetic voxel by voxel, the voxels' sums advanced a scan at a time.
    let scaleTimeMajor (scaling: SignalScaling) (scans: int) (voxels: int) (data: float32[]) : bool =
        let apply (factors: float32[]) =
            let f = ReadOnlySpan factors

            for t in 0 .. scans - 1 do
                let row = Span(data, t * voxels, voxels)
                TensorPrimitives.Divide(Span.op_Implicit row, f, row)
                TensorPrimitives.Subtract(Span.op_Implicit row, 1.0f, row)
                TensorPrimitives.Multiply(Span.op_Implicit row, 100.0f, row)

        match scaling with
        | NoScaling -> false
        | ScaleVoxelMeans ->
            let sums = Array.zeroCreate<float32> voxels

            for t in 0 .. scans - 1 do
                TensorPrimitives.Add(ReadOnlySpan sums, ReadOnlySpan(data, t * voxels, voxels), Span sums)

            let means = sums |> Array.map (fun s -> s / float32 scans)
            apply (means |> Array.map (fun m -> max m 1.0f))
            Array.contains 0.0f means
        | ScaleGrandMean ->
            let mean = grandMean data (voxels * scans)
            apply (Array.create voxels (max mean 1.0f))
            mean = 0.0f

    let sameAffine (a: float[,]) (b: float[,]) =
        let mutable same = true

        for i in 0..3 do
            for j in 0..3 do
                if abs (a[i, j] - b[i, j]) > 1e-6 * (1.0 + abs a[i, j]) then
                    same <- false

        same

    let describe (source: BoldSource) (run: int) =
        match source with
        | BoldFile path -> path
        | BoldVolumes _ -> $"run {run + 1} (in memory)"

    /// Grid, affine and scan count of a run, without reading its data.
    let geometry (run: int) (source: BoldSource) =
        match source with
        | BoldFile path ->
            let h = Nifti.readHeader path
            let s = h.Shape

            if
                s.Length < 4
                || s[3] < 1L
                || (s.Length > 4 && Array.exists (fun x -> x <> 1L) s[4..])
            then
                raise (
                    GlmInputException(path, $"""a run must be a 4D image; this one has shape {String.Join("×", s)}""")
                )

            { X = int s[0]
              Y = int s[1]
              Z = int s[2] },
            h.Affine,
            int s[3],
            h.Datatype = NiftiDatatype.Float32
        | BoldVolumes(shape, affine, volumes) ->
            if volumes.Length = 0 then
                raise (GlmInputException(describe source run, "no volume"))

            match volumes |> Array.tryFindIndex (fun v -> isNull v || v.Length <> shape.Count) with
            | Some t ->
                raise (
                    GlmInputException(describe source run, $"volume {t} does not have the grid's {shape.Count} voxels")
                )
            | None -> ()

            shape, affine, volumes.Length, true

    /// Streams the volumes of a run (Fortran order). A file's volumes all arrive in ONE reused buffer, valid until
    /// the next volume is read: a fresh 64×64×36 array per volume would fill the large-object heap with garbage
    /// (hundreds of MiB for a 300-volume run) before a gen-2 collection returns it.
    let private volumes (source: BoldSource) : seq<float[]> =
        match source with
        | BoldFile path ->
            seq {
                use reader = Nifti.openVolumes path
                let buffer = Array.zeroCreate<float> reader.VoxelsPerVolume

                for _ in 1L .. reader.VolumeCount do
                    reader.ReadNext(Span buffer)
                    yield buffer
            }
        | BoldVolumes(_, _, vs) -> vs |> Seq.map (Array.map float)

    /// The output rows of each scan up to the last kept one (empty: dropped); a scan kept twice has two rows.
    let private rowsOfScans (kept: int[]) : int[][] =
        let rows = Array.init (Array.max kept + 1) (fun _ -> ResizeArray<int>())
        kept |> Array.iteri (fun row t -> rows[t].Add row)
        rows |> Array.map Seq.toArray

    /// A function that smooths a volume as nilearn's masker smooths (float32, FWHM in mm from the affine), or None
    /// when no smoothing is asked for. It reuses two work arrays from call to call: its result is valid until its
    /// next call, and it serves one thread.
    let private smoother (options: FirstLevelOptions) (shape: GridShape) (affine: float[,]) : (float[] -> float[]) option =
        match options.SmoothingFwhm with
        | Some fwhm when fwhm > 0.0 ->
            let voxelSizes =
                Array.init 3 (fun j ->
                    sqrt (
                        affine[0, j] * affine[0, j]
                        + affine[1, j] * affine[1, j]
                        + affine[2, j] * affine[2, j]
                    ))

            let work = Array.zeroCreate shape.Count, Array.zeroCreate shape.Count
            Some(Masking.smoothWith Precision.Single shape voxelSizes [| fwhm; fwhm; fwhm |] work)
        | _ -> None

    /// Reads the masked voxels' values of one run (kept scans only) into one float32 array, time-major (row r of
    /// the kept scans holds the masked voxels at r·masked), volume by volume: smoothing (in float32, as nilearn's
    /// masker smooths a float32 image) happens before masking.
    let loadMasked
        (options: FirstLevelOptions)
        (shape: GridShape)
        (affine: float[,])
        (masked: int[])
        (kept: int[])
        (source: BoldSource)
        =
        let n = kept.Length
        let data = GC.AllocateUninitializedArray<float32>(n * masked.Length)
        let rows = rowsOfScans kept

        let smooth = smoother options shape affine |> Option.defaultValue id

        volumes source
        |> Seq.truncate rows.Length
        |> Seq.iteri (fun t volume ->
            if rows[t].Length > 0 then
                let volume = smooth volume

                for row in rows[t] do
                    let o = row * masked.Length

                    for j in 0 .. masked.Length - 1 do
                        data[o + j] <- float32 volume[masked[j]])

        data

    /// Volumes of the first run read before the candidate voxels are guessed from their mean.
    let private warmVolumes = 8

    /// How far below the guessed threshold a voxel still counts as a candidate, as a fraction of the threshold.
    let private candidateMargin = 0.1

    /// <summary>The first run of a model whose mask is computed, read from its file ONCE (decompressing a run twice
    /// cost more than everything else in the benchmark). The mean image for the mask is accumulated volume by
    /// volume as <c>Masking.meanVolume</c> does; the first <c>warmVolumes</c> volumes are kept whole until their mean
    /// gives a guess of the mask (<c>Masking.epiCandidates</c>), from then on only the candidates' values are kept,
    /// time-major (scan after scan, as the file streams them), in a store sized for them. At the end the mask is
    /// computed from the full mean exactly as in two passes; when every mask voxel is a candidate, the masked
    /// values are compacted to the front of the store and returned. When the guess missed a mask voxel (a run whose
    /// first volumes look unlike the rest), None is returned and the caller reads the run a second time: the
    /// result never depends on the guess.</summary>
    let private readOnceForEpiMask
        (options: FirstLevelOptions)
        (shape: GridShape)
        (affine: float[,])
        (kept: int[])
        (path: string)
        (isSingle: bool)
        : Masking.MaskResult * float32[] option =
        let precision = if isSingle then Precision.Single else Precision.Double
        use reader = Nifti.openVolumes path
        let per = reader.VoxelsPerVolume
        let scans = int reader.VolumeCount
        let n = kept.Length
        let rows = rowsOfScans kept
        let smooth = smoother options shape affine
        let smoothing = smooth.IsSome
        let inParallel = options.Threads > 1
        // float32 files: read as float32 and summed in float32, bit for bit meanVolume's Single rounding (float64
        // holds the sum of two float32 exactly before it is rounded); other types: float64 throughout.
        let raw32 = if isSingle && smoothing then Array.zeroCreate<float32> per else null
        let raw64 = if isSingle && not smoothing then null else Array.zeroCreate<float> per
        let sum32 = if isSingle then Array.zeroCreate<float32> per else null
        let sum64 = if isSingle then null else Array.zeroCreate<float> per
        // The values stored for the GLM (float32, smoothed when asked), in two buffers: volume t is gathered into
        // the store on other threads while volume t + 1 is decompressed into the other buffer.
        let buffers = Array.init 2 (fun _ -> Array.zeroCreate<float32> per)
        let warm = min scans warmVolumes
        let mutable stash = Array.zeroCreate<float32> (warm * per)
        let mutable candidates: int[] = [||]
        let mutable store: float32[] = null

        // Copies volume t's candidate values into their series; two halves of the candidates in parallel, so that
        // the first touch of the store's pages (costly where a host backs memory lazily) is shared by both cores.
        let gather (t: int) (values: float32[]) (offset: int) =
            if t < rows.Length && rows[t].Length > 0 then
                let cs, st = candidates, store

                let part (h: int) =
                    for row in rows[t] do
                        let o = row * cs.Length

                        for j in h * cs.Length / 2 .. (h + 1) * cs.Length / 2 - 1 do
                            st[o + j] <- values[offset + cs[j]]

                if inParallel then
                    System.Threading.Tasks.Parallel.For(0, 2, part) |> ignore
                else
                    part 0
                    part 1

        // the mean image of the first count volumes, rounded as Masking.meanVolume rounds it
        let meanOf (count: int) =
            if isSingle then
                Array.init per (fun i -> float (sum32[i] / float32 count))
            else
                Array.init per (fun i -> sum64[i] / float count)

        let mutable pending: System.Threading.Tasks.Task = null

        let finishPending () =
            if not (isNull pending) then
                pending.Wait()
                pending <- null

        try
            for t in 0 .. scans - 1 do
                let stored = buffers[t % 2]

                if isSingle then
                    let target = if smoothing then raw32 else stored
                    reader.ReadNext(Span target)

                    if t = 0 then
                        Array.blit target 0 sum32 0 per
                    else
                        System.Numerics.Tensors.TensorPrimitives.Add(
                            ReadOnlySpan sum32,
                            ReadOnlySpan target,
                            Span sum32
                        )

                    if smoothing then
                        for i in 0 .. per - 1 do
                            raw64[i] <- float raw32[i]
                else
                    reader.ReadNext(Span raw64)

                    if t = 0 then
                        Array.blit raw64 0 sum64 0 per
                    else
                        for i in 0 .. per - 1 do
                            sum64[i] <- sum64[i] + raw64[i]

                if t < rows.Length && rows[t].Length > 0 then
                    match smooth with
                    | Some smooth ->
                        let s = smooth raw64

                        for i in 0 .. per - 1 do
                            stored[i] <- float32 s[i]
                    | None when not isSingle ->
                        for i in 0 .. per - 1 do
                            stored[i] <- float32 raw64[i]
                    | None -> ()

                if t < warm then
                    Array.blit stored 0 stash (t * per) per
                else
                    finishPending ()

                    if inParallel then
                        pending <- System.Threading.Tasks.Task.Run(fun () -> gather t stored 0)
                    else
                        gather t stored 0

                if t = warm - 1 then
                    match Masking.epiCandidates precision Masking.defaultEpiMaskOptions shape candidateMargin (meanOf warm) with
                    | Some guess ->
                        candidates <-
                            [| for v in 0 .. per - 1 do
                                   if guess[v] then
                                       yield v |]

                        store <- GC.AllocateUninitializedArray<float32>(candidates.Length * n)

                        for w in 0 .. warm - 1 do
                            gather w stash (w * per)
                    | None -> ()

                    stash <- null

            finishPending ()
        finally
            // never leave a gather running on a buffer after an exception
            if not (isNull pending) then
                try
                    pending.Wait()
                with _ ->
                    ()

        let result =
            Masking.computeEpiMask precision Masking.defaultEpiMaskOptions shape (meanOf scans)

        let isCandidate = Array.zeroCreate per

        for v in candidates do
            isCandidate[v] <- true

        if isNull store || Array.exists2 (fun m c -> m && not c) result.Mask isCandidate then
            result, None
        else
            // masked voxels are candidates in the same order: row by row, each run of consecutive masked candidates
            // moves towards the front (never past values still to be moved)
            let runs = ResizeArray<struct (int * int)>()
            let mutable c = 0

            while c < candidates.Length do
                if result.Mask[candidates[c]] then
                    let start = c

                    while c < candidates.Length && result.Mask[candidates[c]] do
                        c <- c + 1

                    runs.Add(struct (start, c - start))
                else
                    c <- c + 1

            let mutable j = 0

            for row in 0 .. n - 1 do
                let o = row * candidates.Length

                for struct (start, length) in runs do
                    Array.Copy(store, o + start, store, j, length)
                    j <- j + length

            result, Some store

    let resolveMask
        (options: FirstLevelOptions)
        (shape: GridShape)
        (affine: float[,])
        (first: BoldSource)
        (firstKept: int[])
        isSingle
        : bool[] * string list * float32[] option =
        match options.Mask with
        | NoMask -> Array.create shape.Count true, [], None
        | MaskArray m ->
            if isNull m || m.Length <> shape.Count then
                raise (
                    GlmInputException(
                        "mask",
                        $"the mask has {(if isNull m then 0 else m.Length)} voxels, the runs' grid {shape.X}×{shape.Y}×{shape.Z} has {shape.Count}"
                    )
                )

            Array.copy m, [], None
        | MaskFile path ->
            let image = Nifti.read path
            let s = image.Header.Shape

            if
                s.Length < 3
                || int s[0] <> shape.X
                || int s[1] <> shape.Y
                || int s[2] <> shape.Z
                || (s.Length > 3 && Array.exists (fun x -> x <> 1L) s[3..])
            then
                raise (
                    GlmInputException(
                        path,
                        $"""the mask's shape {String.Join("×", s)} is not the runs' grid {shape.X}×{shape.Y}×{shape.Z}"""
                    )
                )

            if not (sameAffine image.Header.Affine affine) then
                raise (
                    GlmInputException(
                        path,
                        "the mask's affine differs from the runs' affine (resampling is not supported)"
                    )
                )

            image.Data |> Array.map (fun x -> x <> 0.0), [], None
        | ComputeEpiMask ->
            match first with
            | BoldFile path ->
                let result, data = readOnceForEpiMask options shape affine firstKept path isSingle
                result.Mask, result.Warnings, data
            | BoldVolumes _ ->
                // in memory: two passes cost nothing to read
                let precision = if isSingle then Precision.Single else Precision.Double
                let mean = Masking.meanVolume precision (volumes first)

                let result =
                    Masking.computeEpiMask precision Masking.defaultEpiMaskOptions shape mean

                result.Mask, result.Warnings, None
