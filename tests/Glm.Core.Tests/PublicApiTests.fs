/// The public surface of FmriGlm.Core and FmriGlm.Plotting, approved: a change to either shows up as a reviewed
/// diff of tests/api/<assembly>.approved.txt (docs/architecture.md, "Public API approval").
module FmriGlm.Core.Tests.PublicApiTests

open System
open System.IO
open System.Reflection
open Expecto
open PublicApiGenerator

/// tests/api, found by walking up from the test binary as tests/data is.
let private apiDir = Path.Combine(Path.GetDirectoryName TestHelpers.Reference.dataDir, "api")

/// Compares the generated public API of an assembly with its approved text. On a difference it writes
/// `<name>.received.txt` beside the approved file; FMRIGLM_ACCEPT_API=1 rewrites the approved file instead.
let approve (assembly: Assembly) =
    let name = assembly.GetName().Name
    // F#'s compiler bookkeeping attributes say nothing a reviewer needs and would double the file.
    let options =
        ApiGeneratorOptions(
            IncludeAssemblyAttributes = false,
            ExcludeAttributes =
                [| "Microsoft.FSharp.Core.CompilationMappingAttribute"
                   "Microsoft.FSharp.Core.CompilationArgumentCountsAttribute"
                   "Microsoft.FSharp.Core.CompilationSourceNameAttribute"
                   "System.Diagnostics.DebuggerDisplayAttribute"
                   "System.Diagnostics.DebuggerNonUserCodeAttribute"
                   "System.Runtime.CompilerServices.CompilerGeneratedAttribute"
                   "System.Diagnostics.CodeAnalysis.DynamicDependencyAttribute"
                   "System.SerializableAttribute" |]
        )
    let generated = (ApiGenerator.GeneratePublicApi(assembly, options)).Replace("\r\n", "\n").TrimEnd() + "\n"
    let approvedPath = Path.Combine(apiDir, $"{name}.approved.txt")
    let receivedPath = Path.Combine(apiDir, $"{name}.received.txt")

    if Environment.GetEnvironmentVariable "FMRIGLM_ACCEPT_API" = "1" then
        File.WriteAllText(approvedPath, generated)
        if File.Exists receivedPath then File.Delete receivedPath
    else
        let approved = if File.Exists approvedPath then File.ReadAllText(approvedPath).Replace("\r\n", "\n") else ""

        if approved <> generated then
            File.WriteAllText(receivedPath, generated)
            failtestf
                "the public API of %s differs from %s: review `diff %s %s`, then accept it by copying the received file over the approved one (or run the tests with FMRIGLM_ACCEPT_API=1)"
                name approvedPath approvedPath receivedPath
        elif File.Exists receivedPath then
            File.Delete receivedPath

[<Tests>]
let tests =
    testList
        "PublicApi"
        [ testCase "FmriGlm.Core's public surface equals tests/api/FmriGlm.Core.approved.txt" <| fun () ->
              approve typeof<FmriGlm.Core.GlmInputException>.Assembly
          testCase "FmriGlm.Plotting's public surface equals tests/api/FmriGlm.Plotting.approved.txt" <| fun () ->
              approve (Assembly.Load "FmriGlm.Plotting") ]
