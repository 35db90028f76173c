using FmriGlm.Core;
using FsCheck.Xunit;
using Xunit;

namespace FmriGlm.Api.Tests;

public sealed class NiftiImageTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "fmriglm-api-nifti-" + Guid.NewGuid().ToString("N"));

    public NiftiImageTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, true);

    private static string Data(params string[] parts)
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir != null && !Directory.Exists(Path.Combine(dir.FullName, "tests", "data"))) dir = dir.Parent;
        if (dir == null) throw new InvalidOperationException("tests/data not found above the test binary");
        return Path.Combine(new[] { dir.FullName, "tests", "data" }.Concat(parts).ToArray());
    }

    private string TempFile(string name) => Path.Combine(_dir, Guid.NewGuid().ToString("N") + "-" + name);

    private static readonly double[,] Affine =
    {
        { -2.0, 0.0, 0.0, 30.0 }, { 0.0, 2.5, 0.0, -40.0 }, { 0.0, 0.0, 3.0, -10.0 }, { 0.0, 0.0, 0.0, 1.0 },
    };

    [Fact]
    public void Load_reads_shape_affine_TR_and_values_of_the_nibabel_4D_reference()
    {
        var image = NiftiImage.Load(Data("nifti", "4d-float32-tr", "image.nii.gz"));
        Assert.Equal(new long[] { 3, 4, 2, 3 }, image.Shape);
        Assert.Equal(2.0, image.TR);
        Assert.Equal(2.5, image.Affine[1, 1]);
        Assert.Equal(-6.25, image.Affine[2, 3]);
        Assert.Equal("float32", image.Header!.Datatype);
        Assert.Equal("4D float32 test image", image.Header.Description);
        Assert.Equal(72, image.Data.Length);
        Assert.Equal(104.92996215820312, image.Data[0]);
    }

    [Fact]
    public void Load_applies_scl_slope_and_scl_inter()
    {
        var image = NiftiImage.Load(Data("nifti", "int16-scaled", "image.nii"));
        Assert.Equal(-16394.0, image.Data[0]);   // raw -32768 * 0.5 - 10
        Assert.Equal(16373.5, image.Data[1]);    // raw 32767 * 0.5 - 10
    }

    [Fact]
    public void LoadFloat32_matches_Load()
    {
        var path = Data("nifti", "big-endian-float32", "image.nii");
        var single = NiftiImage.LoadFloat32(path);
        var full = NiftiImage.Load(path);
        Assert.Equal(full.Data.Select(v => (float)v), single);
    }

    [Fact]
    public void Load_of_a_missing_file_throws_GlmInputException_naming_it()
    {
        var path = Path.Combine(Path.GetTempPath(), "no-such-" + Guid.NewGuid().ToString("N") + ".nii");
        var e = Assert.Throws<GlmInputException>(() => NiftiImage.Load(path));
        Assert.Equal(path, e.Input);
        Assert.Contains("no such file", e.Problem);
    }

    [Fact]
    public void Load_of_a_truncated_file_throws_GlmInputException()
    {
        var path = TempFile("cut.nii");
        var bytes = File.ReadAllBytes(Data("nifti", "dtype-int16", "image.nii"));
        File.WriteAllBytes(path, bytes[..300]);
        var e = Assert.Throws<GlmInputException>(() => NiftiImage.Load(path));
        Assert.Contains("truncated header", e.Problem);
    }

    [Fact]
    public void Save_with_an_unknown_datatype_throws_ArgumentException()
    {
        var image = new NiftiImage(new double[8], new long[] { 2, 2, 2 }, Affine);
        Assert.Throws<ArgumentException>(() => image.Save(TempFile("x.nii"), "complex64"));
    }

    [Fact]
    public void SaveFloat32_then_LoadFloat32_round_trips_a_4D_series_with_its_TR()
    {
        var path = TempFile("bold.nii.gz");
        var data = Enumerable.Range(0, 2 * 3 * 4 * 5).Select(i => (float)Math.Sin(i)).ToArray();
        NiftiImage.SaveFloat32(path, data, new long[] { 2, 3, 4, 5 }, Affine, tr: 0.8);
        Assert.Equal(data, NiftiImage.LoadFloat32(path));
        var header = NiftiImage.ReadHeader(path);
        Assert.Equal(0.8f, (float)header.TR!.Value);
        Assert.Equal(2, header.SformCode);
    }

    /// <summary>Law: integers in int16 range written as int16 come back exactly, with the affine (float32 exact here).</summary>
    [Property(MaxTest = 50)]
    public bool Save_int16_then_Load_returns_the_same_values(short[] values)
    {
        var data = values.Length == 0 ? new double[] { 0 } : values.Select(v => (double)v).ToArray();
        var path = TempFile("x.nii");
        new NiftiImage(data, new long[] { data.Length, 1, 1 }, Affine).Save(path, "int16");
        var back = NiftiImage.Load(path);
        return back.Data.SequenceEqual(data) && back.Affine.Cast<double>().SequenceEqual(Affine.Cast<double>());
    }
}
