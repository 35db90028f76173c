namespace FmriGlm.Core

open System
open System.IO
open System.Numerics.Tensors
open System.Text.Json

/// <summary>Which voxels a first-level model analyses (nilearn <c>mask_img</c>).</summary>
type MaskSource =
    /// <summary>nilearn <c>None</c>: <c>compute_epi_mask</c> on the mean of the first run (NiftiMasker,
    /// mask_strategy "epi"), as FirstLevelModel fits its masker on <c>run_imgs[0]</c>.</summary>
    | ComputeEpiMask
    /// <summary>nilearn <c>False</c>: every voxel of the grid.</summary>
    | NoMask
    /// <summary>A mask image file on the runs' grid (non-zero = in the mask).</summary>
    | MaskFile of path: string
    /// <summary>A mask over the runs' grid, Fortran order (true = in the mask).</summary>
    | MaskArray of mask: bool[]

/// <summary>nilearn's <c>signal_scaling</c>: what <c>mean_scaling</c> divides each voxel's series by.</summary>
type SignalScaling =
    /// <summary><c>0</c> (default): each voxel by its own mean over time, <c>100·(Y/max(mean, 1) − 1)</c>.</summary>
    | ScaleVoxelMeans
    /// <summary><c>(0, 1)</c>: every voxel by the grand mean of the run.</summary>
    | ScaleGrandMean
    /// <summary><c>False</c>: the data stay in raw units.</summary>
    | NoScaling

/// <summary>Settings of a first-level model; names and defaults are nilearn's <c>FirstLevelModel</c>'s.</summary>
[<NoEquality; NoComparison>]
type FirstLevelOptions =
    {
        /// <summary>Repetition time in seconds (nilearn <c>t_r</c>); needed to build designs from events.</summary>
        TR: float option
        /// <summary>Fraction of the TR at which the model is sampled (nilearn <c>slice_time_ref</c>, default 0).</summary>
        SliceTimeRef: float
        /// <summary>HRF model (nilearn <c>hrf_model</c>, default glover; <c>fir_delays</c> live in <c>Fir</c>).</summary>
        HrfModel: Hrf.HrfModel
        /// <summary>Drift model with its <c>high_pass</c> (Hz) or <c>drift_order</c> (default cosine, 0.01 Hz).</summary>
        DriftModel: DriftModel
        /// <summary>Start of the oversampled grid before the first scan, in seconds (nilearn <c>min_onset</c>, −24).</summary>
        MinOnset: float
        /// <summary>Mask (nilearn <c>mask_img</c>, default None = computed).</summary>
        Mask: MaskSource
        /// <summary>Gaussian smoothing FWHM in mm, applied to each volume before masking (nilearn
        /// <c>smoothing_fwhm</c>, default None).</summary>
        SmoothingFwhm: float option
        /// <summary>Signal scaling (nilearn <c>signal_scaling</c>, default 0).</summary>
        SignalScaling: SignalScaling
        /// <summary>nilearn <c>standardize</c>: accepted and ignored, since nilearn 0.13.1's fit resets it to False
        /// for every accepted signal_scaling (see docs/first-level.md).</summary>
        Standardize: bool
        /// <summary>Noise model (nilearn <c>noise_model</c>, default "ar1").</summary>
        NoiseModel: NoiseModel
        /// <summary>AR(1) bins / AR(p) clusters (nilearn <c>fit(bins=100)</c>).</summary>
        Bins: int
        /// <summary>Seed of the AR(p ≥ 2) clustering (nilearn <c>random_state</c>).</summary>
        RandomState: int
        /// <summary>Drop residuals, predicted values and R² (nilearn <c>minimize_memory</c>, default true).</summary>
        MinimizeMemory: bool
        /// <summary>Threads (nilearn <c>n_jobs</c>); results do not depend on it.</summary>
        Threads: int
    }

/// <summary>The BOLD data of one run: a 4D NIfTI file (streamed) or volumes in memory.</summary>
type BoldSource =
    /// <summary>A 4D .nii or .nii.gz file.</summary>
    | BoldFile of path: string
    /// <summary>Volumes in memory: grid, 4×4 affine, and one float32 array per scan (Fortran order).</summary>
    | BoldVolumes of shape: GridShape * affine: float[,] * volumes: float32[][]

/// <summary>One run's inputs (nilearn fit's <c>run_imgs[i]</c>, <c>events[i]</c>, <c>confounds[i]</c>,
/// <c>design_matrices[i]</c>, <c>sample_masks[i]</c>).</summary>
[<NoEquality; NoComparison>]
type RunInput =
    {
        /// <summary>The BOLD series.</summary>
        Bold: BoldSource
        /// <summary>The paradigm; needs <c>TR</c>. Ignored when <c>DesignMatrix</c> is given.</summary>
        Events: Events option
        /// <summary>Confound names and values (scans × confounds), added to the design after the conditions.</summary>
        Confounds: (string[] * float[,]) option
        /// <summary>A design given directly (one row per scan); events and confounds are then not used.</summary>
        DesignMatrix: DesignMatrix option
        /// <summary>Indices of the scans kept (nilearn <c>sample_masks</c>, scrubbing); None keeps all.</summary>
        SampleMask: int[] option
    }

/// <summary>One run's fit: the design used and the GLM over the masked voxels.</summary>
[<NoEquality; NoComparison>]
type RunFit =
    {
        /// <summary>The design used (rows kept by the sample mask only), nilearn <c>design_matrices_[i]</c>.</summary>
        Design: DesignMatrix
        /// <summary>The GLM over the masked voxels (voxels in Fortran order of the grid).</summary>
        Glm: GlmFit
    }

/// <summary>A fitted first-level model (nilearn's fitted FirstLevelModel).</summary>
[<NoEquality; NoComparison>]
type FirstLevelFit =
    {
        /// <summary>The options of the fit.</summary>
        Options: FirstLevelOptions
        /// <summary>The runs' grid.</summary>
        Shape: GridShape
        /// <summary>The runs' 4×4 affine.</summary>
        Affine: float[,]
        /// <summary>The mask used (nilearn <c>masker_.mask_img_</c>), Fortran order.</summary>
        Mask: bool[]
        /// <summary>Fortran index of each masked voxel, increasing: the voxel order of every GLM.</summary>
        MaskedIndices: int[]
        /// <summary>One fit per run.</summary>
        Runs: RunFit[]
        /// <summary>What nilearn would warn about, in words.</summary>
        Warnings: string list
    }

/// <summary>A contrast definition (nilearn <c>contrast_def</c>): an expression over design columns, or weights
/// (one row for a t contrast, several for F).</summary>
type ContrastDefinition =
    /// <summary>"face - house": an expression over the design's column names.</summary>
    | Expression of text: string
    /// <summary>Weights, rows × design columns.</summary>
    | Weights of weights: float[,]

/// <summary>nilearn's <c>output_type</c> of <c>compute_contrast</c>.</summary>
type OutputType =
    /// <summary>"z_score".</summary>
    | ZScore
    /// <summary>"stat": t or F.</summary>
    | Stat
    /// <summary>"p_value".</summary>
    | PValue
    /// <summary>"effect_size" (one volume per row of an F contrast).</summary>
    | EffectSize
    /// <summary>"effect_variance".</summary>
    | EffectVariance

/// <summary>A contrast of a first-level model with the warnings nilearn emits while computing it.</summary>
[<NoEquality; NoComparison>]
type FirstLevelContrast =
    {
        /// <summary>Fixed-effects contrast over the runs (masked voxels).</summary>
        Contrast: Contrast
        /// <summary>Warnings in words.</summary>
        Warnings: string list
    }

/// <summary>nilearn's <c>FirstLevelModel</c>: from BOLD runs, events and confounds to statistical maps.</summary>
module FirstLevel =

    /// <summary>nilearn's defaults: no TR, slice_time_ref 0, glover, cosine 0.01 Hz, min_onset −24, computed
    /// mask, no smoothing, signal_scaling 0, ar1 with 100 bins, minimize_memory, every core.</summary>
    let defaults =
        { TR = None
          SliceTimeRef = 0.0
          HrfModel = Hrf.Glover
          DriftModel = Cosine 0.01
          MinOnset = -24.0
          Mask = ComputeEpiMask
          SmoothingFwhm = None
          SignalScaling = ScaleVoxelMeans
          Standardize = false
          NoiseModel = Ar 1
          Bins = 100
          RandomState = 0
          MinimizeMemory = true
          Threads = Environment.ProcessorCount }

    /// <summary>A run from files: BOLD, optional events and confounds TSV (all confound columns, or those named).</summary>
    /// <exception cref="GlmInputException">A table cannot be read.</exception>
    let runFromFiles
        (bold: string)
        (events: string option)
        (confounds: string option)
        (confoundColumns: string[] option)
        =
        { Bold = BoldFile bold
          Events = events |> Option.map (Tables.readEvents >> fst)
          Confounds = confounds |> Option.map (fun c -> Tables.readConfounds c confoundColumns)
          DesignMatrix = None
          SampleMask = None }

    // ---------------------------------------------------------------- pure parts

    /// The mean of the first count values of a float32 array: numpy sums the whole array pairwise; a float64 sum
    /// rounded once is as close as numpy gets.
    let private grandMean (data: float32[]) (count: int) =
        let mutable s = 0.0

        for k in 0 .. count - 1 do
            s <- s + float data[k]

        float32 (s / float count)

    /// <summary>nilearn's <c>mean_scaling</c> in float32 as numpy runs it on the masker's float32 output, in place
    /// on a scans × voxels column-major array. Per voxel: mean accumulated scan by scan in float32 (numpy's
    /// reduction over axis 0), <c>100·(Y/max(mean, 1) − 1)</c> rounded to float32 at each step.</summary>
    /// <returns>True when some mean is 0 (nilearn warns that the data were probably centred).</returns>
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
    let internal scaleTimeMajor (scaling: SignalScaling) (scans: int) (voxels: int) (data: float32[]) : bool =
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

    /// <summary>Checks a sample mask (kept scan indices) against the run's scan count.</summary>
    /// <exception cref="GlmInputException">An index outside 0 .. scans − 1, or no scan kept.</exception>
    let checkSampleMask (input: string) (scans: int) (kept: int[]) : unit =
        if kept.Length = 0 then
            raise (GlmInputException(input, "the sample mask keeps no scan"))

        match kept |> Array.tryFind (fun i -> i < 0 || i >= scans) with
        | Some i -> raise (GlmInputException(input, $"sample mask index {i} is outside the run's {scans} scans"))
        | None -> ()

    /// <summary>Rows of a design kept by a sample mask (nilearn <c>design.iloc[sample_mask, :]</c>).</summary>
    let subsetRows (kept: int[]) (design: DesignMatrix) : DesignMatrix =
        let p = Array2D.length2 design.Values

        { design with
            Values = Array2D.init kept.Length p (fun i j -> design.Values[kept[i], j]) }

    /// <summary>nilearn's <c>_clean_contrast_name</c>: "-" → "Minus", "+" → "Plus", "&gt;" → "Gt", "&lt;" → "Lt",
    /// "_" → space, then camelCase (first word lower case, later words title-cased) and only letters and digits.</summary>
    let contrastFileName (name: string) : string =
        let spaced =
            name
                .Replace("-", " Minus ")
                .Replace("+", " Plus ")
                .Replace(">", " Gt ")
                .Replace("<", " Lt ")
                .Replace("_", " ")

        let title (w: string) =
            // Python's str.title: upper case after a non-letter, lower case after a letter.
            let chars = w.ToCharArray()
            let mutable previousLetter = false

            for i in 0 .. chars.Length - 1 do
                let c = chars[i]

                chars[i] <-
                    (if previousLetter then
                         Char.ToLowerInvariant c
                     else
                         Char.ToUpperInvariant c)

                previousLetter <- Char.IsLetter c

            String chars

        let words = spaced.Split ' '

        let camel =
            words
            |> Array.mapi (fun i w -> if i = 0 then w.ToLowerInvariant() else title w)
            |> String.concat " "

        String(camel.ToCharArray() |> Array.filter Char.IsLetterOrDigit)

    /// <summary>The BIDS-derivative code nilearn's <c>save_glm_to_bids</c> gives an output:
    /// z, t or F, p, effect, variance.</summary>
    let statCode (statType: StatType) (output: OutputType) : string =
        match output with
        | ZScore -> "z"
        | Stat ->
            match statType with
            | T -> "t"
            | F
            | TminConjunction -> "F"
        | PValue -> "p"
        | EffectSize -> "effect"
        | EffectVariance -> "variance"

    /// <summary>nilearn's spelling of an output type.</summary>
    let outputName (output: OutputType) : string =
        match output with
        | ZScore -> "z_score"
        | Stat -> "stat"
        | PValue -> "p_value"
        | EffectSize -> "effect_size"
        | EffectVariance -> "effect_variance"

    /// <summary>Parses nilearn's spelling of an output type; "all" gives every one.</summary>
    let parseOutputType (text: string) : Result<OutputType list, string list> =
        match text with
        | "z_score" -> Ok [ ZScore ]
        | "stat" -> Ok [ Stat ]
        | "p_value" -> Ok [ PValue ]
        | "effect_size" -> Ok [ EffectSize ]
        | "effect_variance" -> Ok [ EffectVariance ]
        | "all" -> Ok [ ZScore; Stat; PValue; EffectSize; EffectVariance ]
        | _ -> Error [ "z_score"; "stat"; "p_value"; "effect_size"; "effect_variance"; "all" ]

    /// <summary>Parses a noise model as nilearn spells it ("ols", "ar1", "ar2", …) or one of the extras
    /// (<c>Regression.parseNoiseModel</c>).</summary>
    let parseNoiseModel (text: string) : Result<NoiseModel, string> = Regression.parseNoiseModel text

    // ---------------------------------------------------------------- reading runs

    let private sameAffine (a: float[,]) (b: float[,]) =
        let mutable same = true

        for i in 0..3 do
            for j in 0..3 do
                if abs (a[i, j] - b[i, j]) > 1e-6 * (1.0 + abs a[i, j]) then
                    same <- false

        same

    let private describe (source: BoldSource) (run: int) =
        match source with
        | BoldFile path -> path
        | BoldVolumes _ -> $"run {run + 1} (in memory)"

    /// Grid, affine and scan count of a run, without reading its data.
    let private geometry (run: int) (source: BoldSource) =
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
    let private loadMasked
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

    let private resolveMask
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

    // ---------------------------------------------------------------- fit

    /// <summary>Fits the model to one or more runs on the same grid, as nilearn's <c>FirstLevelModel.fit</c>:
    /// the mask (given, computed on the first run, or none), per run the design (built from events and confounds
    /// on frame times linspace(slice_time_ref·t_r, (n − 1 + slice_time_ref)·t_r, n), or given), its rows kept by
    /// the sample mask, the masked data (smoothed first when asked) read as one float32 copy, signal scaling, and
    /// the GLM (<see cref="M:FmriGlm.Core.Regression.fit"/>).</summary>
    /// <exception cref="GlmInputException">No run; runs on different grids or affines; events without TR; tables
    /// with the wrong number of rows; a mask on another grid or empty; NaN in the masked data; fewer kept scans
    /// than design columns.</exception>
    let fit (options: FirstLevelOptions) (runs: RunInput list) : FirstLevelFit =
        if List.isEmpty runs then
            raise (GlmInputException("runs", "no run given"))

        if options.Bins < 1 then
            raise (GlmInputException("bins", $"must be at least 1, not {options.Bins}"))

        if
            options.SmoothingFwhm
            |> Option.exists (fun f -> not (f >= 0.0) || Double.IsInfinity f)
        then
            raise (
                GlmInputException(
                    "smoothing_fwhm",
                    $"must be a non-negative number of mm, not {options.SmoothingFwhm.Value}"
                )
            )

        let runs = Array.ofList runs
        let geometries = runs |> Array.mapi (fun i r -> geometry i r.Bold)
        let shape, affine, _, isSingle = geometries[0]

        geometries
        |> Array.iteri (fun i (s, a, _, _) ->
            if s <> shape then
                raise (
                    GlmInputException(
                        describe runs[i].Bold i,
                        $"grid {s.X}×{s.Y}×{s.Z} differs from the first run's {shape.X}×{shape.Y}×{shape.Z}"
                    )
                )

            if not (sameAffine a affine) then
                raise (GlmInputException(describe runs[i].Bold i, "affine differs from the first run's")))

        // Every table is checked before any data is read; the designs themselves (which need no data) are built on
        // another thread while the first run is read, and their errors raised once it is.
        let recipes =
            runs
            |> Array.mapi (fun i run ->
                let _, _, scans, _ = geometries[i]
                let name = describe run.Bold i

                let build: unit -> DesignMatrix * string list =
                    match run.DesignMatrix with
                    | Some d ->
                        if Array2D.length1 d.Values <> scans then
                            raise (
                                GlmInputException(
                                    $"design matrix of run {i + 1}",
                                    $"{Array2D.length1 d.Values} rows for {scans} scans of {name}"
                                )
                            )

                        fun () -> d, []
                    | None ->
                        let tr =
                            match options.TR with
                            | Some tr when tr > 0.0 && Double.IsFinite tr -> tr
                            | Some tr ->
                                raise (GlmInputException("t_r", $"must be a positive number of seconds, not {tr}"))
                            | None ->
                                raise (
                                    GlmInputException(
                                        "t_r",
                                        "not given: it is needed to compute the design from events"
                                    )
                                )

                        let events =
                            match run.Events with
                            | Some e -> e
                            | None ->
                                raise (
                                    GlmInputException(
                                        $"events of run {i + 1}",
                                        "events or a design matrix must be given"
                                    )
                                )

                        let addRegs, addNames =
                            match run.Confounds with
                            | None -> None, None
                            | Some(names, values) ->
                                if Array2D.length1 values <> scans then
                                    raise (
                                        GlmInputException(
                                            $"confounds of run {i + 1}",
                                            $"{Array2D.length1 values} rows for {scans} scans of {name}"
                                        )
                                    )

                                for r in 0 .. Array2D.length1 values - 1 do
                                    for c in 0 .. names.Length - 1 do
                                        if not (Double.IsFinite values[r, c]) then
                                            raise (
                                                GlmInputException(
                                                    $"confounds of run {i + 1}, row {r + 1}, column '{names[c]}'",
                                                    $"value {values[r, c]} (fill n/a before fitting, e.g. with 0 for derivative columns)"
                                                )
                                            )

                                Some values, Some names

                        let frameTimes = DesignMatrix.frameTimes scans tr options.SliceTimeRef

                        fun () ->
                            let d, w =
                                DesignMatrix.makeFirstLevel
                                    frameTimes
                                    (Some events)
                                    { DesignMatrix.defaults with
                                        HrfModel = options.HrfModel
                                        DriftModel = options.DriftModel
                                        AddRegs = addRegs
                                        AddRegNames = addNames
                                        MinOnset = options.MinOnset }

                            d, List.map DesignMatrix.describe w

                let kept =
                    match run.SampleMask with
                    | Some k ->
                        checkSampleMask $"sample mask of run {i + 1}" scans k
                        k
                    | None -> Array.init scans id

                let designOf () =
                    let design, w = build ()
                    let design = if run.SampleMask.IsSome then subsetRows kept design else design
                    let p = design.ColumnNames.Length

                    if kept.Length <= p then
                        raise (GlmInputException(name, $"{kept.Length} scans are too few for {p} design columns"))

                    design, w

                kept, designOf)

        let designs =
            System.Threading.Tasks.Task.Run(fun () -> recipes |> Array.map (fun (_, designOf) -> designOf ()))


        // A computed mask reads the first run once, keeping its series on the way (readOnceForEpiMask).
        let mask, maskWarnings, firstData =
            resolveMask options shape affine runs[0].Bold (fst recipes[0]) isSingle

        // a design's error surfaces here, as it was raised (GetResult does not wrap it)
        let prepared = designs.GetAwaiter().GetResult()
        let warnings = ResizeArray<string>(maskWarnings)

        for _, w in prepared do
            warnings.AddRange w

        let masked =
            [| for v in 0 .. mask.Length - 1 do
                   if mask[v] then
                       yield v |]

        if masked.Length = 0 then
            raise (GlmInputException("mask", "the mask is empty: no voxel to analyse"))

        let fits =
            runs
            |> Array.mapi (fun i run ->
                let design, _ = prepared[i]
                let kept = fst recipes[i]
                let name = describe run.Bold i

                let data =
                    match firstData with
                    | Some d when i = 0 -> d
                    | _ -> loadMasked options shape affine masked kept run.Bold

                // the store of the first run may be longer than the masked series at its front
                let values = ReadOnlySpan(data, 0, masked.Length * kept.Length)

                // NaN and ±∞ make the sum non-finite (so can a huge finite sum: then the search finds nothing)
                let nonFinite =
                    if Single.IsFinite(System.Numerics.Tensors.TensorPrimitives.Sum values) then
                        -1
                    else
                        values.IndexOfAnyExceptInRange(Single.MinValue, Single.MaxValue)

                match (if nonFinite >= 0 then Some nonFinite else None) with
                | Some k ->
                    let v = masked[k % masked.Length]
                    let x, y, z = v % shape.X, (v / shape.X) % shape.Y, v / (shape.X * shape.Y)

                    raise (
                        GlmInputException(
                            name,
                            $"voxel ({x}, {y}, {z}) has a non-finite value at scan {kept[k / masked.Length]}"
                        )
                    )
                | None -> ()

                if scaleTimeMajor options.SignalScaling kept.Length masked.Length data then
                    warnings.Add
                        "Mean values of 0 observed. The data have probably been centered. Scaling might not work as expected"

                let glm =
                    Regression.fitPrefix
                        { GlmOptions.defaults with
                            NoiseModel = options.NoiseModel
                            Bins = options.Bins
                            RandomState = options.RandomState
                            Threads = max 1 options.Threads
                            KeepDiagnostics = not options.MinimizeMemory }
                        design.Values
                        (Float32 data)
                        true
                        masked.Length

                { Design = design; Glm = glm })

        { Options = options
          Shape = shape
          Affine = affine
          Mask = mask
          MaskedIndices = masked
          Runs = fits
          Warnings = List.ofSeq warnings }

    /// <summary>The ROI GLM of nilearn's <c>run_glm</c> on a time-by-region table (one column per region, one
    /// row per scan), with the design built as for images (or given) and the options' signal scaling.</summary>
    /// <returns>A fit whose "grid" is regions × 1 × 1 with an identity affine and every region in the mask.</returns>
    /// <exception cref="GlmInputException">As <see cref="fit"/>, for the table.</exception>
    let fitSignals (options: FirstLevelOptions) (signals: float[,]) (run: RunInput) : FirstLevelFit =
        let scans, regions = Array2D.length1 signals, Array2D.length2 signals

        if scans < 2 || regions < 1 then
            raise (
                GlmInputException(
                    "signals",
                    $"need at least 2 rows (scans) and 1 column (region), got {scans} × {regions}"
                )
            )

        let shape = { X = regions; Y = 1; Z = 1 }
        let affine = Array2D.init 4 4 (fun i j -> if i = j then 1.0 else 0.0)

        let volumes =
            Array.init scans (fun t -> Array.init regions (fun r -> float32 signals[t, r]))

        fit
            { options with
                Mask = NoMask
                SmoothingFwhm = None }
            [ { run with
                  Bold = BoldVolumes(shape, affine, volumes) } ]

    // ---------------------------------------------------------------- contrasts

    /// <summary>nilearn's <c>compute_contrast</c>: one definition for every run or one per run; expressions
    /// evaluated over each run's columns; null run contrasts skipped; the run contrasts summed and divided by
    /// their number (fixed effects, <c>compute_fixed_effect_contrast</c>). Stat type: t for one row, F otherwise,
    /// unless given.</summary>
    /// <exception cref="GlmInputException">A wrong number of definitions, an expression naming an unknown column,
    /// weights not matching the design columns, or every run's contrast null.</exception>
    let computeContrast
        (fit: FirstLevelFit)
        (definitions: ContrastDefinition list)
        (statType: StatType option)
        : FirstLevelContrast =
        let nRuns = fit.Runs.Length
        let warnings = ResizeArray<string>()

        let defs =
            match definitions with
            | [] -> raise (GlmInputException("contrast", "no contrast definition"))
            | [ d ] when nRuns > 1 ->
                warnings.Add $"One contrast given, assuming it for all {nRuns} runs"
                List.replicate nRuns d
            | ds when ds.Length <> nRuns ->
                raise (GlmInputException("contrast", $"{ds.Length} contrast definitions for {nRuns} runs"))
            | ds -> ds

        let weights =
            defs
            |> List.mapi (fun i d ->
                let columns = fit.Runs[i].Design.ColumnNames

                match d with
                | Expression text ->
                    match ContrastExpression.parse (List.ofArray columns) text with
                    | Ok w -> Array2D.init 1 w.Length (fun _ j -> w[j])
                    | Error e -> raise (GlmInputException($"contrast '{text}'", e.Message))
                | Weights w ->
                    if isNull w || Array2D.length1 w < 1 || Array2D.length2 w <> columns.Length then
                        let c = if isNull w then 0 else Array2D.length2 w

                        raise (
                            GlmInputException(
                                "contrast",
                                $"{c} weights for the {columns.Length} design columns of run {i + 1}"
                            )
                        )

                    w)

        let runContrasts =
            weights
            |> List.mapi (fun i w ->
                if w |> Seq.cast<float> |> Seq.forall ((=) 0.0) then
                    warnings.Add $"Contrast for run {i} is null."
                    None
                else
                    let st = statType |> Option.defaultValue (if Array2D.length1 w = 1 then T else F)

                    Some(Contrast.compute fit.Runs[i].Glm w st))
            |> List.choose id

        if List.isEmpty runContrasts then
            raise (GlmInputException("contrast", "All contrasts provided were null contrasts."))

        let combined = Contrast.fixedEffects runContrasts

        if runContrasts.Length > 1 && Contrast.statType combined = F then
            warnings.Add "Running approximate fixed effects on F statistics."

        { Contrast = combined
          Warnings = List.ofSeq warnings }

    /// <summary>Puts masked values (count × masked voxels, row-major) back on the grid, 0 outside the mask.</summary>
    let unmask (fit: FirstLevelFit) (values: float[]) : float[] =
        let m = fit.MaskedIndices.Length

        if values.Length % m <> 0 then
            invalidArg (nameof values) $"{values.Length} values are not whole maps of {m} masked voxels"

        let count = values.Length / m
        let grid = fit.Shape.Count
        let out = Array.zeroCreate (count * grid)

        for c in 0 .. count - 1 do
            for j in 0 .. m - 1 do
                out[c * grid + fit.MaskedIndices[j]] <- values[c * m + j]

        out

    /// <summary>One output of a contrast over the masked voxels (row-major volumes for a multi-row effect),
    /// with nilearn's conventions: baseline 0, z from p as nilearn's <c>z_score</c>.</summary>
    let maskedOutput (contrast: FirstLevelContrast) (output: OutputType) : float[] =
        let c = contrast.Contrast

        match output with
        | ZScore -> Contrast.zScoreWith Nilearn 0.0 c
        | Stat -> Contrast.stat 0.0 c
        | PValue -> Contrast.pValue 0.0 c
        | EffectSize -> Contrast.effectSize c
        | EffectVariance -> Contrast.effectVariance c

    /// <summary>One output of a contrast on the grid, volumes in Fortran order, 0 outside the mask
    /// (nilearn's <c>masker_.inverse_transform</c>).</summary>
    let outputImage (fit: FirstLevelFit) (contrast: FirstLevelContrast) (output: OutputType) : float[] =
        unmask fit (maskedOutput contrast output)

    /// Scans × voxels column-major → volumes (row-major over voxels).
    let private transposeSeries (scans: int) (voxels: int) (series: float[]) =
        Array.init (scans * voxels) (fun k -> series[(k % voxels) * scans + k / voxels])

    /// <summary>Residuals of run <c>run</c> on the grid (scans volumes); needs <c>MinimizeMemory = false</c>.</summary>
    /// <exception cref="InvalidOperationException">The fit kept no diagnostics.</exception>
    let residuals (fit: FirstLevelFit) (run: int) : float[] =
        let g = fit.Runs[run].Glm

        match g.Diagnostics with
        | Some d -> unmask fit (transposeSeries g.Scans g.Voxels d.Residuals)
        | None -> invalidOp "the model was fitted with MinimizeMemory = true: no residuals kept"

    /// <summary>Predicted values of run <c>run</c> on the grid; needs <c>MinimizeMemory = false</c>.</summary>
    /// <exception cref="InvalidOperationException">The fit kept no diagnostics.</exception>
    let predicted (fit: FirstLevelFit) (run: int) : float[] =
        let g = fit.Runs[run].Glm

        match g.Diagnostics with
        | Some d -> unmask fit (transposeSeries g.Scans g.Voxels d.Predicted)
        | None -> invalidOp "the model was fitted with MinimizeMemory = true: no predicted values kept"

    /// <summary>R² of run <c>run</c> on the grid; needs <c>MinimizeMemory = false</c>.</summary>
    /// <exception cref="InvalidOperationException">The fit kept no diagnostics.</exception>
    let rSquare (fit: FirstLevelFit) (run: int) : float[] =
        match fit.Runs[run].Glm.Diagnostics with
        | Some d -> unmask fit d.RSquare
        | None -> invalidOp "the model was fitted with MinimizeMemory = true: no R² kept"

    // ---------------------------------------------------------------- writing

    let private noiseName (m: NoiseModel) =
        match m with
        | Ols -> "ols"
        | Ar o -> $"ar{o}"
        | Ar1Exact -> "ar1-exact"
        | NipyAr1 -> "nipy-ar1"
        | Ar1BiasCorrected -> "ar1-bias-corrected"

    let private writeParameters (path: string) (fit: FirstLevelFit) =
        use stream = File.Create path
        use w = new Utf8JsonWriter(stream, JsonWriterOptions(Indented = true))
        let o = fit.Options
        w.WriteStartObject()

        match o.TR with
        | Some tr -> w.WriteNumber("t_r", tr)
        | None -> w.WriteNull "t_r"

        w.WriteNumber("slice_time_ref", o.SliceTimeRef)

        w.WriteString(
            "hrf_model",
            match o.HrfModel with
            | Hrf.Spm -> "spm"
            | Hrf.SpmDerivative -> "spm + derivative"
            | Hrf.SpmDerivativeDispersion -> "spm + derivative + dispersion"
            | Hrf.Glover -> "glover"
            | Hrf.GloverDerivative -> "glover + derivative"
            | Hrf.GloverDerivativeDispersion -> "glover + derivative + dispersion"
            | Hrf.Fir _ -> "fir"
            | Hrf.Custom(name, _) -> name
            | Hrf.NoHrf -> "none"
        )

        match o.HrfModel with
        | Hrf.Fir delays ->
            w.WriteStartArray "fir_delays"
            delays |> Array.iter w.WriteNumberValue
            w.WriteEndArray()
        | _ -> ()

        match o.DriftModel with
        | Cosine hp ->
            w.WriteString("drift_model", "cosine")
            w.WriteNumber("high_pass", hp)
        | Polynomial order ->
            w.WriteString("drift_model", "polynomial")
            w.WriteNumber("drift_order", order)
        | NoDrift -> w.WriteNull "drift_model"

        w.WriteNumber("min_onset", o.MinOnset)

        match o.SmoothingFwhm with
        | Some f -> w.WriteNumber("smoothing_fwhm", f)
        | None -> w.WriteNull "smoothing_fwhm"

        w.WriteString(
            "signal_scaling",
            match o.SignalScaling with
            | ScaleVoxelMeans -> "0"
            | ScaleGrandMean -> "(0, 1)"
            | NoScaling -> "False"
        )

        w.WriteString("noise_model", noiseName o.NoiseModel)
        w.WriteNumber("bins", o.Bins)
        w.WriteBoolean("minimize_memory", o.MinimizeMemory)
        w.WriteNumber("n_runs", fit.Runs.Length)
        w.WriteNumber("n_voxels_in_mask", fit.MaskedIndices.Length)
        w.WriteEndObject()

    /// <summary>Writes a fit's outputs with nilearn's BIDS-derivative names into <c>directory</c>: per contrast and
    /// output <c>contrast-&lt;camelCaseName&gt;_stat-&lt;z|t|F|p|effect|variance&gt;_statmap.nii.gz</c> (float64),
    /// <c>mask.nii.gz</c>, <c>design.tsv</c> (<c>run-&lt;i&gt;_design.tsv</c> for several runs), <c>statmap.json</c>
    /// with the model's parameters and, when kept, <c>[run-&lt;i&gt;_]stat-rSquare_statmap.nii.gz</c>,
    /// <c>stat-errorts_timeseries.nii.gz</c> and <c>stat-predicted_timeseries.nii.gz</c>. Everything goes into a
    /// temporary folder beside <c>directory</c>, renamed at the end: a failure leaves no partial output folder.</summary>
    /// <exception cref="GlmInputException">The directory exists and is not empty, or cannot be written.</exception>
    let writeOutputs
        (directory: string)
        (fit: FirstLevelFit)
        (contrasts: (string * FirstLevelContrast) list)
        (outputs: OutputType list)
        =
        let target = Path.GetFullPath directory

        if
            Directory.Exists target
            && not (Seq.isEmpty (Directory.EnumerateFileSystemEntries target))
        then
            raise (GlmInputException(directory, "the output directory exists and is not empty"))

        if File.Exists target then
            raise (GlmInputException(directory, "is a file, not a directory"))

        let parent = Path.GetDirectoryName target

        let temp =
            Path.Combine(parent, $".{Path.GetFileName target}.tmp-{Guid.NewGuid():N}")

        try
            try
                Directory.CreateDirectory temp |> ignore
            with
            | :? IOException
            | :? UnauthorizedAccessException as e ->
                raise (GlmInputException(directory, $"cannot be written: {e.Message}"))

            let s = fit.Shape

            let options3d =
                { Nifti.writeOptions [| int64 s.X; int64 s.Y; int64 s.Z |] fit.Affine with
                    Datatype = NiftiDatatype.Float64 }

            // a 3D image for one volume, 4D for several
            let optionsFor (count: int) =
                if count = 1 then
                    options3d
                else
                    { options3d with
                        Shape = [| int64 s.X; int64 s.Y; int64 s.Z; int64 count |] }

            let write name (values: float[]) =
                Nifti.write (Path.Combine(temp, name)) (optionsFor (values.Length / s.Count)) values

            Nifti.write
                (Path.Combine(temp, "mask.nii.gz"))
                { options3d with
                    Datatype = NiftiDatatype.UInt8 }
                (fit.Mask |> Array.map (fun b -> if b then 1.0 else 0.0))

            let runPrefix i =
                if fit.Runs.Length = 1 then "" else $"run-{i + 1}_"

            fit.Runs
            |> Array.iteri (fun i r -> Tables.writeDesign (Path.Combine(temp, $"{runPrefix i}design.tsv")) r.Design)

            writeParameters (Path.Combine(temp, "statmap.json")) fit

            // each map is computed and compressed on its own thread (p and z need incomplete beta functions per
            // voxel; gzip is single-threaded per file); every map is written by one thread, so files do not
            // depend on the thread count
            // z and p maps of a contrast share their costly tail probabilities, computed once by whichever job
            // needs them first
            let jobs =
                [| for name, c in contrasts do
                       let tails =
                           lazy (Contrast.tails 0.0 c.Contrast)

                       for output in outputs do
                           yield name, c, tails, output |]

            let values (c: FirstLevelContrast) (tails: Lazy<struct (float * float)[]>) output =
                match output with
                | ZScore -> Contrast.zScoreOfTails Nilearn tails.Value
                | PValue -> Contrast.pValueOfTails tails.Value
                | _ -> maskedOutput c output

            // masked values go onto the grid one volume at a time, through a pooled volume
            let writeMasked name (values: float[]) =
                let m = fit.MaskedIndices.Length
                let count = values.Length / m
                let grid = Buffers.ArrayPool<float>.Shared.Rent s.Count

                try
                    use writer = Nifti.createWriter (Path.Combine(temp, name)) (optionsFor count)

                    for c in 0 .. count - 1 do
                        Array.Clear(grid, 0, s.Count)

                        for j in 0 .. m - 1 do
                            grid[fit.MaskedIndices[j]] <- values[c * m + j]

                        writer.WriteVolume(ReadOnlySpan(grid, 0, s.Count))

                    writer.Complete()
                finally
                    Buffers.ArrayPool<float>.Shared.Return grid

            System.Threading.Tasks.Parallel.ForEach(
                jobs,
                System.Threading.Tasks.ParallelOptions(MaxDegreeOfParallelism = max 1 fit.Options.Threads),
                fun (name, c, tails, output) ->
                    let st = Contrast.statType c.Contrast

                    writeMasked
                        $"contrast-{contrastFileName name}_stat-{statCode st output}_statmap.nii.gz"
                        (values c tails output)
            )
            |> ignore

            if not fit.Options.MinimizeMemory then
                for i in 0 .. fit.Runs.Length - 1 do
                    write $"{runPrefix i}stat-rSquare_statmap.nii.gz" (rSquare fit i)
                    write $"{runPrefix i}stat-errorts_timeseries.nii.gz" (residuals fit i)
                    write $"{runPrefix i}stat-predicted_timeseries.nii.gz" (predicted fit i)

            if Directory.Exists target then
                Directory.Delete target

            Directory.Move(temp, target)
        finally
            if Directory.Exists temp then
                Directory.Delete(temp, true)
