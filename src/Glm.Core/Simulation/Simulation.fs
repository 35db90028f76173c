namespace FmriGlm.Core

open System
open System.Globalization
open System.IO
open System.Text

/// <summary>Size and content of a simulated BIDS dataset (<c>fmriglm simulate</c>).</summary>
type SimulationOptions =
    {
        /// Grid of every BOLD volume (i, j, k).
        Shape: GridShape
        /// Volumes per run.
        Scans: int
        /// Repetition time, in seconds.
        TR: float
        /// Voxel size, in mm (isotropic).
        VoxelSize: float
        /// Number of subjects: labels "01", "02", ….
        Subjects: int
        /// Task label (BIDS <c>task-</c> entity).
        Task: string
        /// Seed of every random draw: the same options give byte-identical files.
        Seed: int
        /// Planted BOLD change of an active voxel, in percent of its baseline, for a regressor of height 1.
        AmplitudePercent: float
        /// Standard deviation of the AR(1) noise innovations, in percent of the baseline.
        NoisePercent: float
        /// AR(1) coefficient of the noise.
        Rho: float
    }

/// <summary>One planted region: the voxels where a condition's regressor is added to the BOLD signal.</summary>
type PlantedRegion =
    {
        /// The condition (events <c>trial_type</c>) whose regressor drives the region.
        Condition: string
        /// True in the region, Fortran order.
        Voxels: bool[]
    }

/// <summary>A deterministic simulated fMRI study written as a BIDS dataset with fMRIPrep-like derivatives: a block
/// design of two conditions ("faces", "houses"), each driving its own spherical region through the Glover HRF
/// regressor of the design module (so the planted effect is exactly what the GLM models), AR(1) noise, a linear and
/// a slow cosine drift, and motion confounds that leak into the signal. Ground truth: one signed map per contrast.</summary>
module Simulation =

    /// The two conditions of the simulated block design.
    let conditions = [| "faces"; "houses" |]

    /// Contrasts with a ground-truth map: each condition against baseline, and "faces - houses".
    let contrasts = [| "faces"; "houses"; "faces - houses" |]

    /// The fMRIPrep space entity of the simulated derivatives.
    let space = "MNI152NLin2009cAsym"

    /// <summary>Tiny dataset for the demo and tests: 24×28×20 voxels of 3 mm, 80 scans, TR 2 s, 2 subjects.</summary>
    let tiny =
        { Shape = { X = 24; Y = 28; Z = 20 }
          Scans = 80
          TR = 2.0
          VoxelSize = 3.0
          Subjects = 2
          Task = "localizer"
          Seed = 42
          AmplitudePercent = 3.0
          NoisePercent = 1.0
          Rho = 0.3 }

    /// <summary>Realistic benchmark size: 64×64×36 voxels, 300 scans.</summary>
    let realistic =
        { tiny with
            Shape = { X = 64; Y = 64; Z = 36 }
            Scans = 300 }

    /// <summary>BIDS label of subject n (1-based): "01", "02", ….</summary>
    let subjectLabel (n: int) = n.ToString("00", CultureInfo.InvariantCulture)

    /// <summary>A contrast as a file-name label: "faces - houses" → "facesMinusHouses" (nilearn's
    /// <c>_clean_contrast_name</c> style).</summary>
    let contrastLabel (contrast: string) = FirstLevel.contrastFileName contrast

    /// <summary>The 4×4 affine: isotropic voxels, the grid centred on the origin, RAS.</summary>
    let affine (options: SimulationOptions) =
        let s = options.VoxelSize
        let c (n: int) = -s * float (n - 1) / 2.0

        array2D
            [ [ s; 0.0; 0.0; c options.Shape.X ]
              [ 0.0; s; 0.0; c options.Shape.Y ]
              [ 0.0; 0.0; s; c options.Shape.Z ]
              [ 0.0; 0.0; 0.0; 1.0 ] ]

    let private ellipsoid (shape: GridShape) (ci, cj, ck) (ri, rj, rk) =
        Array.init shape.Count (fun v ->
            let i, j, k = v % shape.X, (v / shape.X) % shape.Y, v / (shape.X * shape.Y)
            let d (x: int) c r = (float x - c) / r
            let r2 = d i ci ri ** 2.0 + d j cj rj ** 2.0 + d k ck rk ** 2.0
            r2 <= 1.0)

    /// <summary>The brain: an ellipsoid filling about 80% of each axis.</summary>
    let brainMask (shape: GridShape) =
        let c (n: int) = float (n - 1) / 2.0
        let r (n: int) = 0.42 * float n
        ellipsoid shape (c shape.X, c shape.Y, c shape.Z) (r shape.X, r shape.Y, r shape.Z)

    /// <summary>The planted regions: a sphere of radius max(2, X/8) voxels per condition, left and right of the
    /// centre, inside the brain.</summary>
    let plantedRegions (shape: GridShape) : PlantedRegion list =
        let r = max 2.0 (float shape.X / 8.0)
        let cj, ck = float (shape.Y - 1) / 2.0, float (shape.Z - 1) / 2.0

        [ { Condition = "faces"
            Voxels = ellipsoid shape (0.3 * float (shape.X - 1), cj, ck) (r, r, r) }
          { Condition = "houses"
            Voxels = ellipsoid shape (0.7 * float (shape.X - 1), cj, ck) (r, r, r) } ]

    /// <summary>Signed ground truth of a contrast over the conditions: +1 where the contrast's true value is
    /// positive, −1 where negative, 0 elsewhere.</summary>
    /// <exception cref="System.ArgumentException">The contrast is not one of <c>contrasts</c>.</exception>
    let groundTruth (shape: GridShape) (contrast: string) : float[] =
        let regions = plantedRegions shape
        let region c = (regions |> List.find (fun r -> r.Condition = c)).Voxels

        match contrast with
        | "faces"
        | "houses" -> region contrast |> Array.map (fun b -> if b then 1.0 else 0.0)
        | "faces - houses" ->
            Array.map2 (fun f h -> (if f then 1.0 else 0.0) - (if h then 1.0 else 0.0)) (region "faces") (region "houses")
        | _ -> invalidArg (nameof contrast) $"'{contrast}' is not one of the simulated contrasts"

    /// <summary>The block design: alternating 12 s blocks of faces and houses separated by 8 s of rest, starting
    /// at 8 s, while the run lasts.</summary>
    let events (options: SimulationOptions) : Events =
        let duration = options.TR * float options.Scans
        let block, rest = 12.0, 8.0

        let onsets =
            Seq.initInfinite (fun n -> rest + float n * (block + rest))
            |> Seq.takeWhile (fun t -> t + block <= duration)
            |> Array.ofSeq

        { Onsets = onsets
          Durations = onsets |> Array.map (fun _ -> block)
          TrialTypes = onsets |> Array.mapi (fun n _ -> conditions[n % 2])
          Modulations = onsets |> Array.map (fun _ -> 1.0) }

    let private invariant (x: float) = x.ToString("R", CultureInfo.InvariantCulture)

    let private writeText (path: string) (text: string) = Files.writeTextAtomic path text

    /// Gaussian draws by Box-Muller over System.Random(seed), whose sequence is fixed for a given seed.
    type private Gaussian(seed: int) =
        let random = Random(seed)
        let mutable spare = nan

        member _.Next() =
            if not (Double.IsNaN spare) then
                let s = spare
                spare <- nan
                s
            else
                let u1 = 1.0 - random.NextDouble()
                let u2 = random.NextDouble()
                let r = sqrt (-2.0 * log u1)
                spare <- r * sin (2.0 * Math.PI * u2)
                r * cos (2.0 * Math.PI * u2)

    /// <summary>Six rigid-body motion parameters (trans_x..z in mm, rot_x..z in rad): smoothed random walks.</summary>
    let private motion (g: Gaussian) (scans: int) =
        Array.init 6 (fun p ->
            let step = if p < 3 then 0.02 else 0.0004
            let walk = Array.zeroCreate scans
            let mutable x = 0.0

            for t in 0 .. scans - 1 do
                x <- 0.9 * x + step * g.Next()
                walk[t] <- x

            walk)

    /// fMRIPrep's names of the six rigid-body motion parameters.
    let motionNames = [| "trans_x"; "trans_y"; "trans_z"; "rot_x"; "rot_y"; "rot_z" |]

    /// <summary>fMRIPrep's confounds table: each base column with its _derivative1, _power2 and
    /// _derivative1_power2 expansions, "n/a" in the first row of the derivatives, as fMRIPrep writes them.</summary>
    let confoundsTsv (names: string[]) (series: float[][]) : string =
        let scans = series[0].Length
        let sb = StringBuilder()

        let header =
            names
            |> Array.collect (fun n -> [| n; n + "_derivative1"; n + "_power2"; n + "_derivative1_power2" |])

        sb.Append(String.Join('\t', header)).Append('\n') |> ignore

        for t in 0 .. scans - 1 do
            let cells =
                series
                |> Array.collect (fun s ->
                    let d = if t = 0 then None else Some(s[t] - s[t - 1])
                    let text = Option.map invariant >> Option.defaultValue "n/a"
                    [| invariant s[t]; text d; invariant (s[t] * s[t]); text (d |> Option.map (fun x -> x * x)) |])

            sb.Append(String.Join('\t', cells)).Append('\n') |> ignore

        sb.ToString()

    /// <summary>Relative path of a subject's raw events file.</summary>
    let eventsPath (task: string) (subject: string) =
        Path.Combine($"sub-{subject}", "func", $"sub-{subject}_task-{task}_run-1_events.tsv")

    /// <summary>Prefix (folder and entities) of a subject's fMRIPrep outputs, relative to the dataset root.</summary>
    let derivativesPrefix (task: string) (subject: string) =
        Path.Combine("derivatives", "fmriprep", $"sub-{subject}", "func", $"sub-{subject}_task-{task}_run-1")

    /// <summary>Writes the dataset-level files: dataset_description.json, participants.tsv, task-T_bold.json (with
    /// RepetitionTime and SliceTiming), the fMRIPrep dataset_description.json and the ground-truth maps
    /// <c>derivatives/simulation/ground_truth_contrast-LABEL.nii.gz</c>.</summary>
    let writeDatasetFiles (root: string) (options: SimulationOptions) : unit =
        let file (rel: string) = Path.Combine(root, rel)

        writeText
            (file "dataset_description.json")
            """{"Name": "fmriglm simulated localizer", "BIDSVersion": "1.8.0", "DatasetType": "raw", "Authors": ["fmriglm simulate"]}"""

        let participants =
            [ for n in 1 .. options.Subjects -> $"sub-{subjectLabel n}\t{(if n % 2 = 0 then 'F' else 'M')}" ]

        writeText (file "participants.tsv") ("participant_id\tsex\n" + String.Join("\n", participants) + "\n")
        // Slices acquired in ascending order over one TR, as the sidecar of a sequential EPI would list them.
        let slices =
            Array.init options.Shape.Z (fun k -> invariant (Math.Round(options.TR * float k / float options.Shape.Z, 6)))

        writeText
            (file $"task-{options.Task}_bold.json")
            $"""{{"TaskName": "{options.Task}", "RepetitionTime": {invariant options.TR}, "SliceTiming": [{String.Join(", ", slices)}]}}"""

        writeText
            (file (Path.Combine("derivatives", "fmriprep", "dataset_description.json")))
            """{"Name": "fMRIPrep-like outputs of fmriglm simulate", "BIDSVersion": "1.8.0", "DatasetType": "derivative", "GeneratedBy": [{"Name": "fmriglm simulate"}]}"""

        let write3d (rel: string) (values: float[]) =
            let path = file rel
            Directory.CreateDirectory(Path.GetDirectoryName path) |> ignore
            let s = options.Shape
            Nifti.write path (Nifti.writeOptions [| int64 s.X; int64 s.Y; int64 s.Z |] (affine options)) values

        for c in contrasts do
            write3d
                (Path.Combine("derivatives", "simulation", $"ground_truth_contrast-{contrastLabel c}.nii.gz"))
                (groundTruth options.Shape c)

    /// <summary>Writes one subject: raw events, and the fMRIPrep-like preprocessed BOLD (float32, TR in the header
    /// and in its JSON sidecar), brain mask and confounds. Deterministic from the seed and the subject number.</summary>
    /// <param name="root">The dataset folder.</param>
    /// <param name="options">Sizes and signal settings.</param>
    /// <param name="subject">1-based subject number.</param>
    let writeSubject (root: string) (options: SimulationOptions) (subject: int) : unit =
        let label = subjectLabel subject
        let shape = options.Shape
        let g = Gaussian(options.Seed * 7919 + subject)
        let ev = events options
        let eventsText =
            [ for n in 0 .. ev.Onsets.Length - 1 ->
                  $"{invariant ev.Onsets[n]}\t{invariant ev.Durations[n]}\t{ev.TrialTypes[n]}" ]

        writeText (Path.Combine(root, eventsPath options.Task label)) ("onset\tduration\ttrial_type\n" + String.Join("\n", eventsText) + "\n")
        // The planted signal is the design module's own regressor (Glover HRF, frame times at slice_time_ref 0),
        // so a first-level model with nilearn's defaults estimates exactly the amplitude planted.
        let frameTimes = DesignMatrix.frameTimes options.Scans options.TR 0.0

        let design, _ =
            DesignMatrix.makeFirstLevel frameTimes (Some ev) { DesignMatrix.defaults with DriftModel = NoDrift }

        let regressor c =
            DesignMatrix.column design (Array.findIndex ((=) c) design.ColumnNames)

        let regions = plantedRegions shape |> List.map (fun r -> r.Voxels, regressor r.Condition)
        let brain = brainMask shape
        // Per voxel: baseline (1000 in the brain with ±5% texture, 20 outside), a subject-specific gain of the
        // planted amplitude (±3%), motion leakage weights, and drift slopes.
        let baseline =
            brain |> Array.map (fun b -> if b then 1000.0 * (1.0 + 0.05 * g.Next()) else 20.0 * (1.0 + 0.1 * g.Next()))

        let gain = 1.0 + 0.03 * g.Next()
        let moves = motion g options.Scans
        let leak = Array.init shape.Count (fun _ -> Array.init 6 (fun _ -> 0.002 * g.Next()))
        let slope = Array.init shape.Count (fun _ -> 0.01 * g.Next())
        let noise = Array.zeroCreate<float> shape.Count
        let innovation = options.NoisePercent / 100.0 * sqrt (1.0 - options.Rho * options.Rho)
        // fMRIPrep's CSF and white-matter signals: slow physiological fluctuations shared by the brain.
        let physiology = Array.init options.Scans (fun t -> sin (2.0 * Math.PI * float t * options.TR / 37.0) + 0.3 * g.Next())
        let prefix = Path.Combine(root, derivativesPrefix options.Task label)
        Directory.CreateDirectory(Path.GetDirectoryName prefix) |> ignore
        let shape4 = [| int64 shape.X; int64 shape.Y; int64 shape.Z; int64 options.Scans |]

        do
            use writer =
                Nifti.createWriter
                    (prefix + $"_space-{space}_desc-preproc_bold.nii.gz")
                    { Nifti.writeOptions shape4 (affine options) with
                        TR = Some options.TR
                        Descrip = "fmriglm simulate" }

            let volume = Array.zeroCreate<float32> shape.Count
            let duration = float options.Scans * options.TR

            for t in 0 .. options.Scans - 1 do
                let time = float t * options.TR
                let drift = 2.0 * time / duration - 1.0
                let cosine = cos (Math.PI * time / duration)

                for v in 0 .. shape.Count - 1 do
                    // stationary start: the first innovation is scaled to the marginal variance
                    let e = g.Next() * (if t = 0 then options.NoisePercent / 100.0 else innovation)
                    noise[v] <- (if t = 0 then 0.0 else options.Rho * noise[v]) + e
                    let mutable relative = noise[v] + slope[v] * drift + 0.005 * cosine + 0.002 * physiology[t]

                    for p in 0..5 do
                        relative <- relative + leak[v][p] * moves[p][t] / (if p < 3 then 0.1 else 0.002)

                    for voxels, x in regions do
                        if voxels[v] then
                            relative <- relative + gain * options.AmplitudePercent / 100.0 * x[t]

                    volume[v] <- float32 (baseline[v] * (1.0 + relative))

                writer.WriteVolume(ReadOnlySpan volume)

            writer.Complete()

        let s3 = [| int64 shape.X; int64 shape.Y; int64 shape.Z |]

        Nifti.write
            (prefix + $"_space-{space}_desc-brain_mask.nii.gz")
            { Nifti.writeOptions s3 (affine options) with Datatype = NiftiDatatype.UInt8 }
            (brain |> Array.map (fun b -> if b then 1.0 else 0.0))

        writeText
            (prefix + $"_space-{space}_desc-preproc_bold.json")
            $"""{{"RepetitionTime": {invariant options.TR}, "SkullStripped": false, "TaskName": "{options.Task}"}}"""

        let csf = physiology |> Array.map (fun p -> 800.0 + 15.0 * p)
        // white matter has its own slow fluctuation, so the two columns are not collinear
        let wm = physiology |> Array.mapi (fun t p -> 600.0 + 5.0 * p + 3.0 * cos (2.0 * Math.PI * float t * options.TR / 53.0))

        writeText
            (prefix + "_desc-confounds_timeseries.tsv")
            (confoundsTsv (Array.append [| "csf"; "white_matter" |] motionNames) (Array.append [| csf; wm |] moves))

    /// <summary>Writes the whole dataset: dataset files, then every subject.</summary>
    /// <exception cref="System.ArgumentException">Fewer than 1 subject, fewer than 10 scans, a grid below 8 voxels
    /// on an axis, or a non-positive TR.</exception>
    let write (root: string) (options: SimulationOptions) : unit =
        if options.Subjects < 1 then invalidArg (nameof options) "at least one subject"
        if options.Scans < 10 then invalidArg (nameof options) "at least 10 scans"
        if min options.Shape.X (min options.Shape.Y options.Shape.Z) < 8 then invalidArg (nameof options) "at least 8 voxels per axis"
        if not (options.TR > 0.0) then invalidArg (nameof options) "TR must be positive"
        writeDatasetFiles root options

        for n in 1 .. options.Subjects do
            writeSubject root options n

/// <summary>Agreement of a detection with a ground truth, voxel by voxel.</summary>
type Recovery =
    {
        /// Voxels detected and truly active (hits).
        Hits: int
        /// Voxels detected but not active.
        FalsePositives: int
        /// Active voxels not detected.
        Misses: int
        /// Sørensen–Dice coefficient 2·hits / (detected + active); 1 when both are empty.
        Dice: float
    }

/// <summary>Scoring a thresholded map against a simulation's ground truth.</summary>
module Recovery =
    /// <summary>Counts hits, false positives and misses of <c>detected</c> against <c>truth</c> (both Fortran order).</summary>
    /// <exception cref="System.ArgumentException">The arrays differ in length.</exception>
    let score (truth: bool[]) (detected: bool[]) : Recovery =
        if truth.Length <> detected.Length then
            invalidArg (nameof detected) $"has {detected.Length} voxels, the truth {truth.Length}"

        let mutable hits, fp, misses = 0, 0, 0

        for v in 0 .. truth.Length - 1 do
            match truth[v], detected[v] with
            | true, true -> hits <- hits + 1
            | false, true -> fp <- fp + 1
            | true, false -> misses <- misses + 1
            | false, false -> ()

        let denominator = 2 * hits + fp + misses

        { Hits = hits
          FalsePositives = fp
          Misses = misses
          Dice = if denominator = 0 then 1.0 else 2.0 * float hits / float denominator }
