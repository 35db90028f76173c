namespace FmriGlm.Core

open System
open System.Buffers.Binary
open System.Text

/// Header parsing and serialisation of NIfTI-1 and NIfTI-2 as nibabel 5.0 reads and writes them (internal: reached
/// through Nifti); NiftiAffines has the affine arithmetic.
module internal NiftiHeaderCodec =

    /// Bytes of a NIfTI-1 header.
    let nifti1Size = 348
    /// Bytes of a NIfTI-2 header.
    let nifti2Size = 540

    /// Bytes per voxel of a supported datatype code, or None.
    let bytesPerVoxel (code: int) =
        match enum<NiftiDatatype> code with
        | NiftiDatatype.UInt8
        | NiftiDatatype.Int8 -> Some 1
        | NiftiDatatype.Int16
        | NiftiDatatype.UInt16 -> Some 2
        | NiftiDatatype.Int32
        | NiftiDatatype.UInt32
        | NiftiDatatype.Float32 -> Some 4
        | NiftiDatatype.Int64
        | NiftiDatatype.UInt64
        | NiftiDatatype.Float64 -> Some 8
        | _ -> None

    let private nameOfCode (code: int) =
        match code with
        | 0 -> "unknown"
        | 1 -> "binary"
        | 32 -> "complex64"
        | 128 -> "RGB24"
        | 1536 -> "float128"
        | 1792 -> "complex128"
        | 2048 -> "complex256"
        | 2304 -> "RGBA32"
        | _ -> "unknown code"

    /// "unsupported datatype N (name)".
    let unsupported (code: int) =
        $"unsupported datatype {code} ({nameOfCode code})"

    let private text (field: ReadOnlySpan<byte>) =
        let n = field.IndexOf 0uy
        Encoding.Latin1.GetString(if n < 0 then field else field.Slice(0, n))

    /// Header size read from the first 4 bytes: (size, bigEndian), or None when neither 348 nor 540 in either order.
    let detect (bytes: byte[]) =
        let le = BinaryPrimitives.ReadInt32LittleEndian(ReadOnlySpan(bytes, 0, 4))
        let be = BinaryPrimitives.ReadInt32BigEndian(ReadOnlySpan(bytes, 0, 4))

        if le = nifti1Size || le = nifti2Size then Some(le, false)
        elif be = nifti1Size || be = nifti2Size then Some(be, true)
        else None

    /// Parses the fixed part of a header (348 or 540 bytes). Checks nothing but the magic.
    let parse (source: string) (bytes: byte[]) : NiftiHeader =
        let size, big =
            match detect bytes with
            | Some d -> d
            | None -> invalidArg (nameof bytes) "not a NIfTI header start"

        let i16 (o: int) =
            let s = ReadOnlySpan(bytes, o, 2)

            int (
                if big then
                    BinaryPrimitives.ReadInt16BigEndian s
                else
                    BinaryPrimitives.ReadInt16LittleEndian s
            )

        let i32 (o: int) =
            let s = ReadOnlySpan(bytes, o, 4)

            if big then
                BinaryPrimitives.ReadInt32BigEndian s
            else
                BinaryPrimitives.ReadInt32LittleEndian s

        let i64 (o: int) =
            let s = ReadOnlySpan(bytes, o, 8)

            if big then
                BinaryPrimitives.ReadInt64BigEndian s
            else
                BinaryPrimitives.ReadInt64LittleEndian s

        let f32 (o: int) =
            let s = ReadOnlySpan(bytes, o, 4)

            float (
                if big then
                    BinaryPrimitives.ReadSingleBigEndian s
                else
                    BinaryPrimitives.ReadSingleLittleEndian s
            )

        let f64 (o: int) =
            let s = ReadOnlySpan(bytes, o, 8)

            if big then
                BinaryPrimitives.ReadDoubleBigEndian s
            else
                BinaryPrimitives.ReadDoubleLittleEndian s

        if size = nifti1Size then
            let magic = text (ReadOnlySpan(bytes, 344, 4))

            if magic = "ni1" then
                raise (
                    GlmInputException(
                        source,
                        "header of a NIfTI-1 pair (.hdr/.img); only single .nii/.nii.gz files are supported"
                    )
                )

            if magic <> "n+1" then
                raise (GlmInputException(source, $"bad magic '{magic}': a 348-byte header must say 'n+1'"))

            let voxOffset = f32 108

            if Double.IsNaN voxOffset || voxOffset < 0.0 || voxOffset > 9.0e15 then
                raise (GlmInputException(source, $"vox_offset {voxOffset} is not a byte offset"))

            { Version = 1
              BigEndian = big
              SizeOfHeader = size
              Magic = magic
              Dim = Array.init 8 (fun k -> int64 (i16 (40 + 2 * k)))
              DatatypeCode = i16 70
              Bitpix = i16 72
              Pixdim = Array.init 8 (fun k -> f32 (76 + 4 * k))
              VoxOffset = int64 voxOffset
              SclSlope = f32 112
              SclInter = f32 116
              XyztUnits = int bytes[123]
              IntentCode = i16 68
              IntentParameters = [| f32 56; f32 60; f32 64 |]
              IntentName = text (ReadOnlySpan(bytes, 328, 16))
              CalMin = f32 128
              CalMax = f32 124
              SliceStart = int64 (i16 74)
              SliceEnd = int64 (i16 120)
              SliceCode = int bytes[122]
              SliceDuration = f32 132
              Toffset = f32 136
              DimInfo = int bytes[39]
              Descrip = text (ReadOnlySpan(bytes, 148, 80))
              AuxFile = text (ReadOnlySpan(bytes, 228, 24))
              QformCode = i16 252
              SformCode = i16 254
              Quaternion = [| f32 256; f32 260; f32 264 |]
              QOffset = [| f32 268; f32 272; f32 276 |]
              SrowX = Array.init 4 (fun k -> f32 (280 + 4 * k))
              SrowY = Array.init 4 (fun k -> f32 (296 + 4 * k))
              SrowZ = Array.init 4 (fun k -> f32 (312 + 4 * k))
              Extensions = [] }
        else
            let magic = text (ReadOnlySpan(bytes, 4, 8))

            if magic <> "n+2" then
                raise (GlmInputException(source, $"bad magic '{magic}': a 540-byte header must say 'n+2'"))

            { Version = 2
              BigEndian = big
              SizeOfHeader = size
              Magic = magic
              Dim = Array.init 8 (fun k -> i64 (16 + 8 * k))
              DatatypeCode = i16 12
              Bitpix = i16 14
              Pixdim = Array.init 8 (fun k -> f64 (104 + 8 * k))
              VoxOffset = i64 168
              SclSlope = f64 176
              SclInter = f64 184
              XyztUnits = i32 500
              IntentCode = i32 504
              IntentParameters = [| f64 80; f64 88; f64 96 |]
              IntentName = text (ReadOnlySpan(bytes, 508, 16))
              CalMin = f64 200
              CalMax = f64 192
              SliceStart = i64 224
              SliceEnd = i64 232
              SliceCode = i32 496
              SliceDuration = f64 208
              Toffset = f64 216
              DimInfo = int bytes[524]
              Descrip = text (ReadOnlySpan(bytes, 240, 80))
              AuxFile = text (ReadOnlySpan(bytes, 320, 24))
              QformCode = i32 344
              SformCode = i32 348
              Quaternion = [| f64 352; f64 360; f64 368 |]
              QOffset = [| f64 376; f64 384; f64 392 |]
              SrowX = Array.init 4 (fun k -> f64 (400 + 8 * k))
              SrowY = Array.init 4 (fun k -> f64 (432 + 8 * k))
              SrowZ = Array.init 4 (fun k -> f64 (464 + 8 * k))
              Extensions = [] }

    /// Serialises a header little-endian (without extensions): 348 or 540 bytes by h.Version.
    let serialize (h: NiftiHeader) : byte[] =
        let bytes =
            Array.zeroCreate<byte> (if h.Version = 2 then nifti2Size else nifti1Size)

        let i16 (o: int) (v: int) =
            BinaryPrimitives.WriteInt16LittleEndian(Span(bytes, o, 2), int16 v)

        let i32 (o: int) (v: int) =
            BinaryPrimitives.WriteInt32LittleEndian(Span(bytes, o, 4), v)

        let i64 (o: int) (v: int64) =
            BinaryPrimitives.WriteInt64LittleEndian(Span(bytes, o, 8), v)

        let f32 (o: int) (v: float) =
            BinaryPrimitives.WriteSingleLittleEndian(Span(bytes, o, 4), float32 v)

        let f64 (o: int) (v: float) =
            BinaryPrimitives.WriteDoubleLittleEndian(Span(bytes, o, 8), v)

        let str (o: int) (len: int) (s: string) =
            let b = Encoding.Latin1.GetBytes s
            Array.blit b 0 bytes o (min b.Length (len - 1))

        if h.Version = 2 then
            i32 0 nifti2Size
            str 4 8 "n+2"
            Array.blit [| 0x0duy; 0x0auy; 0x1auy; 0x0auy |] 0 bytes 8 4
            i16 12 h.DatatypeCode
            i16 14 h.Bitpix
            h.Dim |> Array.iteri (fun k d -> i64 (16 + 8 * k) d)
            h.IntentParameters |> Array.iteri (fun k p -> f64 (80 + 8 * k) p)
            h.Pixdim |> Array.iteri (fun k p -> f64 (104 + 8 * k) p)
            i64 168 h.VoxOffset
            f64 176 h.SclSlope
            f64 184 h.SclInter
            f64 192 h.CalMax
            f64 200 h.CalMin
            f64 208 h.SliceDuration
            f64 216 h.Toffset
            i64 224 h.SliceStart
            i64 232 h.SliceEnd
            str 240 80 h.Descrip
            str 320 24 h.AuxFile
            i32 344 h.QformCode
            i32 348 h.SformCode
            h.Quaternion |> Array.iteri (fun k q -> f64 (352 + 8 * k) q)
            h.QOffset |> Array.iteri (fun k q -> f64 (376 + 8 * k) q)
            h.SrowX |> Array.iteri (fun k v -> f64 (400 + 8 * k) v)
            h.SrowY |> Array.iteri (fun k v -> f64 (432 + 8 * k) v)
            h.SrowZ |> Array.iteri (fun k v -> f64 (464 + 8 * k) v)
            i32 496 h.SliceCode
            i32 500 h.XyztUnits
            i32 504 h.IntentCode
            str 508 16 h.IntentName
            bytes[524] <- byte h.DimInfo
        else
            i32 0 nifti1Size
            bytes[38] <- byte 'r'
            bytes[39] <- byte h.DimInfo
            h.Dim |> Array.iteri (fun k d -> i16 (40 + 2 * k) (int d))
            h.IntentParameters |> Array.iteri (fun k p -> f32 (56 + 4 * k) p)
            i16 68 h.IntentCode
            i16 70 h.DatatypeCode
            i16 72 h.Bitpix
            i16 74 (int h.SliceStart)
            h.Pixdim |> Array.iteri (fun k p -> f32 (76 + 4 * k) p)
            f32 108 (float h.VoxOffset)
            f32 112 h.SclSlope
            f32 116 h.SclInter
            i16 120 (int h.SliceEnd)
            bytes[122] <- byte h.SliceCode
            bytes[123] <- byte h.XyztUnits
            f32 124 h.CalMax
            f32 128 h.CalMin
            f32 132 h.SliceDuration
            f32 136 h.Toffset
            str 148 80 h.Descrip
            str 228 24 h.AuxFile
            i16 252 h.QformCode
            i16 254 h.SformCode
            h.Quaternion |> Array.iteri (fun k q -> f32 (256 + 4 * k) q)
            h.QOffset |> Array.iteri (fun k q -> f32 (268 + 4 * k) q)
            h.SrowX |> Array.iteri (fun k v -> f32 (280 + 4 * k) v)
            h.SrowY |> Array.iteri (fun k v -> f32 (296 + 4 * k) v)
            h.SrowZ |> Array.iteri (fun k v -> f32 (312 + 4 * k) v)
            str 328 16 h.IntentName
            str 344 4 "n+1"

        bytes
