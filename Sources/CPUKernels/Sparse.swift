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

/// The first layer's dense operand ([features, n]: the transposed weights, or a part of the weight
/// gradient) cut into blocks of columns, each stored whole: block b holds columns
/// b·width ..< (b+1)·width as a contiguous [features, its width]. Every non-zero pixel reads (or
/// updates) one row of a block, in no useful order, so a block is sized to stay in the core's L2
/// cache, and it is contiguous because rows n floats apart are a power-of-two stride at the
/// widths people pick (4 KiB at 1024), which maps every row to the same few cache sets. At n ≤
/// width there is one block, the plain [features, n].
struct ColumnBlocks {
    let n: Int, features: Int
    /// Columns per block: a multiple of 32 (the row kernels' step), at least 32.
    let width: Int

    init(n: Int, features: Int, elementSize: Int) {
        self.n = n
        self.features = features
        width = max(32, CacheSizes.level2 / 2 / max(features * elementSize, 1) / 32 * 32)
    }

    var count: Int { (n + width - 1) / width }
    func columns(_ b: Int) -> Range<Int> { b * width..<min((b + 1) * width, n) }
    /// Where block b starts; its rows are `columns(b).count` apart.
    func offset(_ b: Int) -> Int { b * width * features }
}

/// wt = w transposed into column blocks (see ColumnBlocks).   w [n, features], wt n·features elements
@_specialize(where T == Float)
@_specialize(where T == Double)
public func packColumnBlocks<T: KernelScalar>(_ w: UnsafePointer<T>, n: Int, features: Int, into wt: UnsafeMutablePointer<T>) {
    let blocks = ColumnBlocks(n: n, features: features, elementSize: MemoryLayout<T>.stride)
    let shared = DenseOperands(source: w, out: wt)
    // Task: 16 features of one block, walked in 16x16 tiles so that reads and writes stay in a
    // few cache lines.
    let tile = 16, featureTiles = (features + tile - 1) / tile
    let runTask = { @Sendable (task: Int) in
        let b = task / featureTiles, f0 = (task % featureTiles) * tile
        let columns = blocks.columns(b), block = shared.out + blocks.offset(b)
        for j0 in stride(from: columns.lowerBound, to: columns.upperBound, by: tile) {
            for f in f0..<min(f0 + tile, features) {
                for j in j0..<min(j0 + tile, columns.upperBound) {
                    block[f * columns.count + j - columns.lowerBound] = shared.source[j * features + f]
                }
            }
        }
    }
    let tasks = blocks.count * featureTiles
    if n * features < 1 << 16 {
        for task in 0..<tasks { runTask(task) }
    } else {
        WorkerPool.shared.run(iterations: tasks, runTask)
    }
}

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
/// wt: the first layer's weights [features, n] in column blocks (`packColumnBlocks`), z [rows, n]
@_specialize(where T == Float)
@_specialize(where T == Double)
public func sparseProduct<T: KernelScalar>(_ examples: SparseRows, order: UnsafePointer<Int32>, rows: Int,
                                           _ wt: UnsafePointer<T>, n: Int, features: Int, into z: UnsafeMutablePointer<T>) {
    let shared = SparseOperands(examples: examples, order: order, rows: rows, dense: wt, out: z)
    let blocks = ColumnBlocks(n: n, features: features, elementSize: MemoryLayout<T>.stride)
    let rowTasks = (rows + rowsPerTask - 1) / rowsPerTask
    withPixelScale { (scale: UnsafePointer<T>) in
        let table = ScaleTable(scale: scale)
        // Task: a run of rows times one block of columns. The tasks of one block follow each
        // other, so each core keeps the block in its L2 while it works there.
        let runTask = { @Sendable (task: Int) in
            let first = (task % rowTasks) * rowsPerTask, b = task / rowTasks
            for r in first..<min(first + rowsPerTask, rows) {
                shared.prefetchAhead(of: r)
                productRow(shared, table.scale, r, n: n, columns: blocks.columns(b), block: shared.dense + blocks.offset(b))
            }
        }
        let tasks = rowTasks * blocks.count
        if tasks <= 1 {
            for task in 0..<tasks { runTask(task) }
        } else {
            WorkerPool.shared.run(iterations: tasks, runTask)
        }
    }
}

/// z[r, columns] from one column block ([features, columns.count]).
@inline(__always)
private func productRow<T: KernelScalar>(_ s: SparseOperands<T>, _ scale: UnsafePointer<T>, _ r: Int, n: Int,
                                         columns range: Range<Int>, block: UnsafePointer<T>) {
    let (begin, end) = s.pixelRange(r)
    let columns = s.examples.columns, values = s.examples.values
    let zr = s.out + r * n + range.lowerBound, width = range.count
    var j = 0
    // 32 columns at a time, two pixels in flight (four accumulators), then 16, then one by one.
    while j + 32 <= width {
        let w = block + j
        var a0 = SIMD16<T>(), a1 = SIMD16<T>(), b0 = SIMD16<T>(), b1 = SIMD16<T>()
        var q = begin
        while q + 2 <= end {
            let w0 = w + Int(columns[q]) &* width, w1 = w + Int(columns[q + 1]) &* width
            let s0 = scale[Int(values[q])], s1 = scale[Int(values[q + 1])]
            a0 = multiplyAdd(a0, load16(w0), s0); a1 = multiplyAdd(a1, load16(w0 + 16), s0)
            b0 = multiplyAdd(b0, load16(w1), s1); b1 = multiplyAdd(b1, load16(w1 + 16), s1)
            q += 2
        }
        if q < end {
            let w0 = w + Int(columns[q]) &* width, s0 = scale[Int(values[q])]
            a0 = multiplyAdd(a0, load16(w0), s0); a1 = multiplyAdd(a1, load16(w0 + 16), s0)
        }
        store16(a0 + b0, zr + j); store16(a1 + b1, zr + j + 16)
        j += 32
    }
    while j + 16 <= width {
        let w = block + j
        var a = SIMD16<T>(), b = SIMD16<T>()
        var q = begin
        while q + 2 <= end {
            a = multiplyAdd(a, load16(w + Int(columns[q]) &* width), scale[Int(values[q])])
            b = multiplyAdd(b, load16(w + Int(columns[q + 1]) &* width), scale[Int(values[q + 1])])
            q += 2
        }
        if q < end { a = multiplyAdd(a, load16(w + Int(columns[q]) &* width), scale[Int(values[q])]) }
        store16(a + b, zr + j)
        j += 16
    }
    while j < width {
        var sum: T = 0
        for q in begin..<end { sum += scale[Int(values[q])] * block[Int(columns[q]) &* width + j] }
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
    let shared = SparseOperands(examples: examples, order: order, rows: rows, dense: dz, out: scratch)
    let blocks = ColumnBlocks(n: n, features: features, elementSize: MemoryLayout<T>.stride)
    withPixelScale { (scale: UnsafePointer<T>) in
        let table = ScaleTable(scale: scale)
        // Task (block b, part p): part p sums rows p·rows/parts ..< (p+1)·rows/parts into its own
        // [features, n] buffer (in column blocks), block b's columns only.
        WorkerPool.shared.run(iterations: parts * blocks.count) { task in
            let part = task % parts, b = task / parts, columns = blocks.columns(b)
            let block = shared.out + part * partSize + blocks.offset(b)
            block.update(repeating: 0, count: features * columns.count)
            for r in (part * rows / parts)..<((part + 1) * rows / parts) {
                shared.prefetchAhead(of: r)
                gradientRow(shared, table.scale, r, n: n, columns: columns, into: block)
            }
        }
    }
    // dw[j, f] = Σ_p part_p[f, j]: add the parts in a fixed order, transposing on the way in
    // 16x16 tiles so that reads and writes stay in a few cache lines.
    let sum = DenseOperands(source: UnsafePointer(scratch), out: dw)
    let tile = 16, featureTiles = (features + tile - 1) / tile
    WorkerPool.shared.run(iterations: blocks.count * featureTiles) { task in
        let b = task / featureTiles, f0 = (task % featureTiles) * tile
        let columns = blocks.columns(b), width = columns.count
        let block = sum.source + blocks.offset(b)
        for j0 in stride(from: columns.lowerBound, to: columns.upperBound, by: tile) {
            for j in j0..<min(j0 + tile, columns.upperBound) {
                for f in f0..<min(f0 + tile, features) {
                    let at = f * width + j - columns.lowerBound
                    var total = block[at]
                    for p in 1..<parts { total += block[p * partSize + at] }
                    sum.out[j * features + f] = total
                }
            }
        }
    }
}

/// block[f, :] += (v / 255) · dz[r, columns] for the non-zero pixels (f, v) of example order[r].
/// block: one column block of a gradient part, [features, columns.count]
@inline(__always)
private func gradientRow<T: KernelScalar>(_ s: SparseOperands<T>, _ scale: UnsafePointer<T>, _ r: Int, n: Int,
                                          columns range: Range<Int>, into block: UnsafeMutablePointer<T>) {
    let (begin, end) = s.pixelRange(r)
    let columns = s.examples.columns, values = s.examples.values
    let dzr = s.dense + r * n + range.lowerBound, width = range.count
    var j = 0
    while j + 32 <= width {
        let g0 = load16(dzr + j), g1 = load16(dzr + j + 16)
        for q in begin..<end {
            let target = block + Int(columns[q]) &* width + j, v = scale[Int(values[q])]
            store16(multiplyAdd(load16(target), g0, v), target)
            store16(multiplyAdd(load16(target + 16), g1, v), target + 16)
        }
        j += 32
    }
    while j + 16 <= width {
        let g = load16(dzr + j)
        for q in begin..<end {
            let target = block + Int(columns[q]) &* width + j
            store16(multiplyAdd(load16(target), g, scale[Int(values[q])]), target)
        }
        j += 16
    }
    while j < width {
        for q in begin..<end { block[Int(columns[q]) &* width + j] += scale[Int(values[q])] * dzr[j] }
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

/// The pointers of a dense pass over the first layer's operands (packing the weights, adding
/// the gradient's parts), shared with the worker threads: tasks write disjoint parts of `out`.
private struct DenseOperands<T: KernelScalar>: @unchecked Sendable {
    let source: UnsafePointer<T>
    let out: UnsafeMutablePointer<T>
}

private struct ScaleTable<T: KernelScalar>: @unchecked Sendable {
    let scale: UnsafePointer<T>
}
