/// The design-matrix picture of `fmriglm design --plot`, after nilearn's plot_design_matrix: each column scaled
/// to unit L2 norm, grey scale, one row per scan (scan 0 at the top), column names rotated above the columns.
module FmriGlm.Plotting.DesignPlot

open System
open System.IO
open ScottPlot
open FmriGlm.Core

/// Columns scaled to unit L2 norm as nilearn's plot_design_matrix(rescale=True) does (floor 1e-12).
let private rescaled (design: DesignMatrix) =
    let n, p = Array2D.length1 design.Values, Array2D.length2 design.Values

    let norms =
        Array.init p (fun j ->
            max 1e-12 (sqrt (Seq.sum (seq { for i in 0 .. n - 1 -> design.Values[i, j] * design.Values[i, j] }))))

    Array2D.init n p (fun i j -> design.Values[i, j] / norms[j])

/// Writes the PNG (temporary file in the same folder, then a rename over the target).
let save (path: string) (design: DesignMatrix) : unit =
    let n, p = Array2D.length1 design.Values, Array2D.length2 design.Values
    use plot = new Plot()
    // ScottPlot 5 draws nothing for a heatmap with a single row or column: doubling it along that axis draws the
    // same picture (the cells are stretched over the same rectangle).
    let values = rescaled design
    let doubled = Array2D.init (if n = 1 then 2 else n) (if p = 1 then 2 else p) (fun i j -> values[min i (n - 1), min j (p - 1)])
    let heatmap = plot.Add.Heatmap(doubled)
    heatmap.Colormap <- Colormaps.Grayscale()
    // Cell (i, j) spans x ∈ j ± ½ and y ∈ i ± ½; the y axis is inverted so scan 0 is at the top, as matplotlib's
    // imshow shows it in nilearn, and the column names are on the top axis, as nilearn puts them.
    heatmap.Rectangle <- Nullable(CoordinateRect(-0.5, float p - 0.5, -0.5, float n - 0.5))
    heatmap.Axes.XAxis <- plot.Axes.Top
    plot.Axes.SetLimitsX(-0.5, float p - 0.5, plot.Axes.Top)
    plot.Axes.SetLimitsY(float n - 0.5, -0.5)
    let ticks = TickGenerators.NumericManual()
    design.ColumnNames |> Array.iteri (fun j name -> ticks.AddMajor(float j, name))
    plot.Axes.Top.TickGenerator <- ticks
    plot.Axes.Top.IsVisible <- true
    plot.Axes.Top.TickLabelStyle.Rotation <- -60.0f
    plot.Axes.Top.TickLabelStyle.Alignment <- Alignment.LowerLeft
    plot.Axes.Top.MinimumSize <- float32 (8 * (design.ColumnNames |> Array.map String.length |> Array.fold max 4) + 20)
    plot.Axes.Bottom.IsVisible <- false
    plot.Axes.Left.Label.Text <- "scan number"
    let full = Path.GetFullPath path

    let temp =
        Path.Combine(Path.GetDirectoryName full, $".{Path.GetFileNameWithoutExtension full}.{Guid.NewGuid():N}.png")

    try
        plot.SavePng(temp, max 420 (60 + 28 * p), 720) |> ignore
        File.Move(temp, full, true)
    finally
        if File.Exists temp then
            File.Delete temp
