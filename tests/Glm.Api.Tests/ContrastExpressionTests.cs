using Xunit;

namespace FmriGlm.Api.Tests;

public class ContrastExpressionTests
{
    private static readonly string[] Columns = { "face", "house", "scene", "constant" };

    [Fact]
    public void Parse_gives_one_weight_per_column()
    {
        Assert.Equal(new[] { 1.0, -0.5, -0.5, 0.0 }, ContrastExpression.Parse("face - (house + scene)/2", Columns));
    }

    [Fact]
    public void Unknown_column_throws_ArgumentException_naming_the_closest_columns()
    {
        var e = Assert.Throws<ArgumentException>(() => ContrastExpression.Parse("fase - house", Columns));
        Assert.Contains("'fase'", e.Message);
        Assert.Contains("'face'", e.Message);
    }

    [Fact]
    public void Malformed_expression_throws_ArgumentException_with_the_position()
    {
        var e = Assert.Throws<ArgumentException>(() => ContrastExpression.Parse("face - - * house", Columns));
        Assert.Contains("position", e.Message);
    }
}
