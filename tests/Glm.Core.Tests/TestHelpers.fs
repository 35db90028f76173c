/// Helpers shared by every test file: where the reference data lives, how to read its TSV and JSON, and
/// numpy.isclose-style comparisons that report the worst element.
module FmriGlm.Core.Tests.TestHelpers

open System
open System.Globalization
open System.IO
open System.Text.Json
open Expecto

/// A numpy.isclose tolerance: |actual − expected| ≤ absolute + relative·|expected|.
type Accuracy = { absolute: float; relative: float }

/// The reference data copied from nilearn 0.13.1 / nipy 0.5.0 / nibabel 5.0.0 into tests/data (see its README).
module Reference =
    /// tests/data, found by walking up from the test binary, so tests run from any working directory.
    let dataDir =
        let rec up (dir: DirectoryInfo) =
            if isNull dir then
                failwith "tests/data not found above the test binary"
            else
                let candidate = Path.Combine(dir.FullName, "tests", "data")
                if Directory.Exists candidate then candidate else up dir.Parent
        up (DirectoryInfo AppContext.BaseDirectory)

    /// Path of a file in a reference case: `Reference.path "glm" "ar1" "X.tsv"`.
    let path area case' file = Path.Combine(dataDir, area, case', file)

    /// Case folder names of an area, sorted.
    let cases area =
        Directory.GetDirectories(Path.Combine(dataDir, area))
        |> Array.map Path.GetFileName
        |> Array.sort

    /// A case's params.json.
    let parameters area case' =
        JsonDocument.Parse(File.ReadAllText(path area case' "params.json")).RootElement

/// The reference TSV format: tab separated, one header row, %.17g numbers, nan/inf/-inf, n/a.
module Tsv =
    let private parseCell (s: string) =
        match s with
        | "nan" | "NaN" | "n/a" | "" -> nan
        | "inf" | "Infinity" -> infinity
        | "-inf" | "-Infinity" -> -infinity
        | _ -> Double.Parse(s, NumberStyles.Float, CultureInfo.InvariantCulture)

    /// Header and rows of cells, as text.
    let read (file: string) : string[] * string[][] =
        let lines = File.ReadAllLines file |> Array.filter (fun l -> l <> "")
        let header = lines[0].Split '\t'
        header, lines[1..] |> Array.map (fun l -> l.Split '\t')

    /// Header and columns of numbers.
    let columns (file: string) : string[] * float[][] =
        let header, rows = read file
        header, Array.init header.Length (fun j -> rows |> Array.map (fun r -> parseCell r[j]))

    /// One column by name.
    let column (file: string) (name: string) : float[] =
        let header, cols = columns file
        match Array.tryFindIndex ((=) name) header with
        | Some j -> cols[j]
        | None -> failwith $"{file} has no column {name}; it has {String.Join(',', header)}"

    /// Every cell as a row-major matrix (rows × columns).
    let matrix (file: string) : float[,] =
        let _, cols = columns file
        Array2D.init cols[0].Length cols.Length (fun i j -> cols[j][i])

/// Comparisons in the numpy.isclose convention: NaN matches NaN, infinities match exactly.
module Close =
    let private isClose (acc: Accuracy) (a: float) (e: float) =
        if Double.IsNaN e then Double.IsNaN a
        elif Double.IsInfinity e then a = e
        else abs (a - e) <= acc.absolute + acc.relative * abs e

    /// Fails naming the worst element (index, both values, difference) when any element is out of tolerance.
    let all (acc: Accuracy) (actual: float[]) (expected: float[]) (what: string) =
        Expect.equal actual.Length expected.Length $"{what}: length"
        let mutable worst = -1
        let mutable worstExcess = 0.0
        let mutable failures = 0
        for i in 0 .. expected.Length - 1 do
            if not (isClose acc actual[i] expected[i]) then
                failures <- failures + 1
                let excess =
                    if Double.IsNaN actual[i] || Double.IsNaN expected[i] || Double.IsInfinity expected[i] then infinity
                    else abs (actual[i] - expected[i]) - acc.absolute - acc.relative * abs expected[i]
                if worst < 0 || excess > worstExcess then
                    worst <- i
                    worstExcess <- excess
        if failures > 0 then
            failtestf
                "%s: %d of %d elements out of tolerance (atol %g, rtol %g); worst at %d: actual %.17g expected %.17g (diff %g)"
                what failures expected.Length acc.absolute acc.relative worst actual[worst] expected[worst]
                (actual[worst] - expected[worst])

    /// Same for a matrix, flattened row-major.
    let matrix (acc: Accuracy) (actual: float[,]) (expected: float[,]) (what: string) =
        Expect.equal (Array2D.length1 actual, Array2D.length2 actual) (Array2D.length1 expected, Array2D.length2 expected) $"{what}: shape"
        let flat (m: float[,]) = Array.init m.Length (fun k -> m[k / Array2D.length2 m, k % Array2D.length2 m])
        all acc (flat actual) (flat expected) what

/// Per-file and per-column tolerances of a case's params.json ("tolerance": {file: {rtol, atol, column: {...}}}).
module Tolerance =
    /// The Accuracy for one column of one file: the column's own entry when there is one, else the file's.
    let forColumn (area: string) (case': string) (file: string) (column: string) : Accuracy =
        let p = Reference.parameters area case'
        let tol = p.GetProperty("tolerance").GetProperty(file)
        let read (e: JsonElement) =
            let get (name: string) =
                match e.TryGetProperty name with
                | true, v -> v.GetDouble()
                | _ -> 0.0
            { absolute = get "atol"; relative = get "rtol" }
        match tol.TryGetProperty column with
        | true, c when c.ValueKind = JsonValueKind.Object -> read c
        | _ -> read tol

/// Independent references for voxel-grid laws (Masking, Clusters, Thresholding).
module Grid =
    /// The 6-connected component of a set of voxels that contains the seed, by a plain flood fill.
    let faceComponent (shape: FmriGlm.Core.GridShape) (inSet: bool[]) (seed: int) =
        let seen = Collections.Generic.HashSet<int>([ seed ])
        let stack = Collections.Generic.Stack<int>([ seed ])

        while stack.Count > 0 do
            let v = stack.Pop()
            let i, j, k = v % shape.X, (v / shape.X) % shape.Y, v / (shape.X * shape.Y)

            for di, dj, dk in [ (1, 0, 0); (-1, 0, 0); (0, 1, 0); (0, -1, 0); (0, 0, 1); (0, 0, -1) ] do
                let a, b, c = i + di, j + dj, k + dk

                if a >= 0 && b >= 0 && c >= 0 && a < shape.X && b < shape.Y && c < shape.Z then
                    let u = shape.Index(a, b, c)
                    if inSet[u] && seen.Add u then stack.Push u

        seen

    /// Size of the 6-connected component containing the seed.
    let componentSize (shape: FmriGlm.Core.GridShape) (inSet: bool[]) (seed: int) = (faceComponent shape inSet seed).Count

/// Closed forms that laws compare against.
module Textbook =
    /// One-sample t: mean / (sd / √n), sd with n − 1.
    let oneSampleT (y: float[]) =
        let n = float y.Length
        let mean = Array.average y
        let ss = y |> Array.sumBy (fun v -> (v - mean) * (v - mean))
        mean / sqrt (ss / (n - 1.0) / n)

/// The built CLI, run as a child process as a user runs it (the end-to-end, fuzz and fault-injection tests).
module Cli =
    open System.Diagnostics

    let tempDir (name: string) =
        let d = Path.Combine(Path.GetTempPath(), $"fmriglm-{name}-{Guid.NewGuid():N}")
        Directory.CreateDirectory d |> ignore
        d

    /// The repository root: the first parent folder of the test binary holding FmriGlm.sln.
    let repoRoot () =
        let rec up (d: DirectoryInfo) =
            if isNull d then None
            elif File.Exists(Path.Combine(d.FullName, "FmriGlm.sln")) then Some d.FullName
            else up d.Parent

        up (DirectoryInfo AppContext.BaseDirectory)

    /// The built fmriglm CLI (Release), when the solution has been built.
    let cliDll () =
        repoRoot ()
        |> Option.map (fun r -> Path.Combine(r, "src", "Glm.Cli", "bin", "Release", "net10.0", "fmriglm.dll"))
        |> Option.filter File.Exists

    /// Starts the CLI in the folder <paramref name="dir"/>: relative paths a test (or a fuzzed argument) names
    /// land there, never in the repository.
    let startIn (dir: string) (args: string list) =
        let psi = ProcessStartInfo("dotnet", RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = dir)
        psi.ArgumentList.Add(cliDll().Value)
        args |> List.iter psi.ArgumentList.Add
        Process.Start psi

    /// Starts the CLI in the temporary folder.
    let start (args: string list) = startIn (Path.GetTempPath()) args

    /// Waits for the child and its output; a child still running after the timeout is killed and fails the test.
    let finishWithin (timeout: TimeSpan) (p: Process) =
        let out = p.StandardOutput.ReadToEndAsync()
        let err = p.StandardError.ReadToEndAsync()

        // A child that hangs (a browser waiting on the network, say) must fail the test, never stall the suite.
        if not (p.WaitForExit timeout) then
            p.Kill true
            failtestf "%s %s did not finish within %O and was killed" p.StartInfo.FileName (String.Join(" ", p.StartInfo.ArgumentList)) timeout

        p.WaitForExit()
        p.ExitCode, out.Result, err.Result

    /// As finishWithin, five minutes.
    let finish (p: Process) = finishWithin (TimeSpan.FromMinutes 5.0) p
