/// fMRIPrep's files as nilearn's load_confounds finds and reads them: the image-name check, the confounds TSV from
/// the BOLD name, the table (with nilearn's checks for fMRIPrep < 1.2) and the JSON sidecar's CompCor masks.
module internal FmriGlm.Core.ConfoundsFiles

open System
open System.Globalization
open System.IO
open System.Text.Json
open System.Text.RegularExpressions

// ---- finding the files ----------------------------------------------------------------------------------

/// nilearn's check of the image name: the strategy decides which BOLD names it can use.
let checkImageName (boldPath: string) (fullAroma: bool) =
    let name = Path.GetFileName boldPath

    let allowed =
        if fullAroma then
            Some "_desc-smoothAROMAnonaggr_bold",
            "ica_aroma 'full' needs fMRIPrep's desc-smoothAROMAnonaggr_bold image (nilearn: Input must be desc-smoothAROMAnonaggr_bold for full ICA-AROMA strategy)"
        else
            match name.Split('.') |> Array.rev |> Array.truncate 2 |> Array.rev |> String.concat "." with
            | "nii.gz" -> Some "(_space-.*)?_desc-preproc_bold.nii.gz", "a .nii.gz image must be fMRIPrep's *_desc-preproc_bold.nii.gz"
            | "dtseries.nii" -> Some "(_space-.*)?_bold.dtseries.nii", "a .dtseries.nii image must be fMRIPrep's *_bold.dtseries.nii"
            | _ -> None, "unsupported input: load_confounds takes fMRIPrep's *_desc-preproc_bold.nii.gz or *_bold.dtseries.nii"

    match allowed with
    | Some pattern, _ when Regex.IsMatch(name, pattern) -> ()
    | _, problem -> raise (GlmInputException(boldPath, problem))

/// BIDS entities of a file name in the order they appear (nilearn parse_bids_filename).
let private entities (fileName: string) : (string * string) list =
    let stem = (fileName.Split '.')[0]
    let parts = stem.Split '_'

    parts[.. parts.Length - 2]
    |> Array.choose (fun p ->
        match p.IndexOf '-' with
        | i when i > 0 -> Some(p[.. i - 1], p[i + 1 ..])
        | _ -> None)
    |> List.ofArray

/// Every subset of the entities (order kept) that contains desc-confounds.
let private candidateStems (boldName: string) : string list =
    let es = entities boldName

    let withDesc =
        if es |> List.exists (fst >> (=) "desc") then
            es |> List.map (fun (k, v) -> if k = "desc" then k, "confounds" else k, v)
        else
            es @ [ "desc", "confounds" ]

    let rec subsets xs =
        match xs with
        | [] -> [ [] ]
        | x :: rest -> subsets rest |> List.collect (fun s -> [ x :: s; s ])

    subsets withDesc
    |> List.filter (List.exists (fst >> (=) "desc"))
    |> List.map (fun s -> String.Join("_", s |> List.map (fun (k, v) -> $"{k}-{v}")))

let findConfoundsFile (boldPath: string) =
    let folder = Path.GetDirectoryName(Path.GetFullPath boldPath)

    let found =
        [ for suffix in [ "_timeseries.tsv"; "_regressors.tsv" ] do
              for stem in candidateStems (Path.GetFileName boldPath) -> stem + suffix ]
        |> List.distinct
        |> List.sortByDescending String.length
        |> List.map (fun name -> Path.Combine(folder, name))
        |> List.filter File.Exists

    match found with
    | [ file ] -> file
    | [] ->
        raise (
            GlmInputException(
                boldPath,
                "could not find its confounds file (*_desc-confounds_timeseries.tsv or *_desc-confounds_regressors.tsv with the image's entities) in the image's folder"
            )
        )
    | files ->
        let listed = String.Join(", ", files)
        raise (GlmInputException(boldPath, $"found more than one confounds file: {listed}"))

// ---- reading --------------------------------------------------------------------------------------------

type Table =
    { File: string
      Names: string[]
      Values: float[,] }

    member t.Column(name: string) =
        let j = Array.IndexOf(t.Names, name)
        Array.init (Array2D.length1 t.Values) (fun i -> t.Values[i, j])

/// nilearn's test for fMRIPrep 1.0/1.1 headers (camelCase names).
let private isCamelCase (s: string) =
    s <> s.ToLowerInvariant() && s <> s.ToUpperInvariant() && not (s.Contains '_')

let readTable (path: string) : Table =
    let names, values = Tables.readConfounds path None

    if names |> Array.exists isCamelCase then
        raise (
            GlmInputException(path, "the header is in camel case, as fMRIPrep 1.0.x/1.1.x wrote it; fMRIPrep >= 1.2.0 outputs are supported")
        )

    if names.Length > 0 && fst (Double.TryParse(names[0], NumberStyles.Float, CultureInfo.InvariantCulture)) then
        raise (GlmInputException(path, "the table has no header: is this an old fMRIPrep output?"))

    { File = path; Names = names; Values = values }

/// The sidecar's entries (component name → its "Mask", when a string); None when there is no sidecar.
let readSidecar (path: string) : (string * string option) list option =
    if not (File.Exists path) then
        None
    else
        try
            use doc = JsonDocument.Parse(File.ReadAllText path)

            if doc.RootElement.ValueKind <> JsonValueKind.Object then
                raise (GlmInputException(path, "the sidecar is not a JSON object"))

            [ for p in doc.RootElement.EnumerateObject() ->
                  let mask =
                      match p.Value.ValueKind with
                      | JsonValueKind.Object ->
                          match p.Value.TryGetProperty "Mask" with
                          | true, m when m.ValueKind = JsonValueKind.String -> Some(m.GetString())
                          | _ -> None
                      | _ -> None

                  p.Name, mask ]
            |> Some
        with :? JsonException as e ->
            raise (GlmInputException(path, $"not valid JSON: {e.Message}"))
