module FmriGlm.Core.Tests.TypesTests

open Expecto
open FmriGlm.Core

[<Tests>]
let tests =
    testList "Types" [
        testList "errors" [
            testCase "GlmInputException message is 'input: problem'" <| fun () ->
                let e = GlmInputException("bold.nii.gz", "truncated header")
                Expect.equal e.Message "bold.nii.gz: truncated header" "message"
        ]
    ]
