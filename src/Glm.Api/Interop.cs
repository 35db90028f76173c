namespace FmriGlm;

/// <summary>Conversions between the F# core's types and the plain .NET types of this facade; the only place
/// where F# types are touched, so that none leak into the public signatures.</summary>
internal static class Interop
{
    /// <summary>Copies a row-major rectangular array into an array of rows.</summary>
    internal static double[][] ToRows(double[,] values)
    {
        ArgumentNullException.ThrowIfNull(values);
        var rows = new double[values.GetLength(0)][];
        for (var i = 0; i < rows.Length; i++)
        {
            rows[i] = new double[values.GetLength(1)];
            for (var j = 0; j < rows[i].Length; j++) rows[i][j] = values[i, j];
        }
        return rows;
    }

    /// <summary>A core design warning in words.</summary>
    internal static string Describe(Core.DesignWarning warning) => Core.DesignMatrixModule.describe(warning);

    /// <summary>A table warning in words.</summary>
    internal static string Describe(Core.Tables.TableWarning warning) => Core.Tables.describe(warning);

    /// <summary>Copies a row-major rectangular array into a flat row-major array.</summary>
    internal static double[] Flatten(double[,] values)
    {
        ArgumentNullException.ThrowIfNull(values);
        var rows = values.GetLength(0);
        var cols = values.GetLength(1);
        var flat = new double[rows * cols];
        for (var i = 0; i < rows; i++)
            for (var j = 0; j < cols; j++)
                flat[i * cols + j] = values[i, j];
        return flat;
    }

    /// <summary>nilearn's spelling of a statistic type.</summary>
    internal static string StatTypeName(Core.StatType statType) =>
        statType.IsT ? "t" : statType.IsF ? "F" : "tmin-conjunction";

    /// <summary>Parses "t", "F" or "tmin-conjunction".</summary>
    internal static Core.StatType ParseStatType(string statType) => statType switch
    {
        "t" => Core.StatType.T,
        "F" => Core.StatType.F,
        "tmin-conjunction" => Core.StatType.TminConjunction,
        _ => throw new ArgumentException($"unknown stat type '{statType}': use t, F or tmin-conjunction", nameof(statType)),
    };

    /// <summary>Parses a noise model as the core spells it: nilearn's "ols", "ar1", "ar2", … and the extras
    /// "ar1-exact", "ar1-corrected", "nipy-ar1".</summary>
    /// <exception cref="Core.GlmInputException">The spelling is none of those; names <c>noise_model</c>.</exception>
    internal static Core.NoiseModel ParseNoiseModel(string noiseModel)
    {
        var parsed = Core.Regression.parseNoiseModel(noiseModel);
        return parsed.IsOk ? parsed.ResultValue : throw new Core.GlmInputException("noise_model", parsed.ErrorValue);
    }
}
