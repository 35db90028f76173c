/// <summary>Table files: BIDS events.tsv, confounds TSV (fMRIPrep style), second-level covariates and design-matrix
/// TSV. Errors name the file, line (the header is line 1), column and value.</summary>
module FmriGlm.Core.Tables

open System
open System.Globalization
open System.IO
open System.Text
open Sylvan.Data.Csv

/// <summary>What nilearn's check_events only warns about when reading events.</summary>
type TableWarning =
    /// <summary>The table has no trial_type column: every event belongs to the condition "dummy".</summary>
    | MissingTrialType
    /// <summary>Columns other than onset, duration, trial_type and modulation are ignored.</summary>
    | UnexpectedColumns of names: string list

/// <summary>A table warning in words.</summary>
let describe (warning: TableWarning) : string =
    match warning with
    | MissingTrialType -> "'trial_type' column not found in the given events data: every event is in condition 'dummy'."
    | UnexpectedColumns names -> $"""Unexpected columns ignored: {String.Join(", ", names)}"""

/// The longest cell the reader accepts (the reader's buffer grows up to this): 16 MiB of text in one cell.
let private maxCellChars = 1 <<< 24

/// A table read as text: header and rows of cells. The file must be a non-empty regular file of strict UTF-8;
/// a row with more cells than the header is an error (pandas raises too), one with fewer is padded with empty cells.
let private readCells (path: string) : string[] * string[][] =
    let options =
        CsvDataReaderOptions(Delimiter = '\t', HasHeaders = true, MaxBufferSize = maxCellChars)

    try
        use text = Files.openUtf8 path
        use reader = CsvDataReader.Create(text, options)
        let header = Array.init reader.FieldCount (fun i -> reader.GetName i)

        if header |> Array.forall String.IsNullOrWhiteSpace then
            raise (GlmInputException(path, "the header row (line 1) is empty: a table needs column names"))

        let rows = ResizeArray()
        let mutable line = 1

        while reader.Read() do
            line <- line + 1

            if reader.RowFieldCount > header.Length then
                let extra = [ for i in header.Length .. reader.RowFieldCount - 1 -> reader.GetString i ]

                if extra |> List.exists (String.IsNullOrWhiteSpace >> not) then
                    raise (
                        GlmInputException(
                            $"{path}, line {line}",
                            $"{reader.RowFieldCount} cells but the header has {header.Length} columns"
                        )
                    )

            let cells =
                Array.init header.Length (fun i -> if i < reader.RowFieldCount then reader.GetString i else "")

            if not (cells |> Array.forall String.IsNullOrWhiteSpace) then
                rows.Add cells

        header, rows.ToArray()
    with
    | :? DecoderFallbackException as e ->
        raise (GlmInputException(path, $"is not UTF-8 text ({e.Message})"))
    | :? CsvMissingHeadersException -> raise (GlmInputException(path, "has no header row"))
    | :? CsvRecordTooLargeException ->
        raise (GlmInputException(path, $"a row is longer than {maxCellChars} characters"))
    | :? CsvFormatException as e ->
        raise (GlmInputException($"{path}, line {e.RowNumber}", $"malformed quoting: {e.Message}"))

/// A BIDS number cell: "n/a" or empty is NaN; "nan"/"inf" as numpy prints them.
let private tryNumber (cell: string) : float option =
    match cell.Trim() with
    | ""
    | "n/a"
    | "nan"
    | "NaN" -> Some nan
    | "inf"
    | "Infinity" -> Some infinity
    | "-inf"
    | "-Infinity" -> Some -infinity
    | s ->
        match Double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture) with
        | true, v -> Some v
        | _ -> None

let private at (path: string) (row: int) (column: string) =
    $"{path}, line {row + 2}, column '{column}'"

let private numberAt path row column (cell: string) =
    match tryNumber cell with
    | Some v -> v
    | None -> raise (GlmInputException(at path row column, $"'{cell}' is not a number"))

/// <summary>Reads a BIDS events.tsv (tab separated; onset and duration required; trial_type and modulation
/// optional; "n/a" cells) into events, with nilearn's checks.</summary>
/// <exception cref="T:FmriGlm.Core.GlmInputException">Missing onset/duration column, a non-numeric or missing onset,
/// a missing or negative duration, a non-numeric modulation or a missing trial_type.</exception>
let readEvents (path: string) : Events * TableWarning list =
    let header, rows = readCells path
    let index name = Array.tryFindIndex ((=) name) header

    let required name =
        match index name with
        | Some j -> j
        | None -> raise (GlmInputException(path, $"""no '{name}' column (columns: {String.Join(", ", header)})"""))

    let onsetJ, durationJ = required "onset", required "duration"

    let onsets =
        rows
        |> Array.mapi (fun r cells ->
            let v = numberAt path r "onset" cells[onsetJ]

            if not (Double.IsFinite v) then
                raise (GlmInputException(at path r "onset", $"onset must be a finite number, got '{cells[onsetJ]}'"))

            v)

    let durations =
        rows
        |> Array.mapi (fun r cells ->
            let v = numberAt path r "duration" cells[durationJ]

            if Double.IsNaN v then
                raise (GlmInputException(at path r "duration", $"duration is missing ('{cells[durationJ]}')"))

            if v < 0.0 then
                raise (GlmInputException(at path r "duration", $"negative duration {cells[durationJ]}"))

            if Double.IsInfinity v then
                raise (GlmInputException(at path r "duration", $"duration must be a finite number, got '{cells[durationJ]}'"))

            v)

    let trialTypes, warnings =
        match index "trial_type" with
        | Some j ->
            rows
            |> Array.mapi (fun r cells ->
                let t = cells[j].Trim()

                if t = "" || t = "n/a" then
                    raise (GlmInputException(at path r "trial_type", $"trial_type is missing ('{cells[j]}')"))

                t),
            []
        | None -> Array.create rows.Length "dummy", [ MissingTrialType ]

    let modulations =
        match index "modulation" with
        | Some j ->
            rows
            |> Array.mapi (fun r cells ->
                let v = numberAt path r "modulation" cells[j]

                if Double.IsNaN v then
                    raise (GlmInputException(at path r "modulation", $"modulation is missing ('{cells[j]}')"))

                v)
        | None -> Array.create rows.Length 1.0

    let unexpected =
        header
        |> Array.filter (fun h -> not (List.contains h [ "onset"; "duration"; "trial_type"; "modulation" ]))
        |> List.ofArray

    { Onsets = onsets
      Durations = durations
      TrialTypes = trialTypes
      Modulations = modulations },
    warnings
    @ (if unexpected.IsEmpty then
           []
       else
           [ UnexpectedColumns unexpected ])

/// A regression column whose sum of squares overflows (a 1e300 cell) breaks every decomposition of the design
/// (the SVD does not converge): refused here, naming the cell, rather than failing deep in the fit.
let private requireModestValues (path: string) (names: string[]) (values: float[,]) =
    for k in 0 .. names.Length - 1 do
        let mutable sum = 0.0
        let mutable worst = 0

        for r in 0 .. Array2D.length1 values - 1 do
            let v = values[r, k]

            if Double.IsFinite v then
                sum <- sum + v * v

                if abs v > abs values[worst, k] || not (Double.IsFinite values[worst, k]) then
                    worst <- r

        if Double.IsInfinity sum then
            raise (
                GlmInputException(
                    at path worst names[k],
                    $"{values[worst, k]} is too large: the column's sum of squares overflows, so no regression can use it (rescale the column)"
                )
            )

/// <summary>Reads numeric columns of a confounds TSV (fMRIPrep style; "n/a" cells become NaN), all of them or
/// those named, in the order given.</summary>
/// <returns>Column names and values, rows × columns.</returns>
/// <exception cref="T:FmriGlm.Core.GlmInputException">An unknown column name or a non-numeric cell.</exception>
let readConfounds (path: string) (columns: string[] option) : string[] * float[,] =
    let header, rows = readCells path
    let names = columns |> Option.defaultValue header

    let js =
        names
        |> Array.map (fun name ->
            match Array.tryFindIndex ((=) name) header with
            | Some j -> j
            | None -> raise (GlmInputException(path, $"""no '{name}' column (columns: {String.Join(", ", header)})""")))

    let values = Array2D.init rows.Length js.Length (fun r k -> numberAt path r names[k] (rows[r][js[k]]))
    requireModestValues path names values
    names, values

/// <summary>Fails, naming the file, line and column, on the first cell that is not a finite number ("n/a" in
/// fMRIPrep's first row of derivative columns) or whose column's sum of squares overflows: a GLM cannot use it.
/// For confounds, design matrices and second-level designs read from a file.</summary>
/// <exception cref="T:FmriGlm.Core.GlmInputException">A NaN, infinite or overflowing cell.</exception>
let requireRegressors (path: string) (names: string[], values: float[,]) : unit =
    requireModestValues path names values

    for r in 0 .. Array2D.length1 values - 1 do
        for c in 0 .. names.Length - 1 do
            if not (Double.IsFinite values[r, c]) then
                raise (
                    GlmInputException(
                        at path r names[c],
                        $"value {values[r, c]}: a GLM needs finite numbers (fill n/a first, e.g. with 0 for derivative columns)"
                    )
                )

/// <summary>Reads second-level covariates: a <c>subject_label</c> column plus numeric covariate columns.</summary>
/// <exception cref="T:FmriGlm.Core.GlmInputException">No subject_label column or a non-numeric covariate.</exception>
let readSubjectCovariates (path: string) : SubjectCovariates =
    let header, rows = readCells path

    let labelJ =
        match Array.tryFindIndex ((=) "subject_label") header with
        | Some j -> j
        | None -> raise (GlmInputException(path, "no 'subject_label' column"))

    let covariates = header |> Array.indexed |> Array.filter (fun (j, _) -> j <> labelJ)

    { SubjectLabels = rows |> Array.map (fun r -> r[labelJ].Trim())
      Names = covariates |> Array.map snd
      Columns =
        covariates
        |> Array.map (fun (j, name) -> rows |> Array.mapi (fun r cells -> numberAt path r name cells[j])) }

let private format (v: float) =
    if Double.IsNaN v then "nan"
    elif Double.IsPositiveInfinity v then "inf"
    elif Double.IsNegativeInfinity v then "-inf"
    else v.ToString("R", CultureInfo.InvariantCulture)

/// <summary>A design as TSV text: a header of column names, one row per scan, round-trip ("R") numbers in the
/// invariant culture, nan/inf/-inf as numpy prints them, "\n" line ends.</summary>
let designToTsv (design: DesignMatrix) : string =
    let sb = StringBuilder()
    sb.Append(String.Join('\t', design.ColumnNames)).Append('\n') |> ignore

    for i in 0 .. Array2D.length1 design.Values - 1 do
        for j in 0 .. Array2D.length2 design.Values - 1 do
            if j > 0 then
                sb.Append('\t') |> ignore

            sb.Append(format design.Values[i, j]) |> ignore

        sb.Append('\n') |> ignore

    sb.ToString()

/// <summary>Writes a design TSV atomically: a temporary file in the same folder, then a rename over the target.</summary>
let writeDesign (path: string) (design: DesignMatrix) : unit =
    let full = Path.GetFullPath path

    Files.writeTextAtomic full (designToTsv design)

/// <summary>Reads a design TSV written by <see cref="writeDesign"/> or by nilearn (header of column names,
/// numeric cells).</summary>
/// <exception cref="T:FmriGlm.Core.GlmInputException">A non-numeric cell.</exception>
let readDesign (path: string) : DesignMatrix =
    let header, rows = readCells path

    { ColumnNames = header
      Values = Array2D.init rows.Length header.Length (fun r j -> numberAt path r header[j] (rows[r][j])) }
