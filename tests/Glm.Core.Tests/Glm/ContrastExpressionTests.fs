module FmriGlm.Core.Tests.ContrastExpressionTests

open System.IO
open System.Text.Json
open Expecto
open FsCheck
open FsCheck.FSharp
open FmriGlm.Core
open FmriGlm.Core.Tests.TestHelpers

let private columns = [ "a"; "b"; "c"; "face_house"; "drift_1"; "constant" ]

let private parse text =
    match ContrastExpression.parse columns text with
    | Ok v -> v
    | Error e -> failtest e.Message

[<Tests>]
let tests =
    testList
        "ContrastExpression"
        [ testList
              "parity"
              [ testCase
                    "nilearn 0.13.1 expression_to_contrast_vector: glm/expression_to_contrast_vector (every expression, atol 1e-15 rtol 1e-15)"
                <| fun () ->
                    let root =
                        JsonDocument
                            .Parse(
                                File.ReadAllText(Reference.path "glm" "expression_to_contrast_vector" "expected.json")
                            )
                            .RootElement

                    let cols =
                        [ for c in root.GetProperty("design_columns").EnumerateArray() -> c.GetString() ]

                    for case' in root.GetProperty("cases").EnumerateArray() do
                        let text = case'.GetProperty("expression").GetString()

                        let expected =
                            [| for x in case'.GetProperty("vector").EnumerateArray() -> x.GetDouble() |]

                        match ContrastExpression.parse cols text with
                        | Ok v -> Close.all { absolute = 1e-15; relative = 1e-15 } v expected text
                        | Error e -> failtest $"{text}: {e.Message}" ]
          testList
              "laws"
              [ testProperty "the expression of weights w·names gives w back (relative 1e-12)"
                <| Prop.forAll
                    (Gen.arrayOfLength 6 (Gen.choose (-1000, 1000) |> Gen.map (fun i -> float i / 8.0))
                     |> Arb.fromGen)
                    (fun w ->
                        let text =
                            List.zip (List.ofArray w) columns
                            |> List.map (fun (x, c) ->
                                $"({x.ToString(System.Globalization.CultureInfo.InvariantCulture)})*{c}")
                            |> String.concat " + "

                        let v = parse text
                        Array.forall2 (fun a e -> abs (a - e) <= 1e-12 * abs e) v w)
                testProperty "x - y is x + (-1)*y (exact)"
                <| Prop.forAll (Gen.elements columns |> Gen.two |> Arb.fromGen) (fun (x, y) ->
                    parse $"{x} - {y}" = parse $"{x} + (-1)*{y}")
                testCase "a column name that is not an identifier is its unit vector when it is the whole text"
                <| fun () ->
                    match ContrastExpression.parse [ "face-house"; "b" ] "face-house" with
                    | Ok v -> Expect.equal v [| 1.0; 0.0 |] "unit vector"
                    | Error e -> failtest e.Message
                testCase "`quoted` names may hold any character but the backquote"
                <| fun () ->
                    match ContrastExpression.parse [ "face-house"; "b" ] "`face-house` - b" with
                    | Ok v -> Expect.equal v [| 1.0; -1.0 |] "difference"
                    | Error e -> failtest e.Message ]
          testList
              "errors"
              [ testCase "an unknown name lists the closest columns"
                <| fun () ->
                    match ContrastExpression.parse columns "fac_house - a" with
                    | Error(UnknownColumn(name, closest)) ->
                        Expect.equal name "fac_house" "name"
                        Expect.equal (List.head closest) "face_house" "closest first"
                    | other -> failtest $"%A{other}"
                testCase "a malformed expression points at the position"
                <| fun () ->
                    match ContrastExpression.parse columns "a - * b" with
                    | Error(Malformed(position, _) as e) ->
                        Expect.equal position 5 "1-based column of the '*'"
                        Expect.stringContains e.Message "position 5" "message"
                    | other -> failtest $"%A{other}"
                testCase "an unclosed parenthesis is malformed"
                <| fun () ->
                    match ContrastExpression.parse columns "(a + b" with
                    | Error(Malformed _) -> ()
                    | other -> failtest $"%A{other}"
                testCase "a bare number names no column"
                <| fun () ->
                    match ContrastExpression.parse columns "2" with
                    | Error(NoColumn _) -> ()
                    | other -> failtest $"%A{other}" ] ]
