namespace FmriGlm.Core

open System
open System.Buffers.Binary
open System.IO
open System.Runtime.InteropServices

/// Headers, encoding and temporary files behind Nifti's writers (internal); NiftiIo has the readers' half.
module internal NiftiWriting =
    open NiftiIo

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

        if descrip.Length > 79 then
            invalidArg (nameof o) "descrip holds at most 79 characters"

        match o.TR with
        | Some tr when not (Double.IsFinite tr) || tr < 0.0 -> invalidArg (nameof o) $"TR {tr} is not a duration"
        | _ -> ()

        let qfac, zooms, bcd = NiftiAffines.qformParameters o.Affine

        let version =
            if o.Shape |> Array.exists (fun d -> d > 32767L) then
                2
            else
                1

        let dim =
            Array.init 8 (fun k ->
                if k = 0 then int64 o.Shape.Length
                elif k <= o.Shape.Length then o.Shape[k - 1]
                else 1L)

        let pixdim =
            Array.init 8 (fun k ->
                match k with
                | 0 -> qfac
                | 1
                | 2
                | 3 -> zooms[k - 1]
                | 4 when o.Shape.Length = 4 -> defaultArg o.TR 1.0
                | _ -> 1.0)

        let size =
            if version = 2 then
                NiftiHeaderCodec.nifti2Size
            else
                NiftiHeaderCodec.nifti1Size

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

        if Directory.Exists full then
            raise (fault path "is a directory; cannot write a NIfTI file there")

        if not (Directory.Exists dir) then
            raise (fault path $"folder {dir} does not exist")

        Path.Combine(dir, $".{Path.GetFileName full}.{Guid.NewGuid():N}.tmp")


