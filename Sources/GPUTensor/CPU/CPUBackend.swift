#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Host memory for one tensor: `count` elements, allocated once, freed with the last reference.
public final class CPUStorage<T: TensorElement> {
    public let pointer: UnsafeMutablePointer<T>
    public let count: Int

    init(count: Int) {
        self.count = count
        pointer = .allocate(capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    deinit { pointer.deallocate() }
}

/// An example set's bytes in host memory.
public final class CPUExamples {
    let pixels: [UInt8]   // [count, features]
    let labels: [UInt8]   // [count]
    init(pixels: [UInt8], labels: [UInt8]) {
        self.pixels = pixels
        self.labels = labels
    }
}

/// The pure-Swift backend: plain loops over contiguous memory, a blocked SIMD matrix multiply
/// spread over the cores. `CPUBackend<Float>` trains; `CPUBackend<Double>` checks gradients.
///
/// Not thread-safe: one backend serves one training loop (it keeps scratch memory for
/// transposed operands).
public final class CPUBackend<T: TensorElement>: Backend {
    public typealias Element = T
    public typealias Storage = CPUStorage<T>
    public typealias ExampleStorage = CPUExamples
    public typealias IndexStorage = [Int32]

    /// Which code runs the ops that have a tuned version.
    public enum Kernels: String, Sendable {
        /// Blocked, vectorised, multi-threaded.
        case optimized
        /// The plain loops that state each op's definition: the reference the tuned code is checked against.
        case naive
    }

    public let kernels: Kernels

    public init(kernels: Kernels = .optimized) {
        self.kernels = kernels
    }

    public var name: String { "cpu" }
    public var deviceDescription: String {
        "cpu (\(kernels == .naive ? "naive loops" : "\(Self.coreCount) cores"), \(T.openCLTypeName))"
    }

    static var coreCount: Int { Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))) }

    /// Row-major copies of transposed matmul operands; grown on demand, never shrunk, so the
    /// training loop allocates nothing after its first step.
    private var scratchA = CPUStorage<T>(count: 0)
    private var scratchB = CPUStorage<T>(count: 0)

    // MARK: Memory

    public func makeTensor(_ shape: Shape) throws -> Tensor<CPUBackend<T>> {
        Tensor(shape: shape, storage: CPUStorage(count: shape.count))
    }

    public func upload(_ values: [T], into t: Tensor<CPUBackend<T>>) throws {
        guard values.count == t.count else {
            throw ShapeError("upload", "\(values.count) values for a tensor of shape \(t.shape)")
        }
        values.withUnsafeBufferPointer { t.storage.pointer.update(from: $0.baseAddress!, count: t.count) }
    }

    public func download(_ t: Tensor<CPUBackend<T>>) throws -> [T] {
        Array(UnsafeBufferPointer(start: t.storage.pointer, count: t.count))
    }

    public func makeExampleSet(pixels: [UInt8], labels: [UInt8], features: Int,
                               classes: Int) throws -> ExampleSet<CPUBackend<T>> {
        guard pixels.count == labels.count * features else {
            throw ShapeError("makeExampleSet", "\(pixels.count) pixels for \(labels.count) examples of \(features) features")
        }
        return ExampleSet(count: labels.count, features: features, classes: classes,
                          storage: CPUExamples(pixels: pixels, labels: labels))
    }

    public func makeIndexList(_ indices: [Int32]) throws -> IndexList<CPUBackend<T>> {
        IndexList(count: indices.count, bound: Int(indices.max() ?? -1) + 1, minimum: Int(indices.min() ?? 0),
                  storage: indices)
    }

    public func synchronize() throws {}

    // MARK: Ops

    @_specialize(where T == Float)
    public func gatherBatch(_ examples: ExampleSet<CPUBackend<T>>, order: IndexList<CPUBackend<T>>, start: Int,
                            x: Tensor<CPUBackend<T>>, y: Tensor<CPUBackend<T>>) throws {
        try ShapeChecks.gather(examples, order, start, x.shape, y.shape)
        let features = examples.features, classes = examples.classes
        let xs = x.storage.pointer, ys = y.storage.pointer
        examples.storage.pixels.withUnsafeBufferPointer { pixels in
            for r in 0..<x.rows {
                let example = Int(order.storage[start + r])
                let label = Int(examples.storage.labels[example])
                let source = pixels.baseAddress! + example * features
                let row = xs + r * features
                for f in 0..<features { row[f] = T(source[f]) / 255 }
                for j in 0..<classes { ys[r * classes + j] = j == label ? 1 : 0 }
            }
        }
    }

    @_specialize(where T == Float)
    public func matmul(_ a: Tensor<CPUBackend<T>>, transposeA: Bool, _ b: Tensor<CPUBackend<T>>, transposeB: Bool,
                       into c: Tensor<CPUBackend<T>>) throws {
        let (m, k, n) = try ShapeChecks.matmul(a.shape, transposeA, b.shape, transposeB, c.shape)
        if kernels == .naive {
            naiveMatmul(a.storage.pointer, a.cols, transposeA, b.storage.pointer, b.cols, transposeB,
                        c.storage.pointer, m: m, k: k, n: n)
            return
        }
        var pa = UnsafePointer(a.storage.pointer), pb = UnsafePointer(b.storage.pointer)
        if transposeA {
            ensure(&scratchA, a.count)
            transpose(pa, rows: a.rows, cols: a.cols, into: scratchA.pointer)
            pa = UnsafePointer(scratchA.pointer)
        }
        if transposeB {
            ensure(&scratchB, b.count)
            transpose(pb, rows: b.rows, cols: b.cols, into: scratchB.pointer)
            pb = UnsafePointer(scratchB.pointer)
        }
        gemm(pa, pb, c.storage.pointer, m: m, k: k, n: n)
    }

    private func ensure(_ scratch: inout CPUStorage<T>, _ count: Int) {
        if scratch.count < count { scratch = CPUStorage(count: count) }
    }

    @_specialize(where T == Float)
    public func add(_ a: Tensor<CPUBackend<T>>, _ b: Tensor<CPUBackend<T>>, into c: Tensor<CPUBackend<T>>) throws {
        let (ba, bb) = try ShapeChecks.add(a.shape, b.shape, c.shape)
        let pa = a.storage.pointer, pb = b.storage.pointer, pc = c.storage.pointer
        let cols = c.cols
        if ba == .none && bb == .row {
            // The bias add of every layer: a [m,n] + b [1,n].
            for i in 0..<c.rows {
                for j in 0..<cols { pc[i * cols + j] = pa[i * cols + j] + pb[j] }
            }
            return
        }
        for i in 0..<c.rows {
            for j in 0..<cols {
                pc[i * cols + j] = pa[ba.index(i, j, cols: cols)] + pb[bb.index(i, j, cols: cols)]
            }
        }
    }

    @_specialize(where T == Float)
    public func relu(_ x: Tensor<CPUBackend<T>>, into y: Tensor<CPUBackend<T>>) throws {
        try ShapeChecks.same("relu", [("x", x.shape), ("y", y.shape)])
        let px = x.storage.pointer, py = y.storage.pointer
        for i in 0..<x.count { py[i] = px[i] > 0 ? px[i] : 0 }
    }

    @_specialize(where T == Float)
    public func reluBackward(_ dy: Tensor<CPUBackend<T>>, _ x: Tensor<CPUBackend<T>>,
                             into dx: Tensor<CPUBackend<T>>) throws {
        try ShapeChecks.same("reluBackward", [("dy", dy.shape), ("x", x.shape), ("dx", dx.shape)])
        let pdy = dy.storage.pointer, px = x.storage.pointer, pdx = dx.storage.pointer
        for i in 0..<x.count { pdx[i] = px[i] > 0 ? pdy[i] : 0 }
    }

    @_specialize(where T == Float)
    public func softmaxRows(_ z: Tensor<CPUBackend<T>>, into p: Tensor<CPUBackend<T>>) throws {
        try ShapeChecks.same("softmaxRows", [("z", z.shape), ("p", p.shape)])
        let cols = z.cols
        for i in 0..<z.rows {
            let zi = z.storage.pointer + i * cols, pi = p.storage.pointer + i * cols
            var largest = -T.infinity
            for j in 0..<cols where zi[j] > largest { largest = zi[j] }
            var sum: T = 0
            for j in 0..<cols {
                let e = T.exp(zi[j] - largest)
                pi[j] = e
                sum += e
            }
            for j in 0..<cols { pi[j] /= sum }
        }
    }

    @_specialize(where T == Float)
    public func softmaxCrossEntropyBackward(_ p: Tensor<CPUBackend<T>>, _ y: Tensor<CPUBackend<T>>,
                                            into dz: Tensor<CPUBackend<T>>) throws {
        try ShapeChecks.same("softmaxCrossEntropyBackward", [("p", p.shape), ("y", y.shape), ("dz", dz.shape)])
        let m = T(p.rows)
        let pp = p.storage.pointer, py = y.storage.pointer, pdz = dz.storage.pointer
        for i in 0..<p.count { pdz[i] = (pp[i] - py[i]) / m }
    }

    @_specialize(where T == Float)
    public func crossEntropyStats(_ p: Tensor<CPUBackend<T>>, _ y: Tensor<CPUBackend<T>>,
                                  into stats: Tensor<CPUBackend<T>>) throws {
        try ShapeChecks.stats(p.shape, y.shape, stats.shape)
        let cols = p.cols
        var loss: T = 0, correct = 0
        for i in 0..<p.rows {
            let pi = p.storage.pointer + i * cols, yi = y.storage.pointer + i * cols
            let predicted = argmax(pi, cols), label = argmax(yi, cols)
            loss -= T.log(clampedProbability(pi[label]))
            if predicted == label { correct += 1 }
        }
        stats.storage.pointer[0] = loss
        stats.storage.pointer[1] = T(correct)
    }

    @_specialize(where T == Float)
    public func sumOfSquares(_ x: Tensor<CPUBackend<T>>, into out: Tensor<CPUBackend<T>>, at index: Int) throws {
        try ShapeChecks.index("sumOfSquares", index, in: out.shape)
        let px = x.storage.pointer
        var sum: T = 0
        for i in 0..<x.count { sum += px[i] * px[i] }
        out.storage.pointer[index] = sum
    }

    @_specialize(where T == Float)
    public func columnSums(_ x: Tensor<CPUBackend<T>>, into s: Tensor<CPUBackend<T>>) throws {
        try requireShape("columnSums", "output", s.shape, Shape(1, x.cols))
        let px = x.storage.pointer, ps = s.storage.pointer, cols = x.cols
        for j in 0..<cols { ps[j] = 0 }
        for i in 0..<x.rows {
            for j in 0..<cols { ps[j] += px[i * cols + j] }
        }
    }

    @_specialize(where T == Float)
    public func rowSums(_ x: Tensor<CPUBackend<T>>, into s: Tensor<CPUBackend<T>>) throws {
        try requireShape("rowSums", "output", s.shape, Shape(x.rows, 1))
        let px = x.storage.pointer, cols = x.cols
        for i in 0..<x.rows {
            var sum: T = 0
            for j in 0..<cols { sum += px[i * cols + j] }
            s.storage.pointer[i] = sum
        }
    }

    @_specialize(where T == Float)
    public func scaledAdd(_ alpha: T, _ x: Tensor<CPUBackend<T>>, into y: Tensor<CPUBackend<T>>) throws {
        try ShapeChecks.same("scaledAdd", [("x", x.shape), ("y", y.shape)])
        let px = x.storage.pointer, py = y.storage.pointer
        for i in 0..<x.count { py[i] += alpha * px[i] }
    }
}

/// Index of the largest of `count` values (the first one on ties), as numpy's argmax.
@inline(__always)
func argmax<T: TensorElement>(_ p: UnsafePointer<T>, _ count: Int) -> Int {
    var best = 0
    for j in 1..<max(count, 1) where p[j] > p[best] { best = j }
    return best
}

/// A probability of exactly 0 (softmax underflow) would make the loss infinite; the smallest
/// normal number bounds one example's loss (about 87 in Float) while NaN still passes through,
/// so a diverging run is still seen as one.
@inline(__always)
func clampedProbability<T: TensorElement>(_ p: T) -> T {
    p < T.leastNormalMagnitude ? T.leastNormalMagnitude : p
}
