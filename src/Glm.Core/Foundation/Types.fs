namespace FmriGlm.Core

open System

/// <summary>Bad input from a user: names the input (file, row, column, option) and what is wrong with it.</summary>
/// <remarks>Raised at the edge, where the fault is found, so that nothing fails deep in the numerics.</remarks>
type GlmInputException(input: string, problem: string) =
    inherit Exception($"{input}: {problem}")
    /// <summary>The input at fault: a file path, possibly with row and column, or an option name.</summary>
    member _.Input = input
    /// <summary>What is wrong with the input, in words a user can act on.</summary>
    member _.Problem = problem
