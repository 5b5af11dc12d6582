import WorkerPool

// Loops for the CPU backend's memory-bound ops, written so the compiler vectorises them (plain
// loops over raw pointers, or SIMD8 where a reduction would otherwise stay scalar). Like
// Gemm.swift, this file is also compiled for AVX2 and for AVX-512 (symbolic links).

/// Rows at or above which gatherRows splits its work between threads.
private let parallelGatherRows = 64

/// x[r, :] = pixels[order[r], :] / 255 for r in 0..<rows.   pixels [*, features] bytes, x [rows, features]
@_specialize(where T == Float)
@_specialize(where T == Double)
public func gatherRows<T: KernelScalar>(_ pixels: UnsafePointer<UInt8>, order: UnsafePointer<Int32>, rows: Int,
                                        features: Int, into x: UnsafeMutablePointer<T>) {
    let shared = GatherOperands(pixels: pixels, order: order, x: x)
    let copyRows = { @Sendable (range: Range<Int>) in
        for r in range {
            let source = shared.pixels + Int(shared.order[r]) * features, row = shared.x + r * features
            // Division, not multiplication by 1/255: the same rounding as the reference's
            // pixels / 255. The compiler vectorises this loop (widen, convert, divide).
            for f in 0..<features { row[f] = T(source[f]) / 255 }
        }
    }
    if rows < parallelGatherRows {
        copyRows(0..<rows)
    } else {
        let half = rows / 2
        WorkerPool.shared.run(iterations: 2) { part in copyRows(part == 0 ? 0..<half : half..<rows) }
    }
}

private struct GatherOperands<T: KernelScalar>: @unchecked Sendable {
    let pixels: UnsafePointer<UInt8>
    let order: UnsafePointer<Int32>
    let x: UnsafeMutablePointer<T>
}

/// Calls `vector` for each run of 8 elements of count, then `scalar` for each element of the ragged end.
@inline(__always)
private func lanes(_ count: Int, _ vector: (Int) -> Void, _ scalar: (Int) -> Void) {
    var i = 0
    while i + 8 <= count { vector(i); i += 8 }
    while i < count { scalar(i); i += 1 }
}

/// y = max(0, x)   [count]; y may alias x.
@_specialize(where T == Float)
@_specialize(where T == Double)
public func relu<T: KernelScalar>(_ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, count: Int) {
    for i in 0..<count { y[i] = x[i] > 0 ? x[i] : 0 }
}

/// dx = dy ⊙ 1[x > 0]   [count]; dx may alias dy.
@_specialize(where T == Float)
@_specialize(where T == Double)
public func reluBackward<T: KernelScalar>(_ dy: UnsafePointer<T>, _ x: UnsafePointer<T>, _ dx: UnsafeMutablePointer<T>, count: Int) {
    for i in 0..<count { dx[i] = x[i] > 0 ? dy[i] : 0 }
}

/// y += alpha · x   [count]
@_specialize(where T == Float)
@_specialize(where T == Double)
public func scaledAdd<T: KernelScalar>(_ alpha: T, _ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, count: Int) {
    lanes(count) { i in
        store8(load8(y + i) + load8(x + i) * alpha, y + i)
    } _: { i in y[i] += alpha * x[i] }
}

/// c[i, :] = a[i, :] + b[0, :]: the bias add.   a, c [rows, cols], b [1, cols]; c may alias a.
@_specialize(where T == Float)
@_specialize(where T == Double)
public func addRow<T: KernelScalar>(_ a: UnsafePointer<T>, _ b: UnsafePointer<T>, _ c: UnsafeMutablePointer<T>, rows: Int, cols: Int) {
    for r in 0..<rows {
        let ar = a + r * cols, cr = c + r * cols
        lanes(cols) { j in store8(load8(ar + j) + load8(b + j), cr + j) } _: { j in cr[j] = ar[j] + b[j] }
    }
}

/// s[0, j] = Σ_i x[i, j]   x [rows, cols] -> s [1, cols]
@_specialize(where T == Float)
@_specialize(where T == Double)
public func columnSums<T: KernelScalar>(_ x: UnsafePointer<T>, _ s: UnsafeMutablePointer<T>, rows: Int, cols: Int) {
    s.update(repeating: 0, count: cols)
    for r in 0..<rows {
        let xr = x + r * cols
        lanes(cols) { j in store8(load8(s + j) + load8(xr + j), s + j) } _: { j in s[j] += xr[j] }
    }
}
