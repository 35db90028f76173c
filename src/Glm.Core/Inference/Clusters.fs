namespace FmriGlm.Core

open System

type ClusterRow =
    { ClusterId: string
      X: float
      Y: float
      Z: float
      PeakStat: float
      ClusterSizeMm3: int option }

type ClustersTable =
    { Rows: ClusterRow list
      LabelMaps: int[] list
      Warnings: string list }

module Clusters =

    let private checkLength (shape: GridShape) (length: int) (what: string) =
        if length <> shape.Count then
            invalidArg what $"has {length} voxels but the grid {shape.X}×{shape.Y}×{shape.Z} has {shape.Count}"

    let private checkAffine (affine: float[,]) =
        if isNull affine || Array2D.length1 affine <> 4 || Array2D.length2 affine <> 4 then
            invalidArg (nameof affine) "must be a 4×4 matrix"

    /// The one 6-connected flood fill behind every labelling: gives label <paramref name="count"/> to the unlabelled
    /// component of <paramref name="mask"/> that holds <paramref name="seed"/> (which must be in the mask).
    let private fill (shape: GridShape) (mask: bool[]) (labels: int[]) (stack: Collections.Generic.Stack<int>) (seed: int) (count: int) =
        let sx = 1
        let sy = shape.X
        let sz = shape.X * shape.Y
        labels[seed] <- count
        stack.Push seed

        while stack.Count > 0 do
            let u = stack.Pop()
            let a = u % shape.X
            let b = (u / shape.X) % shape.Y
            let c = u / sz

            let inline visit w =
                if mask[w] && labels[w] = 0 then
                    labels[w] <- count
                    stack.Push w

            if a > 0 then visit (u - sx)
            if a < shape.X - 1 then visit (u + sx)
            if b > 0 then visit (u - sy)
            if b < shape.Y - 1 then visit (u + sy)
            if c > 0 then visit (u - sz)
            if c < shape.Z - 1 then visit (u + sz)

    let label (shape: GridShape) (mask: bool[]) : int[] * int =
        checkLength shape mask.Length (nameof mask)
        let labels = Array.zeroCreate<int> mask.Length
        let stack = Collections.Generic.Stack<int>()
        let mutable count = 0

        // scipy numbers components in C order (i slowest), whatever the memory order of the array.
        for i in 0 .. shape.X - 1 do
            for j in 0 .. shape.Y - 1 do
                for k in 0 .. shape.Z - 1 do
                    let v = shape.Index(i, j, k)

                    if mask[v] && labels[v] = 0 then
                        count <- count + 1
                        fill shape mask labels stack v count

        labels, count

    let internal labelMembers (shape: GridShape) (mask: bool[]) (members: int[]) (labels: int[]) : int =
        let stack = Collections.Generic.Stack<int>()
        let mutable count = 0

        for v in members do
            if labels[v] = 0 then
                count <- count + 1
                fill shape mask labels stack v count

        count

    /// Number of voxels of each label 1..count (index 0 of the result is unused).
    let private sizes (labels: int[]) (count: int) =
        let s = Array.zeroCreate (count + 1)
        for l in labels do
            if l > 0 then s[l] <- s[l] + 1
        s

    let clusterSizeFilter (shape: GridShape) (clusterThreshold: float) (volume: float[]) : float[] =
        checkLength shape volume.Length (nameof volume)
        let out = Array.copy volume

        for sign in [ 1.0; -1.0 ] do
            let labels, count = label shape (volume |> Array.map (fun x -> x * sign > 0.0))
            let size = sizes labels count

            for v in 0 .. out.Length - 1 do
                let l = labels[v]
                if l > 0 && float size[l] < clusterThreshold then out[v] <- 0.0

        out

    let thresholdImg
        (shape: GridShape)
        (threshold: float)
        (clusterThreshold: float)
        (twoSided: bool)
        (mask: bool[] option)
        (volume: float[])
        : float[] =
        checkLength shape volume.Length (nameof volume)
        mask |> Option.iter (fun m -> checkLength shape m.Length (nameof mask))

        if Double.IsNaN threshold then
            raise (GlmInputException("threshold", "is NaN"))

        if twoSided && threshold < 0.0 then
            raise (GlmInputException("threshold", $"{threshold} is negative; a two-sided threshold applies to |z| and must be ≥ 0"))

        let keep (z: float) =
            if twoSided then abs z > threshold
            elif threshold >= 0.0 then z > threshold
            else z < threshold

        let data =
            volume
            |> Array.mapi (fun v z ->
                let z = if Double.IsFinite z then z else 0.0
                let inside = match mask with Some m -> m[v] | None -> true
                if inside && keep z then z else 0.0)

        if clusterThreshold > 0.0 then clusterSizeFilter shape clusterThreshold data else data

    // ---- subpeaks (nilearn's _local_max) ----

    /// Max (or min) of the 3×3×3 neighbourhood; scipy's 'reflect' border repeats the edge voxel, so this is the
    /// extreme over the neighbours inside the grid.
    let private neighbourhoodExtreme (shape: GridShape) (pick: float -> float -> float) (data: float[]) =
        Array.init data.Length (fun v ->
            let i = v % shape.X
            let j = (v / shape.X) % shape.Y
            let k = v / (shape.X * shape.Y)
            let mutable m = data[v]

            for c in max 0 (k - 1) .. min (shape.Z - 1) (k + 1) do
                for b in max 0 (j - 1) .. min (shape.Y - 1) (j + 1) do
                    for a in max 0 (i - 1) .. min (shape.X - 1) (i + 1) do
                        m <- pick m data[shape.Index(a, b, c)]

            m)

    let private isClose (a: float) (b: float) = abs (a - b) <= 1e-8 + 1e-5 * abs b

    /// Peak and subpeaks of one cluster's masked data (zeros outside the cluster), as nilearn's
    /// _identify_subpeaks, _sort_subpeaks and _pare_subpeaks find them: (voxel, value) pairs, best first.
    /// The data is a box of the grid (shape) whose voxel (0, 0, 0) is the grid's voxel origin; positions are
    /// computed in grid indices, so that centres of mass round exactly as scipy's on the whole grid.
    let private localMaxima (shape: GridShape) (origin: int[]) (affine: float[,]) (minDistance: float) (data: float[]) =
        let dataMax = neighbourhoodExtreme shape max data
        let nonZero = data |> Array.filter (fun x -> x <> 0.0)
        let isConstant = isClose (Array.max nonZero) (Array.min nonZero)
        let dataMin = if isConstant then [||] else neighbourhoodExtreme shape min data

        let maxima =
            Array.init data.Length (fun v ->
                data[v] = dataMax[v] && data[v] <> 0.0 && (isConstant || dataMax[v] - dataMin[v] > 0.0))

        let labels, count = label shape maxima
        // scipy's center_of_mass weights positions by the data values.
        let sums = Array.zeroCreate<float> (count + 1)
        let moments = Array.init (count + 1) (fun _ -> Array.zeroCreate<float> 3)

        for i in 0 .. shape.X - 1 do
            for j in 0 .. shape.Y - 1 do
                for k in 0 .. shape.Z - 1 do
                    let v = shape.Index(i, j, k)
                    let l = labels[v]

                    if l > 0 then
                        sums[l] <- sums[l] + data[v]
                        moments[l][0] <- moments[l][0] + data[v] * float (i + origin[0])
                        moments[l][1] <- moments[l][1] + data[v] * float (j + origin[1])
                        moments[l][2] <- moments[l][2] + data[v] * float (k + origin[2])

        let peaks =
            [| for l in 1..count do
                   // np.round rounds half to even, as Math.Round does by default.
                   let ijk = Array.init 3 (fun d -> int (Math.Round(moments[l][d] / sums[l])) - origin[d])
                   let inGrid = ijk[0] >= 0 && ijk[1] >= 0 && ijk[2] >= 0 && ijk[0] < shape.X && ijk[1] < shape.Y && ijk[2] < shape.Z

                   let ijk =
                       if inGrid && labels[shape.Index(ijk[0], ijk[1], ijk[2])] = l then
                           ijk
                       else
                           // A centre of mass outside its component (a ring of equal values): the nearest voxel of
                           // the component, first in C order on ties, as nilearn's _cluster_nearest_neighbor.
                           let mutable best = [||]
                           let mutable bestDistance = infinity

                           for i in 0 .. shape.X - 1 do
                               for j in 0 .. shape.Y - 1 do
                                   for k in 0 .. shape.Z - 1 do
                                       if labels[shape.Index(i, j, k)] = l then
                                           let d = sqrt (float ((i - ijk[0]) * (i - ijk[0]) + (j - ijk[1]) * (j - ijk[1]) + (k - ijk[2]) * (k - ijk[2])))

                                           if d < bestDistance then
                                               bestDistance <- d
                                               best <- [| i; j; k |]

                           best

                   yield ijk, data[shape.Index(ijk[0], ijk[1], ijk[2])] |]
            // numpy's argsort of −values: small arrays are insertion-sorted, so ties keep label order (stable).
            |> Array.sortBy (fun (_, value) -> -value)

        let xyz =
            peaks
            |> Array.map (fun (ijk, _) ->
                let i, j, k = float (ijk[0] + origin[0]), float (ijk[1] + origin[1]), float (ijk[2] + origin[2])
                Array.init 3 (fun r -> affine[r, 0] * i + affine[r, 1] * j + affine[r, 2] * k + affine[r, 3]))

        // nilearn's _pare_subpeaks: every kept peak i re-decides each later peak j by its distance to i alone, so a
        // peak dropped because of one neighbour can come back when a later kept peak is far from it.
        let keep = Array.create peaks.Length true

        for i in 0 .. peaks.Length - 1 do
            for j in i + 1 .. peaks.Length - 1 do
                if keep[i] then
                    let d = sqrt (Array.fold2 (fun acc a b -> acc + (a - b) * (a - b)) 0.0 xyz[i] xyz[j])
                    keep[j] <- d > minDistance

        Array.zip peaks xyz |> Array.indexed |> Array.choose (fun (n, p) -> if keep[n] then Some p else None)

    let getClustersTable
        (shape: GridShape)
        (affine: float[,])
        (voxelSizes: float[])
        (statThreshold: float)
        (clusterThreshold: float)
        (twoSided: bool)
        (minDistance: float)
        (statMap: float[])
        : ClustersTable =
        checkAffine affine
        checkLength shape statMap.Length (nameof statMap)

        if isNull voxelSizes || voxelSizes.Length <> 3 then
            invalidArg (nameof voxelSizes) "must hold three voxel sizes"

        let thresholded = thresholdImg shape statThreshold clusterThreshold twoSided None statMap
        let voxelVolume = float (float32 voxelSizes[0] * float32 voxelSizes[1] * float32 voxelSizes[2])
        let below = not twoSided && statThreshold < 0.0
        let rows = ResizeArray<ClusterRow>()
        let labelMaps = ResizeArray<int[]>()
        let warnings = ResizeArray<string>()

        for sign in (if twoSided then [ 1.0; -1.0 ] else [ 1.0 ]) do
            let signed = thresholded |> Array.map (fun x -> x * sign)
            let binary = signed |> Array.map (fun x -> if below then x < statThreshold else x > statThreshold)

            if not (Array.exists id binary) then
                let side = if sign > 0.0 then "higher" else "lower"
                warnings.Add $"Attention: No clusters with stat {side} than {statThreshold * sign}"
            else
                let labels, count = label shape binary
                let voxelCount = sizes labels count
                // nilearn takes the max (or min) of signed·(label == c) over the whole grid, zeros included.
                let peak = Array.create (count + 1) 0.0

                for v in 0 .. signed.Length - 1 do
                    let l = labels[v]

                    if l > 0 then
                        peak[l] <- if below then min peak[l] signed[v] else max peak[l] signed[v]

                let size3 = [| shape.X; shape.Y; shape.Z |]
                // per label: min i, j, k then max i, j, k
                let boxes = Array.init (count + 1) (fun _ -> [| Int32.MaxValue; Int32.MaxValue; Int32.MaxValue; -1; -1; -1 |])

                for v in 0 .. labels.Length - 1 do
                    let l = labels[v]

                    if l > 0 then
                        let b = boxes[l]
                        let ijk = [| v % shape.X; (v / shape.X) % shape.Y; v / (shape.X * shape.Y) |]

                        for d in 0..2 do
                            b[d] <- min b[d] ijk[d]
                            b[d + 3] <- max b[d + 3] ijk[d]

                let order = [| 1..count |] |> Array.sortBy (fun l -> -peak[l])
                let rank = Array.zeroCreate (count + 1)
                order |> Array.iteri (fun r l -> rank[l] <- r + 1)
                labelMaps.Add(labels |> Array.map (fun l -> rank[l]))
                let offset = rows.Count

                order
                |> Array.iteri (fun r l ->
                    // The cluster's bounding box grown by one voxel (within the grid) holds every 3×3×3
                    // neighbourhood of its voxels, so the search runs on the box, not the whole grid.
                    let lo = Array.init 3 (fun d -> max 0 (boxes[l].[d] - 1))
                    let hi = Array.init 3 (fun d -> min (size3[d] - 1) (boxes[l].[d + 3] + 1))
                    let box = { X = hi[0] - lo[0] + 1; Y = hi[1] - lo[1] + 1; Z = hi[2] - lo[2] + 1 }

                    let masked =
                        Array.init box.Count (fun b ->
                            let v = shape.Index(lo[0] + b % box.X, lo[1] + (b / box.X) % box.Y, lo[2] + b / (box.X * box.Y))
                            if labels[v] = l then (if below then -signed[v] else signed[v]) else 0.0)

                    let size = int (float voxelCount[l] * voxelVolume)
                    let peaks = localMaxima box lo affine minDistance masked
                    let id = offset + r + 1

                    peaks
                    |> Array.truncate 4
                    |> Array.iteri (fun s ((_, value), xyz: float[]) ->
                        // The masked data were negated for a negative one-sided threshold; nilearn does not undo it.
                        rows.Add
                            { ClusterId = if s = 0 then string id else $"{id}{char (int 'a' + s - 1)}"
                              X = xyz[0]
                              Y = xyz[1]
                              Z = xyz[2]
                              PeakStat = value * sign
                              ClusterSizeMm3 = if s = 0 then Some size else None }))

        { Rows = List.ofSeq rows
          LabelMaps = List.ofSeq labelMaps
          Warnings = List.ofSeq warnings }

    let toTsv (rows: ClusterRow list) : string =
        let f (x: float) = x.ToString("G17", Globalization.CultureInfo.InvariantCulture)
        let sb = Text.StringBuilder()
        sb.Append("Cluster ID\tX\tY\tZ\tPeak Stat\tCluster Size (mm3)\n") |> ignore

        for r in rows do
            let size = match r.ClusterSizeMm3 with Some s -> string s | None -> ""
            sb.Append($"{r.ClusterId}\t{f r.X}\t{f r.Y}\t{f r.Z}\t{f r.PeakStat}\t{size}\n") |> ignore

        sb.ToString()
