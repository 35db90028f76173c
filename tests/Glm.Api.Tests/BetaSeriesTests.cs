using Xunit;

namespace FmriGlm.Api.Tests;

/// <summary>BetaSeries as a C# user calls it, on the ols-glover-cosine run of tests/data/first_level.</summary>
public class BetaSeriesTests
{
    private static readonly string Case = FindCase("ols-glover-cosine");

    private static string FindCase(string name)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "tests", "data", "first_level", name);
            if (Directory.Exists(candidate)) return candidate;
        }
        throw new DirectoryNotFoundException("tests/data not found above the test binary");
    }

    private static readonly FirstLevelOptions Options = new()
    {
        TR = 2.0, NoiseModel = "ar1", MaskImg = Path.Combine(Case, "mask.nii.gz"), NJobs = 1,
    };

    private static Events CaseEvents => Events.FromTsv(Path.Combine(Case, "events.tsv"));

    private static FirstLevelRun[] Runs(Events events) =>
        new[] { new FirstLevelRun { BoldPath = Path.Combine(Case, "bold.nii.gz"), Events = events } };

    [Fact]
    public void Lss_betas_equal_a_FirstLevelModel_per_trial_with_the_trial_renamed_within_1e_10()
    {
        var events = CaseEvents;
        var result = BetaSeries.Lss(Options, Runs(events));
        Assert.Equal(events.Count, result.Trials.Count);
        // the first trial of each condition: its own first-level model, nilearn's plot_beta_series recipe
        foreach (var condition in result.Conditions)
        {
            var trial = result.Trials.First(t => t.Condition == condition && t.VolumeIndex == 0);
            var e = Enumerable.Range(0, events.Count)
                .First(i => events.TrialTypes[i] == condition && events.Onsets[i] == trial.Onset);
            var types = events.TrialTypes.ToArray();
            types[e] = "the__trial";
            var renamed = Events.FromArrays(events.Onsets.ToArray(), events.Durations.ToArray(), types);
            var expected = new FirstLevelModel(Options).Fit(Runs(renamed))
                .ComputeContrast("the__trial").EffectSize();
            var grid = expected.Length;
            var actual = result.Betas(condition).AsSpan(0, grid).ToArray();
            for (var v = 0; v < grid; v++)
                Assert.True(Math.Abs(actual[v] - expected[v]) <= 1e-10 * Math.Max(1, Math.Abs(expected[v])),
                    $"{condition}, voxel {v}: {actual[v]} vs {expected[v]}");
        }
    }

    [Fact]
    public void Lsa_gives_one_volume_per_trial_and_writes_a_map_per_condition_with_trials_tsv()
    {
        var result = BetaSeries.Lsa(Options, Runs(CaseEvents));
        var voxels = result.Shape[0] * result.Shape[1] * result.Shape[2];
        foreach (var condition in result.Conditions)
            Assert.Equal(result.Trials.Count(t => t.Condition == condition) * voxels, result.Betas(condition).Length);
        var dir = Path.Combine(Path.GetTempPath(), $"fmriglm-api-bs-{Guid.NewGuid():N}");
        try
        {
            result.WriteOutputs(dir);
            foreach (var condition in result.Conditions)
                Assert.True(File.Exists(Path.Combine(dir, $"{condition}_betas.nii.gz")), condition);
            Assert.Equal(result.Trials.Count + 1, File.ReadAllLines(Path.Combine(dir, "trials.tsv")).Length);
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void An_event_after_the_run_throws_GlmInputException_naming_the_event()
    {
        var events = CaseEvents;
        var late = Events.FromArrays(events.Onsets.Append(1e6).ToArray(), events.Durations.Append(1).ToArray(),
            events.TrialTypes.Append("face").ToArray());
        var e = Assert.Throws<Core.GlmInputException>(() => BetaSeries.Lss(Options, Runs(late)));
        Assert.Contains($"event {events.Count + 1} ('face')", e.Message);
    }
}
