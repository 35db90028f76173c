namespace FmriGlm.Core

open System
open System.Numerics
open System.Threading.Tasks
open FmriGlm.Core.PermutationKernel

/// <summary>The engine of <c>Permutation.permutedOls</c>: nilearn's intercept and confound handling, the observed
/// t, and the sign flips or permutations scored in blocks (the max-t null), each permutation's t map handed to the
/// cluster statistics and TFCE when asked for, then the FWE p values.</summary>
module internal PermutedOls =

    /// Working memory of one thread: weights, kernel output, per-permutation maxima, supra-threshold voxels (grid
    /// index and t), t maps for TFCE, and a grid-sized all-false mask for labelling clusters.
    type private Scratch =
        { W: float[]
          Out: float[]
          Max: float[]
          Grid: ResizeArray<int>[]
          Values: ResizeArray<float>[]
          Full: float[][]
          Inside: bool[]
          /// Grid-sized labels scratch of the null clusters, all 0 between uses.
          Labels: int[] }

    /// <summary>See <c>Permutation.permutedOls</c>.</summary>

    let run
        (options: PermutationOptions)
        (grid: MaskedGrid option)
        (tested: float[])
        (confounds: float[,] option)
        (data: VoxelData)
        : PermutationResult =
        let n = tested.Length

        let length =
            match data with
            | Float64 a -> a.Length
            | Float32 a -> a.Length

        if n < 2 then invalidArg (nameof tested) "needs at least 2 subjects"
        if length % n <> 0 then invalidArg (nameof data) $"{length} values are not voxels × {n} subjects"
        let voxels = length / n

        if options.NPerm < 0 then invalidArg (nameof options) $"NPerm must not be negative, not {options.NPerm}"

        match confounds with
        | Some c when Array2D.length1 c <> n -> invalidArg (nameof confounds) $"{Array2D.length1 c} rows for {n} subjects"
        | _ -> ()

        match options.Threshold with
        | Some p when not (p > 0.0 && p < 1.0) -> invalidArg (nameof options) $"threshold must be a p value in (0, 1), not {p}"
        | _ -> ()

        let gridOrFail () =
            match grid with
            | Some g when g.Voxels.Length = voxels -> g
            | Some g -> invalidArg (nameof grid) $"{g.Voxels.Length} grid positions for {voxels} voxels"
            | None -> invalidArg (nameof grid) "a threshold or TFCE needs the voxels' grid"

        let warnings = ResizeArray<string>()

        // --- nilearn's intercept detection and confound handling ---
        let distinct (v: float seq) = v |> Seq.distinct |> Seq.length
        let mutable interceptTest = distinct tested = 1
        let mutable modelIntercept = options.ModelIntercept

        let mutable confoundColumns =
            match confounds with
            | None -> [||]
            | Some c -> Array.init (Array2D.length2 c) (fun k -> Array.init n (fun i -> c[i, k]))

        let constants = confoundColumns |> Array.indexed |> Array.filter (fun (_, c) -> distinct c = 1) |> Array.map fst

        if (interceptTest && constants.Length = 1) || constants.Length > 1 then
            confoundColumns <- confoundColumns |> Array.indexed |> Array.filter (fun (k, _) -> not (Array.contains k constants)) |> Array.map snd
            warnings.Add "Multiple columns across \"confounding_vars\" and/or \"target_vars\" are constant. Only one will be used as intercept."
            modelIntercept <- true

        if not interceptTest && constants.Length = 1 then interceptTest <- true

        if modelIntercept && not interceptTest then
            confoundColumns <- Array.append confoundColumns [| Array.create n 1.0 |]

        let nCovars = confoundColumns.Length

        let z =
            if nCovars = 0 then [||]
            else orthonormalize (Array2D.init n nCovars (fun i k -> confoundColumns[k][i]))

        let c = z.Length
        let x = if c = 0 then normalize tested else tested |> normalize |> residualize z |> normalize
        let dofFactor = float (n - c) - 1.0

        // --- targets: normalised, confounds regressed out, normalised again; all-zero voxels are left out ---
        let value (v: int) (i: int) =
            match data with
            | Float64 a -> a[v * n + i]
            | Float32 a -> float a[v * n + i]

        let columns = Array.zeroCreate<float[]> voxels
        let valid = Array.zeroCreate<bool> voxels

        Parallel.For(0, voxels, ParallelOptions(MaxDegreeOfParallelism = max 1 options.Threads), fun v ->
            // nilearn normalises the masked data in their dtype: float32 maps are normalised in float32
            let normalized =
                match data with
                | Float32 a -> normalizeFloat32 (Array.sub a (v * n) n)
                | Float64 _ ->
                    let y = Array.init n (value v)
                    let norm = sqrt (Array.sumBy (fun a -> a * a) y)
                    y |> Array.map (fun a -> a / norm)

            if c = 0 then
                if Array.forall Double.IsFinite normalized then
                    columns[v] <- normalized
                    valid[v] <- true
            else if Array.forall Double.IsFinite normalized then
                let r = residualize z normalized
                let rn = sqrt (Array.sumBy (fun a -> a * a) r)

                if rn > 0.0 then
                    columns[v] <- r |> Array.map (fun a -> a / rn)
                    valid[v] <- true)
        |> ignore

        if Array.exists not valid then
            warnings.Add "Some descriptors in 'target_vars' have zeros across all samples. These descriptors will be ignored during null distribution generation."

        let used = [| for v in 0 .. voxels - 1 do if valid[v] then yield v |]
        let m = used.Length
        let step = 2 * lanes
        let stride = max step ((m + step - 1) / step * step)
        // subject-major: y[i·stride + u] is subject i of used voxel u; padding voxels are 0
        let y = Array.zeroCreate<float> (n * stride)

        for u in 0 .. m - 1 do
            let col = columns[used[u]]

            for i in 0 .. n - 1 do
                y[i * stride + u] <- col[i]

        let rowsPerPerm = 1 + c
        let fast = c = 0

        let toT (b: float) (a2: float) = b * sqrt (dofFactor / (1.0 - a2 - b * b))

        // weights of permutation k: rows (x, z₁ … z_c) flipped or shuffled, padded to a multiple of 4 rows
        let fillWeights (k: int64) (identity: bool) (w: float[]) (offset: int) =
            let signs = Array.create n 1.0
            let order = Array.init n id

            if not identity then
                if options.AllSignFlips then
                    for i in 0 .. n - 1 do
                        if (k >>> i) &&& 1L = 1L then signs[i] <- -1.0
                elif interceptTest then
                    let mutable rng = SplitMix(options.RandomState, k)
                    let mutable bits = 0UL

                    for i in 0 .. n - 1 do
                        if i % 64 = 0 then bits <- rng.Next()
                        if (bits >>> (i % 64)) &&& 1UL = 1UL then signs[i] <- -1.0
                else
                    let mutable rng = SplitMix(options.RandomState, k)

                    for i in n - 1 .. -1 .. 1 do
                        let j = int (rng.Next() % uint64 (i + 1))
                        let t = order[i]
                        order[i] <- order[j]
                        order[j] <- t

            for i in 0 .. n - 1 do
                w[offset + i] <- signs[i] * x[order[i]]

            for kk in 0 .. c - 1 do
                for i in 0 .. n - 1 do
                    w[offset + (1 + kk) * n + i] <- signs[i] * z[kk][order[i]]

        // --- observed t through the same kernel as the permutations (the identity then reproduces it exactly) ---
        let runRows (w: float[]) (rows: int) (perTile: int -> int -> float[] -> unit) (out: float[]) =
            let mutable v0 = 0

            while v0 < stride do
                let tile = min tileVoxels (stride - v0)
                kernel w rows n y stride v0 tile out
                perTile v0 tile out
                v0 <- v0 + tile

        let padRows r = (r + 3) / 4 * 4
        let observedB = Array.zeroCreate<float> m
        let observedA2 = Array.zeroCreate<float> m

        do
            let rows = padRows rowsPerPerm
            let w = Array.zeroCreate<float> (rows * n)
            fillWeights 0L true w 0

            runRows w rows (fun v0 tile out ->
                for j in 0 .. min tile (m - v0) - 1 do
                    observedB[v0 + j] <- out[j]
                    let mutable a2 = 0.0

                    for kk in 1..c do
                        a2 <- a2 + out[kk * tile + j] * out[kk * tile + j]

                    observedA2[v0 + j] <- a2) (Array.zeroCreate (rows * tileVoxels))

        let tUsed = Array.init m (fun u -> toT observedB[u] observedA2[u])
        let t = Array.create voxels nan

        for u in 0 .. m - 1 do
            t[used[u]] <- tUsed[u]

        let thresholdT =
            options.Threshold
            |> Option.map (fun p ->
                let dof = float (n - (1 + nCovars))
                if options.TwoSidedTest then tIsf dof (p / 2.0) else tIsf dof p)

        let needGrid = thresholdT.IsSome || options.Tfce
        let g = if needGrid then Some(gridOrFail ()) else None

        let toVolume (values: float[]) =
            let gr = g.Value
            let volume = Array.zeroCreate<float> gr.Shape.Count

            for v in 0 .. voxels - 1 do
                volume[gr.Voxels[v]] <- values[v]

            volume

        let ofVolume (volume: float[]) = g.Value.Voxels |> Array.map (fun i -> volume[i])

        // nilearn labels the t map with NaNs set to 0 by inverse_transform of finite values only (TFCE and clusters)
        let tVolume = g |> Option.map (fun _ -> toVolume (t |> Array.map (fun a -> if Double.IsNaN a then 0.0 else a)))

        let tfceObserved =
            if options.Tfce then
                Some(Tfce.tfceMap g.Value.Shape options.TwoSidedTest tVolume.Value |> ofVolume)
            else
                None

        let nPerm =
            if options.AllSignFlips then
                if not interceptTest then invalidArg (nameof options) "AllSignFlips needs a sign-flipping (intercept) test"
                if n > 30 then invalidArg (nameof options) $"AllSignFlips enumerates 2^{n} flips: at most 30 subjects"
                1 <<< n
            else
                options.NPerm

        let h0T = Array.zeroCreate<float> nPerm
        let h0Size = Array.zeroCreate<float> (if thresholdT.IsSome then nPerm else 0)
        let h0Mass = Array.zeroCreate<float> (if thresholdT.IsSome then nPerm else 0)
        let h0Tfce = Array.zeroCreate<float> (if options.Tfce then nPerm else 0)
        let blocks = (nPerm + blockSize - 1) / blockSize
        let two = options.TwoSidedTest
        // in the fast path (no confounds) t is increasing in b: compare b with the threshold's b
        let bThreshold = thresholdT |> Option.map (fun th -> th / sqrt (dofFactor + th * th))

        Parallel.For(
            0,
            blocks,
            ParallelOptions(MaxDegreeOfParallelism = max 1 options.Threads),
            (fun () ->
                let perms = blockSize
                let rows = padRows (perms * rowsPerPerm)

                { W = Array.zeroCreate<float> (rows * n)
                  Out = Array.zeroCreate<float> (rows * tileVoxels)
                  Max = Array.zeroCreate<float> perms
                  Grid = Array.init perms (fun _ -> ResizeArray<int>())
                  Values = Array.init perms (fun _ -> ResizeArray<float>())
                  Full = (if options.Tfce then Array.init perms (fun _ -> Array.zeroCreate<float> m) else [||])
                  Inside = (if needGrid then Array.zeroCreate<bool> g.Value.Shape.Count else [||])
                  Labels = (if needGrid then Array.zeroCreate<int> g.Value.Shape.Count else [||]) }),
            (fun block (_: ParallelLoopState) (s: Scratch) ->
                let first = block * blockSize
                let count = min blockSize (nPerm - first)
                Array.Clear s.W

                for p in 0 .. count - 1 do
                    let k = int64 (first + p)
                    fillWeights k false s.W (p * rowsPerPerm * n)
                    s.Max[p] <- Double.NegativeInfinity
                    s.Grid[p].Clear()
                    s.Values[p].Clear()

                let rows = padRows (count * rowsPerPerm)

                runRows s.W rows (fun v0 tile out ->
                    let valid = min tile (m - v0)

                    for p in 0 .. count - 1 do
                        let mutable best = s.Max[p]

                        if fast then
                            let row = p * tile
                            // one vectorised pass: running maximum, and a scalar look only at vectors holding a
                            // supra-threshold value (rare under the null)
                            let bt = defaultArg bThreshold Double.PositiveInfinity
                            let btv = Vector<float>(bt)
                            let mutable bestV = Vector<float>(Double.NegativeInfinity)
                            let whole = valid / lanes * lanes
                            let mutable j = 0

                            let visit (j: int) =
                                let b = out[row + j]

                                if b > bt || (two && -b > bt) then
                                    s.Grid[p].Add(g.Value.Voxels[used[v0 + j]])
                                    s.Values[p].Add(toT b 0.0)

                            while j < whole do
                                let raw = Vector<float>(out, row + j)
                                let v = if two then Vector.Abs raw else raw
                                bestV <- Vector.Max(bestV, v)
                                if Vector.GreaterThanAny(v, btv) then
                                    for q in j .. j + lanes - 1 do
                                        visit q

                                j <- j + lanes

                            for q in 0 .. lanes - 1 do
                                if bestV[q] > best then best <- bestV[q]

                            for q in whole .. valid - 1 do
                                let b = out[row + q]
                                let b = if two then abs b else b
                                if b > best then best <- b
                                visit q

                            if options.Tfce then
                                for j in 0 .. valid - 1 do
                                    s.Full[p][v0 + j] <- toT out[row + j] 0.0
                        else
                            let row = p * rowsPerPerm * tile

                            for j in 0 .. valid - 1 do
                                let b = out[row + j]
                                let mutable a2 = 0.0

                                for kk in 1..c do
                                    let a = out[row + kk * tile + j]
                                    a2 <- a2 + a * a

                                let tv = toT b a2
                                let score = if two then abs tv else tv
                                if score > best then best <- score

                                match thresholdT with
                                | Some th when tv > th || (two && -tv > th) ->
                                    s.Grid[p].Add(g.Value.Voxels[used[v0 + j]])
                                    s.Values[p].Add tv
                                | _ -> ()

                                if options.Tfce then s.Full[p][v0 + j] <- tv

                        s.Max[p] <- best) s.Out

                for p in 0 .. count - 1 do
                    let k = first + p
                    h0T[k] <- (if fast then (if Double.IsNegativeInfinity s.Max[p] then nan else toT s.Max[p] 0.0) else s.Max[p])

                    match thresholdT with
                    | Some th ->
                        let struct (size, mass) = ClusterStatistics.nullMaxima g.Value.Shape s.Inside s.Labels s.Grid[p] s.Values[p] th
                        h0Size[k] <- size
                        h0Mass[k] <- mass
                    | None -> ()

                    if options.Tfce then
                        let full = Array.create voxels 0.0

                        for u in 0 .. m - 1 do
                            full[used[u]] <- s.Full[p][u]

                        let tf = Tfce.tfceMap g.Value.Shape two (toVolume full)
                        h0Tfce[k] <- tf |> Array.fold (fun a v -> max a (abs v)) 0.0

                s),
            (fun (_: Scratch) -> ())
        )
        |> ignore

        // --- p values ---
        let exact = options.AllSignFlips

        let fwe (sortedNull: float[]) (observed: float) =
            if Double.IsNaN observed || nPerm = 0 then
                0.0
            else
                let below = ranksBelow sortedNull observed
                let p = if exact then float (nPerm - below) / float nPerm else float (nPerm + 1 - below) / float (nPerm + 1)
                -Math.Log10 p

        // The permutations' t and the observed t come from the same kernel and the same formula, so the identity
        // (among all 2ⁿ sign flips) reproduces the observed maximum bit for bit and counts as "≥".
        let logPMaxT =
            let sorted = Array.sort h0T
            t |> Array.map (fun tv -> fwe sorted (if two then abs tv else tv))

        let clusters =
            thresholdT |> Option.map (fun th -> ClusterStatistics.inference g.Value two th tVolume.Value h0Size h0Mass)

        let tfce =
            tfceObserved
            |> Option.map (fun observed ->
                let sorted = Array.sort h0Tfce

                { Tfce = observed
                  LogPMaxTfce = observed |> Array.map (fun v -> fwe sorted (abs v))
                  H0MaxTfce = h0Tfce })

        { T = t
          LogPMaxT = logPMaxT
          H0MaxT = h0T
          SignFlipping = interceptTest
          Permutations = nPerm
          Clusters = clusters
          Tfce = tfce
          Warnings = List.ofSeq warnings }
