namespace FmriGlm.Core

open System

/// <summary>Subject maps read and masked as nilearn's <c>SecondLevelModel.fit</c> and
/// <c>non_parametric_inference</c> do: one volume per subject, the mask given or computed, smoothing optional.</summary>
type SecondLevelInput =
    {
        /// The grid of the maps.
        Shape: GridShape
        /// Voxel → mm affine of the first map.
        Affine: float[,]
        /// The mask, Fortran order.
        Mask: bool[]
        /// Masked voxels and where they sit in the grid.
        Grid: MaskedGrid
        /// Number of subjects (maps).
        Subjects: int
        /// Masked data, subjects × voxels column-major (voxel v's subjects at <c>v·Subjects</c>), float32 as stored.
        Data: float32[]
        /// What nilearn would warn about (an empty computed mask), in words.
        Warnings: string list
    }

/// <summary>Reading subject maps into a <see cref="SecondLevelInput"/> and writing masked results back as volumes.</summary>
module SecondLevelImages =

    let private volumesOf (path: string) =
        let image = Nifti.readFloat32 path
        let s = image.Header.Shape

        if s.Length < 3 then
            raise (GlmInputException(path, $"is not a 3D or 4D image (shape {String.Join('×', s)})"))

        let shape = { X = int s[0]; Y = int s[1]; Z = int s[2] }
        let count = image.Data.Length / max 1 shape.Count

        shape,
        image.Header,
        Array.init count (fun t -> Array.sub image.Data (t * shape.Count) shape.Count)

    /// <summary>Masks the given volumes (one per subject, float32, Fortran order). Without a mask, nilearn's
    /// NiftiMasker default: the background mask (border 2, no opening, not connected) of the mean volume
    /// (averaged in float32). With <paramref name="smoothingFwhm"/> each volume is smoothed (in float32, as
    /// nilearn's <c>_smooth_array</c> on the float32 4D image) before masking.</summary>
    /// <exception cref="GlmInputException">Fewer than 2 volumes, or the mask has another grid.</exception>
    let ofVolumes
        (source: string)
        (shape: GridShape)
        (affine: float[,])
        (volumes: float32[][])
        (mask: bool[] option)
        (smoothingFwhm: float option)
        : SecondLevelInput =
        if volumes.Length < 2 then
            raise (GlmInputException(source, $"{volumes.Length} subject map(s): a second-level model needs at least 2"))

        let mask, warnings =
            match mask with
            | Some m ->
                if m.Length <> shape.Count then
                    raise (GlmInputException("mask", $"has {m.Length} voxels, the maps' grid {shape.X}×{shape.Y}×{shape.Z} has {shape.Count}"))

                m, []
            | None ->
                let mean = Masking.meanVolume Precision.Single (volumes |> Seq.map (Array.map float))
                let r = Masking.computeBackgroundMask shape 2 0 false mean
                r.Mask, r.Warnings

        let voxelSizes =
            Array.init 3 (fun c -> sqrt (affine[0, c] * affine[0, c] + affine[1, c] * affine[1, c] + affine[2, c] * affine[2, c]))

        smoothingFwhm |> Option.iter (fun f -> Masking.checkSmoothing shape voxelSizes [| f; f; f |])

        let prepared =
            match smoothingFwhm with
            | Some fwhm when fwhm > 0.0 ->
                volumes
                |> Array.map (fun v -> Masking.smooth Precision.Single shape voxelSizes [| fwhm; fwhm; fwhm |] (Array.map float v) |> Array.map float32)
            | _ -> volumes

        let inside = [| for v in 0 .. shape.Count - 1 do if mask[v] then yield v |]
        let n = prepared.Length
        let data = Array.zeroCreate<float32> (n * inside.Length)

        for u in 0 .. inside.Length - 1 do
            for s in 0 .. n - 1 do
                data[u * n + s] <- prepared[s][inside[u]]

        { Shape = shape
          Affine = affine
          Mask = mask
          Grid = { Shape = shape; Voxels = inside }
          Subjects = n
          Data = data
          Warnings = warnings }

    let private readMask (shape: GridShape) (path: string) =
        let image = Nifti.read path
        let s = image.Header.Shape

        if s.Length < 3 || int s[0] <> shape.X || int s[1] <> shape.Y || int s[2] <> shape.Z then
            raise (GlmInputException(path, $"mask grid {String.Join('×', s)} differs from the maps' {shape.X}×{shape.Y}×{shape.Z}"))

        // a 4D image is no mask: its first volume would be used silently
        if s |> Array.skip 3 |> Array.exists (fun n -> n > 1L) then
            raise (GlmInputException(path, $"is {String.Join('×', s)}: a mask must be a 3D image"))

        image.Data |> Array.truncate shape.Count |> Array.map (fun x -> x <> 0.0)

    /// <summary>Reads a list of 3D maps (one per subject, in design-row order) and masks them; see
    /// <see cref="ofVolumes"/>.</summary>
    /// <exception cref="GlmInputException">A file is unreadable, not 3D, or on another grid than the first.</exception>
    let readMaps (paths: string[]) (maskPath: string option) (smoothingFwhm: float option) : SecondLevelInput =
        if isNull paths || paths.Length = 0 then
            raise (GlmInputException("second_level_input", "no subject map given"))

        let shape, header, _ = volumesOf paths[0]

        let volumes =
            paths
            |> Array.map (fun p ->
                let s, _, vs = volumesOf p

                if s <> shape then
                    raise (GlmInputException(p, $"grid {s.X}×{s.Y}×{s.Z} differs from {paths[0]}'s {shape.X}×{shape.Y}×{shape.Z}"))

                if vs.Length <> 1 then
                    raise (GlmInputException(p, $"has {vs.Length} volumes; each subject map must be 3D"))

                vs[0])

        ofVolumes "second_level_input" shape header.Affine volumes (maskPath |> Option.map (readMask shape)) smoothingFwhm

    /// <summary>Reads a 4D image whose volumes are the subjects' maps and masks it; see <see cref="ofVolumes"/>.</summary>
    let read4D (path: string) (maskPath: string option) (smoothingFwhm: float option) : SecondLevelInput =
        let shape, header, volumes = volumesOf path
        ofVolumes path shape header.Affine volumes (maskPath |> Option.map (readMask shape)) smoothingFwhm

    /// <summary>First-level variance maps for a mixed-effects ("mfx") second level: one 3D map per subject, in the
    /// order of the effect maps of <paramref name="input"/>, masked by its mask into its layout (subjects × voxels
    /// column-major, float32 as stored). They are not smoothed: smoothing changes a map's variance in a way a
    /// variance map cannot follow.</summary>
    /// <exception cref="GlmInputException">The count differs from the subjects', a file is unreadable, not 3D or on
    /// another grid, or a masked value is negative or not finite (each naming the file).</exception>
    /// The subjects' variance volumes masked by the input's mask, voxel-major (subjects inner) as the mixed-effects
    /// fit takes them; every masked variance must be finite and non-negative. name i names subject i's source.
    let private maskVariances (input: SecondLevelInput) (name: int -> string) (volumes: float32[][]) : float32[] =
        let n = input.Subjects
        let shape = input.Shape
        let inside = input.Grid.Voxels
        let data = Array.zeroCreate<float32> (n * inside.Length)

        volumes
        |> Array.iteri (fun s volume ->
            for u in 0 .. inside.Length - 1 do
                let value = volume[inside[u]]

                if not (Single.IsFinite value) || value < 0.0f then
                    let i, j, k = inside[u] % shape.X, (inside[u] / shape.X) % shape.Y, inside[u] / (shape.X * shape.Y)
                    raise (GlmInputException(name s, $"variance {value} at voxel ({i}, {j}, {k}) inside the mask: variances must be finite and non-negative"))

                data[u * n + s] <- value)

        data

    let readVarianceMaps (input: SecondLevelInput) (paths: string[]) : float32[] =
        let paths = if isNull paths then [||] else paths

        if paths.Length <> input.Subjects then
            raise (GlmInputException("variance maps", $"{paths.Length} variance maps for {input.Subjects} effect maps: give one per subject, in the same order"))

        paths
        |> Array.map (fun path ->
            let shape, _, volumes = volumesOf path

            if shape <> input.Shape then
                raise (GlmInputException(path, $"grid {shape.X}×{shape.Y}×{shape.Z} differs from the effect maps' {input.Shape.X}×{input.Shape.Y}×{input.Shape.Z}"))

            if volumes.Length <> 1 then
                raise (GlmInputException(path, $"has {volumes.Length} volumes; each variance map must be 3D"))

            volumes[0])
        |> maskVariances input (fun s -> paths[s])

    /// <summary>Puts masked values back on the grid (nilearn <c>masker.inverse_transform</c>): 0 outside the mask.</summary>
    let toVolume (input: SecondLevelInput) (values: float[]) : float[] =
        if values.Length <> input.Grid.Voxels.Length then
            invalidArg (nameof values) $"{values.Length} values for {input.Grid.Voxels.Length} masked voxels"

        let volume = Array.zeroCreate<float> input.Shape.Count

        for u in 0 .. values.Length - 1 do
            volume[input.Grid.Voxels[u]] <- values[u]

        volume

    /// <summary>Writes masked values as a 3D NIfTI volume on the input's grid (float64, or the given datatype).</summary>
    let write (input: SecondLevelInput) (datatype: NiftiDatatype) (path: string) (values: float[]) =
        let options =
            { Nifti.writeOptions [| int64 input.Shape.X; int64 input.Shape.Y; int64 input.Shape.Z |] input.Affine with
                Datatype = datatype }

        Nifti.write path options (toVolume input values)

    /// <summary>nilearn's <c>SecondLevelModel.fit(list_of_FirstLevelModel)</c> followed by
    /// <c>compute_contrast(..., first_level_contrast=...)</c>, up to the group GLM: each model's effect-size map
    /// of <paramref name="firstLevelContrast"/> (nilearn <c>model.compute_contrast(first_level_contrast,
    /// output_type="effect_size")</c>, one row per model in list order: the design rows), masked as
    /// <see cref="ofVolumes"/> does. Without a mask, nilearn's masker fitted on its sample map: the background mask
    /// (border 2) of the first model's effect map of its first design column, which is the first-level mask except
    /// where that effect is exactly 0. The effect maps are rounded to float32, as <see cref="readMaps"/> reads maps.</summary>
    /// <exception cref="GlmInputException">Fewer than 2 models, no first-level contrast, models on different grids
    /// or affines (nilearn's tolerance 1000·float32 eps), a contrast with more than one row (one map per subject is
    /// needed), or a contrast a model cannot compute.</exception>
    let ofFirstLevel
        (fits: FirstLevelFit list)
        (firstLevelContrast: ContrastDefinition option)
        (mask: bool[] option)
        (smoothingFwhm: float option)
        : SecondLevelInput =
        let fits = Array.ofList fits

        if fits.Length < 2 then
            raise (GlmInputException("second_level_input", $"{fits.Length} first-level model(s): a second-level model needs at least 2"))

        let contrast =
            match firstLevelContrast with
            | Some c -> c
            | None ->
                raise (
                    GlmInputException(
                        "first_level_contrast",
                        "is mandatory when second_level_input is a list of first-level models (the contrast of each model whose effect sizes enter the group model)"
                    )
                )

        let reference = fits[0]
        // nilearn INF = 1000 * np.finfo(np.float32).eps
        let tolerance = 1000.0 * 1.1920928955078125e-07

        fits
        |> Array.iteri (fun i f ->
            if f.Shape <> reference.Shape then
                raise (
                    GlmInputException(
                        $"second_level_input[{i}]",
                        $"grid {f.Shape.X}×{f.Shape.Y}×{f.Shape.Z} differs from model 0's {reference.Shape.X}×{reference.Shape.Y}×{reference.Shape.Z}: all first-level models must have the same shape"
                    )
                )

            let worst = Seq.max (seq { for r in 0..3 do for c in 0..3 -> abs (f.Affine[r, c] - reference.Affine[r, c]) })

            if worst > tolerance then
                raise (GlmInputException($"second_level_input[{i}]", $"affine differs from model 0's by {worst}: all first-level models must have the same affine")))

        let effectVolume (i: int) (definition: ContrastDefinition) =
            let c =
                try
                    FirstLevel.computeContrast fits[i] [ definition ] None
                with :? GlmInputException as e ->
                    raise (GlmInputException($"second_level_input[{i}]", e.Message))

            let volume = FirstLevel.outputImage fits[i] c EffectSize

            if volume.Length <> reference.Shape.Count then
                raise (
                    GlmInputException(
                        "first_level_contrast",
                        $"gives {volume.Length / reference.Shape.Count} effect maps per model; a second-level input needs one (a one-row contrast)"
                    )
                )

            Array.map float32 volume

        let volumes = Array.init fits.Length (fun i -> effectVolume i contrast)

        let mask, warnings =
            match mask with
            | Some m -> Some m, []
            | None ->
                let firstColumn = reference.Runs[0].Design.ColumnNames[0]
                let sample = effectVolume 0 (Expression firstColumn) |> Array.map float
                let r = Masking.computeBackgroundMask reference.Shape 2 0 false sample
                Some r.Mask, r.Warnings

        let input = ofVolumes "second_level_input" reference.Shape reference.Affine volumes mask smoothingFwhm
        { input with Warnings = warnings @ input.Warnings }

    /// <summary>The first-level variances (nilearn <c>output_type="effect_variance"</c>) of the contrast whose
    /// effects <see cref="ofFirstLevel"/> took from the same models, masked by <paramref name="input"/>'s mask as
    /// <see cref="readVarianceMaps"/> returns them: the mixed-effects second level fitted straight from first-level
    /// models, with no files in between.</summary>
    /// <exception cref="GlmInputException">Not one model per subject of the input, a contrast a model cannot
    /// compute, or a negative or non-finite variance inside the mask (naming the model).</exception>
    let varianceOfFirstLevel (input: SecondLevelInput) (fits: FirstLevelFit list) (firstLevelContrast: ContrastDefinition) : float32[] =
        let fits = Array.ofList fits

        if fits.Length <> input.Subjects then
            raise (GlmInputException("second_level_input", $"{fits.Length} first-level models for {input.Subjects} effect maps"))

        fits
        |> Array.mapi (fun i fit ->
            let c =
                try
                    FirstLevel.computeContrast fit [ firstLevelContrast ] None
                with :? GlmInputException as e ->
                    raise (GlmInputException($"second_level_input[{i}]", e.Message))

            FirstLevel.outputImage fit c EffectVariance |> Array.map float32)
        |> maskVariances input (fun i -> $"second_level_input[{i}] effect_variance")

    /// <summary>Smoothness of an OLS second-level fit's residuals (each subject's map minus the design's fit of it)
    /// inside the input's mask: SPM's estimator on the standardised residuals
    /// (<see cref="M:FmriGlm.Core.RandomFieldTheory.estimateSmoothness"/>), what <c>height_control = "fwe"</c> needs
    /// for a group map.</summary>
    /// <exception cref="GlmInputException">A fit that does not belong to the input (other voxel or subject counts).</exception>
    let smoothness (input: SecondLevelInput) (fit: SecondLevelFit) : Smoothness =
        let g = fit.Glm
        let n, voxels, p = input.Subjects, input.Grid.Voxels.Length, g.Regressors

        if g.Scans <> n || g.Voxels <> voxels then
            raise (GlmInputException("fit", $"{g.Scans} subjects × {g.Voxels} voxels, but the input has {n} × {voxels}"))

        let x = fit.Design.Values

        let residual (s: int) =
            Array.init voxels (fun v ->
                let mutable predicted = 0.0

                for c in 0 .. p - 1 do
                    predicted <- predicted + x[s, c] * g.Betas[v * p + c]

                float input.Data[v * n + s] - predicted)
            |> toVolume input

        let a = input.Affine
        let voxelSizes = Array.init 3 (fun c -> sqrt (a[0, c] * a[0, c] + a[1, c] * a[1, c] + a[2, c] * a[2, c]))
        RandomFieldTheory.estimateSmoothness input.Shape voxelSizes input.Mask (Array.init n residual)
