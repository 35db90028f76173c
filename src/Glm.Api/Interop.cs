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
}
