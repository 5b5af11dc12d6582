import CPUHints
import WorkerPool

// The first layer's two products, read from the examples' non-zero pixels only. Like Gemm.swift,
// this file is also compiled for AVX2 + FMA and for AVX-512 (symbolic links).
//
// An MNIST digit is about 81% zero pixels, and a zero pixel adds nothing to either product, so
// walking each example's non-zero pixels (compressed sparse rows, built once when the data set
// is loaded) does a fifth of the dense multiply-adds, and never writes the batch out as floats.
// The results are the dense products' up to the order of the additions.

/// The non-zero pixels of a set of examples: example e's are `columns[offsets[e]..<offsets[e+1]]`
/// (ascending feature indices) with byte values `values[...]`.
public struct SparseRows: @unchecked Sendable {
    public let offsets: UnsafePointer<Int32>
    public let columns: UnsafePointer<UInt16>
    public let values: UnsafePointer<UInt8>

    public init(offsets: UnsafePointer<Int32>, columns: UnsafePointer<UInt16>, values: UnsafePointer<UInt8>) {
        self.offsets = offsets
        self.columns = columns
        self.values = values
    }
}

/// Rows per task when the forward product is spread over the cores.
private let rowsPerTask = 50
/// Fixed number of partial sums the weight gradient is split into, whatever the core count, so
/// that the sum's rounding is the same on every machine.
public let sparseGradientParts = 2

@inline(__always)
func load16<T: KernelScalar>(_ p: UnsafePointer<T>) -> SIMD16<T> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD16<T>.self)
}

@inline(__always)
func store16<T: KernelScalar>(_ v: SIMD16<T>, _ p: UnsafeMutablePointer<T>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD16<T>.self)
}

/// acc + v · s as one fused instruction per lane where the module is built for FMA (see `fma` in Gemm.swift).
@inline(__always)
private func multiplyAdd<T: KernelScalar>(_ acc: SIMD16<T>, _ v: SIMD16<T>, _ s: T) -> SIMD16<T> {
    #if FMA
    acc.addingProduct(v, s)
    #else
    acc + v * s
    #endif
}

/// scale[v] = v / 255 for every byte value: the same rounding as dividing each pixel.
@inline(__always)
private func withPixelScale<T: KernelScalar>(_ body: (UnsafePointer<T>) -> Void) {
    withUnsafeTemporaryAllocation(of: T.self, capacity: 256) { scale in
        for v in 0..<256 { scale[v] = T(v) / 255 }
        body(UnsafePointer(scale.baseAddress!))
    }
}

/// z[r, :] = Σ over the non-zero pixels (f, v) of example order[r]: (v / 255) · wt[f, :].
/// wt [features, n] (the first layer's weights, transposed), z [rows, n]
@_specialize(where T == Float)
@_specialize(where T == Double)
public func sparseProduct<T: KernelScalar>(_ examples: SparseRows, order: UnsafePointer<Int32>, rows: Int,
                                           _ wt: UnsafePointer<T>, n: Int, into z: UnsafeMutablePointer<T>) {
    let shared = SparseOperands(examples: examples, order: order, rows: rows, dense: wt, out: z)
    withPixelScale { (scale: UnsafePointer<T>) in
        let table = ScaleTable(scale: scale)
        let runRows = { @Sendable (task: Int) in
            let first = task * rowsPerTask
            for r in first..<min(first + rowsPerTask, rows) {
                shared.prefetchAhead(of: r)
                productRow(shared, table.scale, r, n: n)
            }
        }
        let tasks = (rows + rowsPerTask - 1) / rowsPerTask
        if tasks <= 1 {
            for task in 0..<tasks { runRows(task) }
        } else {
            WorkerPool.shared.run(iterations: tasks, runRows)
        }
    }
}

@inline(__always)
private func productRow<T: KernelScalar>(_ s: SparseOperands<T>, _ scale: UnsafePointer<T>, _ r: Int, n: Int) {
    let (begin, end) = s.pixelRange(r)
    let columns = s.examples.columns, values = s.examples.values
    let zr = s.out + r * n
    var j = 0
    // 32 columns at a time, two pixels in flight (four accumulators), then 16, then one by one.
    while j + 32 <= n {
        let w = s.dense + j
        var a0 = SIMD16<T>(), a1 = SIMD16<T>(), b0 = SIMD16<T>(), b1 = SIMD16<T>()
        var q = begin
        while q + 2 <= end {
            let w0 = w + Int(columns[q]) &* n, w1 = w + Int(columns[q + 1]) &* n
            let s0 = scale[Int(values[q])], s1 = scale[Int(values[q + 1])]
            a0 = multiplyAdd(a0, load16(w0), s0); a1 = multiplyAdd(a1, load16(w0 + 16), s0)
            b0 = multiplyAdd(b0, load16(w1), s1); b1 = multiplyAdd(b1, load16(w1 + 16), s1)
            q += 2
        }
        if q < end {
            let w0 = w + Int(columns[q]) &* n, s0 = scale[Int(values[q])]
            a0 = multiplyAdd(a0, load16(w0), s0); a1 = multiplyAdd(a1, load16(w0 + 16), s0)
        }
        store16(a0 + b0, zr + j); store16(a1 + b1, zr + j + 16)
        j += 32
    }
    while j + 16 <= n {
        let w = s.dense + j
        var a = SIMD16<T>(), b = SIMD16<T>()
        var q = begin
        while q + 2 <= end {
            a = multiplyAdd(a, load16(w + Int(columns[q]) &* n), scale[Int(values[q])])
            b = multiplyAdd(b, load16(w + Int(columns[q + 1]) &* n), scale[Int(values[q + 1])])
            q += 2
        }
        if q < end { a = multiplyAdd(a, load16(w + Int(columns[q]) &* n), scale[Int(values[q])]) }
        store16(a + b, zr + j)
        j += 16
    }
    while j < n {
        var sum: T = 0
        for q in begin..<end { sum += scale[Int(values[q])] * s.dense[Int(columns[q]) &* n + j] }
        zr[j] = sum
        j += 1
    }
}

/// dw[j, f] = Σ_r dz[r, j] · (pixel f of example order[r]) / 255, from the non-zero pixels only.
/// dz [rows, n], dw [n, features]; scratch holds `sparseGradientParts · features · n` elements.
@_specialize(where T == Float)
@_specialize(where T == Double)
public func sparseGradient<T: KernelScalar>(_ dz: UnsafePointer<T>, _ examples: SparseRows, order: UnsafePointer<Int32>,
                                            rows: Int, n: Int, features: Int, into dw: UnsafeMutablePointer<T>,
                                            scratch: UnsafeMutablePointer<T>) {
    let parts = sparseGradientParts, partSize = features * n
    scratch.update(repeating: 0, count: parts * partSize)
    let shared = SparseOperands(examples: examples, order: order, rows: rows, dense: dz, out: scratch)
    withPixelScale { (scale: UnsafePointer<T>) in
        let table = ScaleTable(scale: scale)
        // Part p sums rows p·rows/parts ..< (p+1)·rows/parts into its own [features, n] buffer.
        WorkerPool.shared.run(iterations: parts) { part in
            for r in (part * rows / parts)..<((part + 1) * rows / parts) {
                shared.prefetchAhead(of: r)
                gradientRow(shared, table.scale, r, n: n, into: shared.out + part * partSize)
            }
        }
    }
    // dw[j, f] = Σ_p part_p[f, j]: add the parts in a fixed order, transposing on the way.
    for f in 0..<features {
        for j in 0..<n {
            var sum = scratch[f * n + j]
            for p in 1..<parts { sum += scratch[p * partSize + f * n + j] }
            dw[j * features + f] = sum
        }
    }
}

/// dwt[f, :] += (v / 255) · dz[r, :] for the non-zero pixels (f, v) of example order[r].   dwt [features, n]
@inline(__always)
private func gradientRow<T: KernelScalar>(_ s: SparseOperands<T>, _ scale: UnsafePointer<T>, _ r: Int, n: Int,
                                          into dwt: UnsafeMutablePointer<T>) {
    let (begin, end) = s.pixelRange(r)
    let columns = s.examples.columns, values = s.examples.values
    let dzr = s.dense + r * n
    var j = 0
    while j + 32 <= n {
        let g0 = load16(dzr + j), g1 = load16(dzr + j + 16)
        for q in begin..<end {
            let target = dwt + Int(columns[q]) &* n + j, v = scale[Int(values[q])]
            store16(multiplyAdd(load16(target), g0, v), target)
            store16(multiplyAdd(load16(target + 16), g1, v), target + 16)
        }
        j += 32
    }
    while j + 16 <= n {
        let g = load16(dzr + j)
        for q in begin..<end {
            let target = dwt + Int(columns[q]) &* n + j
            store16(multiplyAdd(load16(target), g, scale[Int(values[q])]), target)
        }
        j += 16
    }
    while j < n {
        for q in begin..<end { dwt[Int(columns[q]) &* n + j] += scale[Int(values[q])] * dzr[j] }
        j += 1
    }
}

/// The pointers one sparse product shares with its worker threads: tasks write disjoint rows (or
/// their own part) of `out` and only read the rest.
private struct SparseOperands<T: KernelScalar>: @unchecked Sendable {
    let examples: SparseRows
    let order: UnsafePointer<Int32>
    let rows: Int
    let dense: UnsafePointer<T>
    let out: UnsafeMutablePointer<T>

    /// The positions of row r's non-zero pixels in `examples`.
    @inline(__always)
    func pixelRange(_ r: Int) -> (Int, Int) {
        let example = Int(order[r])
        return (Int(examples.offsets[example]), Int(examples.offsets[example + 1]))
    }

    /// Examples sit wherever the visiting order puts them, so each row's pixels are a cache miss
    /// unless fetched early: start loading the offsets of row r + 8 and the pixels of row r + 4
    /// (whose offsets were asked for four rows ago). A hint: it never changes a result.
    @inline(__always)
    func prefetchAhead(of r: Int) {
        if r + 8 < rows { prefetch_line(examples.offsets + Int(order[r + 8])) }
        guard r + 4 < rows else { return }
        let (begin, end) = pixelRange(r + 4)
        var q = begin
        while q < end {   // 32 two-byte columns and 64 one-byte values per 64-byte line
            prefetch_line(examples.columns + q)
            if (q - begin) % 64 == 0 { prefetch_line(examples.values + q) }
            q += 32
        }
        prefetch_line(examples.columns + end - 1)
        prefetch_line(examples.values + end - 1)
    }
}

private struct ScaleTable<T: KernelScalar>: @unchecked Sendable {
    let scale: UnsafePointer<T>
}
