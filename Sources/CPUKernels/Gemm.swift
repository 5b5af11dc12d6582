import Dispatch

// This file is compiled twice: into CPUKernels for any x86-64 (or other) CPU, and, through a
// symbolic link, into CPUKernelsAVX2 with -target-cpu haswell and the FMA condition, so the same
// Swift SIMD code becomes AVX2 + FMA instructions there. GPUTensor picks the AVX2 module at run
// time only on CPUs that have both features.

// The CPU matrix multiply. Every transpose case is reduced to one kernel,
//     C[m,n] = A[m,k] · B[k,n]   (all row-major, contiguous),
// by first copying a transposed operand into row-major scratch memory. In this model the
// operand that needs the copy is always the small one (a weight [32,784], or a gradient
// [batch,32]), so the copy costs O(size) against the product's O(m·n·k).
//
// The kernel walks C in tiles spread over the cores; inside a tile a 4-row x 16-column block of
// C stays in SIMD registers while k runs over the whole inner dimension, so each loaded row
// piece of B is used four times and C is written once.

/// Tiles handed to one task: 24 rows (four 6-row blocks) by 64 columns. The 500x32 forward
/// product gets 21 tasks and the 32x784 weight gradient 26, enough to keep the cores busy.
private let tileRows = 24
private let tileCols = 64
/// Below this many multiply-adds, waking the other threads costs more than it saves: in this
/// network only the two 784-wide products (12.5 M each per batch of 500) go parallel.
private let parallelThreshold = 1 << 21

@inline(__always)
func load8<T: KernelScalar>(_ p: UnsafePointer<T>) -> SIMD8<T> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<T>.self)
}

@inline(__always)
func store8<T: KernelScalar>(_ v: SIMD8<T>, _ p: UnsafeMutablePointer<T>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<T>.self)
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

/// C[m,n] = A[m,k] · B[k,n], row-major and contiguous, C overwritten.
@_specialize(where T == Float)
@_specialize(where T == Double)
public func gemm<T: KernelScalar>(_ a: UnsafePointer<T>, _ b: UnsafePointer<T>, _ c: UnsafeMutablePointer<T>,
                            m: Int, k: Int, n: Int) {
    let tilesDown = (m + tileRows - 1) / tileRows
    let tilesAcross = (n + tileCols - 1) / tileCols
    let tileCount = tilesDown * tilesAcross
    if tileCount == 0 { return }
    let operands = GemmOperands(a: a, b: b, c: c)
    let runTile = { @Sendable (tile: Int) in
        let row0 = (tile / tilesAcross) * tileRows
        let col0 = (tile % tilesAcross) * tileCols
        gemmTile(operands.a, operands.b, operands.c, k: k, n: n,
                 rows: row0..<min(row0 + tileRows, m), cols: col0..<min(col0 + tileCols, n))
    }
    if m * n * k < parallelThreshold || tileCount == 1 {
        for tile in 0..<tileCount { runTile(tile) }
    } else {
        DispatchQueue.concurrentPerform(iterations: tileCount, execute: runTile)
    }
}

/// The three pointers of one `gemm`, handed to the worker threads. Tasks write disjoint tiles of
/// `c` and only read `a` and `b`, which is what makes sharing them safe.
private struct GemmOperands<T: KernelScalar>: @unchecked Sendable {
    let a: UnsafePointer<T>
    let b: UnsafePointer<T>
    let c: UnsafeMutablePointer<T>
}

@inline(__always)
private func gemmTile<T: KernelScalar>(_ a: UnsafePointer<T>, _ b: UnsafePointer<T>, _ c: UnsafeMutablePointer<T>,
                                        k: Int, n: Int, rows: Range<Int>, cols: Range<Int>) {
    let wideEnd = cols.lowerBound + (cols.count / 16) * 16
    var i = rows.lowerBound
    // Six rows at a time (12 accumulators), then four, then one: every row of C in as few
    // passes over B as the registers allow.
    while i < rows.upperBound {
        let height = rows.upperBound - i >= 6 ? 6 : rows.upperBound - i >= 4 ? 4 : 1
        var j = cols.lowerBound
        while j < wideEnd {
            switch height {
            case 6: block6x16(a + i * k, b + j, c + i * n + j, k: k, n: n)
            case 4: block4x16(a + i * k, b + j, c + i * n + j, k: k, n: n)
            default: block1x16(a + i * k, b + j, c + i * n + j, k: k, n: n)
            }
            j += 16
        }
        for r in i..<(i + height) { scalarRow(a + r * k, b, c + r * n, k: k, n: n, cols: wideEnd..<cols.upperBound) }
        i += height
    }
}

/// C[0..<6, 0..<16] = A[0..<6, :] · B[:, 0..<16]; a, b, c point at the block's corner.
@inline(__always)
private func block6x16<T: KernelScalar>(_ a: UnsafePointer<T>, _ b: UnsafePointer<T>, _ c: UnsafeMutablePointer<T>,
                                         k: Int, n: Int) {
    var c00 = SIMD8<T>(), c01 = SIMD8<T>(), c10 = SIMD8<T>(), c11 = SIMD8<T>()
    var c20 = SIMD8<T>(), c21 = SIMD8<T>(), c30 = SIMD8<T>(), c31 = SIMD8<T>()
    var c40 = SIMD8<T>(), c41 = SIMD8<T>(), c50 = SIMD8<T>(), c51 = SIMD8<T>()
    let a0 = a, a1 = a + k, a2 = a + 2 * k, a3 = a + 3 * k, a4 = a + 4 * k, a5 = a + 5 * k
    var bRow = b
    for p in 0..<k {
        let b0 = load8(bRow), b1 = load8(bRow + 8)
        let x0 = a0[p], x1 = a1[p], x2 = a2[p], x3 = a3[p], x4 = a4[p], x5 = a5[p]
        fma(&c00, b0, x0); fma(&c01, b1, x0)
        fma(&c10, b0, x1); fma(&c11, b1, x1)
        fma(&c20, b0, x2); fma(&c21, b1, x2)
        fma(&c30, b0, x3); fma(&c31, b1, x3)
        fma(&c40, b0, x4); fma(&c41, b1, x4)
        fma(&c50, b0, x5); fma(&c51, b1, x5)
        bRow += n
    }
    store8(c00, c); store8(c01, c + 8)
    store8(c10, c + n); store8(c11, c + n + 8)
    store8(c20, c + 2 * n); store8(c21, c + 2 * n + 8)
    store8(c30, c + 3 * n); store8(c31, c + 3 * n + 8)
    store8(c40, c + 4 * n); store8(c41, c + 4 * n + 8)
    store8(c50, c + 5 * n); store8(c51, c + 5 * n + 8)
}

/// acc += v · s, one fused instruction where the module is built for FMA. Without FMA hardware,
/// `addingProduct` would call the C library's fma once per lane, so the portable build multiplies
/// and adds instead.
@inline(__always)
private func fma<T: KernelScalar>(_ acc: inout SIMD8<T>, _ v: SIMD8<T>, _ s: T) {
    #if FMA
    acc = acc.addingProduct(v, s)
    #else
    acc += v * s
    #endif
}

/// C[0..<4, 0..<16] = A[0..<4, :] · B[:, 0..<16]; a, b, c point at the block's corner.
@inline(__always)
private func block4x16<T: KernelScalar>(_ a: UnsafePointer<T>, _ b: UnsafePointer<T>, _ c: UnsafeMutablePointer<T>,
                                         k: Int, n: Int) {
    var c00 = SIMD8<T>(), c01 = SIMD8<T>(), c10 = SIMD8<T>(), c11 = SIMD8<T>()
    var c20 = SIMD8<T>(), c21 = SIMD8<T>(), c30 = SIMD8<T>(), c31 = SIMD8<T>()
    let a0 = a, a1 = a + k, a2 = a + 2 * k, a3 = a + 3 * k
    var bRow = b
    for p in 0..<k {
        let b0 = load8(bRow), b1 = load8(bRow + 8)
        let x0 = a0[p], x1 = a1[p], x2 = a2[p], x3 = a3[p]
        fma(&c00, b0, x0); fma(&c01, b1, x0)
        fma(&c10, b0, x1); fma(&c11, b1, x1)
        fma(&c20, b0, x2); fma(&c21, b1, x2)
        fma(&c30, b0, x3); fma(&c31, b1, x3)
        bRow += n
    }
    store8(c00, c); store8(c01, c + 8)
    store8(c10, c + n); store8(c11, c + n + 8)
    store8(c20, c + 2 * n); store8(c21, c + 2 * n + 8)
    store8(c30, c + 3 * n); store8(c31, c + 3 * n + 8)
}

/// C[0, 0..<16] = A[0, :] · B[:, 0..<16].
@inline(__always)
private func block1x16<T: KernelScalar>(_ a: UnsafePointer<T>, _ b: UnsafePointer<T>, _ c: UnsafeMutablePointer<T>,
                                         k: Int, n: Int) {
    var c0 = SIMD8<T>(), c1 = SIMD8<T>()
    var bRow = b
    for p in 0..<k {
        let x = a[p]
        fma(&c0, load8(bRow), x)
        fma(&c1, load8(bRow + 8), x)
        bRow += n
    }
    store8(c0, c); store8(c1, c + 8)
}

/// C[0, j] = A[0, :] · B[:, j] for j in cols, one column at a time (the ragged right edge).
@inline(__always)
private func scalarRow<T: KernelScalar>(_ a: UnsafePointer<T>, _ b: UnsafePointer<T>, _ c: UnsafeMutablePointer<T>,
                                         k: Int, n: Int, cols: Range<Int>) {
    for j in cols {
        var sum: T = 0
        for p in 0..<k { sum += a[p] * b[p * n + j] }
        c[j] = sum
    }
}
