/// `fmriglm info FILE [--json]`: what a NIfTI file holds, from its header and one streamed pass over its values.
module FmriGlm.Cli.InfoCommand

open System
open System.Globalization
open System.IO
open System.Text.Json
open Argu
open FmriGlm.Core

/// Arguments of `fmriglm info`.
type InfoArgs =
    | [<MainCommand; Mandatory; Unique>] File of path: string
    | [<Unique>] Json

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | File _ -> "a .nii or .nii.gz file (NIfTI-1 or NIfTI-2)."
            | Json -> "print machine-readable JSON instead of text."

let private g (x: float) =
    x.ToString("G9", CultureInfo.InvariantCulture)

/// The datatype's numpy-style name (float32, int16, ...).
let datatypeName (h: NiftiHeader) = (string h.Datatype).ToLowerInvariant()

/// Which transform nibabel's best affine comes from.
let affineSource (h: NiftiHeader) =
    if h.SformCode >= 1 && h.SformCode <= 5 then
        $"sform (code {h.SformCode})"
    elif h.QformCode >= 1 && h.QformCode <= 5 then
        $"qform (code {h.QformCode})"
    else
        "base affine (no sform or qform code)"

/// Human-readable summary lines of a header and value range.
let summary (path: string) (h: NiftiHeader) (range: (float * float) option) : string list =
    let gzip = path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase)
    let endian = if h.BigEndian then "big-endian" else "little-endian"
    let zooms = h.Zooms |> Array.truncate 3 |> Array.map g |> String.concat " x "

    [ yield $"file      {path}"
      yield $"""format    NIfTI-{h.Version}, {endian}{if gzip then ", gzip" else ""}"""
      yield $"""shape     {h.Shape |> Array.map string |> String.concat " x "}"""
      yield $"datatype  {datatypeName h} (code {h.DatatypeCode}, {h.Bitpix} bits)"
      yield $"voxel     {zooms} {h.SpatialUnit}"
      match h.TR with
      | Some tr -> yield $"TR        {g tr} s (pixdim[4] = {g h.Pixdim[4]}, time unit {h.TimeUnit})"
      | None -> yield "TR        none (3D image)"
      match h.Scaling with
      | Some(slope, inter) when slope <> 1.0 || inter <> 0.0 -> yield $"scaling   value = raw * {g slope} + {g inter}"
      | _ -> ()
      yield $"affine    {affineSource h}"
      let a = h.Affine

      for i in 0..3 do
          yield
              "          ["
              + String.Join(" ", [| for j in 0..3 -> (g a[i, j]).PadLeft(12) |])
              + " ]"

      match range with
      | Some(lo, hi) -> yield $"range     {g lo} .. {g hi} (finite values)"
      | None -> yield "range     no finite value"

      if h.Descrip <> "" then
          yield $"descrip   {h.Descrip}" ]

let private writeJson (path: string) (h: NiftiHeader) (range: (float * float) option) =
    use stream = Console.OpenStandardOutput()
    use w = new Utf8JsonWriter(stream, JsonWriterOptions(Indented = true))

    let number (name: string) (x: float) =
        if Double.IsFinite x then
            w.WriteNumber(name, x)
        else
            w.WriteString(name, g x)

    w.WriteStartObject()
    w.WriteString("file", path)
    w.WriteNumber("nifti_version", h.Version)
    w.WriteString("endianness", (if h.BigEndian then "big" else "little"))
    w.WriteStartArray "shape"

    for d in h.Shape do
        w.WriteNumberValue d

    w.WriteEndArray()
    w.WriteString("datatype", datatypeName h)
    w.WriteNumber("datatype_code", h.DatatypeCode)
    w.WriteStartArray "zooms"

    for z in h.Zooms do
        w.WriteNumberValue z

    w.WriteEndArray()
    w.WriteString("spatial_unit", h.SpatialUnit)
    w.WriteString("time_unit", h.TimeUnit)

    match h.TR with
    | Some tr -> number "tr_seconds" tr
    | None -> w.WriteNull "tr_seconds"

    match h.Scaling with
    | Some(slope, inter) ->
        number "scl_slope" slope
        number "scl_inter" inter
    | None ->
        w.WriteNull "scl_slope"
        w.WriteNull "scl_inter"

    w.WriteString("affine_source", affineSource h)
    w.WriteStartArray "affine"

    for i in 0..3 do
        w.WriteStartArray()

        for j in 0..3 do
            w.WriteNumberValue h.Affine[i, j]

        w.WriteEndArray()

    w.WriteEndArray()
    w.WriteNumber("qform_code", h.QformCode)
    w.WriteNumber("sform_code", h.SformCode)

    match range with
    | Some(lo, hi) ->
        w.WriteNumber("min", lo)
        w.WriteNumber("max", hi)
    | None ->
        w.WriteNull "min"
        w.WriteNull "max"

    w.WriteString("descrip", h.Descrip)
    w.WriteNumber("intent_code", h.IntentCode)
    number "cal_min" h.CalMin
    number "cal_max" h.CalMax
    w.WriteEndObject()
    w.Flush()
    stream.WriteByte(byte '\n')

/// Runs `fmriglm info`; 0 on success (GlmInputException goes up to Program, exit code 1).
let run (args: ParseResults<InfoArgs>) =
    let path = args.GetResult File
    let header = Nifti.readHeader path
    let range = Nifti.valueRange path

    if args.Contains Json then
        writeJson path header range
    else
        summary path header range |> List.iter (printfn "%s")

    0
