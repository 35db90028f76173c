namespace FmriGlm.Core

open System
open System.Buffers.Binary
open System.IO
open System.IO.Compression
open System.Runtime.InteropServices

/// <summary>A whole NIfTI image: its header and every voxel value (scaled as nibabel scales them), in file
/// (Fortran) order: i fastest, then j, k, t.</summary>
type NiftiImage<'T> = { Header: NiftiHeader; Data: 'T[] }

/// <summary>What <c>Nifti.write</c> and <c>Nifti.createWriter</c> put in a new file.</summary>
type NiftiWriteOptions =
    {
      /// <summary>Image shape, 1 to 4 axes (i, j, k[, t]), each ≥ 1. An axis above 32767 makes the file NIfTI-2.</summary>
      Shape: int64[]
      /// <summary>4×4 voxel → mm affine; stored as the sform and, through its quaternion, as the qform.</summary>
      Affine: float[,]
      /// <summary>On-disk type: Float32, Float64, Int16, UInt8 or Int32.</summary>
      Datatype: NiftiDatatype
      /// <summary>Repetition time in seconds, stored in pixdim[4] (4D images only).</summary>
      TR: float option
      /// <summary>Free text up to 79 Latin-1 characters (<c>descrip</c>).</summary>
      Descrip: string
      /// <summary>sform_code: 2 (aligned) as nibabel writes a new image.</summary>
      SformCode: int
      /// <summary>qform_code: 0 (unknown) as nibabel writes a new image; the quaternion fields are filled either way.</summary>
      QformCode: int }

/// File access and codecs behind Nifti (internal).
module internal NiftiIo =

    // Deflate cannot expand more than 1032:1, so a gzip of n bytes never holds more than 1032·n: a header whose dims
    // ask for more is refused before anything is allocated (a corrupt header never allocates gigabytes).
    let maxDeflateRatio = 1032L
    let chunkBytes = 1 <<< 20

    let fault (path: string) (problem: string) = GlmInputException(path, problem)

    /// An open input, positioned at the start, counting the uncompressed bytes consumed.
    type Input(path: string) =
        let file =
            if isNull path then nullArg (nameof path)
            if Directory.Exists path then raise (fault path "is a directory, not a NIfTI file")
            if not (File.Exists path) then raise (fault path "no such file")
            try
                new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 <<< 16, FileOptions.SequentialScan)
            with
            | :? UnauthorizedAccessException as e -> raise (fault path $"cannot be opened: {e.Message}")
            | :? IOException as e -> raise (fault path $"cannot be opened: {e.Message}")
        let length = file.Length
        let gzip =
            let magic = Array.zeroCreate<byte> 2
            let n = file.Read(magic, 0, 2)
            file.Position <- 0L
            n = 2 && magic[0] = 0x1fuy && magic[1] = 0x8buy
        let stream: Stream = if gzip then new GZipStream(file, CompressionMode.Decompress, false) else file
        let mutable position = 0L

        member _.Path = path
        member _.Gzip = gzip
        member _.FileLength = length
        member _.Position = position

        /// Reads up to dest.Length bytes; returns how many (fewer only at the end of the data).
        member _.Read(dest: Span<byte>) : int =
            let mutable total = 0
            let mutable finished = false
            try
                while not finished && total < dest.Length do
                    let n = stream.Read(dest.Slice total)
                    if n = 0 then finished <- true else total <- total + n
            with
            | :? InvalidDataException as e -> raise (fault path $"corrupt gzip data after byte {position + int64 total}: {e.Message}")
            | :? IOException as e -> raise (fault path $"read failed after byte {position + int64 total}: {e.Message}")
            position <- position + int64 total
            total

        /// Reads exactly dest.Length bytes or raises "truncated <what>".
        member x.ReadExactly(dest: Span<byte>, what: string) =
            let start = position
            let n = x.Read dest
            if n < dest.Length then
                raise (fault path $"truncated {what}: needs {dest.Length} bytes from byte {start}, the data ends after {start + int64 n}")

        member x.Skip(count: int64, what: string) =
            let buffer = Array.zeroCreate<byte> (int (min count 65536L))
            let mutable left = count
            while left > 0L do
                let n = int (min left buffer.LongLength)
                x.ReadExactly(buffer.AsSpan(0, n), what)
                left <- left - int64 n

        interface IDisposable with
            member _.Dispose() = stream.Dispose()

    /// Geometry of the voxel data, validated.
    type Layout = { VoxelsPerVolume: int64; Volumes: int64; BytesPerVoxel: int; TotalBytes: int64 }

    let checkedProduct (path: string) (values: int64 seq) =
        values
        |> Seq.fold (fun (acc: int64) v ->
            if v <> 0L && acc > Int64.MaxValue / v then
                raise (fault path "the product of the dims overflows a 64-bit count of voxels")
            acc * v) 1L

    let validate (path: string) (h: NiftiHeader) : Layout =
        let ndim = h.Dim[0]
        if ndim < 1L || ndim > 7L then
            raise (fault path $"dim[0] = {ndim}: the number of axes must be 1 to 7")
        for k in 1 .. int ndim do
            if h.Dim[k] < 1L then
                raise (fault path $"dim[{k}] = {h.Dim[k]}: every axis needs at least one voxel")
        if ndim > 5L then
            raise (fault path $"{ndim}-D image: only 3D and 4D images (or 5D with a size-1 4th axis) are supported")
        if ndim = 5L && h.Dim[4] <> 1L then
            raise (fault path $"5-D image with dim[4] = {h.Dim[4]}: only a size-1 4th axis is supported")
        let bpv =
            match NiftiHeaderCodec.bytesPerVoxel h.DatatypeCode with
            | Some b -> b
            | None -> raise (fault path (NiftiHeaderCodec.unsupported h.DatatypeCode))
        let perVolume = checkedProduct path [ for k in 1 .. int (min ndim 3L) -> h.Dim[k] ]
        let volumes = checkedProduct path [ for k in 4 .. int ndim -> h.Dim[k] ]
        let voxels = checkedProduct path [ perVolume; volumes ]
        let bytes = checkedProduct path [ voxels; int64 bpv ]
        if perVolume > int64 Array.MaxLength then
            raise (fault path $"one volume has {perVolume} voxels, more than an array can hold ({Array.MaxLength})")
        let minimumOffset = int64 (h.SizeOfHeader + 4)
        if h.VoxOffset < minimumOffset then
            raise (fault path $"vox_offset {h.VoxOffset} is inside the header: a single-file NIfTI-{h.Version} puts its data at byte {minimumOffset} or later")
        if Double.IsFinite h.SclSlope && h.SclSlope <> 0.0 && not (Double.IsFinite h.SclInter) then
            raise (fault path $"scl_slope is {h.SclSlope} but scl_inter is {h.SclInter}, not a number to add")
        if NiftiHeaderCodec.validCode h.SformCode = 0 && NiftiHeaderCodec.validCode h.QformCode <> 0
           && NiftiHeaderCodec.quaternionW2 h < NiftiHeaderCodec.quaternionThreshold h then
            raise (fault path $"qform quaternion (b, c, d) = ({h.Quaternion[0]}, {h.Quaternion[1]}, {h.Quaternion[2]}) is longer than 1, so it is no rotation")
        { VoxelsPerVolume = perVolume; Volumes = volumes; BytesPerVoxel = bpv; TotalBytes = bytes }

    /// Reads and validates the header and extensions, leaving the input at vox_offset.
    let readHeaderFrom (input: Input) : NiftiHeader * Layout =
        let path = input.Path
        let bytes = Array.zeroCreate<byte> NiftiHeaderCodec.nifti2Size
        let n = input.Read(bytes.AsSpan(0, 4))
        if n = 0 then raise (fault path "empty file")
        if n < 4 then raise (fault path $"truncated header: {n} bytes")
        let size =
            match NiftiHeaderCodec.detect bytes with
            | Some(size, _) -> size
            | None ->
                let le = BinaryPrimitives.ReadInt32LittleEndian(ReadOnlySpan(bytes, 0, 4))
                let be = BinaryPrimitives.ReadInt32BigEndian(ReadOnlySpan(bytes, 0, 4))
                raise (fault path $"sizeof_hdr is {le} (byte-swapped {be}): not a NIfTI file (NIfTI-1 says 348, NIfTI-2 540)")
        input.ReadExactly(bytes.AsSpan(4, size - 4), "header")
        let h = NiftiHeaderCodec.parse path bytes
        let layout = validate path h
        let available =
            if input.Gzip then input.FileLength * maxDeflateRatio + 65536L else input.FileLength
        if h.VoxOffset > available - layout.TotalBytes then
            let kind = if input.Gzip then $"a gzip file of {input.FileLength} bytes can hold at most {available}" else $"the file has {input.FileLength}"
            raise (fault path $"truncated data: the header's dims and vox_offset {h.VoxOffset} need {h.VoxOffset + layout.TotalBytes} bytes, {kind}")
        let flag = Array.zeroCreate<byte> 4
        input.ReadExactly(flag.AsSpan(), "header extension flag")
        let extensions =
            if flag[0] = 0uy then []
            else
                let word (b: byte[]) (o: int) =
                    let s = ReadOnlySpan(b, o, 4)
                    if h.BigEndian then BinaryPrimitives.ReadInt32BigEndian s else BinaryPrimitives.ReadInt32LittleEndian s
                let found = ResizeArray()
                let head = Array.zeroCreate<byte> 8
                while input.Position + 8L <= h.VoxOffset do
                    let at = input.Position
                    input.ReadExactly(head.AsSpan(), "header extension")
                    let esize = word head 0
                    let ecode = word head 4
                    if esize < 8 || int64 esize > h.VoxOffset - at then
                        raise (fault path $"header extension at byte {at} has esize {esize}, outside 8..{h.VoxOffset - at} (the space before vox_offset)")
                    let content = Array.zeroCreate<byte> (esize - 8)
                    input.ReadExactly(content.AsSpan(), "header extension")
                    found.Add { Code = ecode; Content = content }
                List.ofSeq found
        input.Skip(h.VoxOffset - input.Position, "padding before the voxel data")
        { h with Extensions = extensions }, layout

    // Decoding: raw bytes of one datatype → float or float32, byte-swapped when the file is big-endian.
    let decode (dt: NiftiDatatype) (big: bool) (src: ReadOnlySpan<byte>) (dst: Span<float>) =
        match dt with
        | NiftiDatatype.UInt8 ->
            for i in 0 .. dst.Length - 1 do dst[i] <- float src[i]
        | NiftiDatatype.Int8 ->
            for i in 0 .. dst.Length - 1 do dst[i] <- float (sbyte src[i])
        | NiftiDatatype.Int16 ->
            for i in 0 .. dst.Length - 1 do
                let s = src.Slice(2 * i, 2)
                dst[i] <- float (if big then BinaryPrimitives.ReadInt16BigEndian s else BinaryPrimitives.ReadInt16LittleEndian s)
        | NiftiDatatype.UInt16 ->
            for i in 0 .. dst.Length - 1 do
                let s = src.Slice(2 * i, 2)
                dst[i] <- float (if big then BinaryPrimitives.ReadUInt16BigEndian s else BinaryPrimitives.ReadUInt16LittleEndian s)
        | NiftiDatatype.Int32 ->
            for i in 0 .. dst.Length - 1 do
                let s = src.Slice(4 * i, 4)
                dst[i] <- float (if big then BinaryPrimitives.ReadInt32BigEndian s else BinaryPrimitives.ReadInt32LittleEndian s)
        | NiftiDatatype.UInt32 ->
            for i in 0 .. dst.Length - 1 do
                let s = src.Slice(4 * i, 4)
                dst[i] <- float (if big then BinaryPrimitives.ReadUInt32BigEndian s else BinaryPrimitives.ReadUInt32LittleEndian s)
        | NiftiDatatype.Int64 ->
            for i in 0 .. dst.Length - 1 do
                let s = src.Slice(8 * i, 8)
                dst[i] <- float (if big then BinaryPrimitives.ReadInt64BigEndian s else BinaryPrimitives.ReadInt64LittleEndian s)
        | NiftiDatatype.UInt64 ->
            for i in 0 .. dst.Length - 1 do
                let s = src.Slice(8 * i, 8)
                dst[i] <- float (if big then BinaryPrimitives.ReadUInt64BigEndian s else BinaryPrimitives.ReadUInt64LittleEndian s)
        | NiftiDatatype.Float32 ->
            for i in 0 .. dst.Length - 1 do
                let s = src.Slice(4 * i, 4)
                dst[i] <- float (if big then BinaryPrimitives.ReadSingleBigEndian s else BinaryPrimitives.ReadSingleLittleEndian s)
        | NiftiDatatype.Float64 ->
            for i in 0 .. dst.Length - 1 do
                let s = src.Slice(8 * i, 8)
                dst[i] <- if big then BinaryPrimitives.ReadDoubleBigEndian s else BinaryPrimitives.ReadDoubleLittleEndian s
        | _ -> invalidArg (nameof dt) $"datatype {dt} is not decoded"

    // nibabel apply_read_scaling: raw·slope, then + inter, in float64 (skipped when (slope, inter) = (1, 0)).
    let scale (h: NiftiHeader) (dst: Span<float>) =
        match h.Scaling with
        | Some(slope, inter) when slope <> 1.0 || inter <> 0.0 ->
            for i in 0 .. dst.Length - 1 do
                dst[i] <- dst[i] * slope + inter
        | _ -> ()

    /// Reads `count` voxels into dst (float), through the reusable buffer.
    let readFloat (input: Input) (h: NiftiHeader) (layout: Layout) (buffer: byte[]) (dst: Span<float>) =
        let dt = h.Datatype
        if dt = NiftiDatatype.Float64 then
            input.ReadExactly(MemoryMarshal.AsBytes dst, "voxel data")
            if h.BigEndian = BitConverter.IsLittleEndian then
                let words = MemoryMarshal.Cast<float, int64> dst
                for i in 0 .. words.Length - 1 do
                    words[i] <- BinaryPrimitives.ReverseEndianness words[i]
        else
            let per = buffer.Length / layout.BytesPerVoxel
            let mutable done' = 0
            while done' < dst.Length do
                let n = min per (dst.Length - done')
                let raw = buffer.AsSpan(0, n * layout.BytesPerVoxel)
                input.ReadExactly(raw, "voxel data")
                decode dt h.BigEndian (Span.op_Implicit raw) (dst.Slice(done', n))
                done' <- done' + n
        scale h dst

    /// Reads voxels into dst (float32): float32 data goes straight from the stream into dst, no copy.
    let readSingle (input: Input) (h: NiftiHeader) (layout: Layout) (buffer: byte[]) (dst: Span<float32>) =
        let dt = h.Datatype
        if dt = NiftiDatatype.Float32 && h.Scaling |> Option.forall (fun (s, i) -> s = 1.0 && i = 0.0) then
            input.ReadExactly(MemoryMarshal.AsBytes dst, "voxel data")
            if h.BigEndian = BitConverter.IsLittleEndian then
                let words = MemoryMarshal.Cast<float32, int> dst
                for i in 0 .. words.Length - 1 do
                    words[i] <- BinaryPrimitives.ReverseEndianness words[i]
        else
            let scratch = Array.zeroCreate<float> (buffer.Length / layout.BytesPerVoxel)
            let mutable done' = 0
            while done' < dst.Length do
                let n = min scratch.Length (dst.Length - done')
                let part = Span<float>(scratch, 0, n)
                readFloat input h layout buffer part
                for i in 0 .. n - 1 do
                    dst[done' + i] <- float32 part[i]
                done' <- done' + n

    let allocate<'T> (path: string) (count: int64) : 'T[] =
        if count > int64 Array.MaxLength then
            raise (fault path $"{count} voxels are more than one array can hold ({Array.MaxLength}); read it volume by volume (Nifti.openVolumes)")
        try
            Array.zeroCreate<'T> (int count)
        with :? OutOfMemoryException ->
            raise (fault path $"{count} voxels do not fit in memory; read it volume by volume (Nifti.openVolumes)")

    /// The header a new file gets (little-endian, vox_offset 352 or 544, no scaling).
    let headerFor (o: NiftiWriteOptions) : NiftiHeader =
        if isNull o.Shape || o.Shape.Length < 1 || o.Shape.Length > 4 then
            invalidArg (nameof o) "the shape needs 1 to 4 axes"
        if o.Shape |> Array.exists (fun d -> d < 1L) then
            invalidArg (nameof o) $"every axis needs at least one voxel: {o.Shape}"
        let bpv =
            match o.Datatype with
            | NiftiDatatype.Float32
            | NiftiDatatype.Float64
            | NiftiDatatype.Int16
            | NiftiDatatype.UInt8
            | NiftiDatatype.Int32 -> (NiftiHeaderCodec.bytesPerVoxel (int o.Datatype)).Value
            | dt -> invalidArg (nameof o) $"writing {dt} is not supported (float32, float64, int16, uint8, int32 are)"
        if o.SformCode < 0 || o.SformCode > 5 || o.QformCode < 0 || o.QformCode > 5 then
            invalidArg (nameof o) $"xform codes are 0..5, not sform {o.SformCode} / qform {o.QformCode}"
        let descrip = if isNull o.Descrip then "" else o.Descrip
        if descrip.Length > 79 then invalidArg (nameof o) "descrip holds at most 79 characters"
        match o.TR with
        | Some tr when not (Double.IsFinite tr) || tr < 0.0 -> invalidArg (nameof o) $"TR {tr} is not a duration"
        | _ -> ()
        let qfac, zooms, bcd = NiftiHeaderCodec.qformParameters o.Affine
        let version = if o.Shape |> Array.exists (fun d -> d > 32767L) then 2 else 1
        let dim = Array.init 8 (fun k -> if k = 0 then int64 o.Shape.Length elif k <= o.Shape.Length then o.Shape[k - 1] else 1L)
        let pixdim =
            Array.init 8 (fun k ->
                match k with
                | 0 -> qfac
                | 1 | 2 | 3 -> zooms[k - 1]
                | 4 when o.Shape.Length = 4 -> defaultArg o.TR 1.0
                | _ -> 1.0)
        let size = if version = 2 then NiftiHeaderCodec.nifti2Size else NiftiHeaderCodec.nifti1Size
        { Version = version
          BigEndian = false
          SizeOfHeader = size
          Magic = (if version = 2 then "n+2" else "n+1")
          Dim = dim
          DatatypeCode = int o.Datatype
          Bitpix = 8 * bpv
          Pixdim = pixdim
          VoxOffset = int64 (size + 4)
          SclSlope = 1.0
          SclInter = 0.0
          XyztUnits = 2 ||| 8
          IntentCode = 0
          IntentParameters = [| 0.0; 0.0; 0.0 |]
          IntentName = ""
          CalMin = 0.0
          CalMax = 0.0
          SliceStart = 0L
          SliceEnd = 0L
          SliceCode = 0
          SliceDuration = 0.0
          Toffset = 0.0
          DimInfo = 0
          Descrip = descrip
          AuxFile = ""
          QformCode = o.QformCode
          SformCode = o.SformCode
          Quaternion = bcd
          QOffset = [| o.Affine[0, 3]; o.Affine[1, 3]; o.Affine[2, 3] |]
          SrowX = Array.init 4 (fun j -> o.Affine[0, j])
          SrowY = Array.init 4 (fun j -> o.Affine[1, j])
          SrowZ = Array.init 4 (fun j -> o.Affine[2, j])
          Extensions = [] }

    let integral (dt: NiftiDatatype) (lo: float) (hi: float) (i: int) (v: float) =
        if not (v >= lo && v <= hi && Math.Round v = v) then
            invalidArg "values" $"value {v} at index {i} is not a {dt} (integers {lo}..{hi})"

    // Encoding float → the on-disk type, little-endian; integer types take only integral values in range.
    let encode (dt: NiftiDatatype) (src: ReadOnlySpan<float>) (dst: Span<byte>) =
        match dt with
        | NiftiDatatype.Float32 ->
            for i in 0 .. src.Length - 1 do
                BinaryPrimitives.WriteSingleLittleEndian(dst.Slice(4 * i, 4), float32 src[i])
        | NiftiDatatype.Float64 ->
            for i in 0 .. src.Length - 1 do
                BinaryPrimitives.WriteDoubleLittleEndian(dst.Slice(8 * i, 8), src[i])
        | NiftiDatatype.Int16 ->
            for i in 0 .. src.Length - 1 do
                integral dt -32768.0 32767.0 i src[i]
                BinaryPrimitives.WriteInt16LittleEndian(dst.Slice(2 * i, 2), int16 src[i])
        | NiftiDatatype.UInt8 ->
            for i in 0 .. src.Length - 1 do
                integral dt 0.0 255.0 i src[i]
                dst[i] <- byte src[i]
        | NiftiDatatype.Int32 ->
            for i in 0 .. src.Length - 1 do
                integral dt -2147483648.0 2147483647.0 i src[i]
                BinaryPrimitives.WriteInt32LittleEndian(dst.Slice(4 * i, 4), int src[i])
        | _ -> invalidArg (nameof dt) $"writing {dt} is not supported"

    let temporaryBeside (path: string) =
        let full = Path.GetFullPath path
        let dir = Path.GetDirectoryName full
        if Directory.Exists full then raise (fault path "is a directory; cannot write a NIfTI file there")
        if not (Directory.Exists dir) then raise (fault path $"folder {dir} does not exist")
        Path.Combine(dir, $".{Path.GetFileName full}.{Guid.NewGuid():N}.tmp")


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
        if next >= layout.Volumes then invalidOp $"all {layout.Volumes} volumes have been read"
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
    let volumes = header.Shape |> Array.skip (min 3 header.Shape.Length) |> Array.fold (*) 1L
    let voxelsPerVolume = header.Shape |> Array.truncate 3 |> Array.fold (*) 1L |> int
    let bytesPerVoxel = header.Bitpix / 8
    let perChunk = NiftiIo.chunkBytes / bytesPerVoxel
    let buffer = Array.zeroCreate<byte> NiftiIo.chunkBytes
    let scratch = Array.zeroCreate<float> perChunk
    let mutable written = 0L
    let mutable closed = false
    let check (length: int) =
        if closed then invalidOp "the writer is already completed or disposed"
        if written >= volumes then invalidOp $"all {volumes} volumes have been written"
        if length <> voxelsPerVolume then invalidArg "values" $"a volume has {voxelsPerVolume} voxels, got {length}"
    let write (src: ReadOnlySpan<float>) =
        let mutable done' = 0
        while done' < src.Length do
            let n = min perChunk (src.Length - done')
            NiftiIo.encode header.Datatype (src.Slice(done', n)) (buffer.AsSpan(0, n * bytesPerVoxel))
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
        if closed then invalidOp "the writer is already completed or disposed"
        if written <> volumes then
            invalidOp $"{written} of {volumes} volumes written; write them all before Complete"
        closed <- true
        try
            stream.Dispose()
            File.Move(temporary, path, true)
        with _ ->
            File.Delete temporary
            reraise ()

    interface IDisposable with
        member _.Dispose() =
            if not closed then
                closed <- true
                stream.Dispose()
                File.Delete temporary

/// <summary>Reading and writing NIfTI-1 and NIfTI-2 single files (.nii, .nii.gz), as nibabel 5.0 reads them.</summary>
/// <remarks>Every fault of a file (missing, a directory, truncated, corrupt gzip, bad sizeof_hdr or magic, absurd
/// dims, unsupported datatype) raises <see cref="GlmInputException"/> naming the file and the fault.</remarks>
module Nifti =
    open NiftiIo


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
                    if v < lo then lo <- v
                    if v > hi then hi <- v
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
    /// <exception cref="GlmInputException">The path is a directory or its folder does not exist.</exception>
    /// <exception cref="ArgumentException">Invalid options (shape, affine, datatype, codes, descrip, TR).</exception>
    let createWriter (path: string) (options: NiftiWriteOptions) : NiftiVolumeWriter =
        if isNull path then nullArg (nameof path)
        let h = headerFor options
        let temporary = temporaryBeside path
        let file = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 <<< 16)
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

    let private writeAll (path: string) (options: NiftiWriteOptions) (length: int) (writeVolumes: NiftiVolumeWriter -> unit) =
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
    /// <exception cref="GlmInputException">The path is a directory or its folder does not exist.</exception>
    let write (path: string) (options: NiftiWriteOptions) (data: float[]) =
        if isNull data then nullArg (nameof data)
        writeAll path options data.Length (fun w ->
            let per = int (options.Shape |> Array.truncate 3 |> Array.fold (*) 1L)
            for v in 0 .. data.Length / per - 1 do
                w.WriteVolume(ReadOnlySpan(data, v * per, per)))

    /// <summary>Writes a whole float32 image; see <c>write</c>.</summary>
    let writeFloat32 (path: string) (options: NiftiWriteOptions) (data: float32[]) =
        if isNull data then nullArg (nameof data)
        writeAll path options data.Length (fun w ->
            let per = int (options.Shape |> Array.truncate 3 |> Array.fold (*) 1L)
            for v in 0 .. data.Length / per - 1 do
                w.WriteVolume(ReadOnlySpan(data, v * per, per)))
