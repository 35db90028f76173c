namespace FmriGlm.Core

/// <summary>A contrast definition (nilearn <c>contrast_def</c>): an expression over design columns, or weights
/// (one row for a t contrast, several for F).</summary>
type ContrastDefinition =
    /// <summary>"face - house": an expression over the design's column names.</summary>
    | Expression of text: string
    /// <summary>Weights, rows × design columns.</summary>
    | Weights of weights: float[,]

/// <summary>A contrast of a first-level model with the warnings nilearn emits while computing it.</summary>
[<NoEquality; NoComparison>]
type FirstLevelContrast =
    {
        /// <summary>Fixed-effects contrast over the runs (masked voxels).</summary>
        Contrast: Contrast
        /// <summary>Warnings in words.</summary>
        Warnings: string list
    }

/// Contrasts of a first-level model over its runs (nilearn compute_contrast).
module internal FirstLevelContrasts =

    /// nilearn's compute_contrast: run contrasts combined by fixed effects (doc: FirstLevel.computeContrast).
    let computeContrast
        (fit: FirstLevelFit)
        (definitions: ContrastDefinition list)
        (statType: StatType option)
        : FirstLevelContrast =
        let nRuns = fit.Runs.Length
        let warnings = ResizeArray<string>()

        let defs =
            match definitions with
            | [] -> raise (GlmInputException("contrast", "no contrast definition"))
            | [ d ] when nRuns > 1 ->
                warnings.Add $"One contrast given, assuming it for all {nRuns} runs"
                List.replicate nRuns d
            | ds when ds.Length <> nRuns ->
                raise (GlmInputException("contrast", $"{ds.Length} contrast definitions for {nRuns} runs"))
            | ds -> ds

        let weights =
            defs
            |> List.mapi (fun i d ->
                let columns = fit.Runs[i].Design.ColumnNames

                match d with
                | Expression text ->
                    match ContrastExpression.parse (List.ofArray columns) text with
                    | Ok w -> Array2D.init 1 w.Length (fun _ j -> w[j])
                    | Error e -> raise (GlmInputException($"contrast '{text}'", e.Message))
                | Weights w ->
                    if isNull w || Array2D.length1 w < 1 || Array2D.length2 w <> columns.Length then
                        let c = if isNull w then 0 else Array2D.length2 w

                        raise (
                            GlmInputException(
                                "contrast",
                                $"{c} weights for the {columns.Length} design columns of run {i + 1}"
                            )
                        )

                    w)

        let runContrasts =
            weights
            |> List.mapi (fun i w ->
                if w |> Seq.cast<float> |> Seq.forall ((=) 0.0) then
                    warnings.Add $"Contrast for run {i} is null."
                    None
                else
                    let st = statType |> Option.defaultValue (if Array2D.length1 w = 1 then T else F)

                    Some(Contrast.compute fit.Runs[i].Glm w st))
            |> List.choose id

        if List.isEmpty runContrasts then
            raise (GlmInputException("contrast", "All contrasts provided were null contrasts."))

        let combined = Contrast.fixedEffects runContrasts

        if runContrasts.Length > 1 && Contrast.statType combined = F then
            warnings.Add "Running approximate fixed effects on F statistics."

        { Contrast = combined
          Warnings = List.ofSeq warnings }
