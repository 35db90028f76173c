namespace FmriGlm.Core

open System
open System.IO
open System.Text

/// <summary>Model settings of the BIDS App, with nilearn FirstLevelModel's names and defaults.</summary>
[<NoEquality; NoComparison>]
type BidsModelOptions =
    {
        /// HRF model (default Glover).
        HrfModel: Hrf.HrfModel
        /// Drift model (default cosine, high_pass 0.01 Hz).
        DriftModel: DriftModel
        /// GLM settings (default AR(1), 100 bins).
        Glm: GlmOptions
        /// Isotropic smoothing FWHM in mm applied to every volume before masking; 0 for none (default).
        SmoothingFwhm: float
        /// Confound strategy ("motion6+csf+wm", …) or column list; None for no confounds.
        Confounds: string option
        /// Contrast expressions over the design columns ("faces - houses").
        Contrasts: string list
        /// nilearn's signal_scaling=0: each voxel's series divided by its mean, minus 1, times 100 (default true).
        SignalScaling: bool
    }

/// <summary>The fitted first level of one subject (nilearn FirstLevelModel over its runs): designs, mask and the
/// fixed-effects contrasts.</summary>
[<NoEquality; NoComparison>]
type ParticipantFit =
    {
        /// Subject label without "sub-".
        Subject: string
        /// The runs used.
        Runs: BidsRun list
        /// One design matrix per run.
        Designs: DesignMatrix list
        /// Warnings of the design and confounds, in words.
        Warnings: string list
        /// Grid of the images.
        Shape: GridShape
        /// Affine of the images.
        Affine: float[,]
        /// Voxel sizes in mm.
        Zooms: float[]
        /// Voxels analysed (Fortran order).
        Mask: bool[]
        /// Mean of the first run's BOLD over time, full grid (the report's background).
        MeanImage: float[]
        /// Per contrast expression: the contrast over the mask voxels, runs combined by fixed effects.
        Contrasts: (string * Contrast) list
    }

/// <summary>The BIDS App's models: one first level per subject (runs combined by fixed effects, as nilearn's
/// FirstLevelModel with a list of runs), and a one-sample second level over the subjects' effect maps.</summary>
module BidsModels =

    /// <summary>nilearn's defaults, no confounds, no contrast.</summary>
    let defaults =
        { HrfModel = Hrf.Glover
          DriftModel = Cosine 0.01
          Glm = GlmOptions.defaults
          SmoothingFwhm = 0.0
          Confounds = None
          Contrasts = []
          SignalScaling = true }

    /// The mean over time of a 4D image, read volume by volume (the report's background).
    let private meanImage (path: string) =
        use reader = Nifti.openVolumes path
        Masking.meanVolume Precision.Double (Seq.init (int reader.VolumeCount) (fun _ -> reader.NextVolume()))

    /// <summary>Fits one subject with nilearn's FirstLevelModel (<c>FirstLevel.fit</c>) over all its runs: t_r and
    /// slice_time_ref of the runs' sidecars, the fMRIPrep brain mask when present (else nilearn's EPI mask), the
    /// events and the selected confounds of every run; each contrast as <c>compute_contrast</c> computes it (runs
    /// combined by fixed effects).</summary>
    /// <exception cref="T:FmriGlm.Core.GlmInputException">Bad files (see <c>Bids.findRuns</c>), runs with different
    /// t_r, grids that differ between runs or from the mask, a contrast over unknown columns, an empty mask.</exception>
    let fitParticipant (options: BidsModelOptions) (subject: string) (runs: BidsRun list) : ParticipantFit =
        if runs.IsEmpty then
            invalidArg (nameof runs) "at least one run"

        let run0 = runs.Head

        for r in runs do
            if abs (r.TR - run0.TR) > 1e-6 then
                raise (GlmInputException(r.Bold, $"RepetitionTime {r.TR} s differs from {run0.TR} s of {run0.Bold}: one model needs one t_r"))

        let warnings = ResizeArray<string>()

        let inputs =
            [ for r in runs ->
                  let events, tableWarnings = Tables.readEvents r.Events
                  tableWarnings |> List.iter (Tables.describe >> warnings.Add)

                  let confounds =
                      match options.Confounds, r.Confounds with
                      | Some strategy, Some path -> Some(Bids.readConfounds path strategy)
                      | Some _, None ->
                          raise (GlmInputException(r.Bold, "--confounds was given but no desc-confounds_timeseries.tsv is beside this run"))
                      | None, _ -> None

                  { Bold = BoldFile r.Bold
                    Events = Some events
                    Confounds = confounds
                    DesignMatrix = None
                    SampleMask = None } ]

        let firstLevelOptions =
            { FirstLevel.defaults with
                TR = Some run0.TR
                SliceTimeRef = run0.SliceTimeRef
                HrfModel = options.HrfModel
                DriftModel = options.DriftModel
                Mask =
                  match run0.Mask with
                  | Some path -> MaskFile path
                  | None -> ComputeEpiMask
                SmoothingFwhm = (if options.SmoothingFwhm > 0.0 then Some options.SmoothingFwhm else None)
                SignalScaling = (if options.SignalScaling then ScaleVoxelMeans else NoScaling)
                NoiseModel = options.Glm.NoiseModel
                Bins = options.Glm.Bins
                Threads = options.Glm.Threads }

        let fit = FirstLevel.fit firstLevelOptions inputs
        warnings.AddRange fit.Warnings

        let contrasts =
            [ for expression in options.Contrasts ->
                  let c = FirstLevel.computeContrast fit [ ContrastDefinition.Expression expression ] None
                  warnings.AddRange c.Warnings
                  expression, c.Contrast ]

        let header = Nifti.readHeader run0.Bold

        { Subject = subject
          Runs = runs
          Designs = fit.Runs |> Array.map (fun r -> r.Design) |> List.ofArray
          Warnings = List.ofSeq warnings |> List.distinct
          Shape = fit.Shape
          Affine = fit.Affine
          Zooms = header.Zooms |> Array.truncate 3
          Mask = fit.Mask
          MeanImage = meanImage run0.Bold
          Contrasts = contrasts }

    /// <summary>Values over the mask voxels spread onto the full grid, 0 outside.</summary>
    let unmask (mask: bool[]) (values: float[]) : float[] =
        let out = Array.zeroCreate mask.Length
        let mutable k = 0

        for v in 0 .. mask.Length - 1 do
            if mask[v] then
                out[v] <- values[k]
                k <- k + 1

        out

    /// <summary>Writes a 3D float32 map atomically (the NIfTI writer writes a temporary and renames it).</summary>
    let writeMap (path: string) (shape: GridShape) (affine: float[,]) (values: float[]) =
        Nifti.write path (Nifti.writeOptions [| int64 shape.X; int64 shape.Y; int64 shape.Z |] affine) values

    /// <summary>The five maps of each contrast (effect, variance, t, z, p) of one subject, on the full grid.</summary>
    let participantMaps (fit: ParticipantFit) : (string * (string * float[]) list) list =
        [ for name, c in fit.Contrasts ->
              name,
              [ "effect", Contrast.effectSize c
                "variance", Contrast.effectVariance c
                "t", Contrast.stat 0.0 c
                "z", Contrast.zScoreWith Nilearn 0.0 c
                "p", Contrast.pValue 0.0 c ]
              |> List.map (fun (stat, values) -> stat, unmask fit.Mask values) ]

    /// <summary>Writes a subject's outputs into <paramref name="folder"/> (OUTPUT_DIR/sub-X/, or the temporary folder
    /// that becomes it) with nilearn's save_glm_to_bids names:
    /// {prefix}_contrast-{c}_stat-{effect,variance,t,z,p}_statmap.nii.gz, {prefix}_run-N_design.tsv,
    /// {prefix}_mask.nii.gz, {prefix}_statmap.json (model parameters). Every file is written atomically.</summary>
    /// <returns>The paths written.</returns>
    let writeParticipant (folder: string) (task: string) (space: string) (options: BidsModelOptions) (fit: ParticipantFit) : string list =
        Directory.CreateDirectory folder |> ignore
        let prefix = Bids.participantPrefix fit.Subject task space
        let file (name: string) = Path.Combine(folder, name)
        let written = ResizeArray<string>()

        for contrast, maps in participantMaps fit do
            for stat, values in maps do
                let path = file (Bids.statMapName prefix contrast stat)
                writeMap path fit.Shape fit.Affine values
                written.Add path

        let maskPath = file $"{prefix}_mask.nii.gz"
        writeMap maskPath fit.Shape fit.Affine (fit.Mask |> Array.map (fun b -> if b then 1.0 else 0.0))
        written.Add maskPath

        fit.Designs
        |> List.iteri (fun i d ->
            let runLabel =
                fit.Runs[i].Entities |> List.tryFind (fst >> (=) "run") |> Option.map snd |> Option.defaultValue (string (i + 1))

            let path = file $"{prefix}_run-{runLabel}_design.tsv"
            Tables.writeDesign path d
            written.Add path)

        let quote (s: string) = "\"" + s.Replace("\\", "\\\\").Replace("\"", "\\\"") + "\""
        let contrasts = String.Join(", ", options.Contrasts |> List.map quote)
        let noise = Regression.noiseModelName options.Glm.NoiseModel

        let drift =
            match options.DriftModel with
            | Cosine hp -> $"\"drift_model\": \"cosine\", \"high_pass\": {Bids.json hp}"
            | Polynomial o -> $"\"drift_model\": \"polynomial\", \"drift_order\": {o}"
            | NoDrift -> "\"drift_model\": null"

        let run0 = fit.Runs.Head
        let sliceTiming = String.Join(", ", run0.SliceTiming |> Array.map Bids.json)

        let hrf = quote (Hrf.name options.HrfModel)
        let scaling = if options.SignalScaling then 0 else 1
        let confounds = quote (defaultArg options.Confounds "")
        let runs = String.Join(", ", fit.Runs |> List.map (fun r -> quote (Path.GetFileName r.Bold)))

        let jsonText =
            StringBuilder()
                .Append("{\n")
                .Append($"  \"t_r\": {Bids.json run0.TR},\n  \"slice_time_ref\": {Bids.json run0.SliceTimeRef},\n")
                .Append($"  \"SliceTiming\": [{sliceTiming}],\n  \"hrf_model\": {hrf},\n  {drift},\n")
                .Append($"  \"noise_model\": {quote noise},\n  \"signal_scaling\": {scaling},\n")
                .Append($"  \"smoothing_fwhm\": {Bids.json options.SmoothingFwhm},\n  \"confounds\": {confounds},\n")
                .Append($"  \"contrasts\": [{contrasts}],\n  \"runs\": [{runs}]\n}}\n")
                .ToString()

        let jsonPath = file $"{prefix}_statmap.json"
        Bids.writeTextAtomic jsonPath jsonText
        written.Add jsonPath
        List.ofSeq written

    /// <summary>The group level: the subjects' effect maps of one contrast found under OUTPUT_DIR/sub-*/ fitted by
    /// nilearn's SecondLevelModel (<c>SecondLevel.fit</c>) with an intercept-only design (one-sample t test) over the
    /// voxels inside every subject's mask.</summary>
    /// <returns>Per contrast: subjects used, the second-level contrast over the group mask, the group mask, grid,
    /// affine and zooms.</returns>
    /// <exception cref="T:FmriGlm.Core.GlmInputException">Fewer than 2 subjects with the contrast's effect map, or
    /// grids that differ.</exception>
    let fitGroup (outputDir: string) (task: string) (space: string) (contrast: string) =
        // contrast: the label of the file names ("facesMinusHouses")
        let maps =
            if Directory.Exists outputDir then
                Directory.GetDirectories(outputDir, "sub-*")
                |> Array.sort
                |> Array.choose (fun d ->
                    let subject = Path.GetFileName(d).Substring 4
                    let prefix = Bids.participantPrefix subject task space
                    let effect = Path.Combine(d, Bids.labelledMapName prefix contrast "effect")
                    let mask = Path.Combine(d, $"{prefix}_mask.nii.gz")
                    if File.Exists effect && File.Exists mask then Some(subject, effect, mask) else None)
            else
                [||]

        if maps.Length < 2 then
            raise (GlmInputException(outputDir, $"the group level needs the effect maps of contrast '{contrast}' of at least 2 subjects, found {maps.Length}: run the participant level first"))

        let images = maps |> Array.map (fun (_, effect, mask) -> Nifti.read effect, Nifti.read mask)
        let h = (fst images[0]).Header
        let shape = { X = int h.Shape[0]; Y = int h.Shape[1]; Z = int h.Shape[2] }

        for (_, effect, _), (img, _) in Array.zip maps images do
            if img.Data.Length <> shape.Count then
                raise (GlmInputException(effect, "its grid differs from the other subjects' maps"))

        let mask = Array.init shape.Count (fun v -> images |> Array.forall (fun (_, m) -> m.Data[v] <> 0.0))
        let volumes = images |> Array.map (fun (img, _) -> img.Data |> Array.map float32)
        // nilearn's SecondLevelModel with mask_img = the intersection of the subjects' masks, intercept-only design
        let input = SecondLevelImages.ofVolumes outputDir shape h.Affine volumes (Some mask) None
        let design = { ColumnNames = [| "intercept" |]; Values = Array2D.create maps.Length 1 1.0 }
        let fit = SecondLevel.fit GlmOptions.defaults.Threads design (Float32 input.Data)
        let c = SecondLevel.computeContrast fit SecondLevelContrast.Default None
        maps |> Array.map (fun (s, _, _) -> s) |> List.ofArray, c, mask, shape, h.Affine, h.Zooms |> Array.truncate 3
