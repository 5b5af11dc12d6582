import WorkerPool

// This file is compiled three times: into CPUKernels for any x86-64 (or other) CPU, and, through
// symbolic links, into CPUKernelsAVX2 (-target-cpu haswell, the FMA condition) and
// CPUKernelsAVX512 (-target-cpu skylake-avx512, FMA and AVX512), so the same Swift SIMD code
// becomes AVX2 + FMA or AVX-512 instructions there. GPUTensor picks the widest module the CPU
// runs, at run time.

// The CPU matrix multiply. Every transpose case is reduced to one kernel,
//     C[m,n] = A[m,k] · B[k,n]   (row-major, contiguous; A may also be given as Aᵀ [k, m]),
// by first copying a transposed B into row-major scratch memory. In this model that B is
// always a small weight matrix, so the copy costs O(size) against the product's O(m·n·k).
//
// The kernel walks C in tiles spread over the cores; inside a tile a block of 6 rows by two
// vectors of columns stays in registers while k runs over the whole inner dimension, so each
// loaded piece of B is used six times and C is written once. Vectors are 8 lanes (AVX2, or SSE
// pairs in the portable build) or 16 (the AVX-512 build), so a block is 6x16 or 6x32. Blocks
// that stick out of C (m not a multiple of 6, n not a multiple of the block width) run the same
// code on zero-padded copies, so there is one inner loop to get right and fast.

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

/// C[m,n] = A[m,k] · B[k,n], row-major and contiguous, C overwritten. With `transposedA`, a
/// holds Aᵀ [k, m] instead (a batch gradient dz for a weight gradient dzᵀ·x): the kernel reads
/// its columns in place, six neighbouring floats per step, instead of copying it transposed.
@_specialize(where T == Float)
@_specialize(where T == Double)
public func gemm<T: KernelScalar>(_ a: UnsafePointer<T>, _ b: UnsafePointer<T>, _ c: UnsafeMutablePointer<T>,
                                  m: Int, k: Int, n: Int, transposedA: Bool = false) {
    let tilesDown = (m + tileRows - 1) / tileRows
    let tilesAcross = (n + tileCols - 1) / tileCols
    let tileCount = tilesDown * tilesAcross
    if tileCount == 0 { return }
    // The ragged right edge of B (n mod blockCols columns), zero-padded to a whole block.
    let edgeStart = n - n % blockCols
    withUnsafeTemporaryAllocation(of: T.self, capacity: edgeStart < n ? k * blockCols : 0) { edge in
        if edgeStart < n {
            for p in 0..<k {
                for j in 0..<blockCols { edge[p * blockCols + j] = edgeStart + j < n ? b[p * n + edgeStart + j] : 0 }
            }
        }
        let operands = GemmOperands(a: a, b: b, c: c, edge: UnsafePointer(edge.baseAddress), m: m, k: k, n: n,
                                    transposedA: transposedA)
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

/// C[0..<6, 0..<blockCols] = A[0..<6, 0..<k] · B[0..<k, 0..<blockCols], where A(r, p) is
/// a[r · rowStep + p · pStep] and B and C have row strides ldb and ldc; twelve vector accumulators.
@inline(__always)
private func block<T: KernelScalar>(_ a: UnsafePointer<T>, rowStep: Int, pStep: Int, _ b: UnsafePointer<T>, _ ldb: Int,
                                    _ c: UnsafeMutablePointer<T>, _ ldc: Int, k: Int) {
    var c00 = Lanes<T>(), c01 = Lanes<T>(), c10 = Lanes<T>(), c11 = Lanes<T>()
    var c20 = Lanes<T>(), c21 = Lanes<T>(), c30 = Lanes<T>(), c31 = Lanes<T>()
    var c40 = Lanes<T>(), c41 = Lanes<T>(), c50 = Lanes<T>(), c51 = Lanes<T>()
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
