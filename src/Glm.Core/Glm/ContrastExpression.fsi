namespace FmriGlm.Core

/// <summary>Why a text such as "face - 0.5*(house + scene)" is not a contrast over the design columns.</summary>
type ContrastExpressionError =
    /// A name that is not a design column, with the closest column names (by edit distance).
    | UnknownColumn of name: string * closest: string list
    /// The text does not parse: the 1-based position and what was expected there.
    | Malformed of position: int * expected: string
    /// The expression names no column (a bare number), so it is no contrast.
    | NoColumn of expression: string
    /// The weights are not all finite: a division by zero (<c>faces/0</c>) or an overflow (<c>1e400*faces</c>),
    /// which would give NaN or infinite maps.
    | NotFinite of expression: string * weights: float[]

    /// <summary>The error in words a user can act on.</summary>
    member Message: string

/// <summary>Contrast expressions over design column names, as nilearn's <c>expression_to_contrast_vector</c>.</summary>
module ContrastExpression =

    /// <summary>The contrast vector of <c>text</c> over <c>columns</c> (nilearn expression_to_contrast_vector):
    /// a text equal to a column name is that column's unit vector whatever its characters; otherwise numbers,
    /// column names (or `quoted names`), + − * /, parentheses and unary minus, evaluated element-wise over
    /// the columns' unit vectors.</summary>
    val parse: columns: string list -> text: string -> Result<float[], ContrastExpressionError>
