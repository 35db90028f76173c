using System.Globalization;
using System.Text;
using Xunit;

namespace FmriGlm.Api.Tests;

/// <summary>Confounds.Load / LoadStrategy as a C# user calls them, on nilearn's fMRIPrep fixture
/// (tests/data/confounds, expected values from nilearn 0.13.1).</summary>
public class ConfoundsTests
{
    private static readonly string Data = FindData();
    private static readonly string Bold = Path.Combine(Data, "fmriprep",
        "sub-01_task-test_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz");

    private static string FindData()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "tests", "data", "confounds");
            if (Directory.Exists(candidate)) return candidate;
        }
        throw new DirectoryNotFoundException("tests/data/confounds not found above the test binary");
    }

    private static (string[] Header, double[][] Rows) ReadTsv(string path)
    {
        var lines = File.ReadAllLines(path).Where(l => l.Length > 0).ToArray();
        return (lines[0].Split('\t'), lines[1..].Select(l => l.Split('\t')
            .Select(c => c == "n/a" ? double.NaN : double.Parse(c, CultureInfo.InvariantCulture)).ToArray()).ToArray());
    }

    private static void AssertMatchesCase(LoadedConfounds loaded, string caseName, double atol, double rtol)
    {
        var (header, rows) = ReadTsv(Path.Combine(Data, caseName, "confounds.tsv"));
        Assert.Equal(header, loaded.Columns);
        Assert.Equal(rows.Length, loaded.Values.Length);
        for (var i = 0; i < rows.Length; i++)
            for (var j = 0; j < header.Length; j++)
                Assert.True(Math.Abs(loaded.Values[i][j] - rows[i][j]) <= atol + rtol * Math.Abs(rows[i][j]),
                    $"{header[j]} row {i}: {loaded.Values[i][j]} vs {rows[i][j]}");
        var kept = ReadTsv(Path.Combine(Data, caseName, "sample_mask.tsv")).Rows.Select(r => (int)r[0]).ToArray();
        Assert.Equal(kept, loaded.SampleMask);
    }

    [Fact]
    public void Load_motion_basic_matches_nilearn_motion_basic_case_atol_1e12_rtol_1e10() =>
        AssertMatchesCase(Confounds.Load(Bold, new ConfoundsOptions { Strategy = new[] { "motion" }, Motion = "basic" }),
            "motion-basic", 1e-12, 1e-10);

    [Fact]
    public void LoadStrategy_scrubbing_matches_nilearn_strategy_scrubbing_case_atol_2_96e8_rtol_1e10() =>
        AssertMatchesCase(Confounds.LoadStrategy(Bold, "scrubbing",
            new ConfoundsStrategyOptions { FdThreshold = 0.15, StdDvarsThreshold = 1.2 }), "strategy-scrubbing", 2.96e-8, 1e-10);

    [Fact]
    public void Compcor_without_high_pass_throws_GlmInputException_naming_strategy()
    {
        var e = Assert.Throws<Core.GlmInputException>(() =>
            Confounds.Load(Bold, new ConfoundsOptions { Strategy = new[] { "compcor" } }));
        Assert.Equal("strategy", e.Input);
        Assert.Contains("high_pass", e.Problem);
    }

    [Fact]
    public void Unknown_expansion_throws_GlmInputException_naming_the_option()
    {
        var e = Assert.Throws<Core.GlmInputException>(() => Confounds.Load(Bold, new ConfoundsOptions { Motion = "cubic" }));
        Assert.Equal("motion", e.Input);
    }

    /// <summary>A 2×2×2 float32 NIfTI-1 run of the given scans (TR 2 s), seeded noise.</summary>
    private static string WriteRun(string dir, int scans)
    {
        var path = Path.Combine(dir, "bold.nii");
        var header = new byte[352];
        BitConverter.GetBytes(348).CopyTo(header, 0);
        short[] dim = { 4, 2, 2, 2, (short)scans, 1, 1, 1 };
        for (var k = 0; k < 8; k++) BitConverter.GetBytes(dim[k]).CopyTo(header, 40 + 2 * k);
        BitConverter.GetBytes((short)16).CopyTo(header, 70); // float32
        BitConverter.GetBytes((short)32).CopyTo(header, 72);
        float[] pixdim = { 1, 2, 2, 2, 2, 1, 1, 1 };
        for (var k = 0; k < 8; k++) BitConverter.GetBytes(pixdim[k]).CopyTo(header, 76 + 4 * k);
        BitConverter.GetBytes(352f).CopyTo(header, 108);
        header[123] = 10; // xyzt_units: mm, s
        Encoding.ASCII.GetBytes("n+1\0").CopyTo(header, 344);
        var random = new Random(7);
        var data = new byte[8 * scans * 4];
        for (var v = 0; v < 8 * scans; v++) BitConverter.GetBytes((float)(100 + random.NextDouble())).CopyTo(data, 4 * v);
        File.WriteAllBytes(path, header.Concat(data).ToArray());
        return path;
    }

    [Fact]
    public void Fit_takes_loaded_confounds_and_their_sample_mask_drops_the_non_steady_state_scan()
    {
        var dir = Directory.CreateTempSubdirectory("fmriglm-confounds-api").FullName;
        try
        {
            var loaded = Confounds.Load(Bold, new ConfoundsOptions { Strategy = new[] { "motion" }, Motion = "basic" });
            var events = Events.FromArrays(new[] { 10.0, 30.0 }, new[] { 5.0, 5.0 }, new[] { "task", "task" });
            var model = new FirstLevelModel(new FirstLevelOptions { TR = 2.0, NoMask = true, NoiseModel = "ols", NJobs = 1 })
                .Fit(WriteRun(dir, 30), events, loaded);
            var design = model.DesignMatrices[0];
            Assert.Equal(loaded.SampleMask!.Length, design.ScanCount);
            Assert.Equal(29, design.ScanCount);
            foreach (var name in loaded.Columns)
                Assert.Equal(loaded.SampleMask.Select(i => loaded.Column(name)[i]), design.Column(name));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
