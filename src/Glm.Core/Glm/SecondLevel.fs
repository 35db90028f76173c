namespace FmriGlm.Core

/// <summary>A second-level contrast as nilearn's <c>compute_contrast(second_level_contrast=...)</c> takes it.</summary>
[<RequireQualifiedAccess>]
type SecondLevelContrast =
    /// A column name or an expression over the column names ("patients - controls").
    | Expression of string
    /// One weight per design column (a t contrast unless the stat type says F).
    | Weights of float[]
    /// Rows × design columns (an F contrast).
    | WeightMatrix of float[,]
    /// nilearn's <c>None</c>: the only column of a one-column design.
    | Default

/// <summary>Every map nilearn's <c>compute_contrast(output_type="all")</c> returns, over the masked voxels.</summary>
type SecondLevelMaps =
    {
        /// t or F.
        StatType: StatType
        /// z score, nilearn's convention (<c>Contrast.z_score()</c>).
        ZScore: float[]
        /// The t or F statistic.
        Stat: float[]
        /// One-sided p value of the statistic.
        PValue: float[]
        /// Effect size, Dim × Voxels row-major (Dim = number of contrast rows).
        EffectSize: float[]
        /// Effect variance, one value per voxel.
        EffectVariance: float[]
        /// Number of contrast rows.
        Dim: int
    }

/// <summary>A fitted second-level OLS model (nilearn <c>SecondLevelModel</c> after <c>fit</c>).</summary>
type SecondLevelFit =
    {
        /// The design, subjects × columns, with nilearn's column names.
        Design: DesignMatrix
        /// The OLS fit over the masked voxels (subjects play the part of scans).
        Glm: GlmFit
    }

/// <summary>nilearn's <c>SecondLevelModel</c> on arrays: one row of the design per subject, one map per subject,
/// ordinary least squares at every voxel (nilearn's second level always uses <c>noise_model="ols"</c>).</summary>
module SecondLevel =

    /// <summary>Fits OLS at every voxel. <paramref name="maps"/> is subjects × voxels column-major (voxel v's
    /// subjects at <c>v*subjects ..</c>), the layout of <see cref="VoxelData"/> with subjects as scans.</summary>
    /// <param name="threads">Threads used; the result does not depend on it.</param>
    /// <param name="design">Subjects × columns design (nilearn's <c>design_matrix</c>).</param>
    /// <param name="maps">The masked subject maps.</param>
    /// <exception cref="GlmInputException">The design has fewer rows than 2 or its row count differs from the
    /// number of maps, or a value is not finite.</exception>
    let fit (threads: int) (design: DesignMatrix) (maps: VoxelData) : SecondLevelFit =
        let subjects = Array2D.length1 design.Values
        let columns = Array2D.length2 design.Values

        let length =
            match maps with
            | Float64 a -> a.Length
            | Float32 a -> a.Length

        if subjects < 2 then
            raise (GlmInputException("design_matrix", $"{subjects} rows: a second-level model needs at least 2 subjects"))

        if columns <> design.ColumnNames.Length then
            invalidArg (nameof design) $"{design.ColumnNames.Length} names for {columns} columns"

        if length % subjects <> 0 then
            raise (
                GlmInputException(
                    "design_matrix",
                    $"{subjects} rows do not match the maps ({length} values are not a whole number of voxels × {subjects} subjects)"
                )
            )

        for r in 0 .. subjects - 1 do
            for c in 0 .. columns - 1 do
                if not (System.Double.IsFinite design.Values[r, c]) then
                    raise (
                        GlmInputException(
                            $"design_matrix, row {r + 1}, column '{design.ColumnNames[c]}'",
                            $"value {design.Values[r, c]} is not finite"
                        )
                    )

        let options =
            { GlmOptions.defaults with
                NoiseModel = Ols
                Threads = max 1 threads }

        { Design = design
          Glm = Regression.fit options design.Values maps }

    /// <summary>The weights (rows × design columns) of a second-level contrast, as nilearn's
    /// <c>_get_con_val</c> resolves it.</summary>
    /// <exception cref="GlmInputException">The expression is malformed or names an unknown column, the weights
    /// do not have one value per column, or <c>Default</c> is used with more than one column.</exception>
    let contrastWeights (design: DesignMatrix) (contrast: SecondLevelContrast) : float[,] =
        let columns = design.ColumnNames.Length
        let names = String.concat ", " design.ColumnNames

        let row (w: float[]) =
            if w.Length <> columns then
                raise (
                    GlmInputException(
                        "second_level_contrast",
                        $"{w.Length} weights for {columns} design columns ({names})"
                    )
                )

            array2D [ w ]

        match contrast with
        | SecondLevelContrast.Default ->
            if columns = 1 then
                array2D [ [ 1.0 ] ]
            else
                raise (
                    GlmInputException(
                        "second_level_contrast",
                        $"no contrast given and the design has {columns} columns; name one of {names}"
                    )
                )
        | SecondLevelContrast.Weights w -> row w
        | SecondLevelContrast.WeightMatrix m ->
            if Array2D.length2 m <> columns || Array2D.length1 m < 1 then
                raise (
                    GlmInputException(
                        "second_level_contrast",
                        $"a {Array2D.length1 m}×{Array2D.length2 m} matrix for {columns} design columns"
                    )
                )

            Array2D.copy m
        | SecondLevelContrast.Expression text ->
            match ContrastExpression.parse (List.ofArray design.ColumnNames) text with
            | Ok w -> row w
            | Error e -> raise (GlmInputException($"second_level_contrast '{text}'", e.Message))

    /// <summary>nilearn's <c>SecondLevelModel.compute_contrast</c>: the contrast of the fitted OLS model; the stat
    /// type is t for one row and F for several unless <paramref name="statType"/> says otherwise.</summary>
    /// <exception cref="GlmInputException">See <see cref="contrastWeights"/>.</exception>
    let computeContrast (fit: SecondLevelFit) (contrast: SecondLevelContrast) (statType: StatType option) : Contrast =
        let weights = contrastWeights fit.Design contrast

        let statType =
            statType |> Option.defaultValue (if Array2D.length1 weights = 1 then T else F)

        Contrast.compute fit.Glm weights statType

    /// <summary>The five maps of <c>output_type="all"</c> (z score with nilearn's convention, stat, p value,
    /// effect size, effect variance) of a contrast.</summary>
    let maps (contrast: Contrast) : SecondLevelMaps =
        let effect = Contrast.effectSize contrast
        let variance = Contrast.effectVariance contrast
        let stat = Contrast.stat 0.0 contrast
        let dim = effect.Length / max 1 stat.Length

        { StatType = Contrast.statType contrast
          ZScore = Contrast.zScoreWith Nilearn 0.0 contrast
          Stat = stat
          PValue = Contrast.pValue 0.0 contrast
          EffectSize = effect
          EffectVariance = variance
          Dim = dim }
