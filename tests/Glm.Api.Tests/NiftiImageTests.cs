using System.Globalization;
using System.Text.Json;
using FmriGlm.Core;
using FsCheck.Xunit;
using Xunit;

namespace FmriGlm.Api.Tests;

public sealed class NiftiImageTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "fmriglm-api-nifti-" + Guid.NewGuid().ToString("N"));

    public NiftiImageTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, true);

    /// <summary>A path under tests/data, found above the test binary.</summary>
    internal static string Data(params string[] parts)
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

    /// <summary>nibabel's facts about a reference case (expected.json) and its values.tsv columns.</summary>
    private static (JsonElement Nibabel, JsonElement Header, Dictionary<string, double[]> Columns) Reference(string case_, string file)
    {
        var expected = JsonDocument.Parse(File.ReadAllText(Data("nifti", case_, "expected.json"))).RootElement;
        var lines = File.ReadAllLines(Data("nifti", case_, "values.tsv")).Where(l => l.Length > 0).ToArray();
        var header = lines[0].Split('\t');
        var rows = lines.Skip(1).Select(l => l.Split('\t')).ToArray();
        var columns = header.Select((name, j) => (name, j))
            .ToDictionary(c => c.name, c => rows.Select(r => double.Parse(r[c.j], CultureInfo.InvariantCulture)).ToArray());
        return (expected.GetProperty("nibabel"), expected.GetProperty("header_fields").GetProperty(file), columns);
    }

    [Fact]
    public void Load_reads_shape_affine_TR_and_values_of_the_nibabel_4D_reference()
    {
        var (nibabel, header, columns) = Reference("4d-float32-tr", "image.nii.gz");
        var image = NiftiImage.Load(Data("nifti", "4d-float32-tr", "image.nii.gz"));
        Assert.Equal(nibabel.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()), image.Shape);
        Assert.Equal(nibabel.GetProperty("zooms")[3].GetDouble(), image.TR);
        var affine = nibabel.GetProperty("best_affine");
        for (var i = 0; i < 4; i++)
            for (var j = 0; j < 4; j++)
                Assert.Equal(affine[i][j].GetDouble(), image.Affine[i, j]);
        Assert.Equal(header.GetProperty("datatype_name").GetString(), image.Header!.Datatype);
        Assert.Equal(header.GetProperty("descrip").GetString(), image.Header.Description);
        Assert.Equal(nibabel.GetProperty("data_summary").GetProperty("n_values").GetInt32(), image.Data.Length);
        Assert.Equal(columns["value"], image.Data);
    }

    [Fact]
    public void Load_applies_scl_slope_and_scl_inter()
    {
        var (_, header, columns) = Reference("int16-scaled", "image.nii");
        var image = NiftiImage.Load(Data("nifti", "int16-scaled", "image.nii"));
        var slope = header.GetProperty("scl_slope").GetDouble();
        var inter = header.GetProperty("scl_inter").GetDouble();
        Assert.Equal(columns["raw"].Select(raw => raw * slope + inter), image.Data);
        Assert.Equal(columns["value"], image.Data);
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
