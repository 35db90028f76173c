/// Reading a 3D statistic map (and an optional mask on the same grid) for `fmriglm threshold` and `fmriglm clusters`.
module FmriGlm.Plotting.StatImage

open FmriGlm.Core

/// A 3D map read from a NIfTI file: grid, affine, voxel sizes (mm), datatype and values in Fortran order.
type StatMap =
    { Path: string
      Shape: GridShape
      Affine: float[,]
      Zooms: float[]
      Datatype: NiftiDatatype
      Values: float[] }

/// Reads a 3D map (a 4D file with one volume is accepted, as nilearn's check_niimg_3d accepts it).
let read (path: string) : StatMap =
    let img = Nifti.read path
    let s = img.Header.Shape

    if s.Length < 3 || (s.Length > 3 && Array.fold (*) 1L s[3..] <> 1L) then
        raise (GlmInputException(path, $"is not a 3D image (shape {System.String.Join('×', s)})"))

    { Path = path
      Shape = { X = int s[0]; Y = int s[1]; Z = int s[2] }
      Affine = img.Header.Affine
      Zooms = img.Header.Zooms |> Array.truncate 3
      Datatype = img.Header.Datatype
      Values = img.Data }

/// Reads a mask on the grid of `map`: non-zero voxels are in.
let readMask (map: StatMap) (path: string) : bool[] =
    let mask = read path

    if mask.Shape <> map.Shape then
        raise (GlmInputException(path, $"has grid {mask.Shape.X}×{mask.Shape.Y}×{mask.Shape.Z}, the map {map.Path} has {map.Shape.X}×{map.Shape.Y}×{map.Shape.Z}"))

    mask.Values |> Array.map (fun x -> x <> 0.0)

/// Writes a volume on the map's grid and affine, float32 or float64 like the input (float64 otherwise).
let write (map: StatMap) (path: string) (values: float[]) =
    let datatype =
        if map.Datatype = NiftiDatatype.Float32 then NiftiDatatype.Float32 else NiftiDatatype.Float64

    let options =
        { Nifti.writeOptions [| int64 map.Shape.X; int64 map.Shape.Y; int64 map.Shape.Z |] map.Affine with
            Datatype = datatype }

    Nifti.write path options values
