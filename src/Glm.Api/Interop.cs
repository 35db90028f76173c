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

    /// <summary>Parses nilearn's noise model spellings ("ols", "ar1", "ar2", …) "ar1-exact" and "ar1-corrected".</summary>
    internal static Core.NoiseModel ParseNoiseModel(string noiseModel)
    {
        if (noiseModel == "ols") return Core.NoiseModel.Ols;
        if (noiseModel == "ar1-exact") return Core.NoiseModel.Ar1Exact;
        if (noiseModel == "ar1-corrected") return Core.NoiseModel.Ar1BiasCorrected;
        if (noiseModel.StartsWith("ar", StringComparison.Ordinal)
            && int.TryParse(noiseModel.AsSpan(2), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var order)
            && order >= 1)
            return Core.NoiseModel.NewAr(order);
        throw new Core.GlmInputException("noise_model", $"'{noiseModel}' is not a noise model: use ols, ar1, ar2, ..., ar1-exact or ar1-corrected");
    }
}
