namespace FmriGlm.Core

open System
open System.Buffers.Binary
open System.IO
open System.IO.Compression
open System.Runtime.InteropServices

/// <summary>A sequential reader over the volumes of a NIfTI file (gzip is forward-only): one volume at a time, so
/// a large 4D series is never held whole. Dispose it (use/using).</summary>
[<Sealed>]
type NiftiVolumeReader internal (input: NiftiIo.Input, header: NiftiHeader, layout: NiftiIo.Layout) =
    let buffer = Array.zeroCreate<byte> NiftiIo.chunkBytes
    let voxelsPerVolume = int layout.VoxelsPerVolume
    let mutable next = 0L

    let advance (length: int) =
        if length <> voxelsPerVolume then
            invalidArg "destination" $"a volume has {voxelsPerVolume} voxels, the destination {length}"

        if next >= layout.Volumes then
            invalidOp $"all {layout.Volumes} volumes have been read"

        next <- next + 1L

    /// <summary>The file's header.</summary>
    member _.Header = header
    /// <summary>Number of volumes: the product of the axes after the third (1 for a 3D image).</summary>
    member _.VolumeCount = layout.Volumes
    /// <summary>Voxels in one volume: the product of the first three axes.</summary>
    member _.VoxelsPerVolume = voxelsPerVolume
    /// <summary>Index of the next volume to be read (0-based).</summary>
    member _.NextIndex = next

    /// <summary>Reads the next volume into <c>destination</c> (length VoxelsPerVolume), scaled, as float.</summary>
    /// <exception cref="GlmInputException">The file is truncated or its gzip data is corrupt.</exception>
    /// <exception cref="InvalidOperationException">Every volume has been read.</exception>
    member _.ReadNext(destination: Span<float>) =
        advance destination.Length
        NiftiIo.readFloat input header layout buffer destination

    /// <summary>Reads the next volume into <c>destination</c> (length VoxelsPerVolume), scaled, as float32.</summary>
    /// <exception cref="GlmInputException">The file is truncated or its gzip data is corrupt.</exception>
    /// <exception cref="InvalidOperationException">Every volume has been read.</exception>
    member _.ReadNext(destination: Span<float32>) =
        advance destination.Length
        NiftiIo.readSingle input header layout buffer destination

    /// <summary>Reads the next volume into a new float array.</summary>
    member r.NextVolume() : float[] =
        let v = Array.zeroCreate voxelsPerVolume
        r.ReadNext(Span<float> v)
        v

    interface IDisposable with
        member _.Dispose() = (input :> IDisposable).Dispose()

/// <summary>A streaming NIfTI writer: the header first, then volume after volume, into a temporary file beside the
/// target that <c>Complete</c> renames over it. Disposing without <c>Complete</c> deletes the temporary: a failed
/// write never leaves a partial file.</summary>
[<Sealed>]
type NiftiVolumeWriter internal (path: string, temporary: string, stream: Stream, header: NiftiHeader) =
    let volumes =
        header.Shape |> Array.skip (min 3 header.Shape.Length) |> Array.fold (*) 1L

    let voxelsPerVolume = header.Shape |> Array.truncate 3 |> Array.fold (*) 1L |> int
    let bytesPerVoxel = header.Bitpix / 8
    let perChunk = NiftiIo.chunkBytes / bytesPerVoxel
    // Pooled: writing many small maps (a model's outputs) must not leave megabytes of buffers per file behind.
    let buffer = Buffers.ArrayPool<byte>.Shared.Rent NiftiIo.chunkBytes
    let mutable scratch: float[] = null
    let mutable written = 0L
    let mutable closed = false

    let release () =
        Buffers.ArrayPool<byte>.Shared.Return buffer

        if not (isNull scratch) then
            Buffers.ArrayPool<float>.Shared.Return scratch
            scratch <- null

    let check (length: int) =
        if closed then
            invalidOp "the writer is already completed or disposed"

        if written >= volumes then
            invalidOp $"all {volumes} volumes have been written"

        if length <> voxelsPerVolume then
            invalidArg "values" $"a volume has {voxelsPerVolume} voxels, got {length}"

    let write (src: ReadOnlySpan<float>) =
        if header.Datatype = NiftiDatatype.Float64 && BitConverter.IsLittleEndian then
            // the file's bytes are the values' bytes
            stream.Write(MemoryMarshal.AsBytes src)
        else
            let mutable done' = 0

            while done' < src.Length do
                let n = min perChunk (src.Length - done')
                NiftiWriting.encode header.Datatype (src.Slice(done', n)) (buffer.AsSpan(0, n * bytesPerVoxel))
                stream.Write(buffer, 0, n * bytesPerVoxel)
                done' <- done' + n

    /// <summary>The file that <c>Complete</c> creates or replaces.</summary>
    member _.Path = path
    /// <summary>The header being written.</summary>
    member _.Header = header
    /// <summary>Volumes written so far.</summary>
    member _.VolumesWritten = written

    /// <summary>Appends one volume (i fastest, then j, k).</summary>
    /// <exception cref="ArgumentException">Wrong length, or a value an integer datatype cannot hold exactly.</exception>
    member _.WriteVolume(values: ReadOnlySpan<float>) =
        check values.Length
        write values
        written <- written + 1L

    /// <summary>Appends one volume (i fastest, then j, k); float32 data on a little-endian machine is written
    /// without conversion.</summary>
    /// <exception cref="ArgumentException">Wrong length, or a value an integer datatype cannot hold exactly.</exception>
    member _.WriteVolume(values: ReadOnlySpan<float32>) =
        check values.Length

        if header.Datatype = NiftiDatatype.Float32 && BitConverter.IsLittleEndian then
            stream.Write(MemoryMarshal.AsBytes values)
        else
            let mutable done' = 0

            if isNull scratch then
                scratch <- Buffers.ArrayPool<float>.Shared.Rent perChunk

            while done' < values.Length do
                let n = min perChunk (values.Length - done')

                for i in 0 .. n - 1 do
                    scratch[i] <- float values[done' + i]

                write (ReadOnlySpan(scratch, 0, n))
                done' <- done' + n

        written <- written + 1L

    /// <summary>Finishes the file and moves it into place (atomically replacing an existing file).</summary>
    /// <exception cref="InvalidOperationException">Fewer volumes were written than the shape says.</exception>
    member _.Complete() =
        if closed then
            invalidOp "the writer is already completed or disposed"

        if written <> volumes then
            invalidOp $"{written} of {volumes} volumes written; write them all before Complete"

        closed <- true

        try
            try
                stream.Dispose()
                File.Move(temporary, path, true)
            with _ ->
                File.Delete temporary
                reraise ()
        finally
            release ()

    interface IDisposable with
        member _.Dispose() =
            if not closed then
                closed <- true

                try
                    stream.Dispose()
                    File.Delete temporary
                finally
                    release ()

/// <summary>Reading and writing NIfTI-1 and NIfTI-2 single files (.nii, .nii.gz), as nibabel 5.0 reads them.</summary>
/// <remarks>Every fault of a file (missing, a directory, truncated, corrupt gzip, bad sizeof_hdr or magic, absurd
/// dims, unsupported datatype) raises <see cref="GlmInputException"/> naming the file and the fault.</remarks>
module Nifti =
    open NiftiIo
    open NiftiWriting


    /// <summary>Reads the header (and extensions) of a .nii or .nii.gz file, validated as the readers validate it.</summary>
    /// <exception cref="GlmInputException">The file is missing, not NIfTI, or its header is faulty.</exception>
    let readHeader (path: string) : NiftiHeader =
        use input = new Input(path)
        fst (readHeaderFrom input)

    /// <summary>Reads a whole image as float (exact for every datatype up to 2⁵³), scaled as nibabel's
    /// <c>get_fdata()</c>, in file order.</summary>
    /// <exception cref="GlmInputException">Any fault of the file (see the module remarks).</exception>
    let read (path: string) : NiftiImage<float> =
        use input = new Input(path)
        let h, layout = readHeaderFrom input
        let data = allocate<float> path (layout.VoxelsPerVolume * layout.Volumes)
        readFloat input h layout (Array.zeroCreate chunkBytes) (Span data)
        { Header = h; Data = data }

    /// <summary>Reads a whole image as float32 (for 4D BOLD series), in file order, streaming from the (gzip)
    /// stream straight into the result: peak memory is the result plus a 1 MiB buffer.</summary>
    /// <exception cref="GlmInputException">Any fault of the file (see the module remarks).</exception>
    let readFloat32 (path: string) : NiftiImage<float32> =
        use input = new Input(path)
        let h, layout = readHeaderFrom input
        let data = allocate<float32> path (layout.VoxelsPerVolume * layout.Volumes)
        readSingle input h layout (Array.zeroCreate chunkBytes) (Span data)
        { Header = h; Data = data }

    /// <summary>Reads a 3D/4D image as float32 in scans × voxels column-major layout (the core's voxel layout:
    /// voxel v's series is <c>Data[v·scans .. v·scans + scans − 1]</c>, voxels in file order), volume by volume:
    /// peak memory is the result plus one volume.</summary>
    /// <exception cref="GlmInputException">Any fault of the file (see the module remarks).</exception>
    let readVoxelSeries (path: string) : NiftiImage<float32> =
        use input = new Input(path)
        let h, layout = readHeaderFrom input
        let scans = layout.Volumes
        let data = allocate<float32> path (layout.VoxelsPerVolume * scans)
        let voxels = int layout.VoxelsPerVolume
        let volume = Array.zeroCreate<float32> voxels
        let buffer = Array.zeroCreate<byte> chunkBytes
        let n = int scans

        for t in 0 .. n - 1 do
            readSingle input h layout buffer (Span volume)

            for v in 0 .. voxels - 1 do
                data[v * n + t] <- volume[v]

        { Header = h; Data = data }

    /// <summary>Opens a file for reading volume by volume (sequentially).</summary>
    /// <exception cref="GlmInputException">The file is missing, not NIfTI, or its header is faulty; reads raise
    /// it for truncated or corrupt data.</exception>
    let openVolumes (path: string) : NiftiVolumeReader =
        let input = new Input(path)

        try
            let h, layout = readHeaderFrom input
            new NiftiVolumeReader(input, h, layout)
        with _ ->
            (input :> IDisposable).Dispose()
            reraise ()

    /// <summary>Smallest and largest finite value of the image (streamed volume by volume), or None when no
    /// value is finite.</summary>
    /// <exception cref="GlmInputException">Any fault of the file.</exception>
    let valueRange (path: string) : (float * float) option =
        use reader = openVolumes path
        let volume = Array.zeroCreate<float> reader.VoxelsPerVolume
        let mutable lo = Double.PositiveInfinity
        let mutable hi = Double.NegativeInfinity

        for _ in 1L .. reader.VolumeCount do
            reader.ReadNext(Span volume)

            for v in volume do
                if Double.IsFinite v then
                    if v < lo then
                        lo <- v

                    if v > hi then
                        hi <- v

        if lo <= hi then Some(lo, hi) else None

    /// <summary>Write options with nibabel's defaults for a new image: float32, no TR, empty descrip, sform_code 2,
    /// qform_code 0.</summary>
    let writeOptions (shape: int64[]) (affine: float[,]) : NiftiWriteOptions =
        { Shape = shape
          Affine = affine
          Datatype = NiftiDatatype.Float32
          TR = None
          Descrip = ""
          SformCode = 2
          QformCode = 0 }

    /// <summary>Creates a streaming writer: gzip when the path ends in ".gz", NIfTI-1 unless an axis exceeds 32767.</summary>
    /// <exception cref="GlmInputException">The path is a directory, its folder does not exist or cannot be written.</exception>
    /// <exception cref="ArgumentException">Invalid options (shape, affine, datatype, codes, descrip, TR).</exception>
    let createWriter (path: string) (options: NiftiWriteOptions) : NiftiVolumeWriter =
        if isNull path then
            nullArg (nameof path)

        let h = headerFor options
        let temporary = temporaryBeside path

        let file =
            try
                new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 <<< 16)
            with
            | :? UnauthorizedAccessException as e -> raise (fault path $"cannot be written: {e.Message}")
            | :? IOException as e -> raise (fault path $"cannot be written: {e.Message}")

        let stream: Stream =
            if path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) then
                new GZipStream(file, CompressionLevel.Fastest, false)
            else
                file

        try
            stream.Write(NiftiHeaderCodec.serialize h)
            stream.Write(Array.zeroCreate<byte> 4)
            new NiftiVolumeWriter(path, temporary, stream, h)
        with _ ->
            stream.Dispose()
            File.Delete temporary
            reraise ()

    let private writeAll
        (path: string)
        (options: NiftiWriteOptions)
        (length: int)
        (writeVolumes: NiftiVolumeWriter -> unit)
        =
        let expected = options.Shape |> Array.fold (*) 1L

        if int64 length <> expected then
            invalidArg "data" $"the shape holds {expected} voxels, the data has {length}"

        use writer = createWriter path options
        writeVolumes writer
        writer.Complete()

    /// <summary>Writes a whole image (file order: i fastest) atomically: a temporary file beside the target,
    /// renamed over it when complete; gzip when the path ends in ".gz".</summary>
    /// <exception cref="ArgumentException">Data length ≠ product of the shape, invalid options, or a value the
    /// integer datatype cannot hold exactly.</exception>
    /// <exception cref="GlmInputException">The path is a directory, its folder does not exist or cannot be written.</exception>
    let write (path: string) (options: NiftiWriteOptions) (data: float[]) =
        if isNull data then
            nullArg (nameof data)

        writeAll path options data.Length (fun w ->
            let per = int (options.Shape |> Array.truncate 3 |> Array.fold (*) 1L)

            for v in 0 .. data.Length / per - 1 do
                w.WriteVolume(ReadOnlySpan(data, v * per, per)))

    /// <summary>Writes a whole float32 image; see <c>write</c>.</summary>
    let writeFloat32 (path: string) (options: NiftiWriteOptions) (data: float32[]) =
        if isNull data then
            nullArg (nameof data)

        writeAll path options data.Length (fun w ->
            let per = int (options.Shape |> Array.truncate 3 |> Array.fold (*) 1L)

            for v in 0 .. data.Length / per - 1 do
                w.WriteVolume(ReadOnlySpan(data, v * per, per)))
