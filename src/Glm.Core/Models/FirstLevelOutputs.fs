namespace FmriGlm.Core

open System
open System.IO
open System.Text.Json

/// <summary>nilearn's <c>output_type</c> of <c>compute_contrast</c>.</summary>
type OutputType =
    /// <summary>"z_score".</summary>
    | ZScore
    /// <summary>"stat": t or F.</summary>
    | Stat
    /// <summary>"p_value".</summary>
    | PValue
    /// <summary>"effect_size" (one volume per row of an F contrast).</summary>
    | EffectSize
    /// <summary>"effect_variance".</summary>
    | EffectVariance

/// A first-level model's outputs: their nilearn and BIDS names, maps on the grid, and writing them.
module internal FirstLevelOutputs =

    /// nilearn's _clean_contrast_name (doc: FirstLevel.contrastFileName).
    let contrastFileName (name: string) : string =
        let spaced =
            name
                .Replace("-", " Minus ")
                .Replace("+", " Plus ")
                .Replace(">", " Gt ")
                .Replace("<", " Lt ")
                .Replace("_", " ")

        let title (w: string) =
            // Python's str.title: upper case after a non-letter, lower case after a letter.
            let chars = w.ToCharArray()
            let mutable previousLetter = false

            for i in 0 .. chars.Length - 1 do
                let c = chars[i]

                chars[i] <-
                    (if previousLetter then
                         Char.ToLowerInvariant c
                     else
                         Char.ToUpperInvariant c)

                previousLetter <- Char.IsLetter c

            String chars

        let words = spaced.Split ' '

        let camel =
            words
            |> Array.mapi (fun i w -> if i = 0 then w.ToLowerInvariant() else title w)
            |> String.concat " "

        String(camel.ToCharArray() |> Array.filter Char.IsLetterOrDigit)

    /// The save_glm_to_bids code of an output (doc: FirstLevel.statCode).
    let statCode (statType: StatType) (output: OutputType) : string =
        match output with
        | ZScore -> "z"
        | Stat ->
            match statType with
            | T -> "t"
            | F
            | TminConjunction -> "F"
        | PValue -> "p"
        | EffectSize -> "effect"
        | EffectVariance -> "variance"

    /// nilearn's spelling of an output type (doc: FirstLevel.outputName).
    let outputName (output: OutputType) : string =
        match output with
        | ZScore -> "z_score"
        | Stat -> "stat"
        | PValue -> "p_value"
        | EffectSize -> "effect_size"
        | EffectVariance -> "effect_variance"

    /// An output type from nilearn's spelling, all of them from "all" (doc: FirstLevel.parseOutputType).
    let parseOutputType (text: string) : Result<OutputType list, string list> =
        match text with
        | "z_score" -> Ok [ ZScore ]
        | "stat" -> Ok [ Stat ]
        | "p_value" -> Ok [ PValue ]
        | "effect_size" -> Ok [ EffectSize ]
        | "effect_variance" -> Ok [ EffectVariance ]
        | "all" -> Ok [ ZScore; Stat; PValue; EffectSize; EffectVariance ]
        | _ -> Error [ "z_score"; "stat"; "p_value"; "effect_size"; "effect_variance"; "all" ]

    /// Masked values back on the grid, 0 outside the mask (doc: FirstLevel.unmask).
    let unmask (fit: FirstLevelFit) (values: float[]) : float[] =
        let m = fit.MaskedIndices.Length

        if values.Length % m <> 0 then
            invalidArg (nameof values) $"{values.Length} values are not whole maps of {m} masked voxels"

        let count = values.Length / m
        let grid = fit.Shape.Count
        let out = Array.zeroCreate (count * grid)

        for c in 0 .. count - 1 do
            for j in 0 .. m - 1 do
                out[c * grid + fit.MaskedIndices[j]] <- values[c * m + j]

        out

    /// One output of a contrast over the masked voxels (doc: FirstLevel.maskedOutput).
    let maskedOutput (contrast: FirstLevelContrast) (output: OutputType) : float[] =
        let c = contrast.Contrast

        match output with
        | ZScore -> Contrast.zScoreWith Nilearn 0.0 c
        | Stat -> Contrast.stat 0.0 c
        | PValue -> Contrast.pValue 0.0 c
        | EffectSize -> Contrast.effectSize c
        | EffectVariance -> Contrast.effectVariance c

    /// Scans × voxels column-major → volumes (row-major over voxels).
    let private transposeSeries (scans: int) (voxels: int) (series: float[]) =
        Array.init (scans * voxels) (fun k -> series[(k % voxels) * scans + k / voxels])

    /// A run's residuals on the grid, when kept (doc: FirstLevel.residuals).
    let residuals (fit: FirstLevelFit) (run: int) : float[] =
        let g = fit.Runs[run].Glm

        match g.Diagnostics with
        | Some d -> unmask fit (transposeSeries g.Scans g.Voxels d.Residuals)
        | None -> invalidOp "the model was fitted with MinimizeMemory = true: no residuals kept"

    /// A run's predicted values on the grid, when kept (doc: FirstLevel.predicted).
    let predicted (fit: FirstLevelFit) (run: int) : float[] =
        let g = fit.Runs[run].Glm

        match g.Diagnostics with
        | Some d -> unmask fit (transposeSeries g.Scans g.Voxels d.Predicted)
        | None -> invalidOp "the model was fitted with MinimizeMemory = true: no predicted values kept"

    /// A run's R² on the grid, when kept (doc: FirstLevel.rSquare).
    let rSquare (fit: FirstLevelFit) (run: int) : float[] =
        match fit.Runs[run].Glm.Diagnostics with
        | Some d -> unmask fit d.RSquare
        | None -> invalidOp "the model was fitted with MinimizeMemory = true: no R² kept"

    let private noiseName (m: NoiseModel) =
        match m with
        | Ols -> "ols"
        | Ar o -> $"ar{o}"
        | Ar1Exact -> "ar1-exact"
        | NipyAr1 -> "nipy-ar1"
        | Ar1BiasCorrected -> "ar1-bias-corrected"

    let private writeParameters (path: string) (fit: FirstLevelFit) =
        use stream = File.Create path
        use w = new Utf8JsonWriter(stream, JsonWriterOptions(Indented = true))
        let o = fit.Options
        w.WriteStartObject()

        match o.TR with
        | Some tr -> w.WriteNumber("t_r", tr)
        | None -> w.WriteNull "t_r"

        w.WriteNumber("slice_time_ref", o.SliceTimeRef)

        w.WriteString(
            "hrf_model",
            match o.HrfModel with
            | Hrf.Spm -> "spm"
            | Hrf.SpmDerivative -> "spm + derivative"
            | Hrf.SpmDerivativeDispersion -> "spm + derivative + dispersion"
            | Hrf.Glover -> "glover"
            | Hrf.GloverDerivative -> "glover + derivative"
            | Hrf.GloverDerivativeDispersion -> "glover + derivative + dispersion"
            | Hrf.Fir _ -> "fir"
            | Hrf.Custom(name, _) -> name
            | Hrf.NoHrf -> "none"
        )

        match o.HrfModel with
        | Hrf.Fir delays ->
            w.WriteStartArray "fir_delays"
            delays |> Array.iter w.WriteNumberValue
            w.WriteEndArray()
        | _ -> ()

        match o.DriftModel with
        | Cosine hp ->
            w.WriteString("drift_model", "cosine")
            w.WriteNumber("high_pass", hp)
        | Polynomial order ->
            w.WriteString("drift_model", "polynomial")
            w.WriteNumber("drift_order", order)
        | NoDrift -> w.WriteNull "drift_model"

        w.WriteNumber("min_onset", o.MinOnset)

        match o.SmoothingFwhm with
        | Some f -> w.WriteNumber("smoothing_fwhm", f)
        | None -> w.WriteNull "smoothing_fwhm"

        w.WriteString(
            "signal_scaling",
            match o.SignalScaling with
            | ScaleVoxelMeans -> "0"
            | ScaleGrandMean -> "(0, 1)"
            | NoScaling -> "False"
        )

        w.WriteString("noise_model", noiseName o.NoiseModel)
        w.WriteNumber("bins", o.Bins)
        w.WriteBoolean("minimize_memory", o.MinimizeMemory)
        w.WriteNumber("n_runs", fit.Runs.Length)
        w.WriteNumber("n_voxels_in_mask", fit.MaskedIndices.Length)
        w.WriteEndObject()

    /// Writes a fit's maps, mask, designs and parameters with nilearn's BIDS names, atomically (doc: FirstLevel.writeOutputs).
    let writeOutputs
        (directory: string)
        (fit: FirstLevelFit)
        (contrasts: (string * FirstLevelContrast) list)
        (outputs: OutputType list)
        =
        // duplicate names would make two writers race for one file and one silently win
        let duplicates =
            contrasts
            |> List.countBy (fst >> contrastFileName)
            |> List.filter (fun (_, n) -> n > 1)

        match duplicates with
        | (name, _) :: _ -> raise (GlmInputException("--contrast", $"two contrasts are named '{name}': output names must be unique"))
        | [] -> ()

        for name, _ in contrasts do
            Files.requireFileName "--contrast" $"contrast-{contrastFileName name}_stat-effect_statmap.nii.gz"

        use folder = Files.OutputFolder.Create directory
        let temp = folder.Path

        try
            let s = fit.Shape

            let options3d =
                { Nifti.writeOptions [| int64 s.X; int64 s.Y; int64 s.Z |] fit.Affine with
                    Datatype = NiftiDatatype.Float64 }

            // a 3D image for one volume, 4D for several
            let optionsFor (count: int) =
                if count = 1 then
                    options3d
                else
                    { options3d with
                        Shape = [| int64 s.X; int64 s.Y; int64 s.Z; int64 count |] }

            let write name (values: float[]) =
                Nifti.write (Path.Combine(temp, name)) (optionsFor (values.Length / s.Count)) values

            Nifti.write
                (Path.Combine(temp, "mask.nii.gz"))
                { options3d with
                    Datatype = NiftiDatatype.UInt8 }
                (fit.Mask |> Array.map (fun b -> if b then 1.0 else 0.0))

            let runPrefix i =
                if fit.Runs.Length = 1 then "" else $"run-{i + 1}_"

            fit.Runs
            |> Array.iteri (fun i r -> Tables.writeDesign (Path.Combine(temp, $"{runPrefix i}design.tsv")) r.Design)

            writeParameters (Path.Combine(temp, "statmap.json")) fit

            // each map is computed and compressed on its own thread (p and z need incomplete beta functions per
            // voxel; gzip is single-threaded per file); every map is written by one thread, so files do not
            // depend on the thread count
            // z and p maps of a contrast share their costly tail probabilities, computed once by whichever job
            // needs them first
            let jobs =
                [| for name, c in contrasts do
                       let tails =
                           lazy (Contrast.tails 0.0 c.Contrast)

                       for output in outputs do
                           yield name, c, tails, output |]

            let values (c: FirstLevelContrast) (tails: Lazy<struct (float * float)[]>) output =
                match output with
                | ZScore -> Contrast.zScoreOfTails Nilearn tails.Value
                | PValue -> Contrast.pValueOfTails tails.Value
                | _ -> maskedOutput c output

            // masked values go onto the grid one volume at a time, through a pooled volume
            let writeMasked name (values: float[]) =
                let m = fit.MaskedIndices.Length
                let count = values.Length / m
                let grid = Buffers.ArrayPool<float>.Shared.Rent s.Count

                try
                    use writer = Nifti.createWriter (Path.Combine(temp, name)) (optionsFor count)

                    for c in 0 .. count - 1 do
                        Array.Clear(grid, 0, s.Count)

                        for j in 0 .. m - 1 do
                            grid[fit.MaskedIndices[j]] <- values[c * m + j]

                        writer.WriteVolume(ReadOnlySpan(grid, 0, s.Count))

                    writer.Complete()
                finally
                    Buffers.ArrayPool<float>.Shared.Return grid

            System.Threading.Tasks.Parallel.ForEach(
                jobs,
                System.Threading.Tasks.ParallelOptions(MaxDegreeOfParallelism = max 1 fit.Options.Threads),
                fun (name, c, tails, output) ->
                    let st = Contrast.statType c.Contrast

                    writeMasked
                        $"contrast-{contrastFileName name}_stat-{statCode st output}_statmap.nii.gz"
                        (values c tails output)
            )
            |> ignore

            if not fit.Options.MinimizeMemory then
                for i in 0 .. fit.Runs.Length - 1 do
                    write $"{runPrefix i}stat-rSquare_statmap.nii.gz" (rSquare fit i)
                    write $"{runPrefix i}stat-errorts_timeseries.nii.gz" (residuals fit i)
                    write $"{runPrefix i}stat-predicted_timeseries.nii.gz" (predicted fit i)

            folder.Commit()
        with e ->
            raise (Files.writeFailure directory e)
