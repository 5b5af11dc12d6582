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

/// Σ x²   [count]
@_specialize(where T == Float)
@_specialize(where T == Double)
public func sumOfSquares<T: KernelScalar>(_ x: UnsafePointer<T>, count: Int) -> T {
    // Four vector accumulators: a single running sum would wait on every addition.
    var a0 = SIMD8<T>(), a1 = SIMD8<T>(), a2 = SIMD8<T>(), a3 = SIMD8<T>()
    var i = 0
    while i + 32 <= count {
        let v0 = load8(x + i), v1 = load8(x + i + 8), v2 = load8(x + i + 16), v3 = load8(x + i + 24)
        a0 += v0 * v0; a1 += v1 * v1; a2 += v2 * v2; a3 += v3 * v3
        i += 32
    }
    var sum = ((a0 + a1) + (a2 + a3)).sum()
    while i < count { sum += x[i] * x[i]; i += 1 }
    return sum
}

/// p[i, :] = exp(z[i, :] - max z[i, :]) / Σ_j exp(z[i, j] - max z[i, :])   z, p [rows, cols]
/// A NaN in a row makes the whole row NaN, as in the plain loop: a diverged run must show as one.
///
/// The exponentials of the whole block are taken 16 at a time by `exp16`, which is what makes
/// this faster than calling the C library's expf per element (the output layer has 10 columns,
/// too few to vectorise row by row).
public func softmaxRows(_ z: UnsafePointer<Float>, _ p: UnsafeMutablePointer<Float>, rows: Int, cols: Int) {
    // exp16's range is [cutoff, 0]: below it e^x is under the smallest normal float, and the
    // last pass writes 0 there.
    let cutoff: Float = -87
    for i in 0..<rows {
        let zi = z + i * cols, pi = p + i * cols
        var largest = -Float.infinity
        for j in 0..<cols where zi[j] > largest { largest = zi[j] }
        // NaN passes through.
        for j in 0..<cols { pi[j] = zi[j] - largest < cutoff ? cutoff : zi[j] - largest }
    }
    let count = rows * cols
    var i = 0
    while i + 16 <= count {
        store16(exp16(load16(p + i)), p + i)
        i += 16
    }
    if i < count {   // the ragged end, through one padded vector
        var tail = SIMD16<Float>()
        for k in i..<count { tail[k - i] = p[k] }
        let e = exp16(tail)
        for k in i..<count { p[k] = e[k - i] }
    }
    for i in 0..<rows {
        let zi = z + i * cols, pi = p + i * cols
        var sum: Float = 0
        for j in 0..<cols { sum += pi[j] }
        // The row's largest logit again: cheaper than keeping the first pass's in a scratch row
        // (docs/PERFORMANCE.md has the timing).
        var largest = -Float.infinity
        for j in 0..<cols where zi[j] > largest { largest = zi[j] }
        // 0 · (p / sum), not 0: a NaN sum (a NaN or +inf logit) still makes the whole row NaN.
        for j in 0..<cols { pi[j] = (zi[j] - largest < cutoff ? 0 : 1) * (pi[j] / sum) }
    }
}

/// e^x for 16 lanes with x in [-87, 0] (or NaN, which stays NaN), within about 2 ulp of the
/// correctly rounded value: x = n·ln 2 + r with |r| <= ln 2 / 2, e^r from a degree-6 polynomial
/// (Cephes' expf coefficients), and 2^n put straight into the exponent bits. Plain arithmetic
/// only: the standard library's generic SIMD rounding and masking calls are not inlined here.
@inline(__always)
func exp16(_ x: SIMD16<Float>) -> SIMD16<Float> {
    // Adding 1.5·2^23 rounds x·log2(e) to an integer n, which then sits in the low mantissa bits.
    let magic: Float = 12_582_912
    let shifted = x * 1.44269504088896341 + magic
    let n = shifted - magic
    let nBits = unsafeBitCast(shifted, to: SIMD16<Int32>.self) &- SIMD16<Int32>(repeating: 0x4B40_0000)
    // r = x - n·ln 2, with ln 2 split in two so that n·ln2High is exact.
    let r = (x - n * 0.693359375) - n * -2.12194440e-4
    var y = SIMD16<Float>(repeating: 1.9875691500e-4)
    y = y * r + 1.3981999507e-3
    y = y * r + 8.3334519073e-3
    y = y * r + 4.1665795894e-2
    y = y * r + 1.6666665459e-1
    y = y * r + 5.0000001201e-1
    y = y * (r * r) + r + 1
    return y * unsafeBitCast((nBits &+ 127) &<< 23, to: SIMD16<Float>.self)
}
