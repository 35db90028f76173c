namespace FmriGlm;

/// <summary>Contrast expressions over design column names, as nilearn's <c>expression_to_contrast_vector</c>:
/// numbers, names, + − * /, parentheses and unary minus, e.g. <c>"(a + b)/2 - c"</c>.</summary>
public static class ContrastExpression
{
    /// <summary>The contrast weights of <paramref name="text"/>, one per column of <paramref name="columnNames"/>.</summary>
    /// <exception cref="ArgumentException">An unknown column (the message lists the closest names), a malformed
    /// expression (the message gives the position) or an expression without a column.</exception>
    public static double[] Parse(string text, IReadOnlyList<string> columnNames)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(columnNames);
        var result = Core.ContrastExpression.parse(Microsoft.FSharp.Collections.ListModule.OfSeq(columnNames), text);
        if (result.IsError) throw new ArgumentException(result.ErrorValue.Message, nameof(text));
        return result.ResultValue;
    }
}
