/// The first-level model flags that `first-level` and `beta-series` share (nilearn's FirstLevelModel parameters),
/// parsed and checked in one place so the two commands accept and refuse alike.
module FmriGlm.Cli.ModelFlags

open System
open System.Globalization
open FmriGlm.Core

/// The model flags as given on the command line (None: not given, nilearn's default).
type ModelFlags =
    { Tr: float option
      SliceTimeRef: float option
      Hrf: string option
      FirDelays: string option
      Drift: string option
      HighPass: float option
      DriftOrder: int option
      MinOnset: float option
      Mask: string option
      NoMask: bool
      SmoothingFwhm: float option
      SignalScaling: string option
      NoiseModel: string option
      Bins: int option
      NJobs: int option }

/// The items of a comma-separated option.
let list (text: string) =
    text.Split(',', StringSplitOptions.RemoveEmptyEntries ||| StringSplitOptions.TrimEntries)

/// A whole number of a comma-separated option, or the project's error naming the option and the value.
let integer (option: string) (text: string) =
    match Int32.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture) with
    | true, v -> v
    | _ -> raise (GlmInputException(option, $"'{text}' is not a whole number"))

/// The first-level options of the flags (MinimizeMemory and Standardize left at their defaults).
let options (f: ModelFlags) : FirstLevelOptions =
    let firDelays =
        f.FirDelays
        |> Option.map (list >> Array.map (integer "--fir-delays"))
        |> Option.defaultValue [| 0 |]

    let hrf =
        match Hrf.parse firDelays (defaultArg f.Hrf "glover") with
        | Ok h -> h
        | Error accepted -> raise (GlmInputException("--hrf", $"""use one of {String.Join(", ", accepted)}"""))

    let drift =
        match (defaultArg f.Drift "cosine").ToLowerInvariant() with
        | "cosine" -> Cosine(defaultArg f.HighPass 0.01)
        | "polynomial" -> Polynomial(defaultArg f.DriftOrder 1)
        | "none" -> NoDrift
        | d -> raise (GlmInputException("--drift", $"'{d}': use cosine, polynomial or none"))

    let mask =
        match f.Mask, f.NoMask with
        | Some _, true -> raise (GlmInputException("--mask", "give --mask or --no-mask, not both"))
        | Some m, false -> MaskFile m
        | None, true -> NoMask
        | None, false -> ComputeEpiMask

    let scaling =
        match (defaultArg f.SignalScaling "0").Replace(" ", "").Trim('(', ')').ToLowerInvariant() with
        | "0" -> ScaleVoxelMeans
        | "0,1" -> ScaleGrandMean
        | "false" -> NoScaling
        | s -> raise (GlmInputException("--signal-scaling", $"'{s}': use 0, '0,1' or false (nilearn 0.13.1 fails on 1)"))

    let noise =
        match FirstLevel.parseNoiseModel (defaultArg f.NoiseModel "ar1") with
        | Ok m -> m
        | Error e -> raise (GlmInputException("--noise-model", e))

    { FirstLevel.defaults with
        TR = f.Tr
        SliceTimeRef = defaultArg f.SliceTimeRef 0.0
        HrfModel = hrf
        DriftModel = drift
        MinOnset = defaultArg f.MinOnset -24.0
        Mask = mask
        SmoothingFwhm = f.SmoothingFwhm
        SignalScaling = scaling
        NoiseModel = noise
        Bins = defaultArg f.Bins 100
        Threads = defaultArg f.NJobs Environment.ProcessorCount }

/// `--confound-columns`: the names, or None for every column; an empty list is refused.
let confoundColumns (text: string option) : string[] option =
    match text |> Option.map list with
    | Some [||] ->
        raise (GlmInputException("--confound-columns", "names no column: give column names, comma separated, or leave the option out to use them all"))
    | c -> c

/// A confounds TSV's columns, every cell finite and modest (naming the file, line and column otherwise).
let readConfounds (columns: string[] option) (path: string) : string[] * float[,] =
    let table = Tables.readConfounds path columns
    Tables.requireRegressors path table
    table

/// A `--sample-mask` value: the kept scan indices.
let sampleMask (text: string) : int[] = list text |> Array.map (integer "--sample-mask")
