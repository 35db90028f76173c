/// <summary>The file-system edge of every command: inputs are regular files that exist and hold bytes, outputs appear
/// whole or not at all. A file is written to a temporary beside its target and renamed; a folder of outputs is
/// filled under a temporary name and renamed; the temporary folder of a run that was killed is recognised by the
/// next run (its lock is free) and removed.</summary>
module FmriGlm.Core.Files

open System
open System.IO
open System.Text

/// <summary>Fails unless <paramref name="path"/> names an existing, non-empty regular file. A FIFO, a device or a
/// file under /proc reports 0 bytes: refusing it here is what keeps a read from blocking forever.</summary>
/// <exception cref="T:FmriGlm.Core.GlmInputException">Empty path, missing file, a directory, or 0 bytes.</exception>
let requireInputFile (path: string) : unit =
    if String.IsNullOrWhiteSpace path then
        raise (GlmInputException("input path", "is empty"))

    if Directory.Exists path then
        raise (GlmInputException(path, "is a directory, not a file"))

    let info = FileInfo path

    if not info.Exists then
        raise (GlmInputException(path, "file not found"))

    if info.Length = 0L then
        raise (GlmInputException(path, "is empty (0 bytes), or is not a regular file (a FIFO, socket or device)"))

/// <summary>Opens a text input for reading as strict UTF-8 (an invalid byte sequence is an error, not a silent
/// replacement character).</summary>
let openUtf8 (path: string) : StreamReader =
    requireInputFile path
    new StreamReader(path, UTF8Encoding(false, true), true)

/// <summary>Turns a failed write (disk full, read-only, permission) into the project's error naming the target.</summary>
let rec writeFailure (target: string) (e: exn) : exn =
    match e with
    | :? AggregateException as a ->
        let inner = a.Flatten().InnerExceptions |> List.ofSeq

        match inner |> List.tryFind (fun x -> x :? GlmInputException), inner with
        | Some x, _ -> x
        | None, x :: _ -> writeFailure target x
        | None, [] -> e
    | :? GlmInputException -> e
    | :? UnauthorizedAccessException -> GlmInputException(target, $"cannot be written: {e.Message}") :> exn
    | :? IOException when e.HResult = 28 || e.Message.Contains "No space left" ->
        GlmInputException(target, $"cannot be written, the disk is full: {e.Message}") :> exn
    | :? IOException -> GlmInputException(target, $"cannot be written: {e.Message}") :> exn
    | _ -> e

/// <summary>Writes a text file atomically: a temporary file in the same folder, then a rename over the target.</summary>
/// <exception cref="T:FmriGlm.Core.GlmInputException">The target cannot be written (disk full, read-only).</exception>
let writeTextAtomic (path: string) (text: string) : unit =
    let full = Path.GetFullPath path
    let folder = Path.GetDirectoryName full
    let temp = Path.Combine(folder, $".{Path.GetFileName full}.{Guid.NewGuid():N}.tmp")

    try
        try
            Directory.CreateDirectory folder |> ignore
            File.WriteAllText(temp, text, UTF8Encoding false)
            File.Move(temp, full, true)
        with e ->
            raise (writeFailure path e)
    finally
        if File.Exists temp then
            try File.Delete temp with _ -> ()

/// <summary>The longest file name (one path component) Linux and macOS file systems accept, in UTF-8 bytes.</summary>
let maxFileNameBytes = 255

/// <summary>Fails when an output file name would be longer than the file system accepts.</summary>
let requireFileName (input: string) (fileName: string) : unit =
    let bytes = Encoding.UTF8.GetByteCount fileName

    if bytes > maxFileNameBytes then
        raise (
            GlmInputException(
                input,
                $"gives the file name '{fileName.Substring(0, 40)}...', {bytes} bytes long: file names are limited to {maxFileNameBytes} bytes; use a shorter name"
            )
        )

/// <summary>Fails unless <paramref name="output"/> is a usable output file name that is none of the inputs:
/// writing a map over the map it was computed from would destroy the input on success and leave nothing on failure.</summary>
/// <exception cref="T:FmriGlm.Core.GlmInputException">An empty output, a folder, or an input's path.</exception>
let requireOutputFile (option: string) (output: string) (inputs: string seq) : unit =
    if String.IsNullOrWhiteSpace output then
        raise (GlmInputException(option, "the output file name is empty"))

    if Directory.Exists output then
        raise (GlmInputException(output, "is a directory: give a file name"))

    let full = Path.GetFullPath output

    for input in inputs do
        if not (String.IsNullOrWhiteSpace input) && Path.GetFullPath input = full then
            raise (GlmInputException(output, $"is also an input ({input}): writing it would destroy the input; choose another name"))

let private tempPrefix (target: string) = $".{Path.GetFileName target}.tmp-"

/// The lock of a temporary folder: a file beside it, created and locked before the folder exists and deleted
/// after the folder has been renamed onto its target, so a live run's folder always has a held lock.
let private lockOf (temp: string) = temp + ".lock"

/// Whether a lock file can be taken: a run holds its lock exclusively for as long as it lives, and the kernel
/// releases the lock of a killed process. A missing lock file counts as free.
let private lockIsFree (lockPath: string) =
    try
        use _ = new FileStream(lockPath, FileMode.Open, FileAccess.ReadWrite, FileShare.None)
        true
    with
    | :? FileNotFoundException
    | :? DirectoryNotFoundException -> true
    | :? IOException -> false

/// <summary>Removes the temporary folders (and their lock files) that killed runs left beside
/// <paramref name="target"/>: a temporary whose lock is free has no live owner. A folder another live run is
/// filling keeps its lock and is left alone.</summary>
/// <returns>The folders and lock files removed.</returns>
let removeStaleTemporaries (target: string) : string list =
    let full = Path.GetFullPath target
    let parent = Path.GetDirectoryName full

    let remove (path: string) (delete: unit -> unit) =
        try
            delete ()
            Some path
        with
        | :? IOException
        | :? UnauthorizedAccessException -> None

    if not (Directory.Exists parent) then
        []
    else
        let folders =
            [ for dir in Directory.EnumerateDirectories(parent, tempPrefix full + "*") do
                  if lockIsFree (lockOf dir) then
                      yield! Option.toList (remove dir (fun () -> Directory.Delete(dir, true))) ]

        // a lock without its folder: killed before the folder was made, or after it was renamed
        let locks =
            [ for file in Directory.EnumerateFiles(parent, tempPrefix full + "*.lock") do
                  let folder = file.Substring(0, file.Length - ".lock".Length)

                  if not (Directory.Exists folder) && lockIsFree file then
                      yield! Option.toList (remove file (fun () -> File.Delete file)) ]

        folders @ locks

/// <summary>A folder of outputs being filled under a temporary name beside its target. <c>Commit</c> renames it
/// onto the target; disposing it without a commit removes it, so a failure leaves nothing behind.</summary>
type OutputFolder private (target: string, temp: string, lockStream: FileStream, replace: bool) =
    let mutable committed = false

    /// <summary>Starts the outputs of <paramref name="target"/>. The target must not exist or be an empty folder,
    /// unless <paramref name="replace"/> (the BIDS App's per-subject folders, rewritten by every run).</summary>
    /// <exception cref="T:FmriGlm.Core.GlmInputException">An empty path, a target that is a file or a non-empty
    /// folder (without <paramref name="replace"/>), or a parent folder that cannot be written.</exception>
    static member Create(target: string, ?replace: bool) : OutputFolder =
        let replace = defaultArg replace false

        if String.IsNullOrWhiteSpace target then
            raise (GlmInputException("--out", "the output folder is empty: give a folder name"))

        let full =
            try
                Path.GetFullPath target
            with e ->
                raise (GlmInputException(target, $"is not a valid path: {e.Message}"))

        if File.Exists full then
            raise (GlmInputException(target, "is a file, not a directory"))

        if
            not replace
            && Directory.Exists full
            && not (Seq.isEmpty (Directory.EnumerateFileSystemEntries full))
        then
            raise (GlmInputException(target, "the output directory exists and is not empty"))

        let parent = Path.GetDirectoryName full

        try
            Directory.CreateDirectory parent |> ignore
        with e ->
            raise (writeFailure parent e)

        removeStaleTemporaries full |> ignore
        let temp = Path.Combine(parent, tempPrefix full + Guid.NewGuid().ToString "N")

        let lockStream =
            try
                let held = new FileStream(lockOf temp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None)

                try
                    Directory.CreateDirectory temp |> ignore
                    held
                with _ ->
                    held.Dispose()
                    File.Delete(lockOf temp)
                    reraise ()
            with e ->
                (try Directory.Delete(temp, true) with _ -> ())
                raise (writeFailure target e)

        new OutputFolder(full, temp, lockStream, replace)

    /// <summary>The temporary folder to write into.</summary>
    member _.Path = temp

    /// <summary>A file of the temporary folder.</summary>
    member _.File(name: string) = System.IO.Path.Combine(temp, name)

    /// <summary>The final folder.</summary>
    member _.Target = target

    /// <summary>Renames the filled folder onto the target (replacing a previous one when allowed).</summary>
    member _.Commit() =

        // a directory rename replaces only an empty directory: a previous target is moved aside first; two runs
        // replacing the same target at once may put theirs back in between, so the swap is retried
        let rec swap attempt =
            try
                if Directory.Exists target then
                    if replace then
                        let parent = System.IO.Path.GetDirectoryName target
                        let old = System.IO.Path.Combine(parent, tempPrefix target + "old-" + Guid.NewGuid().ToString "N")
                        Directory.Move(target, old)
                        Directory.Move(temp, target)
                        try Directory.Delete(old, true) with _ -> ()
                    else
                        Directory.Delete target // empty: checked at Create
                        Directory.Move(temp, target)
                else
                    Directory.Move(temp, target)
            with
            | :? IOException when replace && attempt < 20 ->
                Threading.Thread.Sleep(10 * (attempt + 1))
                swap (attempt + 1)
            | e -> raise (writeFailure target e)

        swap 0
        committed <- true
        // the folder is the target now: the lock has nothing left to guard
        lockStream.Dispose()
        try File.Delete(lockOf temp) with _ -> ()

    interface IDisposable with
        member _.Dispose() =
            if not committed then
                if Directory.Exists temp then
                    try Directory.Delete(temp, true) with _ -> ()

                lockStream.Dispose()
                try File.Delete(lockOf temp) with _ -> ()
