namespace FmriGlm.Core

open System

/// <summary>One run's fit: the design used and the GLM over the masked voxels.</summary>
[<NoEquality; NoComparison>]
type RunFit =
    {
        /// <summary>The design used (rows kept by the sample mask only), nilearn <c>design_matrices_[i]</c>.</summary>
        Design: DesignMatrix
        /// <summary>The GLM over the masked voxels (voxels in Fortran order of the grid).</summary>
        Glm: GlmFit
    }

/// <summary>A fitted first-level model (nilearn's fitted FirstLevelModel).</summary>
[<NoEquality; NoComparison>]
type FirstLevelFit =
    {
        /// <summary>The options of the fit.</summary>
        Options: FirstLevelOptions
        /// <summary>The runs' grid.</summary>
        Shape: GridShape
        /// <summary>The runs' 4×4 affine.</summary>
        Affine: float[,]
        /// <summary>The mask used (nilearn <c>masker_.mask_img_</c>), Fortran order.</summary>
        Mask: bool[]
        /// <summary>Fortran index of each masked voxel, increasing: the voxel order of every GLM.</summary>
        MaskedIndices: int[]
        /// <summary>One fit per run.</summary>
        Runs: RunFit[]
        /// <summary>What nilearn would warn about, in words.</summary>
        Warnings: string list
    }

/// The fit of a first-level model over its runs (nilearn FirstLevelModel.fit).
module internal FirstLevelFitting =

    /// Raises when a sample mask keeps no scan or one outside the run (doc: FirstLevel.checkSampleMask).
    let checkSampleMask (input: string) (scans: int) (kept: int[]) : unit =
        if kept.Length = 0 then
            raise (GlmInputException(input, "the sample mask keeps no scan"))

        match kept |> Array.tryFind (fun i -> i < 0 || i >= scans) with
        | Some i -> raise (GlmInputException(input, $"sample mask index {i} is outside the run's {scans} scans"))
        | None -> ()

    /// The design rows a sample mask keeps (doc: FirstLevel.subsetRows).
    let subsetRows (kept: int[]) (design: DesignMatrix) : DesignMatrix =
        let p = Array2D.length2 design.Values

        { design with
            Values = Array2D.init kept.Length p (fun i j -> design.Values[kept[i], j]) }

    /// nilearn's FirstLevelModel.fit: mask, designs, masked float32 data, scaling and GLM per run (doc: FirstLevel.fit).
    let fit (options: FirstLevelOptions) (runs: RunInput list) : FirstLevelFit =
        if List.isEmpty runs then
            raise (GlmInputException("runs", "no run given"))

        if options.Bins < 1 then
            raise (GlmInputException("bins", $"must be at least 1, not {options.Bins}"))

        if
            options.SmoothingFwhm
            |> Option.exists (fun f -> not (f >= 0.0) || Double.IsInfinity f)
        then
            raise (
                GlmInputException(
                    "smoothing_fwhm",
                    $"must be a non-negative number of mm, not {options.SmoothingFwhm.Value}"
                )
            )

        if not (options.SliceTimeRef >= 0.0 && options.SliceTimeRef <= 1.0) then
            raise (GlmInputException("slice_time_ref", $"must be between 0 and 1, not {options.SliceTimeRef}"))

        let runs = Array.ofList runs
        let geometries = runs |> Array.mapi (fun i r -> RunReading.geometry i r.Bold)
        let shape, affine, _, isSingle = geometries[0]

        geometries
        |> Array.iteri (fun i (s, a, _, _) ->
            if s <> shape then
                raise (
                    GlmInputException(
                        RunReading.describe runs[i].Bold i,
                        $"grid {s.X}×{s.Y}×{s.Z} differs from the first run's {shape.X}×{shape.Y}×{shape.Z}"
                    )
                )

            if not (RunReading.sameAffine a affine) then
                raise (GlmInputException(RunReading.describe runs[i].Bold i, "affine differs from the first run's")))

        // Every table is checked before any data is read; the designs themselves (which need no data) are built on
        // another thread while the first run is read, and their errors raised once it is.
        let recipes =
            runs
            |> Array.mapi (fun i run ->
                let _, _, scans, _ = geometries[i]
                let name = RunReading.describe run.Bold i

                // one volume has no time course: no frame times to sample a design on, no residual to fit
                if scans < 2 then
                    raise (GlmInputException(name, $"{scans} volume: a first-level GLM needs a 4D run of at least 2 volumes"))

                let build: unit -> DesignMatrix * string list =
                    match run.DesignMatrix with
                    | Some d ->
                        if Array2D.length1 d.Values <> scans then
                            raise (
                                GlmInputException(
                                    $"design matrix of run {i + 1}",
                                    $"{Array2D.length1 d.Values} rows for {scans} scans of {name}"
                                )
                            )

                        fun () -> d, []
                    | None ->
                        let tr =
                            match options.TR with
                            | Some tr when tr > 0.0 && Double.IsFinite tr -> tr
                            | Some tr ->
                                raise (GlmInputException("t_r", $"must be a positive number of seconds, not {tr}"))
                            | None ->
                                raise (
                                    GlmInputException(
                                        "t_r",
                                        "not given: it is needed to compute the design from events"
                                    )
                                )

                        let events =
                            match run.Events with
                            | Some e -> e
                            | None ->
                                raise (
                                    GlmInputException(
                                        $"events of run {i + 1}",
                                        "events or a design matrix must be given"
                                    )
                                )

                        let addRegs, addNames =
                            match run.Confounds with
                            | None -> None, None
                            | Some(names, values) ->
                                if Array2D.length1 values <> scans then
                                    raise (
                                        GlmInputException(
                                            $"confounds of run {i + 1}",
                                            $"{Array2D.length1 values} rows for {scans} scans of {name}"
                                        )
                                    )

                                for r in 0 .. Array2D.length1 values - 1 do
                                    for c in 0 .. names.Length - 1 do
                                        if not (Double.IsFinite values[r, c]) then
                                            raise (
                                                GlmInputException(
                                                    $"confounds of run {i + 1}, row {r + 1}, column '{names[c]}'",
                                                    $"value {values[r, c]} (fill n/a before fitting, e.g. with 0 for derivative columns)"
                                                )
                                            )

                                Some values, Some names

                        let frameTimes = DesignMatrix.frameTimes scans tr options.SliceTimeRef

                        fun () ->
                            let d, w =
                                DesignMatrix.makeFirstLevel
                                    frameTimes
                                    (Some events)
                                    { DesignMatrix.defaults with
                                        HrfModel = options.HrfModel
                                        DriftModel = options.DriftModel
                                        AddRegs = addRegs
                                        AddRegNames = addNames
                                        MinOnset = options.MinOnset }

                            d, List.map DesignMatrix.describe w

                let kept =
                    match run.SampleMask with
                    | Some k ->
                        checkSampleMask $"sample mask of run {i + 1}" scans k
                        k
                    | None -> Array.init scans id

                let designOf () =
                    let design, w = build ()
                    let design = if run.SampleMask.IsSome then subsetRows kept design else design
                    let p = design.ColumnNames.Length

                    if kept.Length <= p then
                        raise (GlmInputException(name, $"{kept.Length} scans are too few for {p} design columns"))

                    design, w

                kept, designOf)

        let designs =
            System.Threading.Tasks.Task.Run(fun () -> recipes |> Array.map (fun (_, designOf) -> designOf ()))


        // A computed mask reads the first run once, keeping its series on the way (readOnceForEpiMask).
        let mask, maskWarnings, firstData =
            RunReading.resolveMask options shape affine runs[0].Bold (fst recipes[0]) isSingle

        // a design's error surfaces here, as it was raised (GetResult does not wrap it)
        let prepared = designs.GetAwaiter().GetResult()
        let warnings = ResizeArray<string>(maskWarnings)

        for _, w in prepared do
            warnings.AddRange w

        let masked =
            [| for v in 0 .. mask.Length - 1 do
                   if mask[v] then
                       yield v |]

        if masked.Length = 0 then
            raise (GlmInputException("mask", "the mask is empty: no voxel to analyse"))

        let fits =
            runs
            |> Array.mapi (fun i run ->
                let design, _ = prepared[i]
                let kept = fst recipes[i]
                let name = RunReading.describe run.Bold i

                let data =
                    match firstData with
                    | Some d when i = 0 -> d
                    | _ -> RunReading.loadMasked options shape affine masked kept run.Bold

                // the store of the first run may be longer than the masked series at its front
                let values = ReadOnlySpan(data, 0, masked.Length * kept.Length)

                // NaN and ±∞ make the sum non-finite (so can a huge finite sum: then the search finds nothing)
                let nonFinite =
                    if Single.IsFinite(System.Numerics.Tensors.TensorPrimitives.Sum values) then
                        -1
                    else
                        values.IndexOfAnyExceptInRange(Single.MinValue, Single.MaxValue)

                match (if nonFinite >= 0 then Some nonFinite else None) with
                | Some k ->
                    let v = masked[k % masked.Length]
                    let x, y, z = v % shape.X, (v / shape.X) % shape.Y, v / (shape.X * shape.Y)

                    raise (
                        GlmInputException(
                            name,
                            $"voxel ({x}, {y}, {z}) has a non-finite value at scan {kept[k / masked.Length]}"
                        )
                    )
                | None -> ()

                if RunReading.scaleTimeMajor options.SignalScaling kept.Length masked.Length data then
                    warnings.Add
                        "Mean values of 0 observed. The data have probably been centered. Scaling might not work as expected"

                let glm =
                    Regression.fitPrefix
                        { GlmOptions.defaults with
                            NoiseModel = options.NoiseModel
                            Bins = options.Bins
                            RandomState = options.RandomState
                            Threads = max 1 options.Threads
                            KeepDiagnostics = not options.MinimizeMemory }
                        design.Values
                        (Float32 data)
                        true
                        masked.Length

                { Design = design; Glm = glm })

        { Options = options
          Shape = shape
          Affine = affine
          Mask = mask
          MaskedIndices = masked
          Runs = fits
          Warnings = List.ofSeq warnings }
