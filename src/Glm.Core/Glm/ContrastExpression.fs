namespace FmriGlm.Core

open System
open FParsec

type ContrastExpressionError =
    | UnknownColumn of name: string * closest: string list
    | Malformed of position: int * expected: string
    | NoColumn of expression: string
    | NotFinite of expression: string * weights: float[]

    member e.Message =
        match e with
        | UnknownColumn(name, []) -> $"'{name}' is not a design column"
        | UnknownColumn(name, closest) ->
            let names = closest |> List.map (fun c -> $"'{c}'") |> String.concat ", "
            $"'{name}' is not a design column; the closest are {names}"
        | Malformed(position, expected) -> $"malformed contrast expression at position {position}: {expected}"
        | NoColumn expression -> $"'{expression}' names no design column"
        | NotFinite(expression, weights) ->
            let shown = weights |> Array.map string |> String.concat ", "
            $"'{expression}' gives weights that are not finite numbers ([{shown}]): a division by zero or an overflow"

module ContrastExpression =

    type private Expr =
        | Number of float
        | Name of string * position: int64
        | Negate of Expr
        | Binary of char * Expr * Expr

    /// A column name stands for its unit vector and every operation is element-wise with scalars broadcast,
    /// as pandas' DataFrame.eval over the identity matrix does.
    type private Value =
        | Scalar of float
        | Vector of float[]

    let private expression: Parser<Expr, unit> =
        let ws = spaces

        let number =
            numberLiteral (NumberLiteralOptions.AllowFraction ||| NumberLiteralOptions.AllowExponent) "number"
            |>> fun n -> Number(float n.String)

        let identifier =
            getPosition
            .>>. (many1Satisfy2L
                      (fun c -> Char.IsLetter c || c = '_')
                      (fun c -> Char.IsLetterOrDigit c || c = '_')
                      "column name"
                  <|> between (pchar '`') (pchar '`') (many1Satisfy (fun c -> c <> '`')))
            |>> fun (pos, name) -> Name(name, pos.Column)

        let expr, exprRef = createParserForwardedToRef<Expr, unit> ()
        let factor, factorRef = createParserForwardedToRef<Expr, unit> ()

        let atom =
            (number <|> identifier <|> between (pchar '(' .>> ws) (pchar ')') expr) .>> ws

        factorRef.Value <-
            (pchar '-' >>. ws >>. factor |>> Negate)
            <|> (pchar '+' >>. ws >>. factor)
            <|> atom

        let op (chars: string) =
            let label = chars |> Seq.map (fun c -> $"'{c}'") |> String.concat " or "
            (anyOf chars <?> label) .>> ws

        let term = chainl1 factor (op "*/" |>> fun c l r -> Binary(c, l, r))
        exprRef.Value <- chainl1 term (op "+-" |>> fun c l r -> Binary(c, l, r))
        ws >>. expr .>> eof

    let private levenshtein (a: string) (b: string) =
        let d =
            Array2D.init (a.Length + 1) (b.Length + 1) (fun i j ->
                if i = 0 then j
                elif j = 0 then i
                else 0)

        for i in 1 .. a.Length do
            for j in 1 .. b.Length do
                let cost =
                    if Char.ToLowerInvariant a[i - 1] = Char.ToLowerInvariant b[j - 1] then
                        0
                    else
                        1

                d[i, j] <- min (min (d[i - 1, j] + 1) (d[i, j - 1] + 1)) (d[i - 1, j - 1] + cost)

        d[a.Length, b.Length]

    /// <summary>The design columns closest to <c>name</c> by edit distance, at most three.</summary>
    let private closestColumns (columns: string list) (name: string) : string list =
        columns |> List.sortBy (fun c -> levenshtein name c, c) |> List.truncate 3

    let parse (columns: string list) (text: string) : Result<float[], ContrastExpressionError> =
        let cols = Array.ofList columns

        match Array.tryFindIndex ((=) text) cols with
        | Some i -> Result.Ok(Array.init cols.Length (fun j -> if i = j then 1.0 else 0.0))
        | None ->
            match run expression text with
            | Failure(_, error, _) ->
                let expected =
                    let message =
                        error.ToString().Split('\n')
                        |> Array.map (fun l -> l.Trim())
                        |> Array.filter ((<>) "")

                    message
                    |> Array.skipWhile (fun l -> not (l.StartsWith "Expecting"))
                    |> Array.tryHead
                    |> Option.defaultValue "a number, a column name or '('"

                Result.Error(Malformed(int error.Position.Column, expected))
            | Success(ast, _, _) ->
                let map2 f a b =
                    match a, b with
                    | Scalar x, Scalar y -> Scalar(f x y)
                    | Vector x, Scalar y -> Vector(Array.map (fun v -> f v y) x)
                    | Scalar x, Vector y -> Vector(Array.map (fun v -> f x v) y)
                    | Vector x, Vector y -> Vector(Array.map2 f x y)

                let rec eval e =
                    match e with
                    | Number x -> Result.Ok(Scalar x)
                    | Name(name, _) ->
                        match Array.tryFindIndex ((=) name) cols with
                        | Some i -> Result.Ok(Vector(Array.init cols.Length (fun j -> if i = j then 1.0 else 0.0)))
                        | None -> Result.Error(UnknownColumn(name, closestColumns columns name))
                    | Negate x -> eval x |> Result.map (fun v -> map2 (fun a _ -> -a) v (Scalar 0.0))
                    | Binary(op, l, r) ->
                        let f =
                            match op with
                            | '+' -> (+)
                            | '-' -> (-)
                            | '*' -> (*)
                            | _ -> (/)

                        match eval l, eval r with
                        | Result.Ok a, Result.Ok b -> Result.Ok(map2 f a b)
                        | Result.Error e, _
                        | _, Result.Error e -> Result.Error e

                match eval ast with
                | Result.Ok(Vector v) when not (Array.forall Double.IsFinite v) -> Result.Error(NotFinite(text, v))
                | Result.Ok(Vector v) -> Result.Ok v
                | Result.Ok(Scalar _) -> Result.Error(NoColumn text)
                | Result.Error e -> Result.Error e
