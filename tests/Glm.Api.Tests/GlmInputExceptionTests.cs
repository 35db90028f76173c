using FmriGlm.Core;
using Xunit;

namespace FmriGlm.Api.Tests;

public class GlmInputExceptionTests
{
    [Fact]
    public void Message_names_the_input_and_the_problem()
    {
        var e = new GlmInputException("events.tsv, row 3, column 'duration'", "negative duration -1");
        Assert.Equal("events.tsv, row 3, column 'duration': negative duration -1", e.Message);
        Assert.Equal("events.tsv, row 3, column 'duration'", e.Input);
        Assert.Equal("negative duration -1", e.Problem);
    }
}
