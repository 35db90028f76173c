using System.Globalization;
using FmriGlm.Core;
using FsCheck;
using FsCheck.Xunit;
using Xunit;

namespace FmriGlm.Api.Tests;

/// <summary>The design API as a C# user calls it; expected values come from tests/data (nilearn 0.13.1).</summary>
public class DesignTests
{
    private static readonly string Data = FindData();

    private static string FindData()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "tests", "data");
            if (Directory.Exists(candidate)) return candidate;
        }
        throw new DirectoryNotFoundException("tests/data not found above the test binary");
    }

    private static string Case(string name, string file) => Path.Combine(Data, "design", name, file);

    private static double[] FrameTimesOf(string name) =>
        File.ReadAllLines(Case(name, "frame_times.tsv")).Skip(1).Where(l => l.Length > 0)
            .Select(l => double.Parse(l, CultureInfo.InvariantCulture)).ToArray();

    // design/ tolerance of the reference README: rtol 1e-9, atol 1e-10.
    private static void AssertClose(DesignMatrix expected, DesignMatrix actual, double rtol = 1e-9, double atol = 1e-10)
    {
        Assert.Equal(expected.ColumnNames, actual.ColumnNames);
        var e = expected.Values;
        var a = actual.Values;
        Assert.Equal(e.GetLength(0), a.GetLength(0));
        for (var i = 0; i < e.GetLength(0); i++)
            for (var j = 0; j < e.GetLength(1); j++)
                Assert.True(Math.Abs(a[i, j] - e[i, j]) <= atol + rtol * Math.Abs(e[i, j]),
                    $"row {i}, column {expected.ColumnNames[j]}: {a[i, j]:R} vs nilearn {e[i, j]:R}");
    }

    [Fact]
    public void Make_with_default_options_equals_nilearn_cosine_hp_0_01()
    {
        var design = FirstLevelDesign.Make(FrameTimesOf("cosine-hp-0.01"), Events.FromTsv(Case("cosine-hp-0.01", "events.tsv")));
        AssertClose(DesignMatrix.Load(Case("cosine-hp-0.01", "design_matrix.tsv")), design);
    }

    [Fact]
    public void Make_with_spm_derivative_equals_nilearn_hrf_spm_derivative()
    {
        var options = new FirstLevelDesignOptions { HrfModel = "spm + derivative" };
        var design = FirstLevelDesign.Make(FrameTimesOf("hrf-spm-derivative"), Events.FromTsv(Case("hrf-spm-derivative", "events.tsv")), options);
        AssertClose(DesignMatrix.Load(Case("hrf-spm-derivative", "design_matrix.tsv")), design);
    }

    [Fact]
    public void Make_with_fir_delays_equals_nilearn_and_names_columns_condition_delay_d()
    {
        var options = new FirstLevelDesignOptions { HrfModel = "fir", FirDelays = new[] { 0, 1, 2, 3 } };
        var design = FirstLevelDesign.Make(FrameTimesOf("hrf-fir"), Events.FromTsv(Case("hrf-fir", "events.tsv")), options);
        AssertClose(DesignMatrix.Load(Case("hrf-fir", "design_matrix.tsv")), design);
        Assert.Equal("face_delay_0", design.ColumnNames[0]);
    }

    [Fact]
    public void FrameTimes_with_slice_time_ref_equals_FirstLevelModel_frame_times()
    {
        var expected = FrameTimesOf("slice-time-ref-0.5");
        var actual = FirstLevelDesign.FrameTimes(expected.Length, 2.0, 0.5);
        Assert.Equal(expected, actual);
    }

    [Fact]
    public void A_user_hrf_equal_to_glover_gives_glover_values_under_its_own_name()
    {
        var frames = FrameTimesOf("cosine-hp-0.01");
        var events = Events.FromTsv(Case("cosine-hp-0.01", "events.tsv"));
        var user = FirstLevelDesign.Make(frames, events, new FirstLevelDesignOptions
        {
            UserHrf = (tr, oversampling, timeLength, onset) => HrfKernels.Glover(tr, oversampling, timeLength, onset),
            UserHrfName = "my_glover",
        });
        var glover = FirstLevelDesign.Make(frames, events);
        Assert.Equal(events.Conditions[0] + "_my_glover", user.ColumnNames[0]);
        Assert.Equal(glover.Column(events.Conditions[0]), user.Column(user.ColumnNames[0]));
    }

    [Fact]
    public void Events_without_trial_type_form_one_dummy_condition_with_a_warning()
    {
        var events = Events.FromTsv(Case("events-no-trial-type", "events.tsv"));
        Assert.All(events.TrialTypes, t => Assert.Equal("dummy", t));
        Assert.Contains(events.Warnings, w => w.Contains("trial_type"));
    }

    [Fact]
    public void Duplicated_events_are_summed_and_reported_in_Warnings()
    {
        var design = FirstLevelDesign.Make(FrameTimesOf("events-duplicated"), Events.FromTsv(Case("events-duplicated", "events.tsv")));
        AssertClose(DesignMatrix.Load(Case("events-duplicated", "design_matrix.tsv")), design);
        Assert.Contains(design.Warnings, w => w.StartsWith("Duplicated events"));
    }

    [Fact]
    public void SecondLevelDesign_with_covariates_equals_nilearn_exactly()
    {
        var labels = new[] { "sub-07", "sub-01", "sub-06", "sub-09", "sub-05", "sub-04", "sub-08", "sub-02", "sub-03" };
        var design = SecondLevelDesign.Make(labels, SubjectCovariates.FromTsv(Case("second-level-confounds", "confounds.tsv")));
        AssertClose(DesignMatrix.Load(Case("second-level-confounds", "design_matrix.tsv")), design, 0, 0);
    }

    [Fact]
    public void Check_reports_rank_deficiency_of_a_column_twice_the_constant()
    {
        var frames = FirstLevelDesign.FrameTimes(50, 2.0);
        var twice = new double[50, 1];
        for (var i = 0; i < 50; i++) twice[i, 0] = 2;
        var design = FirstLevelDesign.Make(frames, null, new FirstLevelDesignOptions { DriftModel = "none", AddRegs = twice });
        Assert.Contains(design.Warnings, w => w.Contains("regularizing"));
        var raw = new DesignMatrix(new[] { "a", "b", "constant" }, Join(Ramp(50), twice, Ones(50)));
        var check = raw.Check();
        Assert.True(check.IsRankDeficient);
        Assert.Equal(2, check.Rank);
        Assert.NotEmpty(check.Warnings);
    }

    [Fact]
    public void Unknown_hrf_model_throws_GlmInputException_naming_hrf_model()
    {
        var e = Assert.Throws<GlmInputException>(() =>
            FirstLevelDesign.Make(FirstLevelDesign.FrameTimes(20, 2.0), null, new FirstLevelDesignOptions { HrfModel = "canonical" }));
        Assert.Equal("hrf_model", e.Input);
    }

    [Fact]
    public void Negative_duration_throws_GlmInputException_naming_event_and_column()
    {
        var e = Assert.Throws<GlmInputException>(() => Events.FromArrays(new[] { 1.0, 5.0 }, new[] { 1.0, -2.0 }, new[] { "a", "a" }));
        Assert.Contains("event 2, column 'duration'", e.Message);
    }

    [Fact]
    public void Events_FromArrays_without_trial_types_is_one_dummy_condition_with_modulation_1()
    {
        var events = Events.FromArrays(new[] { 10.0, 30.0 }, new[] { 2.0, 2.0 });
        Assert.Equal(new[] { "dummy" }, events.Conditions);
        Assert.All(events.Modulations, m => Assert.Equal(1.0, m));
        var design = FirstLevelDesign.Make(FirstLevelDesign.FrameTimes(40, 2.0), events);
        Assert.Equal("dummy", design.ColumnNames[0]);
    }

    [Fact]
    public void Make_with_null_options_throws_ArgumentNullException() =>
        Assert.Throws<ArgumentNullException>(() => FirstLevelDesign.Make(new[] { 0.0, 1.0 }, null, null!));

    [Property(MaxTest = 50)]
    public bool Save_then_Load_gives_back_every_double_exactly(NormalFloat a, NormalFloat b, NormalFloat c)
    {
        var design = new DesignMatrix(new[] { "x", "y", "z" }, new[,] { { a.Get, b.Get, c.Get }, { c.Get, a.Get, b.Get } });
        var path = Path.Combine(Path.GetTempPath(), $"fmriglm-api-{Guid.NewGuid():N}.tsv");
        try
        {
            design.Save(path);
            var back = DesignMatrix.Load(path);
            return back.ColumnNames.SequenceEqual(design.ColumnNames) && back.Rows.Zip(design.Rows).All(p => p.First.SequenceEqual(p.Second));
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static double[,] Ramp(int n)
    {
        var m = new double[n, 1];
        for (var i = 0; i < n; i++) m[i, 0] = i;
        return m;
    }

    private static double[,] Ones(int n)
    {
        var m = new double[n, 1];
        for (var i = 0; i < n; i++) m[i, 0] = 1;
        return m;
    }

    private static double[,] Join(params double[][,] blocks)
    {
        var n = blocks[0].GetLength(0);
        var m = new double[n, blocks.Sum(b => b.GetLength(1))];
        var j0 = 0;
        foreach (var b in blocks)
        {
            for (var i = 0; i < n; i++)
                for (var j = 0; j < b.GetLength(1); j++) m[i, j0 + j] = b[i, j];
            j0 += b.GetLength(1);
        }
        return m;
    }
}
