module FmriGlm.Core.Tests.MaskingTests

open System
open Expecto
open FsCheck
open FsCheck.FSharp
open FmriGlm.Core
open FmriGlm.Core.Tests.TestHelpers

let private config = { FsCheckConfig.defaultConfig with maxTest = 100 }

/// A small grid and a random binary mask on it.
let private genMask =
    gen {
        let! x = Gen.choose (1, 7)
        let! y = Gen.choose (1, 7)
        let! z = Gen.choose (1, 7)
        let shape = { X = x; Y = y; Z = z }
        let! density = Gen.elements [ 0.2; 0.5; 0.8 ]
        let! bits = Gen.arrayOfLength shape.Count (Gen.map (fun (u: float) -> u < density) (Gen.choose (0, 999) |> Gen.map (fun k -> float k / 1000.0)))
        return shape, bits
    }

/// Keyword arguments of a case's Python call, e.g. "opening=1" → Some "1".
let private keyword (call: string) (name: string) =
    let m = Text.RegularExpressions.Regex.Match(call, name + @"=([^,)\s]+)")
    if m.Success then Some m.Groups[1].Value else None

/// The mean image nilearn computes a mask from: 4D images averaged in the image's dtype (float32 → Single).
let private meanImage (path: string) =
    let image = Nifti.read path
    let h = image.Header
    let shape = { X = int h.Shape[0]; Y = int h.Shape[1]; Z = int h.Shape[2] }
    let precision = if h.Datatype = NiftiDatatype.Float32 then Single else Double
    let volumes = image.Data.Length / shape.Count
    let mean =
        if volumes = 1 then Array.map (fun x -> if precision = Single then float (float32 x) else x) image.Data
        else Masking.meanVolume precision (Seq.init volumes (fun t -> image.Data[t * shape.Count .. (t + 1) * shape.Count - 1]))
    shape, precision, mean

let private referenceMask area case' =
    (Nifti.read (Reference.path area case' "mask.nii.gz")).Data |> Array.map (fun x -> x <> 0.0)

let private expectSameMask (actual: bool[]) (expected: bool[]) what =
    let differing = [ for v in 0 .. expected.Length - 1 do if actual[v] <> expected[v] then yield v ]
    Expect.isEmpty differing $"{what}: voxels (Fortran index) where the mask differs from nilearn's"

[<Tests>]
let tests =
    testList "Masking" [
        testList "laws" [
            testPropertyWithConfig config "erosion is contained in the mask and dilation contains it" <|
                Prop.forAll (Arb.fromGen genMask) (fun (shape, mask) ->
                    let e = Masking.erode shape 1 mask
                    let d = Masking.dilate shape 1 mask
                    Array.forall2 (fun m x -> not x || m) mask e && Array.forall2 (fun m x -> not m || x) mask d)

            testPropertyWithConfig config "erosion is the complement of dilating the complement, with the border unset (duality)" <|
                Prop.forAll (Arb.fromGen genMask) (fun (shape, mask) ->
                    // scipy's border_value=0 makes erosion treat outside as unset; dilation of the complement with
                    // outside unset differs only on the border, where erosion is always unset.
                    let e = Masking.erode shape 1 mask
                    let dc = Masking.dilate shape 1 (Array.map not mask)
                    Array.forall2 (fun ev dv -> not (ev && dv)) e dc)

            testPropertyWithConfig config "largest connected component is one component of the mask, at least as large as any other" <|
                Prop.forAll (Arb.fromGen genMask) (fun (shape, mask) ->
                    let largest = Masking.largestConnectedComponent shape mask
                    let members = [ for v in 0 .. mask.Length - 1 do if largest[v] then yield v ]

                    match members with
                    | [] -> not (Array.exists id mask)
                    | first :: _ ->
                        let comp = Grid.faceComponent shape mask first
                        let sameSet = comp.Count = members.Length && members |> List.forall comp.Contains
                        let biggest =
                            [ 0 .. mask.Length - 1 ] |> List.filter (fun v -> mask[v])
                            |> List.forall (fun v -> (Grid.faceComponent shape mask v).Count <= comp.Count)
                        sameSet && biggest)

            testPropertyWithConfig config "Gaussian kernel is symmetric and sums to 1 (1e-15)" <|
                Prop.forAll (Arb.fromGen (Gen.choose (1, 500) |> Gen.map (fun k -> float k / 100.0))) (fun sigma ->
                    let w = Masking.gaussianKernel sigma 4.0
                    abs (Array.sum w - 1.0) < 1e-15 && Array.forall2 (=) w (Array.rev w))

            testPropertyWithConfig config "smoothing a constant volume leaves it constant (reflect mode, 1e-12)" <|
                Prop.forAll (Arb.fromGen (Gen.zip genMask (Gen.choose (-1000, 1000)))) (fun ((shape, _), c) ->
                    let volume = Array.create shape.Count (float c)
                    let s = Masking.smooth Double shape [| 2.0; 2.0; 3.0 |] [| 5.0; 4.0; 6.0 |] volume
                    s |> Array.forall (fun x -> abs (x - float c) <= 1e-12 * (1.0 + abs (float c))))

            testPropertyWithConfig config "EPI mask is unchanged when intensities are scaled by a power of two" <|
                Prop.forAll (Arb.fromGen (Gen.zip genMask (Gen.choose (-3, 3)))) (fun ((shape, bits), e) ->
                    let mean = bits |> Array.mapi (fun v b -> (if b then 100.0 else 5.0) + float (v % 7))
                    let scaled = mean |> Array.map (fun x -> x * (2.0 ** float e))
                    let a = Masking.computeEpiMask Single Masking.defaultEpiMaskOptions shape mean
                    let b = Masking.computeEpiMask Single Masking.defaultEpiMaskOptions shape scaled
                    a.Mask = b.Mask)

            testCase "mean of volumes in Single precision accumulates in float32" <| fun () ->
                // 2^24 + 1 is not a float32: the float32 sum of [2^24; 1; 1] stays 2^24 at each step.
                let v = Masking.meanVolume Single [ [| 16777216.0 |]; [| 1.0 |]; [| 1.0 |] ]
                Expect.equal v[0] (float (float32 (16777216.0 / 3.0))) "float32 sequential sum, then division"
                let d = Masking.meanVolume Double [ [| 16777216.0 |]; [| 1.0 |]; [| 1.0 |] ]
                Expect.equal d[0] (16777218.0 / 3.0) "float64"
        ]
        testList "parity" [
            for case' in Reference.cases "masking" do
                let calls = (Reference.parameters "masking" case').GetProperty("calls")
                let call = calls[0].GetString()
                let input = if case'.StartsWith "compute_background_mask" then "image.nii.gz" else "epi.nii.gz"
                let expectedJson = IO.File.ReadAllText(Reference.path "masking" case' "expected.json")
                let expectedDoc = Text.Json.JsonDocument.Parse expectedJson
                let expectedCount = expectedDoc.RootElement.GetProperty("n_voxels").GetInt32()
                let callee = call.Substring(0, call.IndexOf '(')
                let functionName = callee.Substring(callee.LastIndexOf '=' + 1).Trim()

                testCase $"{case'} = nilearn 0.13.1 {functionName}, exact" <| fun () ->
                    let shape, precision, mean = meanImage (Reference.path "masking" case' input)
                    let flag name fallback = keyword call name |> Option.map ((=) "True") |> Option.defaultValue fallback
                    let parse (v: string) = Double.Parse(v, Globalization.CultureInfo.InvariantCulture)
                    let number name fallback = keyword call name |> Option.map parse |> Option.defaultValue fallback

                    let result =
                        if case'.StartsWith "compute_background_mask" then
                            let opening = keyword call "opening" |> Option.map int |> Option.defaultValue 0
                            Masking.computeBackgroundMask shape 2 opening (flag "connected" false) mean
                        else
                            let options =
                                { Masking.defaultEpiMaskOptions with
                                    LowerCutoff = number "lower_cutoff" 0.2
                                    UpperCutoff = number "upper_cutoff" 0.85
                                    Opening = keyword call "opening" |> Option.map int |> Option.defaultValue 2
                                    Connected = flag "connected" true
                                    ExcludeZeros = flag "exclude_zeros" false }
                            Masking.computeEpiMask precision options shape mean

                    expectSameMask result.Mask (referenceMask "masking" case') case'
                    Expect.equal (result.Mask |> Array.filter id |> Array.length) expectedCount "n_voxels of expected.json"
        ]
        testList "errors" [
            testCase "a mean image that does not fit the grid is a contract violation" <| fun () ->
                Expect.throwsT<ArgumentException>
                    (fun () -> Masking.computeEpiMask Double Masking.defaultEpiMaskOptions { X = 2; Y = 2; Z = 2 } [| 1.0 |] |> ignore)
                    "length mismatch"
        ]
    ]
