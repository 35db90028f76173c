/// `fmriglm demo [--out DIR]`: the README's main command. Until the first-level model exists it is the placeholder
/// demo of the NIfTI layer: a synthetic 4D image written as .nii.gz, read back and checked.
module FmriGlm.Cli.DemoCommand

open System
open System.IO
open Argu
open FmriGlm.Core

/// Arguments of `fmriglm demo`.
type DemoArgs =
    | [<Unique>] Out of dir: string

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Out _ -> "folder for the demo's files (default: a new temporary folder)."

/// Runs the demo; 0 when the round trip is exact, 1 otherwise.
let run (args: ParseResults<DemoArgs>) =
    let dir =
        match args.TryGetResult Out with
        | Some d -> d
        | None -> Path.Combine(Path.GetTempPath(), "fmriglm-demo-" + Guid.NewGuid().ToString("N").Substring(0, 8))

    Directory.CreateDirectory dir |> ignore
    printfn "fmriglm demo: this is the PLACEHOLDER demo of the NIfTI layer (the first-level GLM is not built yet)."
    let nx, ny, nz, nt = 16, 16, 8, 40
    let tr = 2.0

    let affine =
        array2D
            [ [ -3.0; 0.0; 0.0; 24.0 ]
              [ 0.0; 3.0; 0.0; -24.0 ]
              [ 0.0; 0.0; 4.0; -16.0 ]
              [ 0.0; 0.0; 0.0; 1.0 ] ]
    // A smooth blob (brighter towards the centre) with a slow oscillation in time: values like a BOLD series.
    let value i j k t =
        let r2 =
            (float i - 7.5) ** 2.0 / 40.0
            + (float j - 7.5) ** 2.0 / 40.0
            + (float k - 3.5) ** 2.0 / 10.0

        float32 (
            1000.0 * exp (-r2)
            + 20.0 * sin (2.0 * Math.PI * float t * tr / 30.0) * exp (-r2)
        )

    let data =
        Array.init (nx * ny * nz * nt) (fun n -> value (n % nx) (n / nx % ny) (n / (nx * ny) % nz) (n / (nx * ny * nz)))

    let path = Path.Combine(dir, "demo_bold.nii.gz")

    let options =
        { Nifti.writeOptions [| int64 nx; int64 ny; int64 nz; int64 nt |] affine with
            TR = Some tr
            Descrip = "fmriglm demo" }

    do
        use writer = Nifti.createWriter path options
        let per = nx * ny * nz

        for t in 0 .. nt - 1 do
            writer.WriteVolume(ReadOnlySpan(data, t * per, per))

        writer.Complete()

    printfn "wrote     %s (%d bytes, streamed volume by volume)" path (FileInfo(path).Length)
    let back = Nifti.readFloat32 path

    let sameData =
        Array.forall2
            (fun (a: float32) b -> BitConverter.SingleToInt32Bits a = BitConverter.SingleToInt32Bits b)
            data
            back.Data

    let sameAffine =
        Seq.forall
            (fun (i, j) -> back.Header.Affine[i, j] = float (float32 affine[i, j]))
            [ for i in 0..3 do
                  for j in 0..3 -> i, j ]

    let sameTR = back.Header.TR = Some tr

    printfn
        "read back %d values: data %s, affine %s, TR %s"
        back.Data.Length
        (if sameData then "identical" else "DIFFERENT")
        (if sameAffine then "identical" else "DIFFERENT")
        (if sameTR then "identical" else "DIFFERENT")

    printfn ""

    InfoCommand.summary path back.Header (Nifti.valueRange path)
    |> List.iter (printfn "%s")

    if sameData && sameAffine && sameTR then 0 else 1
