module FmriGlm.Core.Tests.EndToEndTests

open System
open System.Diagnostics
open System.IO
open Expecto
open FmriGlm.Core

open FmriGlm.Core.Tests.TestHelpers.Cli

/// The demo's threshold (nilearn threshold_stats_img defaults: fpr, α = 0.001, two-sided).
let private detected (shape: GridShape) (mask: bool[]) (truth: float[]) (z: float[]) =
    let t = Thresholding.thresholdStatsImg shape Thresholding.defaultThresholdOptions (Some mask) z
    Recovery.score (truth |> Array.map (fun x -> x <> 0.0)) (Array.map2 (fun tr zt -> tr * zt > 0.0) truth t.Thresholded)

let private nameRegex =
    Text.RegularExpressions.Regex(@"^sub-\d\d_task-localizer_space-MNI152NLin2009cAsym_(contrast-[A-Za-z0-9]+_stat-(effect|variance|t|z|p)_statmap\.nii\.gz|mask\.nii\.gz|run-1_design\.tsv|statmap\.json|report\.html)$")

[<Tests>]
let tests =
    testList "EndToEnd" [
        testCase "simulate → participant (2 subjects, in parallel) → group: Dice ≥ 0.7 per subject at fpr 0.001 two-sided, BIDS derivative names" <| fun () ->
            let root = tempDir "e2e"
            let options = { Simulation.tiny with Subjects = 2 }
            Simulation.write root options
            let output = Path.Combine(root, "out")
            let query = { Task = options.Task; Space = Simulation.space; Subjects = []; ImgFilters = []; Derivatives = None }
            let model = { BidsModels.defaults with Confounds = Some "motion6+csf+wm"; Contrasts = List.ofArray Simulation.contrasts }
            Expect.equal (Bids.subjects root query) [ "01"; "02" ] "subjects of the derivatives"
            // two participants at once, as two Slurm array tasks would run: each writes only its own sub-X folder
            let fits =
                [ "01"; "02" ]
                |> List.map (fun s -> async { let fit = BidsModels.fitParticipant model s (Bids.findRuns root query s)
                                              BidsModels.writeParticipant (Path.Combine(output, $"sub-{fit.Subject}")) options.Task Simulation.space model fit |> ignore
                                              return fit })
                |> Async.Parallel
                |> Async.RunSynchronously

            for fit in fits do
                for name, c in fit.Contrasts do
                    let r = detected options.Shape fit.Mask (Simulation.groundTruth options.Shape name) (BidsModels.unmask fit.Mask (Contrast.zScoreWith Nilearn 0.0 c))
                    Expect.isGreaterThanOrEqual r.Dice 0.7 $"sub-{fit.Subject} {name}: {r}"

                let files = Directory.GetFiles(Path.Combine(output, $"sub-{fit.Subject}")) |> Array.map Path.GetFileName
                Expect.equal files.Length (3 * 5 + 3) "5 maps per contrast, mask, design, model JSON"

                for f in files do
                    Expect.isTrue (nameRegex.IsMatch f) $"{f} follows save_glm_to_bids naming"

            let subjects, c, mask, _, _, _ = BidsModels.fitGroup output options.Task Simulation.space "facesMinusHouses"
            Expect.equal subjects [ "01"; "02" ] "group subjects"
            Expect.equal (Contrast.degreesOfFreedom c) 1.0 "one-sample t over 2 subjects has 1 dof"
            Expect.isTrue (Array.exists id mask) "group mask"

        testCase "fmriglm CLI: two participant processes at once, group, reports in headless Chromium with every image loaded (skipped when the CLI is not built)" <| fun () ->
            match cliDll () with
            | None -> Tests.skiptest "src/Glm.Cli/bin/Release/net10.0/fmriglm.dll not built: build the solution in Release"
            | Some _ ->
                let root = tempDir "e2e-cli"
                let data, output = Path.Combine(root, "bids"), Path.Combine(root, "out")
                let code, _, err = start [ "simulate"; data; "--subjects"; "2"; "--quiet" ] |> finish
                Expect.equal code 0 $"simulate: {err}"
                let common = [ "bids"; data; output; "participant"; "--confounds"; "motion6+csf+wm"; "--quiet" ]
                let p1 = start (common @ [ "--participant-label"; "01" ])
                let p2 = start (common @ [ "--participant-label"; "02" ])

                for p in [ p1; p2 ] do
                    let code, _, err = finish p
                    Expect.equal code 0 $"participant: {err}"

                let code, _, err = start [ "bids"; data; output; "group"; "--quiet" ] |> finish
                Expect.equal code 0 $"group: {err}"
                Expect.isTrue (File.Exists(Path.Combine(output, "dataset_description.json"))) "dataset_description.json"
                Expect.isTrue (File.Exists(Path.Combine(output, "group", "task-localizer_space-MNI152NLin2009cAsym_contrast-faces_stat-z_statmap.nii.gz"))) "group z map"
                Expect.isEmpty (Directory.GetFiles(output, "*.tmp", SearchOption.AllDirectories)) "no temporary left"
                let code, _, err = start [ "bids"; data; output; "participant"; "--task"; "rest"; "--quiet" ] |> finish
                Expect.equal code 1 "bad data: exit code 1"
                Expect.stringContains err "--task" "says what to fix"
                let code, _, _ = start [ "bids"; data; output; "sideways" ] |> finish
                Expect.equal code 2 "bad arguments: exit code 2"

                if not (File.Exists "/usr/bin/chromium") then
                    Tests.skiptest "/usr/bin/chromium is absent: the CLI checks passed, the report was not rendered"

                let report = Path.Combine(output, "sub-01", "sub-01_task-localizer_space-MNI152NLin2009cAsym_report.html")
                let html = File.ReadAllText report
                Expect.isFalse (html.Contains "src=\"http") "self-contained: no remote image"
                Expect.stringContains html "<img class=\"design\"" "the design matrix is drawn"
                Expect.stringContains html "<img class=\"statmap\"" "a thresholded stat map is drawn"
                Expect.stringContains html "<table class=\"clusters\"" "the clusters table"
                // A copy of the page that writes into its title how many images it has and how many failed to decode.
                let probe = Path.Combine(root, "probe.html")
                let script = "<script>window.addEventListener('load',()=>{const i=[...document.images];document.title='images:'+i.length+' broken:'+i.filter(x=>!x.complete||x.naturalWidth===0).length})</script>"
                File.WriteAllText(probe, html.Replace("</body>", script + "</body>"))
                let chromium (args: string list) =
                    let psi = ProcessStartInfo("/usr/bin/chromium", RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false)
                    // Offline flags: this machine's closed network refuses Chromium's background connections.
                    let profile = Path.Combine(root, "chromium-profile")
                    for a in [ "--headless"; "--no-sandbox"; "--disable-gpu"; "--disable-quic"; "--no-first-run"
                               "--disable-background-networking"; "--disable-component-update"; "--disable-sync"
                               "--user-data-dir=" + profile; "--virtual-time-budget=5000" ] @ args do
                        psi.ArgumentList.Add a
                    Process.Start psi |> finish
                let _, dom, _ = chromium [ "--dump-dom"; "file://" + probe ]
                let title = Text.RegularExpressions.Regex.Match(dom, "<title>images:(\d+) broken:(\d+)</title>")
                Expect.isTrue title.Success "the page loaded and ran its probe"
                Expect.isGreaterThanOrEqual (int title.Groups[1].Value) 7 "design, 2 contrast matrices (faces, houses by default), 2 slice and 2 MIP images"
                Expect.equal title.Groups[2].Value "0" "no missing image"
                let png = Path.Combine(root, "report.png")
                chromium [ "--screenshot=" + png; "--window-size=1280,2000"; "file://" + report ] |> ignore
                Expect.isTrue (File.Exists png && FileInfo(png).Length > 20000L) "a screenshot of the page"
    ]
