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
