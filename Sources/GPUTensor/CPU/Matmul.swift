import Dispatch

// The CPU matrix multiply. Every transpose case is reduced to one kernel,
//     C[m,n] = A[m,k] · B[k,n]   (all row-major, contiguous),
// by first copying a transposed operand into row-major scratch memory. In this model the
// operand that needs the copy is always the small one (a weight [32,784], or a gradient
// [batch,32]), so the copy costs O(size) against the product's O(m·n·k).
//
// The kernel walks C in tiles spread over the cores; inside a tile a 4-row x 16-column block of
// C stays in SIMD registers while k runs over the whole inner dimension, so each loaded row
// piece of B is used four times and C is written once.

/// Tiles handed to one task. 16 x 64 gives the 500x32 forward product 32 tasks and the
/// 32x784 weight gradient 26, enough to keep both cores of a small machine busy.
private let tileRows = 16
private let tileCols = 64
/// Below this many multiply-adds, threading costs more than it saves.
private let parallelThreshold = 1 << 17

@inline(__always)
func load8<T: TensorElement>(_ p: UnsafePointer<T>) -> SIMD8<T> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<T>.self)
}

@inline(__always)
func store8<T: TensorElement>(_ v: SIMD8<T>, _ p: UnsafeMutablePointer<T>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<T>.self)
}

/// dst[c, r] = src[r, c] for src [rows, cols].
@_specialize(where T == Float)
@_specialize(where T == Double)
func transpose<T: TensorElement>(_ src: UnsafePointer<T>, rows: Int, cols: Int, into dst: UnsafeMutablePointer<T>) {
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
func gemm<T: TensorElement>(_ a: UnsafePointer<T>, _ b: UnsafePointer<T>, _ c: UnsafeMutablePointer<T>,
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
private struct GemmOperands<T: TensorElement>: @unchecked Sendable {
    let a: UnsafePointer<T>
    let b: UnsafePointer<T>
    let c: UnsafeMutablePointer<T>
}

@inline(__always)
private func gemmTile<T: TensorElement>(_ a: UnsafePointer<T>, _ b: UnsafePointer<T>, _ c: UnsafeMutablePointer<T>,
                                        k: Int, n: Int, rows: Range<Int>, cols: Range<Int>) {
    let wideEnd = cols.lowerBound + (cols.count / 16) * 16
    var i = rows.lowerBound
    while i + 4 <= rows.upperBound {
        var j = cols.lowerBound
        while j < wideEnd {
            block4x16(a + i * k, b + j, c + i * n + j, k: k, n: n)
            j += 16
        }
        for r in i..<(i + 4) { scalarRow(a + r * k, b, c + r * n, k: k, n: n, cols: wideEnd..<cols.upperBound) }
        i += 4
    }
    while i < rows.upperBound {
        var j = cols.lowerBound
        while j < wideEnd {
            block1x16(a + i * k, b + j, c + i * n + j, k: k, n: n)
            j += 16
        }
        scalarRow(a + i * k, b, c + i * n, k: k, n: n, cols: wideEnd..<cols.upperBound)
        i += 1
    }
}

/// C[0..<4, 0..<16] = A[0..<4, :] · B[:, 0..<16]; a, b, c point at the block's corner.
@inline(__always)
private func block4x16<T: TensorElement>(_ a: UnsafePointer<T>, _ b: UnsafePointer<T>, _ c: UnsafeMutablePointer<T>,
                                         k: Int, n: Int) {
    var c00 = SIMD8<T>(), c01 = SIMD8<T>(), c10 = SIMD8<T>(), c11 = SIMD8<T>()
    var c20 = SIMD8<T>(), c21 = SIMD8<T>(), c30 = SIMD8<T>(), c31 = SIMD8<T>()
    let a0 = a, a1 = a + k, a2 = a + 2 * k, a3 = a + 3 * k
    var bRow = b
    for p in 0..<k {
        let b0 = load8(bRow), b1 = load8(bRow + 8)
        let x0 = a0[p], x1 = a1[p], x2 = a2[p], x3 = a3[p]
        c00 += b0 * x0; c01 += b1 * x0
        c10 += b0 * x1; c11 += b1 * x1
        c20 += b0 * x2; c21 += b1 * x2
        c30 += b0 * x3; c31 += b1 * x3
        bRow += n
    }
    store8(c00, c); store8(c01, c + 8)
    store8(c10, c + n); store8(c11, c + n + 8)
    store8(c20, c + 2 * n); store8(c21, c + 2 * n + 8)
    store8(c30, c + 3 * n); store8(c31, c + 3 * n + 8)
}

/// C[0, 0..<16] = A[0, :] · B[:, 0..<16].
@inline(__always)
private func block1x16<T: TensorElement>(_ a: UnsafePointer<T>, _ b: UnsafePointer<T>, _ c: UnsafeMutablePointer<T>,
                                         k: Int, n: Int) {
    var c0 = SIMD8<T>(), c1 = SIMD8<T>()
    var bRow = b
    for p in 0..<k {
        let x = a[p]
        c0 += load8(bRow) * x
        c1 += load8(bRow + 8) * x
        bRow += n
    }
    store8(c0, c); store8(c1, c + 8)
}

/// C[0, j] = A[0, :] · B[:, j] for j in cols, one column at a time (the ragged right edge).
@inline(__always)
private func scalarRow<T: TensorElement>(_ a: UnsafePointer<T>, _ b: UnsafePointer<T>, _ c: UnsafeMutablePointer<T>,
                                         k: Int, n: Int, cols: Range<Int>) {
    for j in cols {
        var sum: T = 0
        for p in 0..<k { sum += a[p] * b[p * n + j] }
        c[j] = sum
    }
}

/// C = op(A)·op(B) straight from the definition, C[i,j] = Σ_p op(A)[i,p]·op(B)[p,j]:
/// the reference for `gemm`. lda, ldb are the stored row lengths of A and B.
func naiveMatmul<T: TensorElement>(_ a: UnsafePointer<T>, _ lda: Int, _ transposeA: Bool,
                                   _ b: UnsafePointer<T>, _ ldb: Int, _ transposeB: Bool,
                                   _ c: UnsafeMutablePointer<T>, m: Int, k: Int, n: Int) {
    for i in 0..<m {
        for j in 0..<n {
            var sum: T = 0
            for p in 0..<k {
                let x = transposeA ? a[p * lda + i] : a[i * lda + p]
                let y = transposeB ? b[j * ldb + p] : b[p * ldb + j]
                sum += x * y
            }
            c[i * n + j] = sum
        }
    }
}
