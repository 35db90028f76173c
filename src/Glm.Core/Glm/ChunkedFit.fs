namespace FmriGlm.Core

open System
open System.Runtime.Intrinsics
open System.Threading.Tasks
open FmriGlm.Core.RegressionKernels

/// <summary>The chunked parallel driver of the GLM fit: chunks of voxels copied voxel-major into pooled
/// buffers, grouped four by four under a shared model, fitted on parallel threads.</summary>
module internal ChunkedFit =

    /// Loads the series of voxels order[start .. start + count − 1] from a chunk's voxel-major copy (voxel v at
    /// (v − first)·scans) into the lanes of y; unused lanes are 0.
    let private loadGroup
        (local: float[])
        (first: int)
        (scans: int)
        (order: int[])
        (start: int)
        (count: int)
        (y: Vector256<float>[])
        =
        let ys = lanes y

        for k in 0 .. Lanes - 1 do
            if k < count then
                let o = (order[start + k] - first) * scans

                for t in 0 .. scans - 1 do
                    ys[t * Lanes + k] <- local[o + t]
            else
                for t in 0 .. scans - 1 do
                    ys[t * Lanes + k] <- 0.0

    /// Copies the series of voxels first .. first + count − 1 into local, voxel-major, as float64. Voxel-major
    /// data hold voxel v's series at v·scans; time-major data hold scan t's values of every voxel at t·stride, as
    /// a NIfTI run streams them (each scan's values of the chunk are read as one contiguous run).
    let copyChunk
        (data: VoxelData)
        (timeMajor: bool)
        (stride: int)
        (scans: int)
        (first: int)
        (count: int)
        (local: float[])
        =
        match data, timeMajor with
        | Float64 a, false -> Array.blit a (first * scans) local 0 (count * scans)
        | Float32 a, false ->
            for k in 0 .. count * scans - 1 do
                local[k] <- float a[first * scans + k]
        | Float64 a, true ->
            for t in 0 .. scans - 1 do
                let o = t * stride + first

                for i in 0 .. count - 1 do
                    local[i * scans + t] <- a[o + i]
        | Float32 a, true ->
            for t in 0 .. scans - 1 do
                let o = t * stride + first

                for i in 0 .. count - 1 do
                    local[i * scans + t] <- float a[o + i]

    /// Runs onGroup over every voxel in groups of up to four voxels that share a key (and so a model): the voxels
    /// are cut into chunks of ChunkVoxels, copied voxel-major into a pooled buffer, sorted by key within the chunk
    /// (ascending voxels within a key) and grouped; chunks run on parallel threads and each group writes only its
    /// own voxels' slots. Results do not depend on the grouping, hence not on the chunk size or thread count.
    let forEachGroup
        (options: GlmOptions)
        (copy: int -> int -> float[] -> unit)
        (voxels: int)
        (scans: int)
        (p: int)
        (key: int -> int)
        (model: int -> Prepared)
        (onGroup: int[] -> int -> int -> GroupWork -> unit)
        =
        let chunk = max Lanes options.ChunkVoxels
        let chunks = (voxels + chunk - 1) / chunk
        let po = ParallelOptions(MaxDegreeOfParallelism = max 1 options.Threads)

        Parallel.For(
            0,
            chunks,
            po,
            fun c ->
                let first = c * chunk
                let count = min voxels (first + chunk) - first
                let local = Buffers.ArrayPool<float>.Shared.Rent(count * scans)

                try
                    copy first count local
                    let work = newGroupWork scans p
                    let order = Array.init count (fun i -> first + i) |> Array.sortBy (fun v -> struct (key v, v))
                    let mutable start = 0

                    while start < count do
                        let k = key order[start]
                        let mutable size = 1

                        while size < Lanes && start + size < count && key order[start + size] = k do
                            size <- size + 1

                        loadGroup local first scans order start size work.Y
                        fitGroup (model order[start]) p work
                        onGroup order start size work
                        start <- start + size
                finally
                    Buffers.ArrayPool<float>.Shared.Return local
        )
        |> ignore
