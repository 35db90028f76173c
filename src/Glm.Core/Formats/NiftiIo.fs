namespace FmriGlm.Core

open System
open System.Buffers.Binary
open System.IO
open System.IO.Compression
open System.Runtime.InteropServices

/// File access and decoding behind Nifti's readers (internal); NiftiWriting has the writers' half.
module internal NiftiIo =

    // Deflate cannot expand more than 1032:1, so a gzip of n bytes never holds more than 1032·n: a header whose dims
    // ask for more is refused before anything is allocated (a corrupt header never allocates gigabytes).
    let maxDeflateRatio = 1032L
    let chunkBytes = 1 <<< 20

    let fault (path: string) (problem: string) = GlmInputException(path, problem)

    /// An open input, positioned at the start, counting the uncompressed bytes consumed.
    type Input(path: string) =
        let file =
            if isNull path then
                nullArg (nameof path)

            if Directory.Exists path then
                raise (fault path "is a directory, not a NIfTI file")

            if not (File.Exists path) then
                raise (fault path "no such file")

            // a FIFO or a device reports 0 bytes; opening one would block until a writer appears
            if FileInfo(path).Length = 0L then
                raise (fault path "empty file (0 bytes), or not a regular file (a FIFO, socket or device)")

            try
                new FileStream(
                    path,
                    FileMode.Open,
                    FileAccess.Read,
                    FileShare.Read,
                    1 <<< 16,
                    FileOptions.SequentialScan
                )
            with
            | :? UnauthorizedAccessException as e -> raise (fault path $"cannot be opened: {e.Message}")
            | :? IOException as e -> raise (fault path $"cannot be opened: {e.Message}")

        let length = file.Length

        let gzip =
            let magic = Array.zeroCreate<byte> 2
            let n = file.Read(magic, 0, 2)
            file.Position <- 0L
            n = 2 && magic[0] = 0x1fuy && magic[1] = 0x8buy

        let stream: Stream =
            if gzip then
                new GZipStream(file, CompressionMode.Decompress, false)
            else
                file

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
            | :? InvalidDataException as e ->
                raise (fault path $"corrupt gzip data after byte {position + int64 total}: {e.Message}")
            | :? IOException as e -> raise (fault path $"read failed after byte {position + int64 total}: {e.Message}")

            position <- position + int64 total
            total

        /// Reads exactly dest.Length bytes or raises "truncated <what>".
        member x.ReadExactly(dest: Span<byte>, what: string) =
            let start = position
            let n = x.Read dest

            if n < dest.Length then
                raise (
                    fault
                        path
                        $"truncated {what}: needs {dest.Length} bytes from byte {start}, the data ends after {start + int64 n}"
                )

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
    type Layout =
        { VoxelsPerVolume: int64
          Volumes: int64
          BytesPerVoxel: int
          TotalBytes: int64 }

    let checkedProduct (path: string) (values: int64 seq) =
        values
        |> Seq.fold
            (fun (acc: int64) v ->
                if v <> 0L && acc > Int64.MaxValue / v then
                    raise (fault path "the product of the dims overflows a 64-bit count of voxels")

                acc * v)
            1L

    /// The affine the image will be used with (nibabel's best affine) must place every voxel in mm: finite, with a
    /// non-singular 3×3 part. A NaN or singular affine otherwise passes the fit and fails when maps are written.
    let checkGeometry (path: string) (h: NiftiHeader) =
        let source =
            if NiftiAffines.validCode h.SformCode <> 0 then "sform (srow_x/y/z)"
            elif NiftiAffines.validCode h.QformCode <> 0 then "qform (quatern_b/c/d, qoffset_x/y/z, pixdim)"
            else "affine from pixdim (no sform or qform)"

        let a = NiftiAffines.bestAffine h

        for i in 0 .. 2 do
            for j in 0 .. 3 do
                if not (Double.IsFinite a[i, j]) then
                    raise (fault path $"the {source} has a non-finite value, {a[i, j]} at row {i + 1}, column {j + 1}")

        let det =
            a[0, 0] * (a[1, 1] * a[2, 2] - a[1, 2] * a[2, 1])
            - a[0, 1] * (a[1, 0] * a[2, 2] - a[1, 2] * a[2, 0])
            + a[0, 2] * (a[1, 0] * a[2, 1] - a[1, 1] * a[2, 0])

        let norm j = sqrt (a[0, j] * a[0, j] + a[1, j] * a[1, j] + a[2, j] * a[2, j])
        let scale = norm 0 * norm 1 * norm 2

        if not (Double.IsFinite det) || scale = 0.0 || abs det <= 1e-9 * scale then
            raise (fault path $"the {source} is singular (determinant {det}): voxels have no position in mm")

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
            raise (
                fault
                    path
                    $"vox_offset {h.VoxOffset} is inside the header: a single-file NIfTI-{h.Version} puts its data at byte {minimumOffset} or later"
            )

        if
            Double.IsFinite h.SclSlope
            && h.SclSlope <> 0.0
            && not (Double.IsFinite h.SclInter)
        then
            raise (fault path $"scl_slope is {h.SclSlope} but scl_inter is {h.SclInter}, not a number to add")

        if
            NiftiAffines.validCode h.SformCode = 0
            && NiftiAffines.validCode h.QformCode <> 0
            && NiftiAffines.quaternionW2 h < NiftiAffines.quaternionThreshold h
        then
            raise (
                fault
                    path
                    $"qform quaternion (b, c, d) = ({h.Quaternion[0]}, {h.Quaternion[1]}, {h.Quaternion[2]}) is longer than 1, so it is no rotation"
            )

        checkGeometry path h

        { VoxelsPerVolume = perVolume
          Volumes = volumes
          BytesPerVoxel = bpv
          TotalBytes = bytes }

    /// Reads and validates the header and extensions, leaving the input at vox_offset.
    let readHeaderFrom (input: Input) : NiftiHeader * Layout =
        let path = input.Path
        let bytes = Array.zeroCreate<byte> NiftiHeaderCodec.nifti2Size
        let n = input.Read(bytes.AsSpan(0, 4))

        if n = 0 then
            raise (fault path (if input.Gzip then "truncated gzip stream: no data" else "empty file"))

        if n < 4 then
            raise (fault path $"truncated header: {n} bytes")

        let size =
            match NiftiHeaderCodec.detect bytes with
            | Some(size, _) -> size
            | None ->
                let le = BinaryPrimitives.ReadInt32LittleEndian(ReadOnlySpan(bytes, 0, 4))
                let be = BinaryPrimitives.ReadInt32BigEndian(ReadOnlySpan(bytes, 0, 4))

                raise (
                    fault
                        path
                        $"sizeof_hdr is {le} (byte-swapped {be}): not a NIfTI file (NIfTI-1 says 348, NIfTI-2 540)"
                )

        input.ReadExactly(bytes.AsSpan(4, size - 4), "header")
        let h = NiftiHeaderCodec.parse path bytes
        let layout = validate path h

        let available =
            if input.Gzip then
                input.FileLength * maxDeflateRatio + 65536L
            else
                input.FileLength

        if h.VoxOffset > available - layout.TotalBytes then
            let kind =
                if input.Gzip then
                    $"a gzip file of {input.FileLength} bytes can hold at most {available}"
                else
                    $"the file has {input.FileLength}"

            raise (
                fault
                    path
                    $"truncated data: the header's dims and vox_offset {h.VoxOffset} need {h.VoxOffset + layout.TotalBytes} bytes, {kind}"
            )

        let flag = Array.zeroCreate<byte> 4
        input.ReadExactly(flag.AsSpan(), "header extension flag")

        let extensions =
            if flag[0] = 0uy then
                []
            else
                let word (b: byte[]) (o: int) =
                    let s = ReadOnlySpan(b, o, 4)

                    if h.BigEndian then
                        BinaryPrimitives.ReadInt32BigEndian s
                    else
                        BinaryPrimitives.ReadInt32LittleEndian s

                let found = ResizeArray()
                let head = Array.zeroCreate<byte> 8

                while input.Position + 8L <= h.VoxOffset do
                    let at = input.Position
                    input.ReadExactly(head.AsSpan(), "header extension")
                    let esize = word head 0
                    let ecode = word head 4

                    if esize < 8 || int64 esize > h.VoxOffset - at then
                        raise (
                            fault
                                path
                                $"header extension at byte {at} has esize {esize}, outside 8..{h.VoxOffset - at} (the space before vox_offset)"
                        )

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
            for i in 0 .. dst.Length - 1 do
                dst[i] <- float src[i]
        | NiftiDatatype.Int8 ->
            for i in 0 .. dst.Length - 1 do
                dst[i] <- float (sbyte src[i])
        | NiftiDatatype.Int16 ->
            for i in 0 .. dst.Length - 1 do
                let s = src.Slice(2 * i, 2)

                dst[i] <-
                    float (
                        if big then
                            BinaryPrimitives.ReadInt16BigEndian s
                        else
                            BinaryPrimitives.ReadInt16LittleEndian s
                    )
        | NiftiDatatype.UInt16 ->
            for i in 0 .. dst.Length - 1 do
                let s = src.Slice(2 * i, 2)

                dst[i] <-
                    float (
                        if big then
                            BinaryPrimitives.ReadUInt16BigEndian s
                        else
                            BinaryPrimitives.ReadUInt16LittleEndian s
                    )
        | NiftiDatatype.Int32 ->
            for i in 0 .. dst.Length - 1 do
                let s = src.Slice(4 * i, 4)

                dst[i] <-
                    float (
                        if big then
                            BinaryPrimitives.ReadInt32BigEndian s
                        else
                            BinaryPrimitives.ReadInt32LittleEndian s
                    )
        | NiftiDatatype.UInt32 ->
            for i in 0 .. dst.Length - 1 do
                let s = src.Slice(4 * i, 4)

                dst[i] <-
                    float (
                        if big then
                            BinaryPrimitives.ReadUInt32BigEndian s
                        else
                            BinaryPrimitives.ReadUInt32LittleEndian s
                    )
        | NiftiDatatype.Int64 ->
            for i in 0 .. dst.Length - 1 do
                let s = src.Slice(8 * i, 8)

                dst[i] <-
                    float (
                        if big then
                            BinaryPrimitives.ReadInt64BigEndian s
                        else
                            BinaryPrimitives.ReadInt64LittleEndian s
                    )
        | NiftiDatatype.UInt64 ->
            for i in 0 .. dst.Length - 1 do
                let s = src.Slice(8 * i, 8)

                dst[i] <-
                    float (
                        if big then
                            BinaryPrimitives.ReadUInt64BigEndian s
                        else
                            BinaryPrimitives.ReadUInt64LittleEndian s
                    )
        | NiftiDatatype.Float32 ->
            for i in 0 .. dst.Length - 1 do
                let s = src.Slice(4 * i, 4)

                dst[i] <-
                    float (
                        if big then
                            BinaryPrimitives.ReadSingleBigEndian s
                        else
                            BinaryPrimitives.ReadSingleLittleEndian s
                    )
        | NiftiDatatype.Float64 ->
            for i in 0 .. dst.Length - 1 do
                let s = src.Slice(8 * i, 8)

                dst[i] <-
                    if big then
                        BinaryPrimitives.ReadDoubleBigEndian s
                    else
                        BinaryPrimitives.ReadDoubleLittleEndian s
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

        if
            dt = NiftiDatatype.Float32
            && h.Scaling |> Option.forall (fun (s, i) -> s = 1.0 && i = 0.0)
        then
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
            raise (
                fault
                    path
                    $"{count} voxels are more than one array can hold ({Array.MaxLength}); read it volume by volume (Nifti.openVolumes)"
            )

        try
            Array.zeroCreate<'T> (int count)
        with :? OutOfMemoryException ->
            raise (fault path $"{count} voxels do not fit in memory; read it volume by volume (Nifti.openVolumes)")
