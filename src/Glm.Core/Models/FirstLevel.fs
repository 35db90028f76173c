namespace FmriGlm.Core

open System

/// <summary>nilearn's <c>FirstLevelModel</c>: from BOLD runs, events and confounds to statistical maps.</summary>
module FirstLevel =

    /// <summary>nilearn's defaults: no TR, slice_time_ref 0, glover, cosine 0.01 Hz, min_onset −24, computed
    /// mask, no smoothing, signal_scaling 0, ar1 with 100 bins, minimize_memory, every core.</summary>
    let defaults =
        { TR = None
          SliceTimeRef = 0.0
          HrfModel = Hrf.Glover
          DriftModel = Cosine 0.01
          MinOnset = -24.0
          Mask = ComputeEpiMask
          SmoothingFwhm = None
          SignalScaling = ScaleVoxelMeans
          Standardize = false
          NoiseModel = Ar 1
          Bins = 100
          RandomState = 0
          MinimizeMemory = true
          Threads = Environment.ProcessorCount }

    /// <summary>A run from files: BOLD, optional events and confounds TSV (all confound columns, or those named).</summary>
    /// <exception cref="GlmInputException">A table cannot be read.</exception>
    let runFromFiles
        (bold: string)
        (events: string option)
        (confounds: string option)
        (confoundColumns: string[] option)
        =
        { Bold = BoldFile bold
          Events = events |> Option.map (Tables.readEvents >> fst)
          Confounds = confounds |> Option.map (fun c -> Tables.readConfounds c confoundColumns)
          DesignMatrix = None
          SampleMask = None }

    /// <summary>nilearn's <c>mean_scaling</c> in float32 as numpy runs it on the masker's float32 output, in place
    /// on a scans × voxels column-major array. Per voxel: mean accumulated scan by scan in float32 (numpy's
    /// reduction over axis 0), <c>100·(Y/max(mean, 1) − 1)</c> rounded to float32 at each step.</summary>
    /// <returns>True when some mean is 0 (nilearn warns that the data were probably centred).</returns>
    let scaleSignals (scaling: SignalScaling) (scans: int) (data: float32[]) : bool =
        RunReading.scaleSignals scaling scans data

    /// <summary>Checks a sample mask (kept scan indices) against the run's scan count.</summary>
    /// <exception cref="GlmInputException">An index outside 0 .. scans − 1, or no scan kept.</exception>
    let checkSampleMask (input: string) (scans: int) (kept: int[]) : unit =
        FirstLevelFitting.checkSampleMask input scans kept

    /// <summary>Rows of a design kept by a sample mask (nilearn <c>design.iloc[sample_mask, :]</c>).</summary>
    let subsetRows (kept: int[]) (design: DesignMatrix) : DesignMatrix =
        FirstLevelFitting.subsetRows kept design

    /// <summary>nilearn's <c>_clean_contrast_name</c>: "-" → "Minus", "+" → "Plus", "&gt;" → "Gt", "&lt;" → "Lt",
    /// "_" → space, then camelCase (first word lower case, later words title-cased) and only letters and digits.</summary>
    let contrastFileName (name: string) : string =
        FirstLevelOutputs.contrastFileName name

    /// <summary>The BIDS-derivative code nilearn's <c>save_glm_to_bids</c> gives an output:
    /// z, t or F, p, effect, variance.</summary>
    let statCode (statType: StatType) (output: OutputType) : string =
        FirstLevelOutputs.statCode statType output

    /// <summary>nilearn's spelling of an output type.</summary>
    let outputName (output: OutputType) : string =
        FirstLevelOutputs.outputName output

    /// <summary>Parses nilearn's spelling of an output type; "all" gives every one.</summary>
    let parseOutputType (text: string) : Result<OutputType list, string list> =
        FirstLevelOutputs.parseOutputType text

    /// <summary>Parses a noise model as nilearn spells it ("ols", "ar1", "ar2", …) or one of the extras
    /// (<c>Regression.parseNoiseModel</c>).</summary>
    let parseNoiseModel (text: string) : Result<NoiseModel, string> = Regression.parseNoiseModel text

    /// <summary>Fits the model to one or more runs on the same grid, as nilearn's <c>FirstLevelModel.fit</c>:
    /// the mask (given, computed on the first run, or none), per run the design (built from events and confounds
    /// on frame times linspace(slice_time_ref·t_r, (n − 1 + slice_time_ref)·t_r, n), or given), its rows kept by
    /// the sample mask, the masked data (smoothed first when asked) read as one float32 copy, signal scaling, and
    /// the GLM (<see cref="M:FmriGlm.Core.Regression.fit"/>).</summary>
    /// <exception cref="GlmInputException">No run; runs on different grids or affines; events without TR; tables
    /// with the wrong number of rows; a mask on another grid or empty; NaN in the masked data; fewer kept scans
    /// than design columns.</exception>
    let fit (options: FirstLevelOptions) (runs: RunInput list) : FirstLevelFit =
        FirstLevelFitting.fit options runs

    /// <summary>The ROI GLM of nilearn's <c>run_glm</c> on a time-by-region table (one column per region, one
    /// row per scan), with the design built as for images (or given) and the options' signal scaling.</summary>
    /// <returns>A fit whose "grid" is regions × 1 × 1 with an identity affine and every region in the mask.</returns>
    /// <exception cref="GlmInputException">As <see cref="fit"/>, for the table.</exception>
    let fitSignals (options: FirstLevelOptions) (signals: float[,]) (run: RunInput) : FirstLevelFit =
        let scans, regions = Array2D.length1 signals, Array2D.length2 signals

        if scans < 2 || regions < 1 then
            raise (
                GlmInputException(
                    "signals",
                    $"need at least 2 rows (scans) and 1 column (region), got {scans} × {regions}"
                )
            )

        let shape = { X = regions; Y = 1; Z = 1 }
        let affine = Array2D.init 4 4 (fun i j -> if i = j then 1.0 else 0.0)

        let volumes =
            Array.init scans (fun t -> Array.init regions (fun r -> float32 signals[t, r]))

        fit
            { options with
                Mask = NoMask
                SmoothingFwhm = None }
            [ { run with
                  Bold = BoldVolumes(shape, affine, volumes) } ]

    /// <summary>nilearn's <c>compute_contrast</c>: one definition for every run or one per run; expressions
    /// evaluated over each run's columns; null run contrasts skipped; the run contrasts summed and divided by
    /// their number (fixed effects, <c>compute_fixed_effect_contrast</c>). Stat type: t for one row, F otherwise,
    /// unless given.</summary>
    /// <exception cref="GlmInputException">A wrong number of definitions, an expression naming an unknown column,
    /// weights not matching the design columns, or every run's contrast null.</exception>
    let computeContrast
        (fit: FirstLevelFit)
        (definitions: ContrastDefinition list)
        (statType: StatType option)
        : FirstLevelContrast =
        FirstLevelContrasts.computeContrast fit definitions statType

    /// <summary>Puts masked values (count × masked voxels, row-major) back on the grid, 0 outside the mask.</summary>
    let unmask (fit: FirstLevelFit) (values: float[]) : float[] =
        FirstLevelOutputs.unmask fit values

    /// <summary>One output of a contrast over the masked voxels (row-major volumes for a multi-row effect),
    /// with nilearn's conventions: baseline 0, z from p as nilearn's <c>z_score</c>.</summary>
    let maskedOutput (contrast: FirstLevelContrast) (output: OutputType) : float[] =
        FirstLevelOutputs.maskedOutput contrast output

    /// <summary>One output of a contrast on the grid, volumes in Fortran order, 0 outside the mask
    /// (nilearn's <c>masker_.inverse_transform</c>).</summary>
    let outputImage (fit: FirstLevelFit) (contrast: FirstLevelContrast) (output: OutputType) : float[] =
        unmask fit (maskedOutput contrast output)

    /// <summary>Residuals of run <c>run</c> on the grid (scans volumes); needs <c>MinimizeMemory = false</c>.</summary>
    /// <exception cref="InvalidOperationException">The fit kept no diagnostics.</exception>
    let residuals (fit: FirstLevelFit) (run: int) : float[] =
        FirstLevelOutputs.residuals fit run

    /// <summary>Smoothness of run <c>run</c>'s residuals inside the fit's mask (SPM's estimator on the standardised
    /// residuals, <see cref="M:FmriGlm.Core.RandomFieldTheory.estimateSmoothness"/>): FWHM in voxels and mm, resels
    /// and LKCs, what <c>height_control = "fwe"</c> needs. Needs <c>MinimizeMemory = false</c>.</summary>
    /// <exception cref="InvalidOperationException">The fit kept no diagnostics.</exception>
    let smoothness (fit: FirstLevelFit) (run: int) : Smoothness =
        let grid = fit.Shape.Count
        let all = FirstLevelOutputs.residuals fit run
        let volumes = Array.init (all.Length / grid) (fun t -> all[t * grid .. (t + 1) * grid - 1])
        let a = fit.Affine
        let voxelSizes = Array.init 3 (fun c -> sqrt (a[0, c] * a[0, c] + a[1, c] * a[1, c] + a[2, c] * a[2, c]))
        RandomFieldTheory.estimateSmoothness fit.Shape voxelSizes fit.Mask volumes

    /// <summary>Predicted values of run <c>run</c> on the grid; needs <c>MinimizeMemory = false</c>.</summary>
    /// <exception cref="InvalidOperationException">The fit kept no diagnostics.</exception>
    let predicted (fit: FirstLevelFit) (run: int) : float[] =
        FirstLevelOutputs.predicted fit run

    /// <summary>R² of run <c>run</c> on the grid; needs <c>MinimizeMemory = false</c>.</summary>
    /// <exception cref="InvalidOperationException">The fit kept no diagnostics.</exception>
    let rSquare (fit: FirstLevelFit) (run: int) : float[] =
        FirstLevelOutputs.rSquare fit run

    /// <summary>Writes a fit's outputs with nilearn's BIDS-derivative names into <c>directory</c>: per contrast and
    /// output <c>contrast-&lt;camelCaseName&gt;_stat-&lt;z|t|F|p|effect|variance&gt;_statmap.nii.gz</c> (float64),
    /// <c>mask.nii.gz</c>, <c>design.tsv</c> (<c>run-&lt;i&gt;_design.tsv</c> for several runs), <c>statmap.json</c>
    /// with the model's parameters and, when kept, <c>[run-&lt;i&gt;_]stat-rSquare_statmap.nii.gz</c>,
    /// <c>stat-errorts_timeseries.nii.gz</c> and <c>stat-predicted_timeseries.nii.gz</c>. Everything goes into a
    /// temporary folder beside <c>directory</c>, renamed at the end: a failure leaves no partial output folder.</summary>
    /// <exception cref="GlmInputException">The directory exists and is not empty, or cannot be written.</exception>
    let writeOutputs
        (directory: string)
        (fit: FirstLevelFit)
        (contrasts: (string * FirstLevelContrast) list)
        (outputs: OutputType list)
        =
        FirstLevelOutputs.writeOutputs directory fit contrasts outputs
