#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CPUKernels

/// Host memory for one tensor: `count` elements, allocated once, freed with the last reference.
public final class CPUStorage<T: TensorElement> {
    public let pointer: UnsafeMutablePointer<T>
    public let count: Int
    /// For a view into another storage (a `TensorGroup`'s part): that storage, kept alive.
    private let owner: CPUStorage<T>?

    init(count: Int) {
        self.count = count
        owner = nil
        // Cache-line aligned: a 64-byte vector load that straddles two lines costs two loads.
        pointer = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * MemoryLayout<T>.stride, alignment: 64)
            .bindMemory(to: T.self, capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    /// `count` elements of `owner`, from element `offset` on.
    init(viewing owner: CPUStorage<T>, offset: Int, count: Int) {
        precondition(offset >= 0 && offset + count <= owner.count)
        self.owner = owner
        self.count = count
        pointer = owner.pointer + offset
    }

    deinit { if owner == nil { pointer.deallocate() } }
}

/// An example set's bytes in host memory.
public final class CPUExamples {
    let pixels: [UInt8]   // [count, features]
    let labels: [UInt8]   // [count]
    /// The non-zero pixels, for the tuned first-layer products; nil when the tuned kernels are
    /// off or the images are too dense for skipping zeros to pay.
    let sparse: SparseExamples?
    init(pixels: [UInt8], labels: [UInt8], sparse: SparseExamples?) {
        self.pixels = pixels
        self.labels = labels
        self.sparse = sparse
    }
}

/// The pure-Swift backend. Every primitive op is first written as the plain loop that defines
/// it, and every fused op falls back on its composition (`Backend`'s defaults); those run Double
/// (gradient checks) and, with `kernels: .naive`, are the reference the tuned code is tested
/// against. Float runs the tuned kernels of Sources/CPUKernels where they exist:
/// a blocked SIMD matrix multiply spread over the cores, vectorised elementwise loops, in the
/// AVX2 + FMA build on CPUs that have it.
///
/// Not thread-safe: one backend serves one training loop (it keeps scratch memory for
/// transposed operands).
public final class CPUBackend<T: TensorElement>: Backend, ProfilingBackend {
    public typealias Element = T
    public typealias Storage = CPUStorage<T>
    public typealias ExampleStorage = CPUExamples
    public typealias IndexStorage = [Int32]

    /// Which code runs the ops that have a tuned version.
    public enum Kernels: String, Sendable {
        /// Tuned, compiled for AVX-512 (16-lane vectors).
        case avx512
        /// Tuned, compiled for AVX2 + FMA.
        case avx2
        /// The same tuned code compiled for the baseline instruction set: the fallback for other CPUs.
        case portable
        /// The plain loops that define each op.
        case naive

        /// The widest the CPU runs: AVX-512, else AVX2 with FMA, else portable.
        public static var best: Kernels {
            CPUFeatures.hasAVX512 ? .avx512 : CPUFeatures.hasAVX2AndFMA ? .avx2 : .portable
        }

        /// The tuned variants this CPU can run.
        public static var available: [Kernels] {
            [.portable] + (CPUFeatures.hasAVX2AndFMA ? [.avx2] : []) + (CPUFeatures.hasAVX512 ? [.avx512] : [])
        }
    }

    public let kernels: Kernels
    /// The tuned kernels, when T is Float and kernels is not naive.
    private let fast: FloatKernels?

    /// Kernels the CPU cannot run (`Kernels.available`) are a programmer error.
    public init(kernels: Kernels = .best) {
        precondition(kernels == .naive || Kernels.available.contains(kernels), "this CPU cannot run the \(kernels) kernels")
        self.kernels = kernels
        switch kernels {
        case _ where T.self != Float.self, .naive: fast = nil
        case .avx512: fast = .avx512
        case .avx2: fast = .avx2
        case .portable: fast = .portable
        }
    }

    public var name: String { "cpu" }
    public var deviceDescription: String {
        let code = fast == nil ? "plain loops" : "\(Self.coreCount) cores, \(kernels.rawValue)"
        return "cpu (\(code), \(T.openCLTypeName))"
    }

    static var coreCount: Int { Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))) }

    /// Per-op wall time while profiling (`ProfilingBackend`): count and seconds by op name.
    private var profiling = false
    private var recorded: [String: (count: Int, seconds: Double)] = [:]

    /// Scratch for a transposed B, the first layer's wᵀ and its gradient parts (and a dense
    /// batch for images too dense to skip zeros); grown on demand, never shrunk, so the training
    /// loop allocates nothing after its first step.
    private var scratchA = CPUStorage<T>(count: 0)
    private var scratchB = CPUStorage<T>(count: 0)
    /// backpropagate's product before the mask: a whole tensor, so a Tensor can wrap it.
    private var productScratch = CPUStorage<T>(count: 0)

    // MARK: Memory

    public func makeTensor(_ shape: Shape) throws -> Tensor<CPUBackend<T>> {
        Tensor(shape: shape, storage: CPUStorage(count: shape.count))
    }

    public func makeTensorGroup(_ shapes: [Shape]) throws -> TensorGroup<CPUBackend<T>> {
        // Parts start on cache lines, like every tensor.
        let (offsets, count) = TensorGroup<CPUBackend<T>>.layout(shapes, alignment: 64 / MemoryLayout<T>.stride)
        let whole = CPUStorage<T>(count: count)
        return TensorGroup(whole: Tensor(shape: Shape(1, count), storage: whole), parts: zip(shapes, offsets).map { shape, offset in
            Tensor(shape: shape, storage: CPUStorage(viewing: whole, offset: offset, count: shape.count))
        }, offsets: offsets)
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
        // Skipping zeros pays while at most about 60% of the pixels are non-zero (MNIST: 19%,
        // Fashion-MNIST: 50%); denser images go through the dense matrix multiply.
        let sparse = fast == nil ? nil : SparseExamples(pixels: pixels, count: labels.count, features: features,
                                                       densityLimit: 0.6)
        return ExampleSet(count: labels.count, features: features, classes: classes,
                          storage: CPUExamples(pixels: pixels, labels: labels, sparse: sparse))
    }

    public func makeIndexList(_ indices: [Int32]) throws -> IndexList<CPUBackend<T>> {
        IndexList(indices, storage: indices)
    }

    public func synchronize() throws {}

    // MARK: Profiling (every op runs to completion before it returns, so wall time is its time)

    public func setProfiling(_ enabled: Bool) { profiling = enabled }

    public func resetProfile() { recorded.removeAll() }

    public func profile() throws -> [KernelProfile] {
        recorded.map { KernelProfile(kernel: $0.key, count: $0.value.count, totalSeconds: $0.value.seconds) }
            .sorted { $0.totalSeconds > $1.totalSeconds }
    }

    // MARK: Ops

    @_specialize(where T == Float)
    public func gatherBatch(_ examples: ExampleSet<CPUBackend<T>>, order: IndexList<CPUBackend<T>>, start: Int,
                            x: Tensor<CPUBackend<T>>?, y: Tensor<CPUBackend<T>>) throws {
        let started = profileStart(); defer { profileEnd("gatherBatch", started) }
        try ShapeChecks.gather(examples, order, start, x?.shape, y.shape)
        if let x { gatherPixels(examples, order, start, rows: x.rows, into: x.storage.pointer) }
        let ys = y.storage.pointer, classes = examples.classes
        ys.update(repeating: 0, count: y.count)
        examples.storage.labels.withUnsafeBufferPointer { labels in
            order.storage.withUnsafeBufferPointer { indices in
                for r in 0..<y.rows {
                    let label = Int(labels[Int(indices[start + r])])
                    if label < classes { ys[r * classes + label] = 1 }
                }
            }
        }
    }

    public func gatherRows(_ table: Tensor<CPUBackend<T>>, order: IndexList<CPUBackend<T>>, start: Int,
                           into rows: Tensor<CPUBackend<T>>) throws {
        let started = profileStart(); defer { profileEnd("gatherRows", started) }
        try ShapeChecks.gatherRows(table.shape, order, start, rows.shape)
        let n = table.cols
        for r in 0..<rows.rows {
            let source = table.storage.pointer + Int(order.storage[start + r]) * n
            (rows.storage.pointer + r * n).update(from: source, count: n)
        }
    }

    /// x[r, :] = pixels[order[start + r], :] / 255 for r in 0..<rows.   x [rows, features]
    @_specialize(where T == Float)
    private func gatherPixels(_ examples: ExampleSet<CPUBackend<T>>, _ order: IndexList<CPUBackend<T>>, _ start: Int,
                              rows: Int, into x: UnsafeMutablePointer<T>) {
        let features = examples.features
        examples.storage.pixels.withUnsafeBufferPointer { pixels in
            order.storage.withUnsafeBufferPointer { indices in
                if let fast {
                    fast.gatherRows(pixels.baseAddress!, indices.baseAddress! + start, rows, features, floats(x))
                    return
                }
                for r in 0..<rows {
                    let example = Int(indices[start + r])
                    for f in 0..<features { x[r * features + f] = T(pixels[example * features + f]) / 255 }
                }
            }
        }
    }

    public func inputLinear(_ examples: ExampleSet<CPUBackend<T>>, order: IndexList<CPUBackend<T>>, start: Int,
                            _ w: Tensor<CPUBackend<T>>, _ b: Tensor<CPUBackend<T>>, activation: Activation,
                            into y: Tensor<CPUBackend<T>>, targets: Tensor<CPUBackend<T>>?) throws {
        guard let fast else {
            return try inputLinearByOps(examples, order: order, start: start, w, b, activation: activation, into: y,
                                        targets: targets)
        }
        try ShapeChecks.inputLinear(examples, order, start, w.shape, b.shape, y.shape, targets: targets?.shape)
        if let targets { try gatherBatch(examples, order: order, start: start, x: nil, y: targets) }
        try inputProduct(fast, examples, order: order, start: start, w, into: y)   // y = x·wᵀ   [m, n]
        try add(y, b, into: y)                                               // y += b
        try activate(activation, y)                                          // y = f(y)
    }

    public func inputLinearGradient(_ dz: Tensor<CPUBackend<T>>, _ examples: ExampleSet<CPUBackend<T>>,
                                    order: IndexList<CPUBackend<T>>, start: Int, _ w: Tensor<CPUBackend<T>>, decay: T,
                                    weightGradient dw: Tensor<CPUBackend<T>>, biasGradient db: Tensor<CPUBackend<T>>) throws {
        guard let fast else {
            return try inputLinearGradientByOps(dz, examples, order: order, start: start, w, decay: decay,
                                                weightGradient: dw, biasGradient: db)
        }
        try ShapeChecks.inputGradient(dz.shape, examples, order, start, dw.shape)
        try inputGradient(fast, dz, examples, order: order, start: start, into: dw)   // dw = dzᵀ·x   [n, features]
        try scaledAdd(decay, w, into: dw)                                        // dw += decay·w
        try columnSums(dz, into: db)                                             // db = Σ_rows dz   [1, n]
    }

    /// z = x · wᵀ from the example bytes, tuned.   w [n, features], z [m, n]
    @_specialize(where T == Float)
    private func inputProduct(_ fast: FloatKernels, _ examples: ExampleSet<CPUBackend<T>>, order: IndexList<CPUBackend<T>>,
                              start: Int, _ w: Tensor<CPUBackend<T>>, into z: Tensor<CPUBackend<T>>) throws {
        let started = profileStart(); defer { profileEnd("inputProduct", started) }
        let features = examples.features, n = w.rows, m = z.rows
        order.storage.withUnsafeBufferPointer { indices in
            let batchOrder = indices.baseAddress! + start
            if let sparse = examples.storage.sparse {
                // wᵀ [features, n] in column blocks that stay in cache, so each pixel meets a row.
                ensure(&scratchB, w.count)
                fast.packColumnBlocks(floats(w), n, features, floats(scratchB.pointer))
                fast.sparseProduct(sparse, batchOrder, m, UnsafePointer(floats(scratchB.pointer)), n, features, floats(z))
            } else {
                ensure(&scratchA, m * features)
                gatherPixels(examples, order, start, rows: m, into: scratchA.pointer)
                fast.gemm(UnsafePointer(floats(scratchA.pointer)), floats(w), floats(z), m, features, n, false, true)
            }
        }
    }

    /// dw = dzᵀ · x from the example bytes, tuned.   dz [m, n], dw [n, features]
    @_specialize(where T == Float)
    private func inputGradient(_ fast: FloatKernels, _ dz: Tensor<CPUBackend<T>>, _ examples: ExampleSet<CPUBackend<T>>,
                               order: IndexList<CPUBackend<T>>, start: Int, into dw: Tensor<CPUBackend<T>>) throws {
        let started = profileStart(); defer { profileEnd("inputGradient", started) }
        let features = examples.features, n = dz.cols, m = dz.rows
        order.storage.withUnsafeBufferPointer { indices in
            let batchOrder = indices.baseAddress! + start
            if let sparse = examples.storage.sparse {
                ensure(&scratchA, sparseGradientParts * features * n)
                fast.sparseGradient(floats(dz), sparse, batchOrder, m, n, features, floats(dw), floats(scratchA.pointer))
            } else {
                // dw [n, features] = dzᵀ [n, m] · x [m, features]
                ensure(&scratchB, m * features)
                gatherPixels(examples, order, start, rows: m, into: scratchB.pointer)
                fast.gemm(UnsafePointer(floats(dz)), UnsafePointer(floats(scratchB.pointer)), floats(dw), n, m, features, true, false)
            }
        }
    }

    public func backpropagate(_ dz: Tensor<CPUBackend<T>>, _ w: Tensor<CPUBackend<T>>, activation: Activation,
                              output a: Tensor<CPUBackend<T>>, into dx: Tensor<CPUBackend<T>>) throws {
        try ShapeChecks.backpropagate(dz.shape, w.shape, a.shape, dx.shape)
        switch activation {
        case .identity: return try matmul(dz, transposeA: false, w, transposeB: false, into: dx)   // dx = dz·w   [m, k]
        case .relu: break
        }
        // The product goes to scratch memory, not into dx: the mask pass with its output
        // aliasing its input compiles to a branch per element (docs/PERFORMANCE.md, "figures
        // behind the code").
        if productScratch.count < dx.count { productScratch = CPUStorage(count: dx.count) }
        let product = Tensor<CPUBackend<T>>(shape: dx.shape, storage: productScratch)
        try matmul(dz, transposeA: false, w, transposeB: false, into: product)   // dz·w   [m, k]
        try reluBackward(product, a, into: dx)                                   // ⊙ 1[a > 0]
    }

    @_specialize(where T == Float)
    public func matmul(_ a: Tensor<CPUBackend<T>>, transposeA: Bool, _ b: Tensor<CPUBackend<T>>, transposeB: Bool,
                       into c: Tensor<CPUBackend<T>>) throws {
        let started = profileStart(); defer { profileEnd("matmul", started) }
        let (m, k, n) = try ShapeChecks.matmul(a.shape, transposeA, b.shape, transposeB, c.shape)
        guard let fast else {
            let pa = a.storage.pointer, pb = b.storage.pointer, pc = c.storage.pointer
            for i in 0..<m {
                for j in 0..<n {
                    var sum: T = 0
                    for p in 0..<k {
                        sum += (transposeA ? pa[p * a.cols + i] : pa[i * a.cols + p])
                            * (transposeB ? pb[j * b.cols + p] : pb[p * b.cols + j])
                    }
                    pc[i * n + j] = sum
                }
            }
            return
        }
        fast.gemm(UnsafePointer(floats(a)), UnsafePointer(floats(b)), floats(c), m, k, n, transposeA, transposeB)
    }

    private func ensure(_ scratch: inout CPUStorage<T>, _ count: Int) {
        if scratch.count < count { scratch = CPUStorage(count: count) }
    }

    @_specialize(where T == Float)
    public func add(_ a: Tensor<CPUBackend<T>>, _ b: Tensor<CPUBackend<T>>, into c: Tensor<CPUBackend<T>>) throws {
        let started = profileStart(); defer { profileEnd("add", started) }
        let (ba, bb) = try ShapeChecks.add(a.shape, b.shape, c.shape)
        if let fast, ba == .none, bb == .row {
            fast.addRow(floats(a), floats(b), floats(c), c.rows, c.cols)   // every layer's bias add
            return
        }
        let pa = a.storage.pointer, pb = b.storage.pointer, pc = c.storage.pointer, cols = c.cols
        for i in 0..<c.rows {
            for j in 0..<cols {
                pc[i * cols + j] = pa[ba.index(i, j, cols: cols)] + pb[bb.index(i, j, cols: cols)]
            }
        }
    }

    @_specialize(where T == Float)
    public func relu(_ x: Tensor<CPUBackend<T>>, into y: Tensor<CPUBackend<T>>) throws {
        let started = profileStart(); defer { profileEnd("relu", started) }
        try ShapeChecks.same("relu", [("x", x.shape), ("y", y.shape)])
        if let fast { return fast.relu(floats(x), floats(y), x.count) }
        let px = x.storage.pointer, py = y.storage.pointer
        for i in 0..<x.count { py[i] = px[i] > 0 ? px[i] : 0 }
    }

    @_specialize(where T == Float)
    public func reluBackward(_ dy: Tensor<CPUBackend<T>>, _ x: Tensor<CPUBackend<T>>,
                             into dx: Tensor<CPUBackend<T>>) throws {
        let started = profileStart(); defer { profileEnd("reluBackward", started) }
        try ShapeChecks.same("reluBackward", [("dy", dy.shape), ("x", x.shape), ("dx", dx.shape)])
        if let fast { return fast.reluBackward(floats(dy), floats(x), floats(dx), x.count) }
        let pdy = dy.storage.pointer, px = x.storage.pointer, pdx = dx.storage.pointer
        for i in 0..<x.count { pdx[i] = px[i] > 0 ? pdy[i] : 0 }
    }

    @_specialize(where T == Float)
    public func softmaxRows(_ z: Tensor<CPUBackend<T>>, into p: Tensor<CPUBackend<T>>) throws {
        let started = profileStart(); defer { profileEnd("softmaxRows", started) }
        try ShapeChecks.same("softmaxRows", [("z", z.shape), ("p", p.shape)])
        if let fast { return fast.softmaxRows(floats(z), floats(p), z.rows, z.cols) }
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
        let started = profileStart(); defer { profileEnd("softmaxCrossEntropyBackward", started) }
        try ShapeChecks.same("softmaxCrossEntropyBackward", [("p", p.shape), ("y", y.shape), ("dz", dz.shape)])
        let m = T(p.rows)
        let pp = p.storage.pointer, py = y.storage.pointer, pdz = dz.storage.pointer
        for i in 0..<p.count { pdz[i] = (pp[i] - py[i]) / m }
    }

    @_specialize(where T == Float)
    public func crossEntropyStats(_ p: Tensor<CPUBackend<T>>, _ y: Tensor<CPUBackend<T>>,
                                  into stats: Tensor<CPUBackend<T>>, at index: Int) throws {
        let started = profileStart(); defer { profileEnd("crossEntropyStats", started) }
        try ShapeChecks.stats(p.shape, y.shape, stats.shape, at: index)
        let cols = p.cols
        var loss: T = 0, correct = 0
        for i in 0..<p.rows {
            let pi = p.storage.pointer + i * cols, yi = y.storage.pointer + i * cols
            let predicted = argmax(pi, cols), label = argmax(yi, cols)
            loss -= T.log(clampedProbability(pi[label]))
            if predicted == label { correct += 1 }
        }
        stats.storage.pointer[index] = loss
        stats.storage.pointer[index + 1] = T(correct)
    }

    @_specialize(where T == Float)
    public func sumOfSquares(_ x: Tensor<CPUBackend<T>>, into out: Tensor<CPUBackend<T>>, at index: Int) throws {
        let started = profileStart(); defer { profileEnd("sumOfSquares", started) }
        try ShapeChecks.index("sumOfSquares", index, in: out.shape)
        if let fast {
            out.storage.pointer[index] = T(fast.sumOfSquares(floats(x), x.count))
            return
        }
        let px = x.storage.pointer
        var sum: T = 0
        for i in 0..<x.count { sum += px[i] * px[i] }
        out.storage.pointer[index] = sum
    }

    @_specialize(where T == Float)
    public func columnSums(_ x: Tensor<CPUBackend<T>>, into s: Tensor<CPUBackend<T>>) throws {
        let started = profileStart(); defer { profileEnd("columnSums", started) }
        try requireShape("columnSums", "output", s.shape, Shape(1, x.cols))
        if let fast { return fast.columnSums(floats(x), floats(s), x.rows, x.cols) }
        let px = x.storage.pointer, ps = s.storage.pointer, cols = x.cols
        for j in 0..<cols { ps[j] = 0 }
        for i in 0..<x.rows {
            for j in 0..<cols { ps[j] += px[i * cols + j] }
        }
    }

    @_specialize(where T == Float)
    public func scaledAdd(_ alpha: T, _ x: Tensor<CPUBackend<T>>, into y: Tensor<CPUBackend<T>>) throws {
        let started = profileStart(); defer { profileEnd("scaledAdd", started) }
        try ShapeChecks.same("scaledAdd", [("x", x.shape), ("y", y.shape)])
        if let fast { return fast.scaledAdd(Float(alpha), floats(x), floats(y), x.count) }
        let px = x.storage.pointer, py = y.storage.pointer
        for i in 0..<x.count { py[i] += alpha * px[i] }
    }

    @_specialize(where T == Float)
    public func momentumStep(_ w: Tensor<CPUBackend<T>>, gradient g: Tensor<CPUBackend<T>>, velocity v: Tensor<CPUBackend<T>>,
                             learningRate: T, momentum: T) throws {
        let started = profileStart(); defer { profileEnd("momentumStep", started) }
        try ShapeChecks.same("momentumStep", [("w", w.shape), ("g", g.shape), ("v", v.shape)])
        let pw = w.storage.pointer, pg = g.storage.pointer, pv = v.storage.pointer
        for i in 0..<w.count {
            pv[i] = momentum * pv[i] + pg[i]
            pw[i] -= learningRate * pv[i]
        }
    }

    @_specialize(where T == Float)
    public func adamStep(_ w: Tensor<CPUBackend<T>>, gradient g: Tensor<CPUBackend<T>>, m: Tensor<CPUBackend<T>>,
                         v: Tensor<CPUBackend<T>>, learningRate: T, beta1: T, beta2: T, epsilon: T,
                         correction1: T, correction2: T) throws {
        let started = profileStart(); defer { profileEnd("adamStep", started) }
        try ShapeChecks.same("adamStep", [("w", w.shape), ("g", g.shape), ("m", m.shape), ("v", v.shape)])
        let pw = w.storage.pointer, pg = g.storage.pointer, pm = m.storage.pointer, pv = v.storage.pointer
        for i in 0..<w.count {
            pm[i] = beta1 * pm[i] + (1 - beta1) * pg[i]
            pv[i] = beta2 * pv[i] + (1 - beta2) * pg[i] * pg[i]
            pw[i] -= learningRate * (pm[i] * correction1) / ((pv[i] * correction2).squareRoot() + epsilon)
        }
    }

    @inline(__always)
    private func profileStart() -> ContinuousClock.Instant? { profiling ? .now : nil }

    private func profileEnd(_ op: String, _ started: ContinuousClock.Instant?) {
        guard let started else { return }
        let elapsed = started.duration(to: .now)
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        recorded[op, default: (0, 0)].count += 1
        recorded[op, default: (0, 0)].seconds += seconds
    }

    /// A tensor's memory as Float, for the tuned kernels, which exist only when T is Float (`fast`).
    @inline(__always)
    private func floats(_ t: Tensor<CPUBackend<T>>) -> UnsafeMutablePointer<Float> { floats(t.storage.pointer) }

    /// A checked cast, not a rebinding: where T is Float it is the same pointer (the cast folds
    /// away in the Float specialisation), and anywhere else it stops the program instead of
    /// reading Doubles as Floats.
    @inline(__always)
    private func floats(_ p: UnsafeMutablePointer<T>) -> UnsafeMutablePointer<Float> {
        guard let p = p as? UnsafeMutablePointer<Float> else {
            preconditionFailure("the tuned kernels ran on \(T.self) tensors; they exist only for Float")
        }
        return p
    }
}

/// Index of the largest of `count` values (the first one on ties), as numpy's argmax. Written
/// with selects instead of a branch: which element wins is data, and a mispredicted branch per
/// row cost more than the comparisons.
@inline(__always)
func argmax<T: TensorElement>(_ p: UnsafePointer<T>, _ count: Int) -> Int {
    var best = 0, bestValue = p[0]
    for j in 1..<max(count, 1) {
        let value = p[j], better = value > bestValue
        best = better ? j : best
        bestValue = better ? value : bestValue
    }
    return best
}

/// A probability of exactly 0 (softmax underflow) would make the loss infinite; the smallest
/// normal number bounds one example's loss (about 87 in Float) while NaN still passes through,
/// so a diverging run is still seen as one.
@inline(__always)
func clampedProbability<T: TensorElement>(_ p: T) -> T {
    p < T.leastNormalMagnitude ? T.leastNormalMagnitude : p
}

