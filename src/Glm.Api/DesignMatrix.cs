using System.Globalization;

namespace FmriGlm;

/// <summary>A design matrix: named regressor columns over scans, as nilearn's design-matrix DataFrame.</summary>
/// <remarks>Immutable: <see cref="Values"/> and <see cref="Rows"/> return copies.</remarks>
public sealed class DesignMatrix
{
    private readonly Core.DesignMatrix _core;

    internal DesignMatrix(Core.DesignMatrix core, IReadOnlyList<string> warnings)
    {
        _core = core;
        Warnings = warnings;
    }

    /// <summary>Creates a design from column names and values (scans × columns).</summary>
    /// <exception cref="ArgumentException">The number of names differs from the number of columns.</exception>
    public DesignMatrix(IReadOnlyList<string> columnNames, double[,] values)
    {
        ArgumentNullException.ThrowIfNull(columnNames);
        ArgumentNullException.ThrowIfNull(values);
        if (columnNames.Count != values.GetLength(1))
            throw new ArgumentException($"{columnNames.Count} names for {values.GetLength(1)} columns", nameof(columnNames));
        _core = new Core.DesignMatrix(columnNames.ToArray(), (double[,])values.Clone());
        Warnings = Array.Empty<string>();
    }

    internal Core.DesignMatrix CoreDesign => _core;

    /// <summary>Column names in nilearn's order (conditions, additional regressors, drift_1.., constant).</summary>
    public IReadOnlyList<string> ColumnNames => Array.AsReadOnly(_core.ColumnNames);

    /// <summary>Number of scans (rows).</summary>
    public int ScanCount => _core.Values.GetLength(0);

    /// <summary>Number of columns.</summary>
    public int ColumnCount => _core.Values.GetLength(1);

    /// <summary>A copy of the values, scans × columns.</summary>
    public double[,] Values => (double[,])_core.Values.Clone();

    /// <summary>A copy of the values as one array per scan.</summary>
    public double[][] Rows => Interop.ToRows(_core.Values);

    /// <summary>What nilearn would have warned about while building this design (duplicated events summed, …).</summary>
    public IReadOnlyList<string> Warnings { get; }

    /// <summary>The column named <paramref name="name"/>, one value per scan.</summary>
    /// <exception cref="ArgumentException">No column has that name.</exception>
    public double[] Column(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var j = Array.IndexOf(_core.ColumnNames, name);
        if (j < 0) throw new ArgumentException($"no column '{name}'; columns: {string.Join(", ", _core.ColumnNames)}", nameof(name));
        return Core.DesignMatrixModule.column(_core, j);
    }

    /// <summary>The design as TSV: a header of column names, one row per scan, round-trip numbers.</summary>
    public string ToTsv() => Core.Tables.designToTsv(_core);

    /// <summary>Writes <see cref="ToTsv"/> to <paramref name="path"/> atomically (temporary file, then rename).</summary>
    public void Save(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        Core.Tables.writeDesign(path, _core);
    }

    /// <summary>Reads a design TSV (header of column names, numeric cells), ours or nilearn's.</summary>
    /// <exception cref="Core.GlmInputException">The file is missing or a cell is not a number.</exception>
    public static DesignMatrix Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        return new DesignMatrix(Core.Tables.readDesign(path), Array.Empty<string>());
    }

    /// <summary>Rank, condition number and variance inflation factors of the columns (not in nilearn).</summary>
    public DesignCheck Check() => new(Core.DesignMatrixModule.check(_core));

    /// <inheritdoc/>
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"DesignMatrix {ScanCount} scans × {ColumnCount} columns: {string.Join(", ", _core.ColumnNames)}");
}

/// <summary>Collinearity diagnostics of a design: rank, condition number and variance inflation factor per column.</summary>
public sealed class DesignCheck
{
    internal DesignCheck(Core.DesignCheck core)
    {
        Rank = core.Rank;
        ColumnCount = core.Columns;
        ConditionNumber = core.ConditionNumber;
        VarianceInflation = Array.AsReadOnly(core.VarianceInflation.ToArray());
        Warnings = core.Warnings.ToArray();
    }

    /// <summary>Numerical rank (numpy matrix_rank tolerance).</summary>
    public int Rank { get; }

    /// <summary>Number of columns; the design has full column rank when it equals <see cref="Rank"/>.</summary>
    public int ColumnCount { get; }

    /// <summary>True when <see cref="Rank"/> is less than <see cref="ColumnCount"/>.</summary>
    public bool IsRankDeficient => Rank < ColumnCount;

    /// <summary>Largest over smallest singular value (∞ when singular).</summary>
    public double ConditionNumber { get; }

    /// <summary>VIF of each column: 1 / (1 − R²) of the column regressed on the others plus an intercept; NaN for a
    /// constant column, ∞ for a column the others reproduce exactly.</summary>
    public IReadOnlyList<double> VarianceInflation { get; }

    /// <summary>Rank deficiency and columns with VIF above 10, in words.</summary>
    public IReadOnlyList<string> Warnings { get; }
}
