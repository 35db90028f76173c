namespace FmriGlm.Core

open System
open System.Runtime.Intrinsics
open System.Threading.Tasks
open FmriGlm.Core.RegressionKernels
open FmriGlm.Core.ChunkedFit
open FmriGlm.Core.ArClustering

/// <summary>Fitting the GLM Y = Xβ + ε at every voxel, as nilearn's <c>run_glm</c>.</summary>
module Regression =

    /// <summary>nilearn's spelling of a noise model ("ols", "ar1", "ar2", …); the extras that nilearn lacks are
    /// "ar1-exact", "ar1-corrected" and "nipy-ar1".</summary>
    let noiseModelName (model: NoiseModel) : string =
        match model with
        | Ols -> "ols"
        | Ar p -> $"ar{p}"
        | Ar1Exact -> "ar1-exact"
        | Ar1BiasCorrected -> "ar1-corrected"
        | NipyAr1 -> "nipy-ar1"

    /// <summary>Parses a noise model as <c>noiseModelName</c> spells it (its inverse): nilearn's "ols", "ar1", "ar2", …
    /// (case-insensitive, surrounding blanks ignored) and the extras "ar1-exact", "ar1-corrected", "nipy-ar1".</summary>
    /// <returns>The model, or an error naming what is accepted.</returns>
    let parseNoiseModel (text: string) : Result<NoiseModel, string> =
        let t = if isNull text then "" else text.Trim().ToLowerInvariant()

        match t with
        | "ols" -> Ok Ols
        | "ar1-exact" -> Ok Ar1Exact
        | "ar1-corrected" -> Ok Ar1BiasCorrected
        | "nipy-ar1" -> Ok NipyAr1
        | _ when t.StartsWith "ar" && t.Length > 2 && t.Length < 6 && Seq.forall Char.IsDigit t[2..] && int t[2..] >= 1 ->
            Ok(Ar(int t[2..]))
        | _ -> Error $"'{text}' is not a noise model: use ols, ar1, ar2, …, ar1-exact, ar1-corrected or nipy-ar1"

    let private dataLength (data: VoxelData) =
        match data with
        | Float64 a -> a.Length
        | Float32 a -> a.Length

    /// Validates shapes; voxel data must hold scans × voxels values.
    let private checkShapes (design: float[,]) (data: VoxelData) =
        let n = Array2D.length1 design
        let length = dataLength data

        if n = 0 || Array2D.length2 design = 0 then
            invalidArg (nameof design) "the design has no rows or no columns"

        if length % n <> 0 then
            invalidArg (nameof data) $"{length} values are not a whole number of {n}-scan voxel series"

        length / n

    /// The fit of the first `voxels` series of data (the rest of the array is ignored), voxel-major (as fit) or
    /// time-major (scan t's values of the voxels at t·voxels): FirstLevel reads a run volume by volume into a
    /// time-major store sized for the candidate voxels and compacts the masked ones to its front.
    let internal fitPrefix
        (options: GlmOptions)
        (design: float[,])
        (data: VoxelData)
        (timeMajor: bool)
        (voxels: int)
        : GlmFit =
        let n, p = Array2D.length1 design, Array2D.length2 design
        let copy = copyChunk data timeMajor voxels n
        let length = dataLength data

        if voxels < 0 || int64 voxels * int64 n > int64 length then
            invalidArg (nameof voxels) $"{voxels} voxels of {n} scans need more than the {length} values given"

        if options.Bins < 1 then
            invalidArg (nameof options) $"bins must be at least 1, not {options.Bins}"

        let order =
            match options.NoiseModel with
            | Ols -> 0
            | Ar o when o >= 1 -> o
            | Ar o -> invalidArg (nameof options) $"the AR order must be at least 1, not {o}"
            | Ar1Exact
            | NipyAr1
            | Ar1BiasCorrected -> 1

        if order > 0 && n <= order then
            invalidArg (nameof design) $"{n} scans are too few for an AR({order}) model"

        let mutable sumAbs = 0.0

        for t in 0 .. n - 1 do
            for j in 0 .. p - 1 do
                sumAbs <- sumAbs + abs design[t, j]

        let dfModel = Numerics.matrixRank (sumAbs * Numerics.eps) design
        let dfResiduals = float (n - dfModel)

        if options.ScaleFirstScan && order > 1 then
            invalidArg (nameof options) "ScaleFirstScan applies to AR(1) models only"

        let prepare = prepare options.ScaleFirstScan
        let ols = prepare design [||]
        let betas = Array.zeroCreate (p * voxels)
        let dispersion = Array.zeroCreate voxels
        let sse = Array.zeroCreate voxels
        let logL = Array.zeroCreate voxels

        let diagnostics =
            if options.KeepDiagnostics then
                Some
                    { Residuals = Array.zeroCreate (n * voxels)
                      Predicted = Array.zeroCreate (n * voxels)
                      WhitenedResiduals = Array.zeroCreate (n * voxels)
                      RSquare = Array.zeroCreate voxels }
            else
                None

        // Stores the fit of the voxels order[start .. start + count − 1] (one per lane).
        let record (order: int[]) (start: int) (count: int) (work: GroupWork) =
            let bs = lanes work.B
            let ys = lanes work.Y
            let ws = lanes work.W
            let rs = lanes work.R

            for k in 0 .. count - 1 do
                let v = order[start + k]

                for j in 0 .. p - 1 do
                    betas[v * p + j] <- bs[j * Lanes + k]

                let mutable s = 0.0

                for t in 0 .. n - 1 do
                    let e = rs[t * Lanes + k]
                    s <- s + e * e

                sse[v] <- s
                // nilearn divides by n − n_columns here, although df_residuals uses the rank.
                dispersion[v] <- s / float (n - p)
                logL[v] <- -0.5 * float n * (Math.Log(2.0 * Math.PI * s / float n) + 1.0)

                match diagnostics with
                | Some d ->
                    let mutable meanP = 0.0
                    let mutable meanW = 0.0

                    for t in 0 .. n - 1 do
                        let wt = ws[t * Lanes + k]
                        let pred = wt - rs[t * Lanes + k]
                        d.Predicted[v * n + t] <- pred
                        d.Residuals[v * n + t] <- ys[t * Lanes + k] - pred
                        d.WhitenedResiduals[v * n + t] <- rs[t * Lanes + k]
                        meanP <- meanP + pred
                        meanW <- meanW + wt

                    meanP <- meanP / float n
                    meanW <- meanW / float n
                    let mutable varP = 0.0
                    let mutable varW = 0.0

                    for t in 0 .. n - 1 do
                        varP <- varP + (d.Predicted[v * n + t] - meanP) ** 2.0
                        varW <- varW + (ws[t * Lanes + k] - meanW) ** 2.0

                    d.RSquare[v] <- varP / varW
                | None -> ()

        let result labels models arCoefficients =
            { Scans = n
              Voxels = voxels
              Regressors = p
              Labels = labels
              Models = models
              Betas = betas
              Dispersion = dispersion
              Sse = sse
              LogLikelihood = logL
              ArCoefficients = arCoefficients
              DfTotal = n
              DfModel = dfModel
              DfResiduals = dfResiduals
              Diagnostics = diagnostics }

        if order = 0 then
            forEachGroup options copy voxels n p (fun _ -> 0) (fun _ -> ols) record

            result
                (Array.zeroCreate voxels)
                [| { Label = "0.0"
                     Rho = [||]
                     NormalizedCovariance = ols.Covariance } |]
                [||]
        else
            // Pass 1: OLS residuals reduced to lag sums per voxel (no residual array is kept).
            let width = 1 + 3 * (order + 1)
            let sums = Array.zeroCreate (width * voxels)

            forEachGroup options copy voxels n p (fun _ -> 0) (fun _ -> ols) (fun voxelOrder start count work ->
                let dest = Array.zeroCreate<Vector256<float>> width
                lagSums order work.R dest
                let ds = lanes dest

                for k in 0 .. count - 1 do
                    let v = voxelOrder[start + k]

                    for i in 0 .. width - 1 do
                        sums[v * width + i] <- ds[i * Lanes + k])

            let raw = arCoefficients options.NoiseModel order design voxels sums
            // Per voxel: the coefficients used and the label.
            let used, labelText =
                voxelLabels options.NoiseModel options.Bins options.RandomState order voxels raw

            let distinct =
                labelText
                |> Array.distinct
                |> Array.sortWith (fun a b -> String.CompareOrdinal(a, b))

            let index = distinct |> Array.mapi (fun i l -> l, i) |> dict
            let labels = labelText |> Array.map (fun l -> index[l])
            // nilearn fits each label with the coefficients of the first voxel carrying it.
            let firstVoxel = Array.create distinct.Length -1

            for v in voxels - 1 .. -1 .. 0 do
                firstVoxel[labels[v]] <- v

            let rhoOf l =
                Array.sub used (firstVoxel[l] * order) order

            let covariances = Array.zeroCreate distinct.Length

            let modelOf =
                match options.NoiseModel with
                | Ar1Exact ->
                    // One filter per voxel: prepared where the voxel is fitted and dropped after it; only the
                    // regressors × regressors covariance is kept (each label slot is written by its own voxels).
                    fun v ->
                        let m = prepare design (rhoOf labels[v])
                        covariances[labels[v]] <- m.Covariance
                        m
                | _ ->
                    // one pseudo-inverse per label, labels on parallel threads (each writes its own slot)
                    let prepared = Array.zeroCreate distinct.Length

                    Parallel.For(
                        0,
                        distinct.Length,
                        ParallelOptions(MaxDegreeOfParallelism = max 1 options.Threads),
                        fun l -> prepared[l] <- prepare design (rhoOf l)
                    )
                    |> ignore

                    prepared |> Array.iteri (fun l m -> covariances[l] <- m.Covariance)
                    fun v -> prepared[labels[v]]

            // groups of up to four voxels under the same model (one voxel per group for ar1-exact)
            let key =
                match options.NoiseModel with
                | Ar1Exact -> id
                | _ -> fun v -> labels[v]

            forEachGroup options copy voxels n p key modelOf record

            let models =
                Array.init distinct.Length (fun l ->
                    { Label = distinct[l]
                      Rho = rhoOf l
                      NormalizedCovariance = covariances[l] })

            result labels models raw

    /// <summary>Fits the GLM at every voxel as nilearn's <c>run_glm(Y, X, noise_model, bins, random_state)</c>.</summary>
    /// <param name="options">Noise model, bins, seed, chunking and threads (<see cref="GlmOptions.defaults"/>).</param>
    /// <param name="design">X, scans × regressors.</param>
    /// <param name="data">Y, scans × voxels column-major, float64 or float32.</param>
    /// <returns>Labels, one model per label, betas, dispersion and degrees of freedom per voxel.</returns>
    /// <exception cref="System.ArgumentException">Shapes disagree, or the AR order or bins is below 1.</exception>
    let fit (options: GlmOptions) (design: float[,]) (data: VoxelData) : GlmFit =
        fitPrefix options design data false (checkShapes design data)
