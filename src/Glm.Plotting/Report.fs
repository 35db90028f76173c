/// The HTML report of a model, after nilearn's generate_report: model parameters, design matrices, contrast
/// matrices, and for each contrast the thresholded z map drawn as axial slices over a background image, its maximum
/// intensity projections and its clusters table. One self-contained file: every image is a base64 PNG.
module FmriGlm.Plotting.Report

open System
open System.IO
open System.Net
open System.Text
open SkiaSharp
open ScottPlot
open FmriGlm.Core

/// One contrast of a report: its expression, its weights over the first design's columns, the z map (full grid).
type ReportContrast =
    { Name: string
      Weights: float[]
      ZMap: float[] }

/// Everything a report shows.
type ReportInput =
    { Title: string
      Parameters: (string * string) list
      Designs: DesignMatrix list
      Contrasts: ReportContrast list
      Shape: GridShape
      Affine: float[,]
      Zooms: float[]
      /// The grey background of the slices (mean image, or the mask), full grid.
      Background: float[]
      Mask: bool[]
      Threshold: ThresholdOptions
      Warnings: string list }

let private png (bitmap: SKBitmap) =
    use image = SKImage.FromBitmap bitmap
    use data = image.Encode(SKEncodedImageFormat.Png, 100)
    data.ToArray()

let private dataUri (bytes: byte[]) = "data:image/png;base64," + Convert.ToBase64String bytes

/// Colour of a supra-threshold z: red → yellow for positive values, blue → cyan for negative ones (nilearn's cold_hot).
let private zColour (threshold: float) (vmax: float) (z: float) =
    let f = min 1.0 ((abs z - threshold) / max 1e-9 (vmax - threshold))
    let g = byte (255.0 * f)
    if z > 0.0 then SKColor(255uy, g, 0uy) else SKColor(0uy, g, 255uy)

let private grey (lo: float) (hi: float) (x: float) =
    let g = byte (255.0 * (if hi > lo then max 0.0 (min 1.0 ((x - lo) / (hi - lo))) else 0.0))
    SKColor(g, g, g)

let private robustRange (values: float[]) =
    let inside = values |> Array.filter (fun x -> Double.IsFinite x && x <> 0.0) |> Array.sort

    if inside.Length = 0 then 0.0, 1.0
    // from 0 to 1.4× the 98th percentile: the brain in mid greys, so the coloured voxels stand out
    else min 0.0 inside[0], 1.4 * inside[int (0.98 * float (inside.Length - 1))]

/// Axial slices (k evenly spaced through the mask) of the thresholded z over the background, in one row; the i axis
/// runs left to right and j bottom to top, as nilearn's plot_stat_map draws axial cuts in neurological view.
let statSlicesPng (shape: GridShape) (background: float[]) (mask: bool[]) (threshold: float) (zMap: float[]) : byte[] =
    let scale = max 2 (180 / max shape.X shape.Y)
    let ks = [ for k in 0 .. shape.Z - 1 do
                   if Seq.exists (fun j -> Seq.exists (fun i -> mask[shape.Index(i, j, k)]) (seq { 0 .. shape.X - 1 })) (seq { 0 .. shape.Y - 1 }) then k ]
    let ks = if ks.IsEmpty then [ 0 .. shape.Z - 1 ] else ks
    let count = min 7 ks.Length
    let chosen = List.init count (fun n -> ks[(n * (ks.Length - 1)) / max 1 (count - 1)]) |> List.distinct
    let lo, hi = robustRange background
    let vmax = zMap |> Array.fold (fun m z -> if Double.IsFinite z then max m (abs z) else m) threshold
    let w, h = shape.X * scale, shape.Y * scale
    use bitmap = new SKBitmap(chosen.Length * (w + 4), h)

    chosen
    |> List.iteri (fun n k ->
        for i in 0 .. shape.X - 1 do
            for j in 0 .. shape.Y - 1 do
                let v = shape.Index(i, j, k)
                let z = zMap[v]
                let colour = if Double.IsFinite z && abs z >= threshold && z <> 0.0 then zColour threshold vmax z else grey lo hi background[v]

                for a in 0 .. scale - 1 do
                    for b in 0 .. scale - 1 do
                        bitmap.SetPixel(n * (w + 4) + i * scale + a, (shape.Y - 1 - j) * scale + b, colour))

    png bitmap

/// Maximum-intensity projections of |z| above the threshold (glass-brain-like): sagittal, coronal and axial, the
/// mask's outline in grey; the sign of the projected voxel gives the colour.
let mipPng (shape: GridShape) (mask: bool[]) (threshold: float) (zMap: float[]) : byte[] =
    let scale = max 2 (160 / max shape.X (max shape.Y shape.Z))
    let vmax = zMap |> Array.fold (fun m z -> if Double.IsFinite z then max m (abs z) else m) threshold
    // view: (width axis, height axis, projected axis); axes 0 = i, 1 = j, 2 = k
    let views = [ 1, 2, 0; 0, 2, 1; 0, 1, 2 ]
    let size a = match a with 0 -> shape.X | 1 -> shape.Y | _ -> shape.Z
    let widths = views |> List.map (fun (a, _, _) -> size a * scale)
    let height = (views |> List.map (fun (_, b, _) -> size b) |> List.max) * scale
    use bitmap = new SKBitmap(List.sum widths + 8, height)
    bitmap.Erase(SKColors.White)
    let mutable x0 = 0

    for (a, b, c), width in List.zip views widths do
        for u in 0 .. size a - 1 do
            for w in 0 .. size b - 1 do
                let mutable best = 0.0
                let mutable inBrain = false

                for t in 0 .. size c - 1 do
                    let idx = Array.zeroCreate 3
                    idx[a] <- u
                    idx[b] <- w
                    idx[c] <- t
                    let v = shape.Index(idx[0], idx[1], idx[2])
                    inBrain <- inBrain || mask[v]
                    let z = zMap[v]
                    if Double.IsFinite z && abs z >= threshold && abs z > abs best then best <- z

                let colour =
                    if best <> 0.0 then zColour threshold vmax best
                    elif inBrain then SKColor(225uy, 225uy, 225uy)
                    else SKColors.White

                for p in 0 .. scale - 1 do
                    for q in 0 .. scale - 1 do
                        bitmap.SetPixel(x0 + u * scale + p, height - 1 - (w * scale + q), colour)

        x0 <- x0 + width + 4

    png bitmap

/// The contrast matrix as nilearn's plot_contrast_matrix draws it: one row of weights over the design columns,
/// coloured from blue (negative) to red (positive), column names on top.
let contrastPng (columnNames: string[]) (weights: float[]) : byte[] =
    use plot = new Plot()
    let p = weights.Length
    // ScottPlot 5 draws nothing for a one-row or one-column heatmap: the row (and a single column) is doubled
    let heatmap = plot.Add.Heatmap(Array2D.init 2 (max 2 p) (fun _ j -> weights[min j (p - 1)]))
    heatmap.Colormap <- Colormaps.Balance()
    let m = weights |> Array.fold (fun a w -> max a (abs w)) 1e-9
    heatmap.ManualRange <- Nullable(ScottPlot.Range(-m, m))
    heatmap.Rectangle <- Nullable(CoordinateRect(-0.5, float p - 0.5, -0.5, 0.5))
    heatmap.Axes.XAxis <- plot.Axes.Top
    plot.Axes.SetLimitsX(-0.5, float p - 0.5, plot.Axes.Top)
    plot.Axes.SetLimitsY(-0.5, 0.5)
    let ticks = TickGenerators.NumericManual()
    columnNames |> Array.iteri (fun j name -> ticks.AddMajor(float j, name))
    plot.Axes.Top.TickGenerator <- ticks
    plot.Axes.Top.IsVisible <- true
    plot.Axes.Top.TickLabelStyle.Rotation <- -60.0f
    plot.Axes.Top.TickLabelStyle.Alignment <- Alignment.LowerLeft
    plot.Axes.Top.MinimumSize <- float32 (8 * (columnNames |> Array.map String.length |> Array.fold max 4) + 20)
    plot.Axes.Bottom.IsVisible <- false
    plot.Axes.Left.IsVisible <- false
    plot.GetImageBytes(max 420 (60 + 28 * p), 220, ImageFormat.Png)

/// The design matrix picture of DesignPlot (written to a private temporary folder, read back, deleted).
let designPng (design: DesignMatrix) : byte[] =
    let folder = Directory.CreateTempSubdirectory("fmriglm-report-")

    try
        let path = Path.Combine(folder.FullName, "design.png")
        DesignPlot.save path design
        File.ReadAllBytes path
    finally
        folder.Delete true

let private encode (s: string) = WebUtility.HtmlEncode s

/// The report as one HTML string.
let html (input: ReportInput) : string =
    let sb = StringBuilder()
    let add (s: string) = sb.Append(s).Append('\n') |> ignore

    add "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    add $"<title>{encode input.Title}</title>"
    add "<style>body{font-family:sans-serif;margin:2em;max-width:1200px} table{border-collapse:collapse} td,th{border:1px solid #bbb;padding:2px 8px;text-align:right} th{background:#eee} img{max-width:100%;display:block;margin:0.5em 0} .warn{color:#a60}</style>"
    add "</head><body>"
    add $"<h1>{encode input.Title}</h1>"
    add "<h2 id=\"model\">Model parameters</h2><table>"

    for k, v in input.Parameters do
        add $"<tr><th style=\"text-align:left\">{encode k}</th><td style=\"text-align:left\">{encode v}</td></tr>"

    add "</table>"

    if not input.Warnings.IsEmpty then
        add "<h3>Warnings</h3><ul>"
        for w in input.Warnings do
            add $"<li class=\"warn\">{encode w}</li>"
        add "</ul>"

    add "<h2 id=\"design\">Design matrix</h2>"

    input.Designs
    |> List.iteri (fun n d ->
        add $"<h3>Run {n + 1}</h3><img class=\"design\" alt=\"design matrix of run {n + 1}\" src=\"{dataUri (designPng d)}\">")

    let columns = match input.Designs with d :: _ -> d.ColumnNames | [] -> [||]
    add "<h2 id=\"contrasts\">Contrasts</h2>"

    for c in input.Contrasts do
        add $"<h3>{encode c.Name}</h3><img class=\"contrast\" alt=\"contrast matrix {encode c.Name}\" src=\"{dataUri (contrastPng columns c.Weights)}\">"

    add "<h2 id=\"statistical-maps\">Statistical maps</h2>"
    let t = input.Threshold
    let control = match t.HeightControl with Fpr -> "fpr" | Fdr -> "fdr" | Bonferroni -> "bonferroni" | NoControl -> "none" | Fwe _ -> "fwe"
    let sides = if t.TwoSided then "two" else "one"
    add $"<p>Thresholded z maps: height control {control}, α = {t.Alpha}, cluster threshold {t.ClusterThreshold} voxels, {sides}-sided.</p>"

    for c in input.Contrasts do
        let result = Thresholding.thresholdStatsImg input.Shape t (Some input.Mask) c.ZMap
        add $"<h3>{encode c.Name}</h3><p>z threshold {result.Threshold:F3}</p>"

        if Double.IsFinite result.Threshold then
            add $"<img class=\"statmap\" alt=\"thresholded z map of {encode c.Name}, axial slices\" src=\"{dataUri (statSlicesPng input.Shape input.Background input.Mask result.Threshold result.Thresholded)}\">"
            add $"<img class=\"mip\" alt=\"maximum intensity projections of {encode c.Name}\" src=\"{dataUri (mipPng input.Shape input.Mask result.Threshold result.Thresholded)}\">"

            let table =
                Clusters.getClustersTable input.Shape input.Affine input.Zooms result.Threshold t.ClusterThreshold t.TwoSided 8.0 result.Thresholded

            add "<table class=\"clusters\"><tr><th>Cluster ID</th><th>X</th><th>Y</th><th>Z</th><th>Peak Stat</th><th>Cluster Size (mm3)</th></tr>"

            for r in table.Rows do
                let size = r.ClusterSizeMm3 |> Option.map string |> Option.defaultValue ""
                add $"<tr><td>{encode r.ClusterId}</td><td>{r.X:F1}</td><td>{r.Y:F1}</td><td>{r.Z:F1}</td><td>{r.PeakStat:F2}</td><td>{size}</td></tr>"

            add "</table>"
        else
            add "<p>No voxel survives the threshold.</p>"

    add "<p style=\"color:#777\">Generated by fmriglm (nilearn 0.13.1 semantics).</p></body></html>"
    sb.ToString()

/// Writes the report atomically (temporary beside the target, then a rename).
let write (path: string) (input: ReportInput) : unit = Bids.writeTextAtomic path (html input)
