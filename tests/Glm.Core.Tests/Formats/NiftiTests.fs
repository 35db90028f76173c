module FmriGlm.Core.Tests.NiftiTests

open System
open System.IO
open System.IO.Compression
open System.Security.Cryptography
open System.Text.Json
open Expecto
open FsCheck
open FsCheck.FSharp
open FmriGlm.Core
open FmriGlm.Core.Tests.TestHelpers

let private exact: Accuracy = { absolute = 0.0; relative = 0.0 }
let private atol1e12: Accuracy = { absolute = 1e-12; relative = 0.0 }
let private rtol1e12: Accuracy = { absolute = 0.0; relative = 1e-12 }

/// A JSON number, or one of the strings "nan", "inf", "-inf".
let private num (e: JsonElement) =
    match e.ValueKind with
    | JsonValueKind.String ->
        match e.GetString() with
        | "nan" -> nan
        | "inf" -> infinity
        | "-inf" -> -infinity
        | s -> failwith $"not a number: {s}"
    | _ -> e.GetDouble()

let private nums (e: JsonElement) =
    [| for x in e.EnumerateArray() -> num x |]

let private matrix4 (e: JsonElement) =
    array2D [ for row in e.EnumerateArray() -> nums row ]

/// Every (case, file) of tests/data/nifti with a values.tsv, with the header_fields entry of that file.
let private referenceFiles =
    [ for case' in Reference.cases "nifti" do
          if case' <> "external" then
              let expected =
                  JsonDocument.Parse(File.ReadAllText(Reference.path "nifti" case' "expected.json")).RootElement

              for file in expected.GetProperty("header_fields").EnumerateObject() do
                  yield case', file.Name, file.Value, expected.GetProperty "nibabel" ]

let private externalFiles =
    [ "anatomical.nii"
      "example4d.nii.gz"
      "example_nifti2.nii.gz"
      "functional.nii" ]

let private externalFacts (file: string) =
    let json = Path.ChangeExtension(Path.ChangeExtension(file, null), null) + ".json"
    JsonDocument.Parse(File.ReadAllText(Reference.path "nifti" "external" json)).RootElement

/// SHA-256 of the values as float64 little-endian, the reference's data fingerprint.
let private sha256 (values: float[]) =
    let bytes = Array.zeroCreate<byte> (8 * values.Length)

    values
    |> Array.iteri (fun i v -> Buffers.Binary.BinaryPrimitives.WriteDoubleLittleEndian(Span(bytes, 8 * i, 8), v))

    Convert.ToHexString(SHA256.HashData bytes).ToLowerInvariant()

let private checkHeader (where: string) (h: NiftiHeader) (fields: JsonElement) =
    let i (name: string) = fields.GetProperty(name).GetInt64()
    let f (name: string) = num (fields.GetProperty name)
    Expect.equal h.Version (int (i "nifti_version")) $"{where} nifti_version"
    Expect.equal h.BigEndian (fields.GetProperty("endianness").GetString() = "big") $"{where} endianness"
    Expect.equal h.SizeOfHeader (int (i "sizeof_hdr")) $"{where} sizeof_hdr"
    Expect.equal h.Magic (fields.GetProperty("magic").GetString()) $"{where} magic"
    Expect.equal h.Dim [| for d in fields.GetProperty("dim").EnumerateArray() -> d.GetInt64() |] $"{where} dim"
    Expect.equal h.DatatypeCode (int (i "datatype")) $"{where} datatype"
    Expect.equal h.Bitpix (int (i "bitpix")) $"{where} bitpix"
    Close.all exact h.Pixdim (nums (fields.GetProperty "pixdim")) $"{where} pixdim"
    Expect.equal (float h.VoxOffset) (f "vox_offset") $"{where} vox_offset"
    Close.all exact [| h.SclSlope; h.SclInter |] [| f "scl_slope"; f "scl_inter" |] $"{where} scl_slope, scl_inter"
    Expect.equal h.XyztUnits (int (i "xyzt_units")) $"{where} xyzt_units"

    let units =
        [| for u in fields.GetProperty("units").EnumerateArray() -> u.GetString() |]

    Expect.equal [| h.SpatialUnit; h.TimeUnit |] units $"{where} units"
    Expect.equal h.IntentCode (int (i "intent_code")) $"{where} intent_code"
    Expect.equal (h.QformCode, h.SformCode) (int (i "qform_code"), int (i "sform_code")) $"{where} qform/sform codes"
    Close.all exact h.Quaternion [| f "quatern_b"; f "quatern_c"; f "quatern_d" |] $"{where} quatern_b/c/d"
    Close.all exact h.QOffset [| f "qoffset_x"; f "qoffset_y"; f "qoffset_z" |] $"{where} qoffset"
    Close.all exact h.SrowX (nums (fields.GetProperty "srow_x")) $"{where} srow_x"
    Close.all exact h.SrowY (nums (fields.GetProperty "srow_y")) $"{where} srow_y"
    Close.all exact h.SrowZ (nums (fields.GetProperty "srow_z")) $"{where} srow_z"
    Expect.equal h.Descrip (fields.GetProperty("descrip").GetString()) $"{where} descrip"
    Expect.equal h.SliceCode (int (i "slice_code")) $"{where} slice_code"

    Close.all
        exact
        [| h.Toffset; h.CalMin; h.CalMax |]
        [| f "toffset"; f "cal_min"; f "cal_max" |]
        $"{where} toffset, cal_min, cal_max"

    let extensions =
        [ for e in fields.GetProperty("extensions").EnumerateArray() ->
              e.GetProperty("ecode").GetInt32(), e.GetProperty("esize").GetInt32(), e.GetProperty("content").GetString() ]

    let actual =
        [ for e in h.Extensions ->
              // nibabel strips trailing NULs from an extension's content
              e.Code, e.Content.Length + 8, Text.Encoding.Latin1.GetString(e.Content).TrimEnd '\000' ]

    Expect.equal actual extensions $"{where} extensions"

let private checkNibabel (where: string) (h: NiftiHeader) (data: float[]) (facts: JsonElement) =
    Expect.equal h.Shape [| for d in facts.GetProperty("shape").EnumerateArray() -> d.GetInt64() |] $"{where} shape"
    Expect.equal h.VoxOffset (facts.GetProperty("data_offset").GetInt64()) $"{where} data offset"
    Close.matrix atol1e12 h.Affine (matrix4 (facts.GetProperty "affine")) $"{where} affine"
    Close.matrix atol1e12 h.Affine (matrix4 (facts.GetProperty "best_affine")) $"{where} best affine"
    Close.matrix atol1e12 h.QformAffine (matrix4 (facts.GetProperty "qform_affine")) $"{where} qform affine"
    Close.matrix atol1e12 h.SformAffine (matrix4 (facts.GetProperty "sform_affine")) $"{where} sform affine"
    Close.all exact h.Zooms (nums (facts.GetProperty "zooms")) $"{where} zooms"
    let summary = facts.GetProperty "data_summary"
    Expect.equal data.Length (summary.GetProperty("n_values").GetInt32()) $"{where} n_values"
    let count p = data |> Array.filter p |> Array.length
    Expect.equal (count Double.IsNaN) (summary.GetProperty("n_nan").GetInt32()) $"{where} n_nan"
    Expect.equal (count Double.IsPositiveInfinity) (summary.GetProperty("n_posinf").GetInt32()) $"{where} n_posinf"
    Expect.equal (count Double.IsNegativeInfinity) (summary.GetProperty("n_neginf").GetInt32()) $"{where} n_neginf"
    let finite = data |> Array.filter Double.IsFinite

    if finite.Length = data.Length then
        Close.all
            exact
            [| Array.min data; Array.max data |]
            [| num (summary.GetProperty "min"); num (summary.GetProperty "max") |]
            $"{where} min, max"

        Close.all
            rtol1e12
            [| Array.sum data; Array.average data |]
            [| num (summary.GetProperty "sum"); num (summary.GetProperty "mean") |]
            $"{where} sum, mean"

    Expect.equal
        (sha256 data)
        (summary.GetProperty("sha256_float64le_fortran").GetString())
        $"{where} SHA-256 of the float64 values"

let private withTempDirectory (f: string -> 'a) =
    let dir = Path.Combine(Path.GetTempPath(), "fmriglm-nifti-" + Guid.NewGuid().ToString("N"))
    Directory.CreateDirectory dir |> ignore

    try
        f dir
    finally
        Directory.Delete(dir, true)

let private readVolumes (path: string) =
    use reader = Nifti.openVolumes path

    Array.init (int reader.VolumeCount) (fun _ -> reader.NextVolume())
    |> Array.concat

let private parity =
    testList
        "parity"
        [ for case', file, fields, facts in referenceFiles do
              let path = Reference.path "nifti" case' file

              testCase $"nibabel 5.0.0 load: {case'}/{file} data exact, header exact, affines atol 1e-12"
              <| fun () ->
                  let image = Nifti.read path
                  let expected = Tsv.column (Reference.path "nifti" case' "values.tsv") "value"
                  Close.all exact image.Data expected $"{case'}/{file} values"
                  checkHeader $"{case'}/{file}" image.Header fields
                  checkNibabel $"{case'}/{file}" image.Header image.Data facts

              testCase
                  $"nibabel 5.0.0 load: {case'}/{file} as float32 = float32(values), volume by volume = whole, value range = finite min/max (exact)"
              <| fun () ->
                  let expected = Tsv.column (Reference.path "nifti" case' "values.tsv") "value"
                  let single = (Nifti.readFloat32 path).Data |> Array.map float
                  Close.all exact single (expected |> Array.map (float32 >> float)) $"{case'}/{file} float32"
                  Close.all exact (readVolumes path) expected $"{case'}/{file} volumes"
                  let finite = expected |> Array.filter Double.IsFinite
                  Expect.equal (Nifti.valueRange path) (Some(Array.min finite, Array.max finite)) $"{case'}/{file} value range"
          for case', file in [ "4d-float32-tr", "image.nii.gz"; "dtype-int16", "image.nii" ] do
              testCase $"nibabel 5.0.0 load: {case'}/{file} as voxel series = the transposed values (exact)"
              <| fun () ->
                  let expected = Tsv.column (Reference.path "nifti" case' "values.tsv") "value"
                  let image = Nifti.readVoxelSeries (Reference.path "nifti" case' file)
                  let shape = image.Header.Shape
                  let scans = if shape.Length > 3 then int shape[3] else 1
                  let voxels = expected.Length / scans

                  let transposed =
                      Array.init expected.Length (fun k -> expected[(k % scans) * voxels + k / scans])

                  Close.all exact (image.Data |> Array.map float) (transposed |> Array.map (float32 >> float)) "series"
          for case' in
              [ "dtype-uint8"
                "dtype-int16"
                "dtype-int32"
                "dtype-float32"
                "dtype-float64"
                "float32-nan-inf"
                "4d-float32-tr" ] do
              testCase
                  $"nibabel 5.0.0 save: writing {case'} again gives nibabel's header (dims, datatype, pixdim, vox_offset, codes, quaternion, sform exact) and data"
              <| fun () ->
                  withTempDirectory (fun dir ->
                      let reference = Nifti.read (Reference.path "nifti" case' "image.nii")
                      let r = reference.Header
                      let path = Path.Combine(dir, "again.nii")
                      let options =
                          { Nifti.writeOptions r.Shape r.Affine with
                              Datatype = r.Datatype
                              TR = r.TR
                              Descrip = r.Descrip }
                      Nifti.write path options reference.Data
                      let h = (Nifti.read path).Header
                      Expect.equal (File.ReadAllBytes path).Length (File.ReadAllBytes(Reference.path "nifti" case' "image.nii")).Length "file size"
                      Expect.equal (h.Dim, h.DatatypeCode, h.Bitpix, h.VoxOffset) (r.Dim, r.DatatypeCode, r.Bitpix, r.VoxOffset) "dim, datatype, bitpix, vox_offset"
                      Close.all exact h.Pixdim[..4] r.Pixdim[..4] "pixdim[0..4]"
                      Expect.equal (h.QformCode, h.SformCode) (r.QformCode, r.SformCode) "codes"
                      Close.all exact (Array.concat [ h.Quaternion; h.QOffset; h.SrowX; h.SrowY; h.SrowZ ]) (Array.concat [ r.Quaternion; r.QOffset; r.SrowX; r.SrowY; r.SrowZ ]) "quaternion, qoffset, srow"
                      Close.all exact (Nifti.read path).Data reference.Data "data")
          for case' in [ "qform-only"; "qform-and-sform-differ" ] do
              testCase $"nibabel 5.0.0 set_qform: qfac, zooms and quaternion (up to sign) of {case'} from its qform affine (atol 1e-6)"
              <| fun () ->
                  let r = (Nifti.readHeader (Reference.path "nifti" case' "image.nii"))
                  let qfac, zooms, bcd = NiftiAffines.qformParameters r.QformAffine
                  Expect.equal qfac r.Pixdim[0] "qfac"
                  Close.all { absolute = 1e-6; relative = 0.0 } zooms r.Pixdim[1..3] "zooms"
                  // a 180° rotation has w ≈ 0, where (w, b, c, d) and −(w, b, c, d) are the same rotation
                  let sign = if bcd[1] * r.Quaternion[1] + bcd[2] * r.Quaternion[2] + bcd[0] * r.Quaternion[0] < 0.0 then -1.0 else 1.0
                  Close.all { absolute = 1e-6; relative = 0.0 } (bcd |> Array.map ((*) sign)) r.Quaternion "quatern_b/c/d"
          for file in externalFiles do
              testCase
                  $"nibabel 5.0.0 load: external/{file} (nibabel test data) header exact, samples exact, affines atol 1e-12"
              <| fun () ->
                  let path = Reference.path "nifti" "external" file
                  let image = Nifti.read path
                  let facts = externalFacts file
                  checkHeader $"external/{file}" image.Header (facts.GetProperty "header_fields")
                  checkNibabel $"external/{file}" image.Header image.Data (facts.GetProperty "nibabel")
                  let shape = image.Header.Shape

                  for sample in facts.GetProperty("sample_values").EnumerateArray() do
                      let index =
                          [| for k in sample.GetProperty("index").EnumerateArray() -> k.GetInt64() |]

                      let mutable flat = 0L

                      for k in index.Length - 1 .. -1 .. 0 do
                          flat <- flat * shape[k] + index[k]

                      Expect.equal
                          image.Data[int flat]
                          (num (sample.GetProperty "value"))
                          $"external/{file} value at {index}" ]

// ---- laws ----

type private RoundTrip =
    { Shape: int64[]
      Affine: float[,]
      Datatype: NiftiDatatype
      Values: float[]
      TR: float option
      Gzip: bool }

let private genAffine =
    gen {
        let! q = Gen.arrayOfLength 4 (Gen.choose (-1000, 1000))
        let q = q |> Array.map float
        let norm = sqrt (Array.sumBy (fun x -> x * x) q)

        let w, x, y, z =
            if norm = 0.0 then
                1.0, 0.0, 0.0, 0.0
            else
                q[0] / norm, q[1] / norm, q[2] / norm, q[3] / norm

        let r =
            array2D
                [ [ 1.0 - 2.0 * (y * y + z * z); 2.0 * (x * y - w * z); 2.0 * (x * z + w * y) ]
                  [ 2.0 * (x * y + w * z); 1.0 - 2.0 * (x * x + z * z); 2.0 * (y * z - w * x) ]
                  [ 2.0 * (x * z - w * y); 2.0 * (y * z + w * x); 1.0 - 2.0 * (x * x + y * y) ] ]

        let! zooms = Gen.arrayOfLength 3 (Gen.choose (1, 80))
        let! flip = Gen.elements [ 1.0; -1.0 ]
        let! offsets = Gen.arrayOfLength 3 (Gen.choose (-20000, 20000))

        return
            Array2D.init 4 4 (fun i j ->
                if i = 3 then
                    (if j = 3 then 1.0 else 0.0)
                elif j = 3 then
                    float offsets[i] / 100.0
                else
                    r[i, j] * float zooms[j] / 20.0 * (if j = 2 then flip else 1.0))
    }

let private genValue (dt: NiftiDatatype) =
    match dt with
    | NiftiDatatype.UInt8 -> Gen.choose (0, 255) |> Gen.map float
    | NiftiDatatype.Int16 -> Gen.choose (-32768, 32767) |> Gen.map float
    | NiftiDatatype.Int32 -> Gen.choose (Int32.MinValue, Int32.MaxValue) |> Gen.map float
    | NiftiDatatype.Float32 -> ArbMap.defaults |> ArbMap.generate<float32> |> Gen.map float
    | _ -> ArbMap.defaults |> ArbMap.generate<float>

let private genRoundTrip =
    gen {
        let! dt =
            Gen.elements
                [ NiftiDatatype.Float32
                  NiftiDatatype.Float64
                  NiftiDatatype.Int16
                  NiftiDatatype.UInt8
                  NiftiDatatype.Int32 ]

        let! axes = Gen.elements [ 3; 4 ]
        let! shape = Gen.arrayOfLength axes (Gen.choose (1, 5))
        let shape = shape |> Array.map int64
        let! values = Gen.arrayOfLength (int (Array.fold (*) 1L shape)) (genValue dt)
        let! affine = genAffine
        let! tr = Gen.elements [ None; Some 2.0; Some 0.72; Some 1.5 ]
        let! gzip = Gen.elements [ true; false ]

        return
            { Shape = shape
              Affine = affine
              Datatype = dt
              Values = values
              TR = tr
              Gzip = gzip }
    }

let private config =
    { FsCheckConfig.defaultConfig with
        maxTest = 100 }

/// The sform is stored as float32 in NIfTI-1: each element comes back within half an ulp, 2⁻²⁴ relative.
let private float32Rounding: Accuracy = { absolute = 1e-300; relative = 6e-8 }

let private flat (m: float[,]) =
    Array.init 16 (fun k -> m[k / 4, k % 4])

let private laws =
    testList
        "laws"
        [ testPropertyWithConfig
              config
              "write → read returns the data exactly, the affine within float32 rounding (relative 6e-8), the qform within 5e-3 mm, every writable datatype"
          <| Prop.forAll (Arb.fromGen genRoundTrip) (fun rt ->
              withTempDirectory (fun dir ->
                  let path = Path.Combine(dir, if rt.Gzip then "x.nii.gz" else "x.nii")

                  let options =
                      { Nifti.writeOptions rt.Shape rt.Affine with
                          Datatype = rt.Datatype
                          TR = rt.TR
                          Descrip = "round trip" }

                  Nifti.write path options rt.Values
                  let back = Nifti.read path
                  Close.all exact back.Data rt.Values "data"
                  Expect.equal back.Header.Shape rt.Shape "shape"
                  Expect.equal back.Header.Datatype rt.Datatype "datatype"
                  Expect.equal back.Header.Descrip "round trip" "descrip"
                  Close.all float32Rounding (flat back.Header.Affine) (flat rt.Affine) "affine (sform)"
                  // The qform goes through a float32 quaternion and w = √(1 − b² − c² − d²) is recomputed on reading:
                  // near a 180° rotation w is small and a float32 rounding of b, c, d (~6e-8) moves w by up to
                  // √1.2e-7 ≈ 3.5e-4; rotation entries move by 2w·x, times zooms ≤ 4 mm: ≤ 2.8e-3 mm. Hence 5e-3 mm, a
                  // limit of the NIfTI-1 format (the sform, the best affine here, is exact to float32 rounding).
                  Close.all
                      { absolute = 5e-3; relative = 0.0 }
                      (flat back.Header.QformAffine)
                      (flat rt.Affine)
                      "qform affine (atol 5e-3 mm)"

                  match rt.TR with
                  | Some tr when rt.Shape.Length = 4 ->
                      Expect.floatClose Accuracy.high back.Header.TR.Value (float (float32 tr)) "TR"
                  | _ -> ()

                  Expect.isEmpty (Directory.GetFiles(dir, "*.tmp")) "no temporary left"))

          testPropertyWithConfig
              config
              "writeFloat32 → readFloat32 is the identity, bit for bit (NaN, ±inf, −0 included)"
          <| Prop.forAll
              (Arb.fromGen (Gen.arrayOfLength 60 (ArbMap.defaults |> ArbMap.generate<float32>)))
              (fun values ->
                  withTempDirectory (fun dir ->
                      let path = Path.Combine(dir, "x.nii.gz")

                      Nifti.writeFloat32
                          path
                          (Nifti.writeOptions
                              [| 3L; 4L; 1L; 5L |]
                              (array2D [ [ 2.0; 0; 0; 1 ]; [ 0; 2; 0; 2 ]; [ 0; 0; 2; 3 ]; [ 0; 0; 0; 1 ] ]))
                          values

                      let back = (Nifti.readFloat32 path).Data

                      Expect.equal
                          (back |> Array.map BitConverter.SingleToInt32Bits)
                          (values |> Array.map BitConverter.SingleToInt32Bits)
                          "bits"))

          testPropertyWithConfig
              config
              "qform from an affine (rotation × zooms, either handedness) gives back the affine (atol 1e-9)"
          <| Prop.forAll (Arb.fromGen genAffine) (fun affine ->
              // headerFor keeps the quaternion and zooms in float64 (they are rounded only when serialised)
              let h = NiftiWriting.headerFor (Nifti.writeOptions [| 2L; 2L; 2L |] affine)

              Close.all
                  { absolute = 1e-9; relative = 0.0 }
                  (flat (NiftiAffines.qformAffine h))
                  (flat affine)
                  "qform affine")

          testCase "an axis above 32767 is written as NIfTI-2 (540-byte header, vox_offset 544) and read back exactly"
          <| fun () ->
              withTempDirectory (fun dir ->
                  let path = Path.Combine(dir, "long.nii.gz")
                  let data = Array.init 40000 (fun i -> float (i % 251))

                  let options =
                      { Nifti.writeOptions
                            [| 40000L; 1L; 1L |]
                            (array2D [ [ 1.0; 0; 0; 0 ]; [ 0; 1; 0; 0 ]; [ 0; 0; 1; 0 ]; [ 0; 0; 0; 1 ] ]) with
                          Datatype = NiftiDatatype.UInt8 }

                  Nifti.write path options data
                  let back = Nifti.read path
                  Expect.equal (back.Header.Version, back.Header.VoxOffset) (2, 544L) "NIfTI-2"
                  Close.all exact back.Data data "data")

          testCase "a 5D image with a size-1 4th axis reads as a series of its 5th axis; other 5D shapes are refused"
          <| fun () ->
              withTempDirectory (fun dir ->
                  let source = Reference.path "nifti" "dtype-int16" "image.nii"

                  let put (k: int) (v: int16) (b: byte[]) =
                      let b = Array.copy b
                      Buffers.Binary.BinaryPrimitives.WriteInt16LittleEndian(Span(b, 40 + 2 * k, 2), v)
                      b

                  let five = Path.Combine(dir, "five.nii")
                  File.WriteAllBytes(five, (put 0 5s >> put 3 1s >> put 4 1s >> put 5 2s) (File.ReadAllBytes source))
                  use reader = Nifti.openVolumes five
                  Expect.equal (reader.VolumeCount, reader.VoxelsPerVolume) (2L, 12) "2 volumes of 4×3×1"

                  let expected =
                      Tsv.column (Reference.path "nifti" "dtype-int16" "values.tsv") "value"

                  Close.all exact (Array.append (reader.NextVolume()) (reader.NextVolume())) expected "values"
                  let bad = Path.Combine(dir, "bad.nii")
                  File.WriteAllBytes(bad, (put 0 5s >> put 3 1s >> put 4 2s >> put 5 1s) (File.ReadAllBytes source))

                  Expect.throwsT<GlmInputException>
                      (fun () -> Nifti.read bad |> ignore)
                      "5D with dim[4] = 2 is refused")

          testCase "a streaming write of volume after volume equals the whole write, byte for byte (.nii)"
          <| fun () ->
              withTempDirectory (fun dir ->
                  let shape = [| 4L; 3L; 2L; 5L |]
                  let data = Array.init 120 (fun i -> float32 (sin (float i)))

                  let options =
                      Nifti.writeOptions
                          shape
                          (array2D [ [ 3.0; 0; 0; 0 ]; [ 0; 3; 0; 0 ]; [ 0; 0; 3; 0 ]; [ 0; 0; 0; 1 ] ])

                  Nifti.writeFloat32 (Path.Combine(dir, "whole.nii")) options data

                  do
                      use w = Nifti.createWriter (Path.Combine(dir, "stream.nii")) options

                      for t in 0..4 do
                          w.WriteVolume(ReadOnlySpan(data, t * 24, 24))

                      w.Complete()

                  Expect.equal
                      (File.ReadAllBytes(Path.Combine(dir, "stream.nii")))
                      (File.ReadAllBytes(Path.Combine(dir, "whole.nii")))
                      "bytes") ]

// ---- errors ----

let private faultOf (f: unit -> 'a) =
    try
        f () |> ignore
        None
    with :? GlmInputException as e ->
        Some e

let private expectError (path: string) (fragment: string) (f: unit -> 'a) =
    match faultOf f with
    | Some e ->
        Expect.equal e.Input path "the error names the file"
        Expect.stringContains e.Problem fragment "the error names the fault"
    | None -> failtest $"no GlmInputException for {path} (expected '{fragment}')"

let private patched (dir: string) (name: string) (source: string) (patch: byte[] -> byte[]) =
    let path = Path.Combine(dir, name)
    File.WriteAllBytes(path, patch (File.ReadAllBytes source))
    path

let private gzipBytes (bytes: byte[]) =
    use out = new MemoryStream()

    do
        use z = new GZipStream(out, CompressionLevel.Fastest)
        z.Write(bytes, 0, bytes.Length)

    out.ToArray()

let private int16At (offset: int) (value: int16) (bytes: byte[]) =
    let b = Array.copy bytes
    Buffers.Binary.BinaryPrimitives.WriteInt16LittleEndian(Span(b, offset, 2), value)
    b

let private uncompressedReferences =
    [ for case', file, _, _ in referenceFiles do
          if file.EndsWith ".nii" then
              Reference.path "nifti" case' file ]
    @ [ Reference.path "nifti" "external" "anatomical.nii"
        Reference.path "nifti" "external" "functional.nii" ]

let private genMutation =
    gen {
        let! file = Gen.elements uncompressedReferences
        let size = int (FileInfo(file).Length)
        let! flips = Gen.listOfLength 4 (Gen.zip (Gen.choose (0, min 560 size - 1)) (Gen.choose (0, 255)))
        let! cut = Gen.frequency [ 1, Gen.constant size; 1, Gen.choose (0, size) ]
        let! gzip = Gen.elements [ false; true ]
        let! corruptGzip = Gen.frequency [ 3, Gen.constant None; 1, Gen.choose (10, 400) |> Gen.map Some ]
        let! cutGzip = Gen.frequency [ 3, Gen.constant None; 1, Gen.choose (0, 400) |> Gen.map Some ]
        return file, flips, cut, gzip, (corruptGzip, cutGzip)
    }

let private errors =
    testList
        "errors"
        [ testCase "a missing file, a directory and an empty file are named as such"
          <| fun () ->
              withTempDirectory (fun dir ->
                  let missing = Path.Combine(dir, "missing.nii")
                  expectError missing "no such file" (fun () -> Nifti.read missing)
                  expectError dir "directory" (fun () -> Nifti.readHeader dir)
                  let empty = Path.Combine(dir, "empty.nii")
                  File.WriteAllBytes(empty, [||])
                  expectError empty "empty file" (fun () -> Nifti.read empty))

          testCase "sizeof_hdr neither 348 nor 540, bad magic, unsupported datatype, bad dims"
          <| fun () ->
              withTempDirectory (fun dir ->
                  let source = Reference.path "nifti" "dtype-int16" "image.nii"

                  let p =
                      patched dir "size.nii" source (fun b ->
                          let b = Array.copy b in
                          b[0] <- 0x5duy
                          b)

                  expectError p "sizeof_hdr is 349" (fun () -> Nifti.read p)

                  let p =
                      patched dir "magic.nii" source (fun b ->
                          let b = Array.copy b in
                          b[345] <- byte 'x'
                          b)

                  expectError p "bad magic 'nx1'" (fun () -> Nifti.read p)
                  let p = patched dir "complex.nii" source (int16At 70 32s)
                  expectError p "unsupported datatype 32" (fun () -> Nifti.read p)
                  let p = patched dir "negative.nii" source (int16At 42 -4s)
                  expectError p "dim[1] = -4" (fun () -> Nifti.read p)
                  let p = patched dir "axes.nii" source (int16At 40 9s)
                  expectError p "dim[0] = 9" (fun () -> Nifti.read p)

                  let huge =
                      int16At 40 3s >> int16At 42 32767s >> int16At 44 32767s >> int16At 46 32767s

                  let p = patched dir "huge.nii" source huge
                  expectError p "more than an array can hold" (fun () -> Nifti.read p)

                  let absurd =
                      int16At 40 4s
                      >> int16At 42 2000s
                      >> int16At 44 2000s
                      >> int16At 46 500s
                      >> int16At 48 4s

                  let p = patched dir "absurd.nii" source absurd
                  expectError p "truncated data" (fun () -> Nifti.read p)
                  let p = patched dir "absurd.nii.gz" source (absurd >> gzipBytes)
                  expectError p "a gzip file of" (fun () -> Nifti.read p))

          testCase "dims whose product overflows 64 bits are refused (NIfTI-2)"
          <| fun () ->
              withTempDirectory (fun dir ->
                  let source = Reference.path "nifti" "nifti2-float32" "image.nii"

                  let put (k: int) (v: int64) (b: byte[]) =
                      let b = Array.copy b
                      Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(Span(b, 16 + 8 * k, 8), v)
                      b

                  let p =
                      patched
                          dir
                          "overflow.nii"
                          source
                          (put 0 4L >> put 1 (1L <<< 40) >> put 2 (1L <<< 40) >> put 3 2L)

                  expectError p "overflows" (fun () -> Nifti.read p))

          testCase "truncated header, truncated data (.nii and .nii.gz) and corrupt gzip"
          <| fun () ->
              withTempDirectory (fun dir ->
                  let source = Reference.path "nifti" "4d-float32-tr" "image.nii"
                  let p = patched dir "header.nii" source (fun b -> b[..199])
                  expectError p "truncated header" (fun () -> Nifti.read p)
                  let p = patched dir "data.nii" source (fun b -> b[.. b.Length - 2])
                  expectError p "truncated data" (fun () -> Nifti.read p)
                  let p = patched dir "data.nii.gz" source (fun b -> gzipBytes b[.. b.Length - 5])
                  expectError p "truncated voxel data" (fun () -> Nifti.read p)

                  let p =
                      patched dir "corrupt.nii.gz" source (fun b ->
                          let z = gzipBytes b in
                          z[20] <- z[20] ^^^ 0xffuy
                          z[21] <- 0xffuy
                          z)

                  match faultOf (fun () -> Nifti.read p) with
                  | Some e -> Expect.equal e.Input p "names the file"
                  | None -> failtest "a corrupt gzip stream was read without error")

          testCase "a failed write leaves neither the target nor a temporary; an existing target is untouched"
          <| fun () ->
              withTempDirectory (fun dir ->
                  let path = Path.Combine(dir, "out.nii.gz")
                  File.WriteAllText(path, "previous")

                  let options =
                      { Nifti.writeOptions
                            [| 2L; 2L; 1L |]
                            (array2D [ [ 1.0; 0; 0; 0 ]; [ 0; 1; 0; 0 ]; [ 0; 0; 1; 0 ]; [ 0; 0; 0; 1 ] ]) with
                          Datatype = NiftiDatatype.Int16 }

                  Expect.throwsT<ArgumentException>
                      (fun () -> Nifti.write path options [| 1.0; 2.0; 40000.0; 3.0 |])
                      "40000 is no int16"

                  Expect.equal (File.ReadAllText path) "previous" "target untouched"
                  Expect.equal (Directory.GetFiles dir).Length 1 "no temporary left"
                  let fresh = Path.Combine(dir, "fresh.nii")

                  Expect.throwsT<ArgumentException>
                      (fun () -> Nifti.write fresh options [| 1.0; 2.5; 3.0; 4.0 |])
                      "2.5 is no int16"

                  Expect.isFalse (File.Exists fresh) "no partial file"
                  expectError dir "directory" (fun () -> Nifti.write dir options [| 1.0; 2.0; 3.0; 4.0 |]))

          testPropertyWithConfig
              { config with maxTest = 300 }
              "mutated headers, truncated files, corrupt and cut gzip streams give a successful read or GlmInputException, nothing else"
          <| Prop.forAll (Arb.fromGen genMutation) (fun (file, flips, cut, gzip, (corruptGzip, cutGzip)) ->
              withTempDirectory (fun dir ->
                  let bytes = File.ReadAllBytes file

                  for at, value in flips do
                      if at < bytes.Length then
                          bytes[at] <- byte value

                  let bytes = bytes[.. cut - 1]

                  let bytes =
                      if gzip then
                          let z = gzipBytes bytes

                          match corruptGzip with
                          | Some at when at < z.Length -> z[at] <- z[at] ^^^ 0x5auy
                          | _ -> ()

                          match cutGzip with
                          | Some at when at < z.Length -> z[.. at - 1]
                          | _ -> z
                      else
                          bytes

                  let path = Path.Combine(dir, if gzip then "fuzz.nii.gz" else "fuzz.nii")
                  File.WriteAllBytes(path, bytes)

                  let attempt (f: unit -> unit) =
                      try
                          f ()
                      with :? GlmInputException as e ->
                          Expect.equal e.Input path "names the file"

                  attempt (fun () -> Nifti.read path |> ignore)
                  attempt (fun () -> Nifti.readFloat32 path |> ignore)
                  attempt (fun () -> Nifti.valueRange path |> ignore))) ]

[<Tests>]
let tests = testList "Nifti" [ parity; laws; errors ]
