module FmriGlm.Core.Tests.BetaSeriesTests

open System
open System.IO
open Expecto
open FsCheck
open FsCheck.FSharp
open FmriGlm.Core

let private config = { FsCheckConfig.defaultConfig with maxTest = 25 }
let private identity = Array2D.init 4 4 (fun i j -> if i = j then 1.0 else 0.0)
let private grid = { X = 4; Y = 3; Z = 2 }

/// |a − b| ≤ 1e-10·max(1, |b|), the verification bound of the beta series (issue 15).
let private close (a: float) (b: float) = abs (a - b) <= 1e-10 * max 1.0 (abs b)

let private gauss (rng: Random) =
    sqrt (-2.0 * log (1.0 - rng.NextDouble())) * cos (2.0 * Math.PI * rng.NextDouble())

/// A random paradigm: two or three conditions with 1–5 trials each inside the run, durations 0 (impulse) to 4 s.
let private randomEvents (rng: Random) (runSeconds: float) =
    let conditions = [| "face"; "house"; "tool" |] |> Array.take (2 + rng.Next 2)

    let events =
        [| for c in conditions do
               for _ in 1 .. 1 + rng.Next 5 do
                   yield c, 2.0 + rng.NextDouble() * (runSeconds - 20.0), float (rng.Next 5) |]

    { Onsets = events |> Array.map (fun (_, o, _) -> o)
      Durations = events |> Array.map (fun (_, _, d) -> d)
      TrialTypes = events |> Array.map (fun (c, _, _) -> c)
      Modulations = Array.create events.Length 1.0 }

/// Volumes: baseline 1000 + trial responses + AR(1) noise (ρ 0.3) of sd 5, with a slow drift.
let private randomVolumes (rng: Random) (scans: int) (tr: float) (events: Events) =
    let design, _ =
        DesignMatrix.makeFirstLevel (DesignMatrix.frameTimes scans tr 0.0) (Some events) DesignMatrix.defaults

    let conditions = DesignMatrix.conditions events
    let gains = Array.init grid.Count (fun _ -> Array.init conditions.Length (fun _ -> 20.0 * rng.NextDouble()))
    let noise = Array.init grid.Count (fun _ -> Array.zeroCreate scans)

    for v in 0 .. grid.Count - 1 do
        for t in 0 .. scans - 1 do
            noise[v][t] <- (if t > 0 then 0.3 * noise[v][t - 1] else 0.0) + 5.0 * gauss rng

    Array.init scans (fun t ->
        Array.init grid.Count (fun v ->
            let signal = Seq.sum (seq { for c in 0 .. conditions.Length - 1 -> gains[v][c] * design.Values[t, c] })
            float32 (1000.0 + signal + noise[v][t] + 0.05 * float t)))

type private Scenario =
    { Options: FirstLevelOptions
      Run: RunInput
      Events: Events }

let private scenario (seed: int) (noise: NoiseModel) =
    let rng = Random seed
    let scans = 60 + rng.Next 40
    let tr = [| 1.0; 2.0; 2.5 |][rng.Next 3]
    let events = randomEvents rng (float scans * tr)
    let volumes = randomVolumes rng scans tr events

    let confounds =
        if rng.Next 2 = 0 then
            None
        else
            Some([| "motion" |], Array2D.init scans 1 (fun _ _ -> gauss rng))

    { Options =
        { FirstLevel.defaults with
            TR = Some tr
            HrfModel = (if rng.Next 2 = 0 then Hrf.Glover else Hrf.Spm)
            DriftModel = (if rng.Next 2 = 0 then Cosine 0.01 else Polynomial 2)
            Mask = NoMask
            NoiseModel = noise
            Threads = 1 }
      Run =
        { Bold = BoldVolumes(grid, identity, volumes)
          Events = Some events
          Confounds = confounds
          DesignMatrix = None
          SampleMask = None }
      Events = events }

/// The trial's beta in nilearn's slow recipe (plot_beta_series): a first-level model where that trial alone is
/// renamed, the rest of its condition keeping its name.
/// Two least-squares solutions that are exact in exact arithmetic agree only to the rounding bound of least squares,
/// about κ²·eps relative (Golub & Van Loan, §5.3), κ the condition number of the design over the kept scans. The
/// tolerance is 1e-10, or κ²·eps when the trial's design is worse conditioned. A trial next to scrubbed scans reached
/// κ = 6,311 and differed by 1.1e-9, where κ²·eps = 8.8e-9.
let private closeFor (kappa: float) (a: float) (b: float) =
    abs (a - b) <= max 1e-10 (kappa * kappa * 2.220446049250313e-16) * max 1.0 (abs b)

/// The trial's betas in a first-level fit where it alone is its condition, and the condition number of that design
/// over the kept scans.
let private separateFit (s: Scenario) (event: int) =
    let name = "the__trial"
    let types = Array.copy s.Events.TrialTypes
    types[event] <- name
    let fit = FirstLevel.fit s.Options [ { s.Run with Events = Some { s.Events with TrialTypes = types } } ]
    let glm = fit.Runs[0].Glm
    let design = fit.Runs[0].Design
    let j = Array.IndexOf(design.ColumnNames, name)
    // the design holds every scan, or only the kept ones
    let rows =
        match s.Run.SampleMask with
        | Some kept when Array2D.length1 design.Values > kept.Length -> kept
        | _ -> Array.init (Array2D.length1 design.Values) id
    let kept = MathNet.Numerics.LinearAlgebra.Matrix<float>.Build.DenseOfRowArrays(rows |> Array.map (fun r -> Array.init design.ColumnNames.Length (fun c -> design.Values[r, c])))
    Array.init glm.Voxels (fun v -> glm.Betas[v * glm.Regressors + j]), kept.ConditionNumber()

let private separateFitBeta (s: Scenario) (event: int) = fst (separateFit s event)

/// Event index of each result trial (conditions, then onset order).
let private eventOf (s: Scenario) (trial: BetaSeriesTrial) =
    Array.init s.Events.Onsets.Length id
    |> Array.find (fun e -> s.Events.TrialTypes[e] = trial.Condition && s.Events.Onsets[e] = trial.Onset)

let private betasOf (result: BetaSeriesResult) (trial: BetaSeriesTrial) =
    let c = Array.IndexOf(result.Conditions, trial.Condition)
    let voxels = result.MaskedIndices.Length
    Array.sub result.Betas[c] (trial.Index * voxels) voxels

let private lssEqualsSeparateFits (noise: NoiseModel) (seed: int) =
    let s = scenario seed noise
    let result = BetaSeries.lss s.Options [ s.Run ]

    result.Trials
    |> Array.forall (fun trial ->
        let expected, kappa = separateFit s (eventOf s trial)
        Array.forall2 (closeFor kappa) (betasOf result trial) expected)

/// Columns of a random LSS problem on arrays: trials, nuisance with a constant, AR(1) data.
let private arrayProblem (seed: int) =
    let rng = Random seed
    let n = 40 + rng.Next 40
    let k = 1 + rng.Next 6
    let nb = 1 + rng.Next 4
    let voxels = 1 + rng.Next 30
    let trials = Array2D.init n k (fun _ _ -> gauss rng)
    let nuisance = Array2D.init n nb (fun _ j -> if j = 0 then 1.0 else gauss rng)

    let data = Array.zeroCreate (n * voxels)

    for v in 0 .. voxels - 1 do
        data[v * n] <- gauss rng

        for t in 1 .. n - 1 do
            data[v * n + t] <- 0.4 * data[v * n + t - 1] + gauss rng + trials[t, 0]

    trials, nuisance, data, voxels

/// The trial's beta by Regression.fit of [T_t, Σ_{s≠t} T_s, nuisance] (no rest column for a single trial).
let private regressionBeta (options: GlmOptions) (trials: float[,]) (nuisance: float[,]) (data: float[]) (t: int) =
    let n, k, nb = Array2D.length1 trials, Array2D.length2 trials, Array2D.length2 nuisance
    let rest = if k = 1 then 0 else 1

    let design =
        Array2D.init n (1 + rest + nb) (fun i j ->
            if j = 0 then trials[i, t]
            elif j < 1 + rest then Seq.sum (seq { for s in 0 .. k - 1 do if s <> t then yield trials[i, s] })
            else nuisance[i, j - 1 - rest])

    let fit = Regression.fit options design (Float64 data)
    Array.init fit.Voxels (fun v -> fit.Betas[v * fit.Regressors])

let private expectInput (fragment: string) (f: unit -> obj) =
    try
        f () |> ignore
        failtest $"expected a GlmInputException naming {fragment}"
    with :? GlmInputException as e ->
        Expect.stringContains e.Message fragment "the message names the input"

[<Tests>]
let tests =
    testList
        "BetaSeries"
        [ testList
              "arrays"
              [ testPropertyWithConfig config "LSS on arrays equals Regression.fit of [trial, rest of condition, nuisance] per trial (ols, 1e-10)" <|
                    Prop.forAll (Arb.fromGen (Gen.choose (0, 100000))) (fun seed ->
                        let trials, nuisance, data, voxels = arrayProblem seed
                        let options = { GlmOptions.defaults with NoiseModel = Ols; Threads = 1 }
                        let k = Array2D.length2 trials
                        let lss = BetaSeriesArrays.lss options trials nuisance (Float64 data)

                        Seq.forall
                            (fun t ->
                                let expected = regressionBeta options trials nuisance data t
                                Seq.forall (fun v -> close lss[v * k + t] expected[v]) (seq { 0 .. voxels - 1 }))
                            (seq { 0 .. k - 1 }))

                testPropertyWithConfig config "LSS on arrays equals Regression.fit of [trial, rest of condition, nuisance] per trial (ar1, its own AR(1) bin per trial, 1e-10)" <|
                    Prop.forAll (Arb.fromGen (Gen.choose (0, 100000))) (fun seed ->
                        let trials, nuisance, data, voxels = arrayProblem seed
                        let options = { GlmOptions.defaults with NoiseModel = Ar 1; Threads = 1 }
                        let k = Array2D.length2 trials
                        let lss = BetaSeriesArrays.lss options trials nuisance (Float64 data)

                        Seq.forall
                            (fun t ->
                                let expected = regressionBeta options trials nuisance data t
                                Seq.forall (fun v -> close lss[v * k + t] expected[v]) (seq { 0 .. voxels - 1 }))
                            (seq { 0 .. k - 1 }))

                testPropertyWithConfig config "LSA on arrays equals the trial columns of one Regression.fit of [trials, nuisance] (ar1, exactly)" <|
                    Prop.forAll (Arb.fromGen (Gen.choose (0, 100000))) (fun seed ->
                        let trials, nuisance, data, voxels = arrayProblem seed
                        let options = { GlmOptions.defaults with Threads = 1 }
                        let k, nb = Array2D.length2 trials, Array2D.length2 nuisance
                        let n = Array2D.length1 trials
                        let lsa = BetaSeriesArrays.lsa options trials nuisance (Float64 data)
                        let design = Array2D.init n (k + nb) (fun i j -> if j < k then trials[i, j] else nuisance[i, j - k])
                        let fit = Regression.fit options design (Float64 data)
                        lsa = Array.init (k * voxels) (fun i -> fit.Betas[(i / k) * (k + nb) + i % k]))

                testCase "AR(1) LSS without a constant in the design is refused (nilearn centres residuals on their grand mean)" <| fun () ->
                    let trials, _, data, _ = arrayProblem 7
                    let n = Array2D.length1 trials
                    let nuisance = Array2D.init n 1 (fun i _ -> float i)
                    Expect.throwsT<ArgumentException>
                        (fun () -> BetaSeriesArrays.lss GlmOptions.defaults trials nuisance (Float64 data) |> ignore)
                        "no constant"

                testCase "LSS on arrays does not depend on the thread count or chunk size (exactly)" <| fun () ->
                    let trials, nuisance, data, _ = arrayProblem 11
                    let one = BetaSeriesArrays.lss { GlmOptions.defaults with Threads = 1 } trials nuisance (Float64 data)
                    let many = BetaSeriesArrays.lss { GlmOptions.defaults with Threads = 4; ChunkVoxels = 3 } trials nuisance (Float64 data)
                    Expect.equal many one "same betas" ]

          testList
              "runs"
              [ testPropertyWithConfig config "each LSS beta equals the trial's beta in a first-level model where it alone has its own condition (ols, 1e-10)" <|
                    Prop.forAll (Arb.fromGen (Gen.choose (0, 100000))) (lssEqualsSeparateFits Ols)

                testPropertyWithConfig config "each LSS beta equals the trial's beta in a first-level model where it alone has its own condition (ar1, 1e-10)" <|
                    Prop.forAll (Arb.fromGen (Gen.choose (0, 100000))) (lssEqualsSeparateFits (Ar 1))

                testPropertyWithConfig config "LSA betas equal one first-level model with one condition per trial, named condition__NNN (ar1, exactly)" <|
                    Prop.forAll (Arb.fromGen (Gen.choose (0, 100000))) (fun seed ->
                        let s = scenario seed (Ar 1)
                        let result = BetaSeries.lsa s.Options [ s.Run ]
                        // nilearn's example numbers trials in table order; ours in onset order
                        let order = Array.init s.Events.Onsets.Length id |> Array.sortBy (fun e -> struct (s.Events.Onsets[e], e))
                        let counts = Collections.Generic.Dictionary<string, int>()
                        let types = Array.copy s.Events.TrialTypes

                        for e in order do
                            let c = s.Events.TrialTypes[e]
                            counts[c] <- (match counts.TryGetValue c with | true, k -> k + 1 | _ -> 1)
                            types[e] <- sprintf "%s__%03d" c counts[c]

                        let fit = FirstLevel.fit s.Options [ { s.Run with Events = Some { s.Events with TrialTypes = types } } ]
                        let glm = fit.Runs[0].Glm

                        result.Trials
                        |> Array.forall (fun trial ->
                            let j = Array.IndexOf(fit.Runs[0].Design.ColumnNames, types[eventOf s trial])
                            betasOf result trial = Array.init glm.Voxels (fun v -> glm.Betas[v * glm.Regressors + j])))

                testCase "LSS of two runs equals each run's own LSS, trials numbered across runs" <| fun () ->
                    let a, b = scenario 3 (Ar 1), scenario 4 (Ar 1)
                    let b = { b with Options = a.Options; Run = { b.Run with Confounds = None } }
                    let a = { a with Run = { a.Run with Confounds = None } }
                    let together = BetaSeries.lss a.Options [ a.Run; b.Run ]
                    let first = BetaSeries.lss a.Options [ a.Run ]
                    let second = BetaSeries.lss a.Options [ b.Run ]

                    for c in together.Conditions do
                        let i = Array.IndexOf(together.Conditions, c)
                        let part (r: BetaSeriesResult) = match Array.IndexOf(r.Conditions, c) with -1 -> [||] | j -> r.Betas[j]
                        Expect.equal together.Betas[i] (Array.append (part first) (part second)) $"betas of {c}"

                    let runs = together.Trials |> Array.map (fun t -> t.Run) |> Array.distinct |> Array.sort
                    Expect.equal runs [| 0; 1 |] "trials of both runs"

                testPropertyWithConfig config "with a sample mask, each LSS beta equals the separate first-level fit of the kept scans (ar1, 1e-10)" <|
                    Prop.forAll (Arb.fromGen (Gen.choose (0, 100000))) (fun seed ->
                        let s = scenario seed (Ar 1)
                        let scans = match s.Run.Bold with BoldVolumes(_, _, v) -> v.Length | _ -> 0
                        // scrub every seventh scan
                        let kept = Array.init scans id |> Array.filter (fun t -> t % 7 <> 3)
                        let s = { s with Run = { s.Run with SampleMask = Some kept } }
                        let result = BetaSeries.lss s.Options [ s.Run ]

                        result.Trials
                        |> Array.forall (fun trial ->
                            let expected, kappa = separateFit s (eventOf s trial)
                            Array.forall2 (closeFor kappa) (betasOf result trial) expected))

                testCase "a condition with one trial and impulse (zero-duration) trials are fitted like any other" <| fun () ->
                    let s = scenario 5 Ols
                    let events =
                        { Onsets = [| 10.0; 30.0; 50.0; 70.0 |]
                          Durations = [| 0.0; 0.0; 2.0; 0.0 |]
                          TrialTypes = [| "a"; "a"; "a"; "single" |]
                          Modulations = Array.create 4 1.0 }
                    let s = { s with Events = events; Run = { s.Run with Events = Some events } }
                    let result = BetaSeries.lss s.Options [ s.Run ]
                    Expect.equal (result.Trials |> Array.map (fun t -> t.Condition)) [| "a"; "a"; "a"; "single" |] "trials"

                    for trial in result.Trials do
                        let expected = separateFitBeta s (eventOf s trial)
                        Expect.isTrue (Array.forall2 close (betasOf result trial) expected) $"trial at {trial.Onset}"

                testCase "trials are ordered by onset within a condition, whatever the table order" <| fun () ->
                    let s = scenario 6 Ols
                    let events =
                        { Onsets = [| 50.0; 10.0; 30.0 |]
                          Durations = [| 1.0; 1.0; 1.0 |]
                          TrialTypes = [| "a"; "a"; "a" |]
                          Modulations = Array.create 3 1.0 }
                    let result = BetaSeries.lss s.Options [ { s.Run with Events = Some events } ]
                    Expect.equal (result.Trials |> Array.map (fun t -> t.Onset, t.Index)) [| 10.0, 0; 30.0, 1; 50.0, 2 |] "onset order" ]

          testList
              "bad input"
              [ testCase "an event after the run's last scan is refused, naming the run and the event" <| fun () ->
                    let s = scenario 8 Ols
                    let e = s.Events
                    let late = { e with Onsets = Array.append e.Onsets [| 10000.0 |]; Durations = Array.append e.Durations [| 1.0 |]; TrialTypes = Array.append e.TrialTypes [| "face" |]; Modulations = Array.append e.Modulations [| 1.0 |] }
                    expectInput $"events of run 1, event {e.Onsets.Length + 1} ('face')" (fun () -> box (BetaSeries.lss s.Options [ { s.Run with Events = Some late } ]))

                testCase "an event ending before the modelled start (min_onset) is refused, naming the event" <| fun () ->
                    let s = scenario 9 Ols
                    let e = s.Events
                    let early = { e with Onsets = Array.append [| -100.0 |] e.Onsets; Durations = Array.append [| 1.0 |] e.Durations; TrialTypes = Array.append [| "house" |] e.TrialTypes; Modulations = Array.append [| 1.0 |] e.Modulations }
                    expectInput "event 1 ('house')" (fun () -> box (BetaSeries.lsa s.Options [ { s.Run with Events = Some early } ]))

                testCase "noise models other than ols and ar1 are refused, naming noise_model" <| fun () ->
                    let s = scenario 10 (Ar 2)
                    expectInput "noise_model" (fun () -> box (BetaSeries.lss s.Options [ s.Run ]))

                testCase "an HRF with several regressors per trial is refused, naming hrf_model" <| fun () ->
                    let s = scenario 10 Ols
                    expectInput "hrf_model" (fun () -> box (BetaSeries.lss { s.Options with HrfModel = Hrf.GloverDerivative } [ s.Run ]))

                testCase "a run without events is refused, naming it" <| fun () ->
                    let s = scenario 10 Ols
                    expectInput "events of run 1" (fun () -> box (BetaSeries.lss s.Options [ { s.Run with Events = None } ]))

                testCase "no TR is refused, naming t_r" <| fun () ->
                    let s = scenario 10 Ols
                    expectInput "t_r" (fun () -> box (BetaSeries.lss { s.Options with TR = None } [ s.Run ]))

                testCase "writing into a non-empty directory is refused, naming it" <| fun () ->
                    let s = scenario 12 Ols
                    let result = BetaSeries.lss s.Options [ s.Run ]
                    let dir = Path.Combine(Path.GetTempPath(), $"fmriglm-bs-{Guid.NewGuid():N}")
                    Directory.CreateDirectory dir |> ignore
                    File.WriteAllText(Path.Combine(dir, "x"), "")
                    try expectInput dir (fun () -> box (BetaSeries.writeOutputs dir result))
                    finally Directory.Delete(dir, true) ]

          testCase "writeOutputs writes one 4D map per condition (trials as volumes) and trials.tsv with volume indices" <| fun () ->
              let s = scenario 13 Ols
              let result = BetaSeries.lss s.Options [ s.Run ]
              let dir = Path.Combine(Path.GetTempPath(), $"fmriglm-bs-{Guid.NewGuid():N}")

              try
                  BetaSeries.writeOutputs dir result

                  for c in result.Conditions do
                      let image = Nifti.read (Path.Combine(dir, $"{c}_betas.nii.gz"))
                      let count = result.Trials |> Array.filter (fun t -> t.Condition = c) |> Array.length
                      Expect.equal image.Header.Shape [| 4L; 3L; 2L; int64 count |] $"shape of {c}"
                      Expect.equal image.Data (BetaSeries.image result c) $"values of {c}"

                  let lines = File.ReadAllLines(Path.Combine(dir, "trials.tsv"))
                  Expect.equal lines[0] "condition\tonset\tduration\trun\tvolume_index" "header"
                  Expect.equal (lines.Length - 1) result.Trials.Length "one row per trial"
              finally
                  if Directory.Exists dir then Directory.Delete(dir, true) ]
