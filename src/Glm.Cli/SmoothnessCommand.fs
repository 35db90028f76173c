/// `fmriglm smoothness`: the smoothness of a model's residuals in a mask (SPM's FWHM estimate, resels, and nipy's
/// LKC estimate from the unit-norm residuals), and the residual reading `fmriglm threshold --height-control fwe` shares.
module FmriGlm.Cli.SmoothnessCommand

open System.Globalization
open Argu
open FmriGlm.Core
open FmriGlm.Plotting

/// Arguments of `fmriglm smoothness`.
type SmoothnessArgs =
    | [<Mandatory; Unique>] Residuals of path: string
    | [<Mandatory; Unique>] Mask of path: string
    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Residuals _ -> "4D residuals of a fitted model (e.g. first-level --keep-diagnostics' *_stat-errorts_timeseries.nii.gz)."
            | Mask _ -> "mask (NIfTI on the residuals' grid): the search region."

/// A 4D residual image: grid, voxel sizes (mm) and one Fortran-order array per volume.
type ResidualImage = { Path: string; Shape: GridShape; Zooms: float[]; Volumes: float[][] }

/// Reads 4D residuals; at least 2 volumes.
let readResiduals (path: string) : ResidualImage =
    let img = Nifti.read path
    let s = img.Header.Shape
    if s.Length <> 4 || s[3] < 2L then
        raise (GlmInputException(path, $"is not a 4D image of at least 2 residual volumes (shape {System.String.Join('×', s)})"))
    let shape = { X = int s[0]; Y = int s[1]; Z = int s[2] }
    let n = shape.Count
    { Path = path
      Shape = shape
      Zooms = img.Header.Zooms |> Array.truncate 3
      Volumes = Array.init (int s[3]) (fun t -> img.Data[t * n .. (t + 1) * n - 1]) }

/// Reads a mask on the residuals' grid: non-zero voxels are in.
let readMaskFor (residuals: ResidualImage) (path: string) : bool[] =
    let mask = StatImage.read path
    if mask.Shape <> residuals.Shape then
        raise (GlmInputException(path, $"has grid {mask.Shape.X}×{mask.Shape.Y}×{mask.Shape.Z}, the residuals {residuals.Path} have {residuals.Shape.X}×{residuals.Shape.Y}×{residuals.Shape.Z}"))
    mask.Values |> Array.map (fun x -> x <> 0.0)

/// The voxels where some residual is non-zero: the model's mask when residuals are written as 0 outside it.
let residualSupport (residuals: ResidualImage) : bool[] =
    Array.init residuals.Shape.Count (fun v -> residuals.Volumes |> Array.exists (fun r -> r[v] <> 0.0))

let private line (name: string) (values: float[]) =
    let text = values |> Array.map (fun v -> v.ToString("R", CultureInfo.InvariantCulture))
    printfn "%s\t%s" name (System.String.Join('\t', text))

/// Runs the command: prints FWHM (voxels, mm), resels and LKCs; exit code 0.
let run (results: ParseResults<SmoothnessArgs>) : int =
    let residuals = readResiduals (results.GetResult Residuals)
    let mask = readMaskFor residuals (results.GetResult Mask)
    let s = RandomFieldTheory.estimateSmoothness residuals.Shape residuals.Zooms mask residuals.Volumes
    line "fwhm_voxels" s.FwhmVoxels
    line "fwhm_mm" s.FwhmMm
    line "resels" s.Resels
    line "lkcs" s.Lkcs
    line "lkcs_residuals" (RandomFieldTheory.residualLkcs residuals.Shape mask residuals.Volumes)
    0
