using FmriGlm.Core;
using Microsoft.FSharp.Core;

namespace FmriGlm;

/// <summary>What a NIfTI header says, with the values nibabel derives from it (shape, affine, voxel sizes, TR).</summary>
public sealed class NiftiHeaderInfo
{
    internal NiftiHeaderInfo(NiftiHeader header)
    {
        Core = header;
        Affine = header.Affine;
        TR = FSharpOption<double>.get_IsSome(header.TR) ? header.TR.Value : null;
    }

    internal NiftiHeader Core { get; }

    /// <summary>1 for a NIfTI-1 (348-byte) header, 2 for NIfTI-2 (540-byte).</summary>
    public int NiftiVersion => Core.Version;

    /// <summary>True when the file is big-endian.</summary>
    public bool BigEndian => Core.BigEndian;

    /// <summary>Image shape, <c>dim[1..dim[0]]</c> (i, j, k[, t]).</summary>
    public long[] Shape => Core.Shape;

    /// <summary>On-disk datatype in numpy spelling: "uint8", "int16", "float32", …</summary>
    public string Datatype => Core.Datatype.ToString().ToLowerInvariant();

    /// <summary>NIfTI datatype code (2 uint8, 4 int16, 16 float32, 64 float64, …).</summary>
    public int DatatypeCode => Core.DatatypeCode;

    /// <summary>nibabel's best affine (voxel → mm, 4×4): sform if sform_code &gt; 0, else qform if qform_code &gt; 0,
    /// else the base affine.</summary>
    public double[,] Affine { get; }

    /// <summary>The qform affine (from the quaternion), whatever the qform_code.</summary>
    public double[,] QformAffine => Core.QformAffine;

    /// <summary>The sform affine (srow_x/y/z), whatever the sform_code.</summary>
    public double[,] SformAffine => Core.SformAffine;

    /// <summary>qform_code as stored.</summary>
    public int QformCode => Core.QformCode;

    /// <summary>sform_code as stored.</summary>
    public int SformCode => Core.SformCode;

    /// <summary>Voxel sizes <c>pixdim[1..dim[0]]</c> in the header's units (mm for space).</summary>
    public double[] Zooms => Core.Zooms;

    /// <summary>Repetition time in seconds (pixdim[4], msec/usec converted), or null for a 3D image.</summary>
    public double? TR { get; }

    /// <summary><c>descrip</c> up to its first NUL.</summary>
    public string Description => Core.Descrip;

    /// <summary><c>scl_slope</c> as stored (0 or NaN: unscaled).</summary>
    public double ScaleSlope => Core.SclSlope;

    /// <summary><c>scl_inter</c> as stored.</summary>
    public double ScaleIntercept => Core.SclInter;

    /// <summary><c>intent_code</c>.</summary>
    public int IntentCode => Core.IntentCode;

    /// <summary><c>cal_min</c>, the display minimum.</summary>
    public double CalMin => Core.CalMin;

    /// <summary><c>cal_max</c>, the display maximum.</summary>
    public double CalMax => Core.CalMax;
}

/// <summary>A NIfTI-1/NIfTI-2 image (.nii, .nii.gz) read as nibabel reads it: header and every voxel as double,
/// scaled by scl_slope/scl_inter, in file (Fortran) order: i fastest, then j, k, t.</summary>
public sealed class NiftiImage
{
    private readonly NiftiHeaderInfo? _header;

    private NiftiImage(NiftiHeaderInfo header, double[] data)
    {
        _header = header;
        Data = data;
        Shape = header.Shape;
        Affine = header.Affine;
        TR = header.TR;
    }

    /// <summary>A new image to <see cref="Save"/>.</summary>
    /// <param name="data">Voxel values in file order (i fastest); length = product of <paramref name="shape"/>.</param>
    /// <param name="shape">3 or 4 axis sizes (1 or 2 also work).</param>
    /// <param name="affine">4×4 voxel → mm affine.</param>
    /// <param name="tr">Repetition time in seconds, for a 4D image.</param>
    /// <exception cref="ArgumentException">The data length differs from the shape's voxel count.</exception>
    public NiftiImage(double[] data, long[] shape, double[,] affine, double? tr = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(affine);
        long count = 1;
        foreach (var d in shape) count *= d;
        if (count != data.LongLength)
            throw new ArgumentException($"the shape holds {count} voxels, the data has {data.LongLength}", nameof(data));
        if (affine.GetLength(0) != 4 || affine.GetLength(1) != 4)
            throw new ArgumentException("the affine must be 4×4", nameof(affine));
        Data = data;
        Shape = (long[])shape.Clone();
        Affine = (double[,])affine.Clone();
        TR = tr;
    }

    /// <summary>Voxel values as double, file order (i fastest, then j, k, t).</summary>
    public double[] Data { get; }

    /// <summary>Image shape (i, j, k[, t]).</summary>
    public long[] Shape { get; }

    /// <summary>4×4 voxel → mm affine (nibabel's best affine for a loaded image).</summary>
    public double[,] Affine { get; }

    /// <summary>Repetition time in seconds, or null.</summary>
    public double? TR { get; }

    /// <summary>The file's header, or null for an image built in memory.</summary>
    public NiftiHeaderInfo? Header => _header;

    /// <summary>Reads a whole image as double (exact for every datatype up to 2⁵³).</summary>
    /// <exception cref="GlmInputException">The file is missing, a directory, truncated, corrupt or not NIfTI, or
    /// has an unsupported datatype or absurd dims; the message names the file and the fault.</exception>
    public static NiftiImage Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var image = Nifti.read(path);
        return new NiftiImage(new NiftiHeaderInfo(image.Header), image.Data);
    }

    /// <summary>Reads only the header (and extensions) of a file.</summary>
    /// <exception cref="GlmInputException">The file is missing or its header is faulty.</exception>
    public static NiftiHeaderInfo ReadHeader(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        return new NiftiHeaderInfo(Nifti.readHeader(path));
    }

    /// <summary>Reads a whole image as float32 (for 4D BOLD series), streamed from the (gzip) stream straight into
    /// the result: peak memory is the result plus small buffers. Use <see cref="ReadHeader"/> for its header.</summary>
    /// <exception cref="GlmInputException">Any fault of the file, as for <see cref="Load"/>.</exception>
    public static float[] LoadFloat32(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        return Nifti.readFloat32(path).Data;
    }

    /// <summary>Writes the image atomically (a temporary file beside <paramref name="path"/>, renamed when
    /// complete); gzip when the path ends in ".gz".</summary>
    /// <param name="path">Target file (.nii or .nii.gz).</param>
    /// <param name="datatype">"float32" (default), "float64", "int16", "uint8" or "int32"; integer types take only
    /// integral values in range.</param>
    /// <param name="description">Text for the <c>descrip</c> field (at most 79 characters).</param>
    /// <exception cref="ArgumentException">Unknown datatype, or a value the integer datatype cannot hold.</exception>
    /// <exception cref="GlmInputException">The path is a directory or its folder does not exist.</exception>
    public void Save(string path, string datatype = "float32", string description = "")
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(datatype);
        Nifti.write(path, Options(Shape, Affine, TR, datatype, description), Data);
    }

    /// <summary>Writes float32 voxel data (file order) as a float32 image, atomically; gzip by extension.</summary>
    /// <exception cref="ArgumentException">The data length differs from the shape's voxel count.</exception>
    /// <exception cref="GlmInputException">The path is a directory or its folder does not exist.</exception>
    public static void SaveFloat32(string path, float[] data, long[] shape, double[,] affine, double? tr = null, string description = "")
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(affine);
        Nifti.writeFloat32(path, Options(shape, affine, tr, "float32", description), data);
    }

    private static NiftiWriteOptions Options(long[] shape, double[,] affine, double? tr, string datatype, string description)
    {
        var dt = datatype.ToLowerInvariant() switch
        {
            "float32" => NiftiDatatype.Float32,
            "float64" => NiftiDatatype.Float64,
            "int16" => NiftiDatatype.Int16,
            "uint8" => NiftiDatatype.UInt8,
            "int32" => NiftiDatatype.Int32,
            _ => throw new ArgumentException($"datatype '{datatype}' cannot be written (float32, float64, int16, uint8, int32 can)", nameof(datatype)),
        };
        var defaults = Nifti.writeOptions(shape, affine);
        return new NiftiWriteOptions(
            defaults.Shape, defaults.Affine, dt,
            tr.HasValue ? FSharpOption<double>.Some(tr.Value) : FSharpOption<double>.None,
            description ?? "", defaults.SformCode, defaults.QformCode);
    }
}
