namespace FmriGlm.Core

open System
open System.Buffers.Binary
open System.Text

/// <summary>On-disk voxel types that FmriGlm reads (NIfTI <c>datatype</c> codes). Other codes (binary, complex,
/// RGB, float128) are rejected with "unsupported datatype N".</summary>
type NiftiDatatype =
    /// <summary>Unsigned 8-bit integer (code 2).</summary>
    | UInt8 = 2
    /// <summary>Signed 16-bit integer (code 4).</summary>
    | Int16 = 4
    /// <summary>Signed 32-bit integer (code 8).</summary>
    | Int32 = 8
    /// <summary>IEEE 754 single precision (code 16).</summary>
    | Float32 = 16
    /// <summary>IEEE 754 double precision (code 64).</summary>
    | Float64 = 64
    /// <summary>Signed 8-bit integer (code 256).</summary>
    | Int8 = 256
    /// <summary>Unsigned 16-bit integer (code 512).</summary>
    | UInt16 = 512
    /// <summary>Unsigned 32-bit integer (code 768).</summary>
    | UInt32 = 768
    /// <summary>Signed 64-bit integer (code 1024); values beyond ±2⁵³ lose precision as float.</summary>
    | Int64 = 1024
    /// <summary>Unsigned 64-bit integer (code 1280); values beyond 2⁵³ lose precision as float.</summary>
    | UInt64 = 1280

/// <summary>One NIfTI header extension: its code (<c>ecode</c>; 6 is a comment) and its raw content, the
/// <c>esize − 8</c> bytes after the size and code words.</summary>
type NiftiExtension = { Code: int; Content: byte[] }

/// <summary>Every field of a NIfTI-1 (348-byte) or NIfTI-2 (540-byte) header, exactly as stored (converted to
/// float/int64), plus the version, byte order and extensions. The derived values (shape, affines, zooms, TR) are
/// members, computed as nibabel 5.0 computes them.</summary>
type NiftiHeader =
    {
        /// <summary>1 (348-byte header) or 2 (540-byte header).</summary>
        Version: int
        /// <summary>True when the file is big-endian.</summary>
        BigEndian: bool
        /// <summary><c>sizeof_hdr</c>: 348 or 540.</summary>
        SizeOfHeader: int
        /// <summary><c>magic</c> up to its first NUL: "n+1" or "n+2".</summary>
        Magic: string
        /// <summary><c>dim[0..7]</c>: dim[0] is the number of axes, dim[1..dim[0]] their sizes.</summary>
        Dim: int64[]
        /// <summary><c>datatype</c> code, as stored.</summary>
        DatatypeCode: int
        /// <summary><c>bitpix</c>, as stored (nibabel ignores a wrong value; so do we).</summary>
        Bitpix: int
        /// <summary><c>pixdim[0..7]</c>: pixdim[0] is qfac, pixdim[1..3] voxel sizes, pixdim[4] the TR, as stored.</summary>
        Pixdim: float[]
        /// <summary><c>vox_offset</c>: byte offset of the voxel data in the file.</summary>
        VoxOffset: int64
        /// <summary><c>scl_slope</c>; 0 or NaN means the data is not scaled.</summary>
        SclSlope: float
        /// <summary><c>scl_inter</c>.</summary>
        SclInter: float
        /// <summary><c>xyzt_units</c>: spatial units in bits 0–2, time units in bits 3–5.</summary>
        XyztUnits: int
        /// <summary><c>intent_code</c>.</summary>
        IntentCode: int
        /// <summary><c>intent_p1</c>, <c>intent_p2</c>, <c>intent_p3</c>.</summary>
        IntentParameters: float[]
        /// <summary><c>intent_name</c> up to its first NUL.</summary>
        IntentName: string
        /// <summary><c>cal_min</c>: display range minimum.</summary>
        CalMin: float
        /// <summary><c>cal_max</c>: display range maximum.</summary>
        CalMax: float
        /// <summary><c>slice_start</c>.</summary>
        SliceStart: int64
        /// <summary><c>slice_end</c>.</summary>
        SliceEnd: int64
        /// <summary><c>slice_code</c>.</summary>
        SliceCode: int
        /// <summary><c>slice_duration</c>.</summary>
        SliceDuration: float
        /// <summary><c>toffset</c>.</summary>
        Toffset: float
        /// <summary><c>dim_info</c>.</summary>
        DimInfo: int
        /// <summary><c>descrip</c> up to its first NUL byte (Latin-1).</summary>
        Descrip: string
        /// <summary><c>aux_file</c> up to its first NUL byte.</summary>
        AuxFile: string
        /// <summary><c>qform_code</c> as stored (0 unknown, 1 scanner, 2 aligned, 3 Talairach, 4 MNI, 5 template).</summary>
        QformCode: int
        /// <summary><c>sform_code</c> as stored.</summary>
        SformCode: int
        /// <summary><c>quatern_b</c>, <c>quatern_c</c>, <c>quatern_d</c>.</summary>
        Quaternion: float[]
        /// <summary><c>qoffset_x</c>, <c>qoffset_y</c>, <c>qoffset_z</c>, in mm.</summary>
        QOffset: float[]
        /// <summary><c>srow_x</c>: first row of the sform affine.</summary>
        SrowX: float[]
        /// <summary><c>srow_y</c>: second row of the sform affine.</summary>
        SrowY: float[]
        /// <summary><c>srow_z</c>: third row of the sform affine.</summary>
        SrowZ: float[]
        /// <summary>Header extensions, in file order.</summary>
        Extensions: NiftiExtension list
    }

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
        QformCode: int
    }

/// The qform/sform arithmetic of nibabel 5.0 (internal: reached through Nifti): quaternions to affines and back,
/// the fall-back affine, and which affine an image uses.
module internal NiftiAffines =
    /// nibabel's load-time fixes (Nifti1Header.check_fix): negative pixdim[1..3] become their absolute values,
    /// a qfac other than ±1 becomes 1.
    let fixedZooms (h: NiftiHeader) =
        Array.init 3 (fun k -> abs h.Pixdim[k + 1])

    let qfac (h: NiftiHeader) =
        if h.Pixdim[0] = -1.0 then -1.0 else 1.0

    /// nibabel's quaternion threshold: −3·eps of the stored precision (float32 for NIfTI-1, float64 for NIfTI-2).
    let quaternionThreshold (h: NiftiHeader) =
        if h.Version = 2 then
            -3.0 * 2.220446049250313e-16
        else
            -3.0 * 1.1920928955078125e-07

    /// w² = 1 − b² − c² − d² of the stored quaternion.
    let quaternionW2 (h: NiftiHeader) =
        let b, c, d = h.Quaternion[0], h.Quaternion[1], h.Quaternion[2]
        1.0 - (b * b + c * c + d * d)

    /// nibabel get_qform(): rotation from the quaternion (w filled in as sqrt(1 − b² − c² − d²), 0 when that is
    /// negative within rounding), times diag(pixdim[1..3]) with the z zoom multiplied by qfac, offset qoffset.
    /// nibabel raises when w² is below the threshold; this returns the affine with w = 0 and the caller decides.
    let qformAffine (h: NiftiHeader) : float[,] =
        let b, c, d = h.Quaternion[0], h.Quaternion[1], h.Quaternion[2]
        let w2 = quaternionW2 h
        let w = if w2 < 0.0 then 0.0 else sqrt w2
        let n = w * w + b * b + c * c + d * d

        let r =
            if n < 2.220446049250313e-16 then
                array2D [ [ 1.0; 0.0; 0.0 ]; [ 0.0; 1.0; 0.0 ]; [ 0.0; 0.0; 1.0 ] ]
            else
                let s = 2.0 / n
                let x, y, z = b * s, c * s, d * s
                let wx, wy, wz = w * x, w * y, w * z
                let xx, xy, xz = b * x, b * y, b * z
                let yy, yz, zz = c * y, c * z, d * z

                array2D
                    [ [ 1.0 - (yy + zz); xy - wz; xz + wy ]
                      [ xy + wz; 1.0 - (xx + zz); yz - wx ]
                      [ xz - wy; yz + wx; 1.0 - (xx + yy) ] ]

        let zooms = fixedZooms h
        zooms[2] <- zooms[2] * qfac h

        Array2D.init 4 4 (fun i j ->
            if i = 3 then (if j = 3 then 1.0 else 0.0)
            elif j = 3 then h.QOffset[i]
            else r[i, j] * zooms[j])

    /// nibabel get_sform(): the srow rows over [0 0 0 1].
    let sformAffine (h: NiftiHeader) : float[,] =
        Array2D.init 4 4 (fun i j ->
            match i with
            | 0 -> h.SrowX[j]
            | 1 -> h.SrowY[j]
            | 2 -> h.SrowZ[j]
            | _ -> if j = 3 then 1.0 else 0.0)

    /// nibabel get_base_affine() (shape_zoom_affine with x flipped): diag(−zx, zy, zz) centred on the middle
    /// voxel, over the first three axes (missing axes count as size 1, zoom 1).
    let baseAffine (h: NiftiHeader) : float[,] =
        let ndim = int (max 0L (min 7L h.Dim[0]))

        let size k =
            if k < ndim then float h.Dim[k + 1] else 1.0

        let zoom k =
            if k < ndim then abs h.Pixdim[k + 1] else 1.0

        Array2D.init 4 4 (fun i j ->
            if i = 3 then
                (if j = 3 then 1.0 else 0.0)
            elif j = 3 then
                let z = if i = 0 then -(zoom i) else zoom i
                -((size i - 1.0) / 2.0) * z
            elif i = j then
                (if i = 0 then -(zoom i) else zoom i)
            else
                0.0)

    /// nibabel's xform codes are 0..5; any other value is reset to 0 (unknown) at load.
    let validCode (code: int) =
        if code >= 0 && code <= 5 then code else 0

    /// nibabel get_best_affine(): sform when sform_code > 0, else qform when qform_code > 0, else the base affine.
    let bestAffine (h: NiftiHeader) =
        if validCode h.SformCode <> 0 then sformAffine h
        elif validCode h.QformCode <> 0 then qformAffine h
        else baseAffine h

    /// The quaternion (w, b, c, d) of a proper rotation matrix, w ≥ 0 (Shepperd's method: the largest of the four
    /// diagonal combinations is taken under the square root, so no division is by a small number).
    let private rotationToQuaternion (r: float[,]) =
        let t = r[0, 0] + r[1, 1] + r[2, 2]

        let w, x, y, z =
            if t > r[0, 0] && t > r[1, 1] && t > r[2, 2] then
                let s = 2.0 * sqrt (1.0 + t)
                0.25 * s, (r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s
            elif r[0, 0] >= r[1, 1] && r[0, 0] >= r[2, 2] then
                let s = 2.0 * sqrt (1.0 + r[0, 0] - r[1, 1] - r[2, 2])
                (r[2, 1] - r[1, 2]) / s, 0.25 * s, (r[0, 1] + r[1, 0]) / s, (r[0, 2] + r[2, 0]) / s
            elif r[1, 1] >= r[2, 2] then
                let s = 2.0 * sqrt (1.0 + r[1, 1] - r[0, 0] - r[2, 2])
                (r[0, 2] - r[2, 0]) / s, (r[0, 1] + r[1, 0]) / s, 0.25 * s, (r[1, 2] + r[2, 1]) / s
            else
                let s = 2.0 * sqrt (1.0 + r[2, 2] - r[0, 0] - r[1, 1])
                (r[1, 0] - r[0, 1]) / s, (r[0, 2] + r[2, 0]) / s, (r[1, 2] + r[2, 1]) / s, 0.25 * s

        if w < 0.0 then -w, -x, -y, -z else w, x, y, z

    /// nibabel set_qform(affine): zooms are the column norms of the 3×3 part, qfac = sign of det(R), R made
    /// orthogonal by polar decomposition (strip shears), then its quaternion. Returns (qfac, zooms, (b, c, d)).
    /// ArgumentException when a column of the 3×3 part is zero or the affine is not finite.
    let qformParameters (affine: float[,]) =
        if Array2D.length1 affine <> 4 || Array2D.length2 affine <> 4 then
            invalidArg (nameof affine) $"the affine must be 4×4, not {Array2D.length1 affine}×{Array2D.length2 affine}"

        for i in 0..3 do
            for j in 0..3 do
                if not (Double.IsFinite affine[i, j]) then
                    invalidArg (nameof affine) $"affine[{i},{j}] = {affine[i, j]} is not finite"

        let zooms =
            Array.init 3 (fun j -> sqrt (affine[0, j] ** 2.0 + affine[1, j] ** 2.0 + affine[2, j] ** 2.0))

        if zooms |> Array.exists (fun z -> z = 0.0) then
            invalidArg (nameof affine) "a column of the affine's 3×3 part is zero: the affine is singular"

        let r =
            MathNet.Numerics.LinearAlgebra.Matrix<float>.Build.Dense(3, 3, fun i j -> affine[i, j] / zooms[j])

        let q = if r.Determinant() > 0.0 then 1.0 else -1.0

        if q < 0.0 then
            for i in 0..2 do
                r[i, 2] <- -r[i, 2]

        let svd = r.Svd(true)
        let pr = svd.U * svd.VT
        let _, b, c, d = rotationToQuaternion (Array2D.init 3 3 (fun i j -> pr[i, j]))
        q, zooms, [| b; c; d |]

/// <summary>Values nibabel derives from a header.</summary>
type NiftiHeader with
    /// <summary>The image shape, <c>dim[1..dim[0]]</c> (nibabel's <c>img.shape</c>).</summary>
    member h.Shape: int64[] = h.Dim[1 .. int (max 0L (min 7L h.Dim[0]))]

    /// <summary>The datatype as an enum value (only meaningful for supported codes; the readers check).</summary>
    member h.Datatype: NiftiDatatype = enum<NiftiDatatype> h.DatatypeCode

    /// <summary>The qform affine (4×4, voxel → mm) from the quaternion, qoffset, pixdim and qfac, whatever the
    /// qform_code (nibabel <c>header.get_qform()</c>).</summary>
    member h.QformAffine: float[,] = NiftiAffines.qformAffine h

    /// <summary>The sform affine (4×4): srow_x/y/z over [0 0 0 1], whatever the sform_code
    /// (nibabel <c>header.get_sform()</c>).</summary>
    member h.SformAffine: float[,] = NiftiAffines.sformAffine h

    /// <summary>nibabel's best affine (<c>img.affine</c>): the sform when sform_code &gt; 0, else the qform when
    /// qform_code &gt; 0, else the base affine diag(−zx, zy, zz) centred on the middle voxel.</summary>
    member h.Affine: float[,] = NiftiAffines.bestAffine h

    /// <summary>Voxel sizes <c>pixdim[1..dim[0]]</c> (nibabel <c>get_zooms()</c>; spatial ones as absolute values,
    /// as nibabel's load-time fix makes them), in the header's units.</summary>
    member h.Zooms: float[] =
        let n = int (max 0L (min 7L h.Dim[0]))
        Array.init n (fun k -> if k < 3 then abs h.Pixdim[k + 1] else h.Pixdim[k + 1])

    /// <summary>Spatial unit name from xyzt_units: "unknown", "meter", "mm" or "micron".</summary>
    member h.SpatialUnit: string =
        match h.XyztUnits &&& 7 with
        | 1 -> "meter"
        | 2 -> "mm"
        | 3 -> "micron"
        | _ -> "unknown"

    /// <summary>Time unit name from xyzt_units: "unknown", "sec", "msec", "usec", "hz", "ppm" or "rads".</summary>
    member h.TimeUnit: string =
        match h.XyztUnits &&& 56 with
        | 8 -> "sec"
        | 16 -> "msec"
        | 24 -> "usec"
        | 32 -> "hz"
        | 40 -> "ppm"
        | 48 -> "rads"
        | _ -> "unknown"

    /// <summary>Repetition time in seconds: pixdim[4] of a 4D (or 5D) image, converted from msec or usec when
    /// xyzt_units says so (unknown units are taken as seconds, as nilearn does); None for a 3D image or when the
    /// time unit is not a time (Hz, ppm, rad/s).</summary>
    member h.TR: float option =
        if h.Dim[0] < 4L then
            None
        else
            let t = h.Pixdim[4]

            match h.TimeUnit with
            | "sec"
            | "unknown" -> Some t
            | "msec" -> Some(t / 1000.0)
            | "usec" -> Some(t / 1.0e6)
            | _ -> None

    /// <summary>(slope, intercept) to apply as raw·slope + intercept, or None when scl_slope is 0 or not finite
    /// (nibabel <c>get_slope_inter</c>: the data is then used unscaled).</summary>
    member h.Scaling: (float * float) option =
        if h.SclSlope = 0.0 || not (Double.IsFinite h.SclSlope) then
            None
        else
            Some(h.SclSlope, h.SclInter)
