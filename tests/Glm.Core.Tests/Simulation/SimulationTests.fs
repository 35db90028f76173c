module FmriGlm.Core.Tests.SimulationTests

open System
open System.IO
open Expecto
open FsCheck
open FsCheck.FSharp
open FmriGlm.Core

let private tempDir (name: string) =
    let d = Path.Combine(Path.GetTempPath(), $"fmriglm-{name}-{Guid.NewGuid():N}")
    Directory.CreateDirectory d |> ignore
    d

/// A small dataset: 10×10×8 voxels, 20 scans, so writing it takes milliseconds.
let private small = { Simulation.tiny with Shape = { X = 10; Y = 10; Z = 8 }; Scans = 20; Subjects = 1 }

let private config = { FsCheckConfig.defaultConfig with maxTest = 100 }

let private pairOfMasks =
    gen {
        let! n = Gen.choose (1, 60)
        let! a = Gen.arrayOfLength n (Gen.elements [ true; false ])
        let! b = Gen.arrayOfLength n (Gen.elements [ true; false ])
        return a, b
    }
    |> Arb.fromGen

let private expectInput (f: unit -> unit) (fragments: string list) =
    try
        f ()
        failtest "expected a GlmInputException"
    with :? GlmInputException as e ->
        for fragment in fragments do
            Expect.stringContains e.Message fragment "the message names what to fix"

[<Tests>]
let tests =
    testList "Simulation" [
        testList "laws" [
            testPropertyWithConfig config "Recovery.score: hits + misses = |truth|, hits + false positives = |detected|, Dice in [0, 1] (exact)" <|
                Prop.forAll pairOfMasks (fun (truth, detected) ->
                    let r = Recovery.score truth detected
                    let count = Array.filter id >> Array.length
                    r.Hits + r.Misses = count truth
                    && r.Hits + r.FalsePositives = count detected
                    && r.Dice >= 0.0 && r.Dice <= 1.0)

            testPropertyWithConfig config "Recovery.score: Dice = 1 exactly when detected = truth (exact)" <|
                Prop.forAll pairOfMasks (fun (truth, detected) ->
                    ((Recovery.score truth detected).Dice = 1.0) = (truth = detected)
                    && (Recovery.score truth truth).Dice = 1.0)

            testPropertyWithConfig config "Bids.entities inverts the BIDS name of key-value pairs (exact)" <|
                Prop.forAll
                    (Gen.listOfLength 4 (Gen.elements [ "sub", "01"; "task", "faces"; "run", "2"; "space", "MNI"; "desc", "preproc" ]) |> Arb.fromGen)
                    (fun pairs ->
                        let name = String.Join("_", pairs |> List.map (fun (k, v) -> $"{k}-{v}")) + "_bold.nii.gz"
                        Bids.entities name = pairs && Bids.suffix name = "bold")

            testCase "the same seed writes byte-identical BOLD images; another seed differs" <| fun () ->
                let a, b, c = tempDir "sim-a", tempDir "sim-b", tempDir "sim-c"
                Simulation.write a small
                Simulation.write b small
                Simulation.write c { small with Seed = small.Seed + 1 }
                let bold root = File.ReadAllBytes(Path.Combine(root, Simulation.derivativesPrefix small.Task "01" + $"_space-{Simulation.space}_desc-preproc_bold.nii.gz"))
                Expect.sequenceEqual (bold a) (bold b) "same seed"
                Expect.isFalse (bold a = bold c) "another seed"

            testCase "the ground truth of 'faces - houses' is faces' region minus houses' (exact)" <| fun () ->
                let s = Simulation.tiny.Shape
                let d = Array.map2 (-) (Simulation.groundTruth s "faces") (Simulation.groundTruth s "houses")
                Expect.equal (Simulation.groundTruth s "faces - houses") d "signed truth"
                Expect.isGreaterThan (d |> Array.filter ((<>) 0.0) |> Array.length) 100 "regions of more than 100 voxels"
        ]
        testList "format" [
            testCase "confounds follow fMRIPrep: base, _derivative1, _power2, _derivative1_power2; n/a in the first row of derivatives" <| fun () ->
                let text = Simulation.confoundsTsv [| "csf" |] [| [| 1.0; 3.0 |] |]
                let lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries)
                Expect.equal lines[0] "csf\tcsf_derivative1\tcsf_power2\tcsf_derivative1_power2" "header"
                Expect.equal lines[1] "1\tn/a\t1\tn/a" "first row"
                Expect.equal lines[2] "3\t2\t9\t4" "second row"

            testCase "contrast labels are camel case without separators (nilearn _clean_contrast_name style)" <| fun () ->
                Expect.equal (Simulation.contrastLabel "faces - houses") "facesMinusHouses" "difference"
                Expect.equal (Simulation.contrastLabel "faces") "faces" "single"

            testCase "confound strategies: motion6 = 6, motion24 = 24 columns, +csf +wm add csf and white_matter" <| fun () ->
                let header = Simulation.confoundsTsv (Array.append [| "csf"; "white_matter" |] Simulation.motionNames) (Array.create 8 [| 0.0; 1.0 |])
                let names = (header.Split('\n')[0]).Split('\t')
                Expect.equal (Bids.confoundColumns "t" names "motion6").Length 6 "motion6"
                Expect.equal (Bids.confoundColumns "t" names "motion24").Length 24 "motion24"
                Expect.equal (Bids.confoundColumns "t" names "motion6+csf+wm") (Array.append (Array.ofList [ "trans_x"; "trans_y"; "trans_z"; "rot_x"; "rot_y"; "rot_z" ]) [| "csf"; "white_matter" |]) "motion6+csf+wm"
        ]
        testList "errors" [
            testCase "a task absent from the dataset names the tasks present and --task" <| fun () ->
                let root = tempDir "sim-task"
                Simulation.write root small
                let query = { Task = "rest"; Space = Simulation.space; Subjects = []; ImgFilters = []; Derivatives = None }
                expectInput (fun () -> Bids.findRuns root query "01" |> ignore) [ "'rest'"; "localizer"; "--task" ]

            testCase "a space absent from the dataset names the spaces present and --space" <| fun () ->
                let root = tempDir "sim-space"
                Simulation.write root small
                let query = { Task = small.Task; Space = "T1w"; Subjects = []; ImgFilters = []; Derivatives = None }
                expectInput (fun () -> Bids.findRuns root query "01" |> ignore) [ "T1w"; Simulation.space; "--space" ]

            testCase "a run without events.tsv names the run and the file expected" <| fun () ->
                let root = tempDir "sim-events"
                Simulation.write root small
                File.Delete(Path.Combine(root, Simulation.eventsPath small.Task "01"))
                let query = { Task = small.Task; Space = Simulation.space; Subjects = []; ImgFilters = []; Derivatives = None }
                expectInput (fun () -> Bids.findRuns root query "01" |> ignore) [ "no events.tsv"; "desc-preproc_bold" ]

            testCase "an unknown part of a confound strategy names the part and the known ones" <| fun () ->
                expectInput (fun () -> Bids.confoundColumns "c.tsv" [| "csf" |] "motion6+framewise" |> ignore) [ "'framewise'"; "motion24"; "+csf" ]

            testCase "an unknown confound column names the table's columns" <| fun () ->
                expectInput (fun () -> Bids.confoundColumns "c.tsv" [| "csf" |] "framewise" |> ignore) [ "c.tsv"; "'framewise'"; "csf" ]
        ]
    ]
