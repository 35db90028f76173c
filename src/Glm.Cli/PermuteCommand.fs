/// `fmriglm permute`: nilearn's non_parametric_inference (sign flipping / permutations, max-t, clusters, TFCE).
module FmriGlm.Cli.PermuteCommand

open System
open System.IO
open Argu
open FmriGlm.Core

/// Arguments of `fmriglm permute`; names and defaults are nilearn's.
type PermuteArgs =
    | [<Mandatory>] Maps of paths: string list
    | [<Unique>] Design of path: string
    | [<Unique>] Confounds of path: string
    | Subject_Labels of labels: string list
    | [<Unique>] Contrast of expression: string
    | [<Unique>] Mask of path: string
    | [<Unique>] Smoothing_Fwhm of mm: float
    | [<Unique>] N_Perm of count: int
    | [<Unique>] Two_Sided
    | [<Unique>] Threshold of p: float
    | [<Unique>] Tfce
    | [<Unique>] No_Model_Intercept
    | [<Unique>] Seed of seed: int
    | [<Unique>] Threads of count: int
    | [<Mandatory; Unique>] Out of dir: string
    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Maps _ -> "subject maps (3D NIfTI), one per design row, in row order."
            | Confounds _ -> "subject_label + covariate columns (e.g. participants.tsv): design built as nilearn's make_second_level_design_matrix."
            | Subject_Labels _ -> "subject label of each map, in order (default: each file name up to its first '_')."
            | Design _ -> "design matrix TSV; default: one 'intercept' column (one-sample sign flipping)."
            | Contrast _ -> "tested column or expression (default: the only column)."
            | Mask _ -> "mask (NIfTI on the maps' grid); default: nilearn's background mask of the mean map."
            | Smoothing_Fwhm _ -> "Gaussian smoothing FWHM in mm before masking (default none)."
            | N_Perm _ -> "number of permutations / sign flips (default 10000)."
            | Two_Sided -> "test |t| (default one-sided, positive effects)."
            | Threshold _ -> "cluster-forming threshold as a p value, e.g. 0.001: adds cluster-size and cluster-mass FWE."
            | Tfce -> "threshold-free cluster enhancement and its FWE p values (slow on large grids)."
            | No_Model_Intercept -> "do not add an intercept confound (nilearn model_intercept=False)."
            | Seed _ -> "random seed (default 0); results do not depend on --threads."
            | Threads _ -> "threads (default: every core)."
            | Out _ -> "folder receiving t, logp_max_t and, when asked, size, logp_max_size, mass, logp_max_mass, tfce, logp_max_tfce (.nii.gz)."

/// Runs the command: exit code 0 when the maps are written.
let run (results: ParseResults<PermuteArgs>) : int =
    let nPerm = results.TryPostProcessResult(N_Perm, fun n -> if n >= 0 then n else failwith $"must be ≥ 0, got {n}") |> Option.defaultValue 10000

    let threshold =
        results.TryPostProcessResult(Threshold, fun p -> if p > 0.0 && p < 1.0 then p else failwith $"must be a p value in (0, 1), got {p}")

    let options =
        { PermutationOptions.defaults with
            NPerm = nPerm
            TwoSidedTest = results.Contains Two_Sided
            ModelIntercept = not (results.Contains No_Model_Intercept)
            Threshold = threshold
            Tfce = results.Contains Tfce
            RandomState = results.GetResult(Seed, 0)
            Threads = max 1 (results.GetResult(Threads, Environment.ProcessorCount)) }

    let input = SecondLevelCommand.readInput (results.GetResult Maps) (results.TryGetResult Mask) (results.TryGetResult Smoothing_Fwhm)
    let design =
        SecondLevelCommand.readDesign (results.TryGetResult Design) (results.TryGetResult Confounds) (results.TryGetResult Subject_Labels) (results.GetResult Maps)

    let contrast =
        match results.TryGetResult Contrast with
        | Some c -> SecondLevelContrast.Expression c
        | None -> SecondLevelContrast.Default

    let watch = Diagnostics.Stopwatch.StartNew()
    let r = Permutation.nonParametricInference options (Some input.Grid) design contrast (Float32 input.Data)
    let dir = results.GetResult Out
    // every map is written into a temporary folder that is renamed onto --out at the end: a failure (disk full,
    // read-only) leaves nothing half-written
    use folder = Files.OutputFolder.Create dir
    let write name values = SecondLevelImages.write input NiftiDatatype.Float64 (folder.File($"{name}.nii.gz")) values
    write "t" r.T
    write "logp_max_t" r.LogPMaxT

    match r.Clusters with
    | Some c ->
        SecondLevelImages.write input NiftiDatatype.Int32 (folder.File("size.nii.gz")) c.Size
        write "logp_max_size" c.LogPMaxSize
        write "mass" c.Mass
        write "logp_max_mass" c.LogPMaxMass
    | None -> ()

    match r.Tfce with
    | Some t ->
        write "tfce" t.Tfce
        write "logp_max_tfce" t.LogPMaxTfce
    | None -> ()

    for w in input.Warnings @ r.Warnings do
        eprintfn "warning: %s" w

    folder.Commit()

    let scheme = if r.SignFlipping then "sign flips" else "permutations"
    printfn "%d subjects, %d voxels, %d %s in %.1f s; maps written to %s" input.Subjects r.T.Length r.Permutations scheme watch.Elapsed.TotalSeconds dir
    0
