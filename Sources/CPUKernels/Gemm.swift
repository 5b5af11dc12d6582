import WorkerPool

// This file is compiled three times: into CPUKernels for any x86-64 (or other) CPU, and, through
// symbolic links, into CPUKernelsAVX2 (-target-cpu haswell, the FMA condition) and
// CPUKernelsAVX512 (-target-cpu skylake-avx512, FMA and AVX512), so the same Swift SIMD code
// becomes AVX2 + FMA or AVX-512 instructions there. GPUTensor picks the widest module the CPU
// runs, at run time.

// The CPU matrix multiply, C[m,n] = op(A)[m,k] · op(B)[k,n] (row-major, contiguous; op
// transposes or not), in two ways that share one register-block kernel:
//
// - Small products (the reference network's, up to a few million multiply-adds) run `smallGemm`:
//   C in tiles spread over the cores; inside a tile a block of 6 rows by two vectors of columns
//   stays in registers while k runs over the whole inner dimension, reading A and B where they
//   are. A transposed B (a small weight matrix) is first copied row-major.
// - Large products run `packedGemm`, in the structure of GotoBLAS and BLIS: k is cut into
//   passes of `packedDepth`; each pass copies ("packs") its slice of B into micro-panels of one
//   block's width, each stored in the order the kernel reads it, so the kernel walks B
//   contiguously whatever the transpose. A task (a block of C) keeps one micro-panel of B in
//   cache while A's rows stream past it. Without this, a 2048-wide B (16 MB) streamed from L3 for
//   every 6 rows of C, and the product ran at a third of the machine's arithmetic rate. A is read
//   in place: six rows (or six neighbouring columns of Aᵀ) are six sequential streams, which the
//   hardware prefetcher follows, and packing them as well cost more than it saved (measured).
//
// Vectors are 8 lanes (AVX2, or SSE pairs in the portable build) or 16 (the AVX-512 build), so
// a block is 6x16 or 6x32. Blocks that stick out of C run the same code on zero-padded copies,
// so there is one inner loop to get right and fast.

#if AVX512
typealias Lanes<T: SIMDScalar> = SIMD16<T>
private let laneCount = 16
#else
typealias Lanes<T: SIMDScalar> = SIMD8<T>
private let laneCount = 8
#endif
/// One register block of C: blockRows x blockCols.
private let blockRows = 6
private let blockCols = 2 * laneCount

/// Tiles handed to one task: 24 rows (four blocks) by two blocks of columns. The 500x32 forward
/// products get 21 tasks, enough to keep the cores busy when a product is large enough to share.
private let tileRows = 4 * blockRows
private let tileCols = 2 * blockCols
/// Below this many multiply-adds, waking the other threads costs more than it saves.
private let parallelThreshold = 1 << 21

@inline(__always)
func load8<T: KernelScalar>(_ p: UnsafePointer<T>) -> SIMD8<T> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<T>.self)
}

@inline(__always)
func store8<T: KernelScalar>(_ v: SIMD8<T>, _ p: UnsafeMutablePointer<T>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<T>.self)
}

@inline(__always)
private func loadLanes<T: KernelScalar>(_ p: UnsafeMutablePointer<T>) -> Lanes<T> {
    loadLanes(UnsafePointer(p))
}

@inline(__always)
private func loadLanes<T: KernelScalar>(_ p: UnsafePointer<T>) -> Lanes<T> {
    UnsafeRawPointer(p).loadUnaligned(as: Lanes<T>.self)
}

@inline(__always)
private func storeLanes<T: KernelScalar>(_ v: Lanes<T>, _ p: UnsafeMutablePointer<T>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: Lanes<T>.self)
}

/// dst[c, r] = src[r, c] for src [rows, cols].
@_specialize(where T == Float)
@_specialize(where T == Double)
public func transpose<T: KernelScalar>(_ src: UnsafePointer<T>, rows: Int, cols: Int, into dst: UnsafeMutablePointer<T>) {
    // 8x8 blocks keep both the reads and the writes within a few cache lines.
    let block = 8
    for r0 in stride(from: 0, to: rows, by: block) {
        for c0 in stride(from: 0, to: cols, by: block) {
            for r in r0..<min(r0 + block, rows) {
                for c in c0..<min(c0 + block, cols) {
                    dst[c * rows + r] = src[r * cols + c]
                }
            }
        }
    }
}

/// C[m,n] = op(A)[m,k] · op(B)[k,n], row-major and contiguous, C overwritten. With
/// `transposedA`, a holds Aᵀ [k, m] (a batch gradient dz for a weight gradient dzᵀ·x); with
/// `transposedB`, b holds Bᵀ [n, k] (a weight matrix for a forward x·wᵀ).
@_specialize(where T == Float)
@_specialize(where T == Double)
public func gemm<T: KernelScalar>(_ a: UnsafePointer<T>, _ b: UnsafePointer<T>, _ c: UnsafeMutablePointer<T>,
                                  m: Int, k: Int, n: Int, transposedA: Bool = false, transposedB: Bool = false) {
    if m == 0 || n == 0 { return }
    if k == 0 { return c.update(repeating: 0, count: m * n) }
    if usesPackedGemm(m: m, k: k, n: n, elementSize: MemoryLayout<T>.stride) {
        return packedGemm(GemmOperands(a: a, b: b, c: c, edge: nil, m: m, k: k, n: n, transposedA: transposedA,
                                       transposedB: transposedB))
    }
    guard transposedB else { return smallGemm(a, b, c, m: m, k: k, n: n, transposedA: transposedA) }
    withUnsafeTemporaryAllocation(of: T.self, capacity: k * n) { bRows in
        transpose(b, rows: n, cols: k, into: bRows.baseAddress!)
        smallGemm(a, UnsafePointer(bRows.baseAddress!), c, m: m, k: k, n: n, transposedA: transposedA)
    }
}

/// Whether a product is large enough for packing to pay: when B does not fit in half the L2
/// (the small path reads it once per 6 rows of C, which costs little while B stays in L2, and
/// packing is then overhead), and every side is at least 128 (docs/PERFORMANCE.md, "Figures
/// behind the code"). Up to `packedDepth` deep both paths add the same products in the same
/// order, so this choice, which depends on the machine's cache, changes no result; deeper
/// products always take the packed path (sums in passes) when m and n allow it.
func usesPackedGemm(m: Int, k: Int, n: Int, elementSize: Int) -> Bool {
    guard m >= 128, n >= 128 else { return false }
    return k > packedDepth || k * n * elementSize > CacheSizes.level2 / 2
}

/// C = A · B with A and B read in place (B row-major: [k, n]), tiles of C spread over the cores.
private func smallGemm<T: KernelScalar>(_ a: UnsafePointer<T>, _ b: UnsafePointer<T>, _ c: UnsafeMutablePointer<T>,
                                        m: Int, k: Int, n: Int, transposedA: Bool) {
    let tilesDown = (m + tileRows - 1) / tileRows
    let tilesAcross = (n + tileCols - 1) / tileCols
    let tileCount = tilesDown * tilesAcross
    // The ragged right edge of B (n mod blockCols columns), zero-padded to a whole block.
    let edgeStart = n - n % blockCols
    withUnsafeTemporaryAllocation(of: T.self, capacity: edgeStart < n ? k * blockCols : 0) { edge in
        if edgeStart < n {
            for p in 0..<k {
                for j in 0..<blockCols { edge[p * blockCols + j] = edgeStart + j < n ? b[p * n + edgeStart + j] : 0 }
            }
        }
        let operands = GemmOperands(a: a, b: b, c: c, edge: UnsafePointer(edge.baseAddress), m: m, k: k, n: n,
                                    transposedA: transposedA, transposedB: false)
        let runTile = { @Sendable (tile: Int) in
            let row0 = (tile / tilesAcross) * tileRows
            let col0 = (tile % tilesAcross) * tileCols
            gemmTile(operands, rows: row0..<min(row0 + tileRows, m), cols: col0..<min(col0 + tileCols, n))
        }
        if m * n * k < parallelThreshold || tileCount == 1 {
            for tile in 0..<tileCount { runTile(tile) }
        } else {
            WorkerPool.shared.run(iterations: tileCount, runTile)
        }
    }
}

/// One `gemm`'s operands, handed to the worker threads. Tasks write disjoint tiles of `c` and
/// only read the rest, which is what makes sharing them safe.
private struct GemmOperands<T: KernelScalar>: @unchecked Sendable {
    let a: UnsafePointer<T>
    let b: UnsafePointer<T>
    let c: UnsafeMutablePointer<T>
    /// B's last n mod blockCols columns, zero-padded: [k, blockCols]
    let edge: UnsafePointer<T>?
    let m: Int, k: Int, n: Int
    /// a holds Aᵀ [k, m].
    let transposedA: Bool
    /// b holds Bᵀ [n, k] (packed products only).
    let transposedB: Bool
}

@inline(__always)
private func gemmTile<T: KernelScalar>(_ g: GemmOperands<T>, rows: Range<Int>, cols: Range<Int>) {
    let k = g.k, n = g.n
    // Scratch for a block that sticks out: its A rows zero-padded [blockRows, k], its C [blockRows, blockCols].
    withUnsafeTemporaryAllocation(of: T.self, capacity: blockRows * k + blockRows * blockCols) { scratch in
        let paddedA = scratch.baseAddress!, paddedC = scratch.baseAddress! + blockRows * k
        for i in stride(from: rows.lowerBound, to: rows.upperBound, by: blockRows) {
            let height = min(blockRows, rows.upperBound - i)
            // Where A(i + r, p) is: a[r · rowStep + p · pStep].
            var (a, rowStep, pStep) = g.transposedA ? (g.a + i, 1, g.m) : (g.a + i * k, k, 1)
            if height < blockRows {
                for r in 0..<blockRows {
                    for p in 0..<k { paddedA[r * k + p] = r < height ? a[r * rowStep + p * pStep] : 0 }
                }
                (a, rowStep, pStep) = (UnsafePointer(paddedA), k, 1)
            }
            for j in stride(from: cols.lowerBound, to: cols.upperBound, by: blockCols) {
                let width = min(blockCols, cols.upperBound - j)
                let (b, ldb) = width == blockCols ? (g.b + j, n) : (g.edge!, blockCols)
                let (out, ldc) = height == blockRows && width == blockCols ? (g.c + i * n + j, n) : (paddedC, blockCols)
                // Two calls, so that each copy of the inlined block has constant strides.
                if pStep == 1 {
                    block(a, rowStep: rowStep, pStep: 1, b, ldb, out, ldc, k: k)
                } else {
                    block(a, rowStep: 1, pStep: pStep, b, ldb, out, ldc, k: k)
                }
                if out == paddedC {
                    for r in 0..<height { (g.c + (i + r) * n + j).update(from: paddedC + r * blockCols, count: width) }
                }
            }
        }
    }
}

/// C[0..<6, 0..<blockCols] = A[0..<6, 0..<k] · B[0..<k, 0..<blockCols], or C += that with
/// `accumulate`, where A(r, p) is a[r · rowStep + p · pStep] and B and C have row strides ldb and
/// ldc; twelve vector accumulators.
@inline(__always)
private func block<T: KernelScalar>(_ a: UnsafePointer<T>, rowStep: Int, pStep: Int, _ b: UnsafePointer<T>, _ ldb: Int,
                                    _ c: UnsafeMutablePointer<T>, _ ldc: Int, k: Int, accumulate: Bool = false) {
    var c00 = Lanes<T>(), c01 = Lanes<T>(), c10 = Lanes<T>(), c11 = Lanes<T>()
    var c20 = Lanes<T>(), c21 = Lanes<T>(), c30 = Lanes<T>(), c31 = Lanes<T>()
    var c40 = Lanes<T>(), c41 = Lanes<T>(), c50 = Lanes<T>(), c51 = Lanes<T>()
    if accumulate {
        c00 = loadLanes(c); c01 = loadLanes(c + laneCount)
        c10 = loadLanes(c + ldc); c11 = loadLanes(c + ldc + laneCount)
        c20 = loadLanes(c + 2 * ldc); c21 = loadLanes(c + 2 * ldc + laneCount)
        c30 = loadLanes(c + 3 * ldc); c31 = loadLanes(c + 3 * ldc + laneCount)
        c40 = loadLanes(c + 4 * ldc); c41 = loadLanes(c + 4 * ldc + laneCount)
        c50 = loadLanes(c + 5 * ldc); c51 = loadLanes(c + 5 * ldc + laneCount)
    }
    let a0 = a, a1 = a + rowStep, a2 = a + 2 * rowStep, a3 = a + 3 * rowStep, a4 = a + 4 * rowStep, a5 = a + 5 * rowStep
    var bRow = b
    for p in 0..<k {
        let b0 = loadLanes(bRow), b1 = loadLanes(bRow + laneCount)
        let at = p * pStep
        let x0 = a0[at], x1 = a1[at], x2 = a2[at], x3 = a3[at], x4 = a4[at], x5 = a5[at]
        fma(&c00, b0, x0); fma(&c01, b1, x0)
        fma(&c10, b0, x1); fma(&c11, b1, x1)
        fma(&c20, b0, x2); fma(&c21, b1, x2)
        fma(&c30, b0, x3); fma(&c31, b1, x3)
        fma(&c40, b0, x4); fma(&c41, b1, x4)
        fma(&c50, b0, x5); fma(&c51, b1, x5)
        bRow += ldb
    }
    storeLanes(c00, c); storeLanes(c01, c + laneCount)
    storeLanes(c10, c + ldc); storeLanes(c11, c + ldc + laneCount)
    storeLanes(c20, c + 2 * ldc); storeLanes(c21, c + 2 * ldc + laneCount)
    storeLanes(c30, c + 3 * ldc); storeLanes(c31, c + 3 * ldc + laneCount)
    storeLanes(c40, c + 4 * ldc); storeLanes(c41, c + 4 * ldc + laneCount)
    storeLanes(c50, c + 5 * ldc); storeLanes(c51, c + 5 * ldc + laneCount)
}

/// The depth of one packed pass. Each pass adds its products to C, so deeper passes mean fewer
/// trips through C and fewer rounds of packing and waiting for the other cores (the depths
/// tried: docs/PERFORMANCE.md, "Figures behind the code"). A B micro-panel of this depth (64
/// or 128 KiB) lives in L2 rather than L1, which the hardware prefetcher streams well; packed B
/// takes n · depth floats. Fixed, not read from the cache size, so the sums' rounding is the
/// same on every machine.
private let packedDepth = 1024

/// C = op(A) · op(B) by packed passes over k (see the top of this file). Per pass: every core
/// packs micro-panels of B ([depth][blockCols], zero past the last column), then every core
/// multiplies blocks of C, adding to what earlier passes left there.
private func packedGemm<T: KernelScalar>(_ g: GemmOperands<T>) {
    let rowPanels = (g.m + blockRows - 1) / blockRows, colPanels = (g.n + blockCols - 1) / blockCols
    // A task's rows of A (depth deep) fill half the L2, where they stay while its four B
    // micro-panels pass over them; tasks are spread evenly over the row panels.
    let panelsPerBlock = max(1, CacheSizes.level2 / 2 / (packedDepth * blockRows * MemoryLayout<T>.stride))
    let rowBlocks = (rowPanels + panelsPerBlock - 1) / panelsPerBlock
    let panelsDown = (rowPanels + rowBlocks - 1) / rowBlocks, panelsAcross = 4
    let colBlocks = (colPanels + panelsAcross - 1) / panelsAcross
    withUnsafeTemporaryAllocation(of: T.self, capacity: (blockRows + colPanels * blockCols) * packedDepth) { buffer in
        let packed = PackedPanels(b: buffer.baseAddress!, edgeA: buffer.baseAddress! + colPanels * blockCols * packedDepth)
        for p0 in stride(from: 0, to: g.k, by: packedDepth) {
            let depth = min(packedDepth, g.k - p0)
            // Task colPanels packs A's last row panel when it is short of 6 rows.
            WorkerPool.shared.run(iterations: colPanels + 1) { panel in
                if panel < colPanels {
                    packB(g, panel: panel, depth: p0..<p0 + depth, into: packed.b + panel * blockCols * depth)
                } else if g.m % blockRows != 0 {
                    packA(g, panel: rowPanels - 1, depth: p0..<p0 + depth, into: packed.edgeA)
                }
            }
            WorkerPool.shared.run(iterations: rowBlocks * colBlocks) { task in
                let firstRow = (task % rowBlocks) * panelsDown, firstCol = (task / rowBlocks) * panelsAcross
                for j in firstCol..<min(firstCol + panelsAcross, colPanels) {
                    for i in firstRow..<min(firstRow + panelsDown, rowPanels) {
                        multiplyPanels(g, packed, row: i, col: j, from: p0, depth: depth, accumulate: p0 > 0)
                    }
                }
            }
        }
    }
}

/// Where one pass's packed micro-panels are: B's, and A's last row panel when short of 6 rows.
private struct PackedPanels<T: KernelScalar>: @unchecked Sendable {
    let b: UnsafeMutablePointer<T>
    let edgeA: UnsafeMutablePointer<T>
}

/// A micro-panel of A: packed[p · blockRows + r] = A(panel · blockRows + r, p) for p in depth,
/// zero past the last row (for the last panel, when m is not a multiple of 6).
@inline(__always)
private func packA<T: KernelScalar>(_ g: GemmOperands<T>, panel: Int, depth: Range<Int>, into packed: UnsafeMutablePointer<T>) {
    let row0 = panel * blockRows, height = min(blockRows, g.m - row0)
    if height < blockRows { packed.update(repeating: 0, count: blockRows * depth.count) }
    // Where A(row0 + r, p) is: a[start(r) + p · step].
    let (rowStart, rowStride, step) = g.transposedA ? (row0, 1, g.m) : (row0 * g.k, g.k, 1)
    packStrided(g.a, rowStart: rowStart, rowStride: rowStride, step: step, rows: height, depth: depth,
                into: packed, width: blockRows)
}

/// A micro-panel of B: packed[p · blockCols + j] = B(p, panel · blockCols + j) for p in depth,
/// zero past the last column.
@inline(__always)
private func packB<T: KernelScalar>(_ g: GemmOperands<T>, panel: Int, depth: Range<Int>, into packed: UnsafeMutablePointer<T>) {
    let col0 = panel * blockCols, width = min(blockCols, g.n - col0)
    if !g.transposedB && width == blockCols {
        for (q, p) in depth.enumerated() { storeLanes2(g.b + p * g.n + col0, packed + q * blockCols) }
        return
    }
    if width < blockCols { packed.update(repeating: 0, count: blockCols * depth.count) }
    // Where B(p, col0 + j) is: b[start(j) + p · step]; Bᵀ's rows are B's columns.
    let (columnStart, columnStride, step) = g.transposedB ? (col0 * g.k, g.k, 1) : (col0, 1, g.n)
    packStrided(g.b, rowStart: columnStart, rowStride: columnStride, step: step, rows: width, depth: depth,
                into: packed, width: blockCols)
}

/// packed[q · width + r] = source[rowStart + r · rowStride + p · step] for r < rows and the q-th p
/// of depth: the element-by-element packing, in chunks of 64 values of p so that the 64 rows of
/// packed being filled (at most 8 KiB) stay in L1 while each source row is read along them.
@inline(__always)
private func packStrided<T: KernelScalar>(_ source: UnsafePointer<T>, rowStart: Int, rowStride: Int, step: Int, rows: Int,
                                          depth: Range<Int>, into packed: UnsafeMutablePointer<T>, width: Int) {
    for chunk in stride(from: depth.lowerBound, to: depth.upperBound, by: 64) {
        let chunkEnd = min(chunk + 64, depth.upperBound)
        for r in 0..<rows {
            let row = source + rowStart + r * rowStride
            var out = packed + (chunk - depth.lowerBound) * width + r
            for p in chunk..<chunkEnd {
                out.pointee = row[p * step]
                out += width
            }
        }
    }
}

/// Copies one row of a B micro-panel (two vectors).
@inline(__always)
private func storeLanes2<T: KernelScalar>(_ from: UnsafePointer<T>, _ to: UnsafeMutablePointer<T>) {
    storeLanes(loadLanes(from), to)
    storeLanes(loadLanes(from + laneCount), to + laneCount)
}

/// C's block (row panel i, column panel j) = (or +=) A's rows i · 6 ..< i · 6 + 6, columns
/// p0 ..< p0 + depth, times B micro-panel j. A is read in place (six rows, or six neighbouring
/// columns of Aᵀ, each along p), except a last panel short of six rows, which was packed.
@inline(__always)
private func multiplyPanels<T: KernelScalar>(_ g: GemmOperands<T>, _ packed: PackedPanels<T>, row i: Int, col j: Int,
                                             from p0: Int, depth: Int, accumulate: Bool) {
    let b = UnsafePointer(packed.b + j * blockCols * depth)
    let row0 = i * blockRows, col0 = j * blockCols
    let height = min(blockRows, g.m - row0), width = min(blockCols, g.n - col0)
    let c = g.c + row0 * g.n + col0
    // Three copies of the inlined kernel, each with constant strides for A.
    func run(_ out: UnsafeMutablePointer<T>, _ ldc: Int) {
        if height < blockRows {
            block(UnsafePointer(packed.edgeA), rowStep: 1, pStep: blockRows, b, blockCols, out, ldc, k: depth, accumulate: accumulate)
        } else if g.transposedA {
            block(g.a + p0 * g.m + row0, rowStep: 1, pStep: g.m, b, blockCols, out, ldc, k: depth, accumulate: accumulate)
        } else {
            block(g.a + row0 * g.k + p0, rowStep: g.k, pStep: 1, b, blockCols, out, ldc, k: depth, accumulate: accumulate)
        }
    }
    if height == blockRows && width == blockCols { return run(c, g.n) }
    // A block that sticks out of C runs on a zero-padded copy of its part of C.
    withUnsafeTemporaryAllocation(of: T.self, capacity: blockRows * blockCols) { scratch in
        let padded = scratch.baseAddress!
        padded.update(repeating: 0, count: blockRows * blockCols)
        if accumulate {
            for r in 0..<height { (padded + r * blockCols).update(from: c + r * g.n, count: width) }
        }
        run(padded, blockCols)
        for r in 0..<height { (c + r * g.n).update(from: padded + r * blockCols, count: width) }
    }
}

/// acc += v · s, one fused instruction where the module is built for FMA. Without FMA hardware,
/// `addingProduct` would call the C library's fma once per lane, so the portable build multiplies
/// and adds instead.
@inline(__always)
private func fma<T: KernelScalar>(_ acc: inout Lanes<T>, _ v: Lanes<T>, _ s: T) {
    #if FMA
    acc = acc.addingProduct(v, s)
    #else
    acc += v * s
    #endif
}
