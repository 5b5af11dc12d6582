internal import COpenCL

/// An example set in device memory: its non-zero pixels as compressed sparse rows (see
/// `SparseExamples`), its labels, and on GPUs also the pixel bytes as they are.
public final class CLExamples {
    let pixels: CLBuffer?   // [count, features] uchar, for input_gradient_dense
    let labels: CLBuffer    // [count] uchar
    let offsets: CLBuffer   // [count + 1] int
    let columns: CLBuffer   // [non-zeros] ushort
    let values: CLBuffer    // [non-zeros] uchar
    init(pixels: CLBuffer?, labels: CLBuffer, offsets: CLBuffer, columns: CLBuffer, values: CLBuffer) {
        self.pixels = pixels
        self.labels = labels
        self.offsets = offsets
        self.columns = columns
        self.values = values
    }
}

/// The backend that runs every op as an OpenCL kernel compiled at run time, on any OpenCL 1.2
/// device: a GPU, or a CPU through PoCL. `OpenCLBackend<Float>` trains; `OpenCLBackend<Double>`
/// checks gradients where the device has fp64.
///
/// Ops are queued in order on one queue and return at once; `download` and `synchronize` wait.
/// Not thread-safe (kernel arguments are set per call): one backend serves one training loop.
public final class OpenCLBackend<T: TensorElement>: Backend {
    public typealias Element = T
    public typealias Storage = CLBuffer
    public typealias ExampleStorage = CLExamples
    public typealias IndexStorage = CLBuffer

    let device: OpenCLDevice
    private let kernels: [KernelName: CLKernel]
    /// The work-group sizes compiled into the kernels, and each kernel's largest group.
    let sizes: KernelSizes
    private let groupLimits: [KernelName: Int]
    /// Scratch memory for B packed in strips for matmul_rows, and for the first layer's
    /// transposed weights; grown on demand.
    private var operandScratch: CLBuffer?
    /// The partial sums of input_gradient_parts; grown on demand.
    private var gradientScratch: CLBuffer?
    /// layers_after_first's per-row loss, hit and share of Σ w² [m, 3], grown on demand, and
    /// its layer tables, by content.
    private var rowStatsScratch: CLBuffer?
    private var layerTables: [[Int32]: CLBuffer] = [:]
    /// scale[v] = v / 255 for every byte value, rounded by the host (see input.cl).
    private let pixelScale: CLBuffer
    /// Launches recorded for `profile()`, while profiling is on.
    private var profiling = false
    private var recorded: [(KernelName, CLEvent)] = []
    private var queue: cl_command_queue { device.queue.handle }

    /// Every OpenCL device on this machine; throws with an install hint when there is no platform.
    public static func devices() throws -> [OpenCLDeviceInfo] { try OpenCLDevice.list() }

    /// The index `auto` would use: the first GPU, or nil when there is none.
    public static func autoDeviceIndex() throws -> Int? { autoDeviceIndex(try devices()) }

    /// The index `auto` would use among `devices`: the first GPU, or nil when there is none.
    public static func autoDeviceIndex(_ devices: [OpenCLDeviceInfo]) -> Int? { OpenCLDevice.autoChoice(devices)?.index }

    /// How many parts input_gradient_parts splits a batch of rows into, for `columnBlocks` blocks
    /// of 32 columns: about one item per compute unit, and at least 2. Each part beyond that is
    /// one more partial dw to zero and add up for no more parallel work (docs/PERFORMANCE.md,
    /// "Figures behind the code").
    private func gradientParts(columnBlocks: Int) -> Int { max(2, device.info.computeUnits / max(columnBlocks, 1)) }

    /// The kernel family in use (see `KernelFamily`).
    public let family: KernelFamily

    /// The work-group sizes compiled into the kernels on this device, in words.
    public var workGroupDescription: String { sizes.description }

    /// The backend on device `deviceIndex` (as `devices()` numbers them); nil picks the first GPU,
    /// else the first device. The kernel family defaults to the one for the device's type.
    /// Builds the kernels for `T` unless this process already did.
    public init(deviceIndex: Int? = nil, family: KernelFamily? = nil) throws {
        device = try OpenCLDevice.shared(index: deviceIndex)
        self.family = family ?? .auto(for: device.info)
        let built = try device.program(for: T.self)
        var kernels: [KernelName: CLKernel] = [:]
        for name in KernelName.allCases { kernels[name] = try CLKernel(program: built.program, name: name.rawValue) }
        self.kernels = kernels
        sizes = built.sizes
        groupLimits = built.groupLimits
        let context = device.context
        pixelScale = try (0..<256).map { T($0) / 255 }.withUnsafeBytes { bytes in
            try CLBuffer(context: context, byteCount: bytes.count, readOnly: true, copying: bytes.baseAddress)
        }
    }

    /// Builds `source` (with the usual prelude) on this backend's device: how a broken kernel's
    /// build log reaches the user. Throws `KernelBuildError` on a compile error.
    public func compileForTesting(_ source: String) throws {
        _ = try CLProgram(context: device.context, source: kernelPrelude(for: T.self, sizes: sizes) + source, options: "",
                          deviceName: device.info.description)
    }

    public var name: String { "opencl" }
    public var deviceDescription: String {
        "opencl: \(device.info.name) (\(device.info.type), \(device.info.version), \(T.openCLTypeName), \(family.rawValue) kernels)"
    }

    // MARK: Memory

    public func makeTensor(_ shape: Shape) throws -> Tensor<OpenCLBackend<T>> {
        let t = Tensor<OpenCLBackend<T>>(shape: shape, storage: try CLBuffer(context: device.context, byteCount: shape.count * MemoryLayout<T>.stride))
        try upload([T](repeating: 0, count: shape.count), into: t)
        return t
    }

    public func makeTensorGroup(_ shapes: [Shape]) throws -> TensorGroup<OpenCLBackend<T>> {
        // Parts are sub-buffers, which must start on the device's base address alignment.
        let stride = MemoryLayout<T>.stride
        let (offsets, count) = TensorGroup<OpenCLBackend<T>>.layout(shapes, alignment: max(1, device.baseAlignmentBytes / stride))
        let whole = try makeTensor(Shape(1, count))
        return TensorGroup(whole: whole, parts: try zip(shapes, offsets).map { shape, offset in
            Tensor(shape: shape, storage: try CLBuffer(regionOf: whole.storage, byteOffset: offset * stride,
                                                       byteCount: shape.count * stride))
        }, offsets: offsets)
    }

    public func upload(_ values: [T], into t: Tensor<OpenCLBackend<T>>) throws {
        guard values.count == t.count else {
            throw ShapeError("upload", "\(values.count) values for a tensor of shape \(t.shape)")
        }
        guard !values.isEmpty else { return }
        try values.withUnsafeBytes { bytes in
            try check(clEnqueueWriteBuffer(queue, t.storage.handle, cl_bool(CL_TRUE), 0, bytes.count, bytes.baseAddress, 0, nil, nil),
                      "clEnqueueWriteBuffer")
        }
    }

    public func download(_ t: Tensor<OpenCLBackend<T>>) throws -> [T] {
        var values = [T](repeating: 0, count: t.count)
        guard !values.isEmpty else { return values }
        try values.withUnsafeMutableBytes { bytes in
            try check(clEnqueueReadBuffer(queue, t.storage.handle, cl_bool(CL_TRUE), 0, bytes.count, bytes.baseAddress, 0, nil, nil),
                      "clEnqueueReadBuffer")
        }
        return values
    }

    public func makeExampleSet(pixels: [UInt8], labels: [UInt8], features: Int,
                               classes: Int) throws -> ExampleSet<OpenCLBackend<T>> {
        guard pixels.count == labels.count * features else {
            throw ShapeError("makeExampleSet", "\(pixels.count) pixels for \(labels.count) examples of \(features) features")
        }
        guard let nonZeros = SparseExamples.nonZeros(pixels, features: features) else {
            throw ShapeError("makeExampleSet", "\(features) features: the OpenCL backend takes at most \(SparseExamples.maxFeatures)")
        }
        // The compressed rows are written straight into mapped device buffers: on a CPU device
        // that is the device's own memory, so the host never holds a second copy of the data.
        let count = labels.count
        let offsets = try CLBuffer(context: device.context, byteCount: (count + 1) * 4, readOnly: true)
        let columns = try CLBuffer(context: device.context, byteCount: nonZeros * 2, readOnly: true)
        let values = try CLBuffer(context: device.context, byteCount: nonZeros, readOnly: true)
        try withMapped(offsets) { offsetBytes in
            try withMapped(columns) { columnBytes in
                try withMapped(values) { valueBytes in
                    SparseExamples.fill(pixels, count: count, features: features,
                                        offsets: offsetBytes.bindMemory(to: Int32.self, capacity: count + 1),
                                        columns: columnBytes.bindMemory(to: UInt16.self, capacity: nonZeros),
                                        values: valueBytes.bindMemory(to: UInt8.self, capacity: nonZeros))
                }
            }
        }
        // Only the GPU kernels' dense first-layer gradient reads the bytes as they are.
        let dense = family == .gpu ? try pixels.withUnsafeBytes(readOnlyBuffer) : nil
        return ExampleSet(count: count, features: features, classes: classes, storage: CLExamples(
            pixels: dense, labels: try labels.withUnsafeBytes(readOnlyBuffer),
            offsets: offsets, columns: columns, values: values))
    }

    /// Maps all of `buffer` for writing, runs `body` on the host pointer, and unmaps it.
    private func withMapped(_ buffer: CLBuffer, _ body: (UnsafeMutableRawPointer) throws -> Void) throws {
        guard buffer.byteCount > 0 else {
            var nothing: UInt8 = 0
            return try body(&nothing)
        }
        var status: cl_int = CL_SUCCESS
        let mapped = clEnqueueMapBuffer(queue, buffer.handle, cl_bool(CL_TRUE), cl_map_flags(CL_MAP_WRITE), 0,
                                        buffer.byteCount, 0, nil, nil, &status)
        try check(status, "clEnqueueMapBuffer")
        guard let mapped else { throw OpenCLError(call: "clEnqueueMapBuffer", code: CL_MAP_FAILURE) }
        defer { clEnqueueUnmapMemObject(queue, buffer.handle, mapped, 0, nil, nil) }
        try body(mapped)
    }

    /// A read-only device buffer holding a copy of `bytes`.
    private func readOnlyBuffer(_ bytes: UnsafeRawBufferPointer) throws -> CLBuffer {
        try CLBuffer(context: device.context, byteCount: bytes.count, readOnly: true, copying: bytes.baseAddress)
    }

    public func makeIndexList(_ indices: [Int32]) throws -> IndexList<OpenCLBackend<T>> {
        IndexList(indices, storage: try indices.withUnsafeBytes(readOnlyBuffer))
    }

    public func synchronize() throws { try device.queue.finish() }

    // MARK: Launching

    fileprivate enum Argument {
        case buffer(CLBuffer)
        case int(Int)
        case real(T)
    }

    /// Sets `arguments` in order and queues `kernel` over `global` items (each dimension rounded
    /// up to a multiple of the work-group's). The work-group is the size compiled into the
    /// kernel where it has one, else `preferred` fitted to the kernel (see `group`).
    private func launch(_ kernel: KernelName, global: [Int], preferred: [Int] = [], _ arguments: [Argument]) throws {
        let k = kernels[kernel]!
        for (index, argument) in arguments.enumerated() {
            switch argument {
            case .buffer(let buffer):
                var handle: cl_mem? = buffer.handle
                try k.setArgument(index, MemoryLayout<cl_mem>.size, &handle)
            case .int(let value):
                guard let narrow = Int32(exactly: value) else {
                    throw KernelArgumentOverflow(kernel: kernel.rawValue, argument: index, value: value)
                }
                var v = narrow
                try k.setArgument(index, MemoryLayout<Int32>.size, &v)
            case .real(let value):
                var v = value
                try k.setArgument(index, MemoryLayout<T>.size, &v)
            }
        }
        if global.contains(0) { return }
        var localSize = group(kernel, preferred: preferred)
        var globalSize = zip(global, localSize).map { g, l in (g + l - 1) / l * l }
        var event: cl_event?
        let status = localSize.reduce(1, *) > groupLimits[kernel, default: 1]
            ? CL_INVALID_WORK_GROUP_SIZE   // refused here: PoCL would first print its own lines to stderr
            : profiling
            ? clEnqueueNDRangeKernel(queue, k.handle, cl_uint(global.count), nil, &globalSize, &localSize, 0, nil, &event)
            : clEnqueueNDRangeKernel(queue, k.handle, cl_uint(global.count), nil, &globalSize, &localSize, 0, nil, nil)
        if status != CL_SUCCESS {
            // Let the work already queued finish before the error ends the process: PoCL, still
            // compiling those kernels on its threads while the process exits, aborted.
            _ = try? device.queue.finish()
        }
        try check(status, "clEnqueueNDRangeKernel(\(kernel.rawValue))")
        if let event { recorded.append((kernel, CLEvent(event))) }
    }

    /// The work-group `kernel` is launched with: the size compiled into it (its local arrays
    /// and loops depend on it; the build made sure the kernel takes it), or else `preferred`
    /// with its largest dimension halved until the group fits the kernel's limit and each
    /// dimension the device's.
    func group(_ kernel: KernelName, preferred: [Int]) -> [Int] {
        if let compiled = kernel.compiledGroup(sizes) { return compiled }
        let items = device.info.maxWorkItemSizes
        var local = preferred.enumerated().map { d, size in min(size, d < items.count ? items[d] : 1) }
        let limit = groupLimits[kernel, default: 1]
        while local.reduce(1, *) > limit, let d = local.indices.max(by: { local[$0] < local[$1] }) {
            local[d] = (local[d] + 1) / 2
        }
        return local
    }

    /// One-dimensional launch over n items, 64 to a group where the kernel allows.
    fileprivate func launch1D(_ kernel: KernelName, _ n: Int, _ arguments: [Argument]) throws {
        try launch(kernel, global: [n], preferred: [64], arguments)
    }

    /// Launch of a one-work-group reduction (the group's size is compiled in).
    private func launchReduction(_ kernel: KernelName, _ arguments: [Argument]) throws {
        try launch(kernel, global: kernel.compiledGroup(sizes)!, arguments)
    }

    /// Two-dimensional launch over (cols, rows), in 16 x 16 groups where the kernel allows.
    private func launch2D(_ kernel: KernelName, cols: Int, rows: Int, _ arguments: [Argument]) throws {
        try launch(kernel, global: [cols, rows], preferred: [16, 16], arguments)
    }

    // MARK: Ops

    public func gatherBatch(_ examples: ExampleSet<OpenCLBackend<T>>, order: IndexList<OpenCLBackend<T>>, start: Int,
                            x: Tensor<OpenCLBackend<T>>?, y: Tensor<OpenCLBackend<T>>) throws {
        try ShapeChecks.gather(examples, order, start, x?.shape, y.shape)
        try launch1D(.gatherBatch, y.rows, [
            .int(y.rows), .int(examples.features), .int(examples.classes), .int(start), .int(x == nil ? 0 : 1),
            .buffer(examples.storage.offsets), .buffer(examples.storage.columns), .buffer(examples.storage.values),
            .buffer(examples.storage.labels), .buffer(order.storage), .buffer(pixelScale),
            .buffer((x ?? y).storage), .buffer(y.storage),
        ])
    }

    public func gatherRows(_ table: Tensor<OpenCLBackend<T>>, order: IndexList<OpenCLBackend<T>>, start: Int,
                           into rows: Tensor<OpenCLBackend<T>>) throws {
        try ShapeChecks.gatherRows(table.shape, order, start, rows.shape)
        try launch2D(.gatherRows, cols: rows.cols, rows: rows.rows, [
            .int(rows.rows), .int(rows.cols), .int(start), .buffer(order.storage), .buffer(table.storage), .buffer(rows.storage),
        ])
    }

    public func inputLinear(_ examples: ExampleSet<OpenCLBackend<T>>, order: IndexList<OpenCLBackend<T>>, start: Int,
                            _ w: Tensor<OpenCLBackend<T>>, _ b: Tensor<OpenCLBackend<T>>, activation: Activation,
                            into y: Tensor<OpenCLBackend<T>>, targets: Tensor<OpenCLBackend<T>>?) throws {
        try ShapeChecks.inputLinear(examples, order, start, w.shape, b.shape, y.shape, targets: targets?.shape)
        let m = y.rows, n = w.rows
        let epilogue: Epilogue = [.bias, Epilogue(activation)]
        let targetArguments: [Argument] = [
            .int(epilogue.rawValue), .buffer(b.storage), .int(targets == nil ? 0 : examples.classes),
            .buffer(examples.storage.labels), .buffer((targets ?? y).storage),
        ]
        let pixelArguments: [Argument] = [
            .buffer(examples.storage.offsets), .buffer(examples.storage.columns), .buffer(examples.storage.values),
            .buffer(order.storage), .buffer(pixelScale),
        ]
        // wᵀ [features, n]: each non-zero pixel reads one row.
        if family == .gpu {
            // A group per (LANE_COLUMNS columns, row), its lanes splitting the row's pixels: see input.cl.
            try launch(.inputProductLanes, global: [n, m * sizes.lanes], [.int(m), .int(n), .int(start)] + pixelArguments
                       + [.buffer(try transposed(w)), .buffer(y.storage)] + targetArguments)
            return
        }
        // An item per (32 columns, row), a group per strip of 32 columns: see input.cl.
        let strips = try packedStrips(w, transposed: true, k: examples.features, n: n, width: 32)
        try launch(.inputProduct, global: [(n + 31) / 32, m], preferred: [1, 32],
                   [.int(m), .int(n), .int(examples.features), .int(start)] + pixelArguments
                   + [.buffer(strips), .buffer(y.storage)] + targetArguments)
    }

    public func inputLinearGradient(_ dz: Tensor<OpenCLBackend<T>>, _ examples: ExampleSet<OpenCLBackend<T>>,
                                    order: IndexList<OpenCLBackend<T>>, start: Int, _ w: Tensor<OpenCLBackend<T>>, decay: T,
                                    weightGradient dw: Tensor<OpenCLBackend<T>>, biasGradient db: Tensor<OpenCLBackend<T>>) throws {
        try ShapeChecks.inputGradient(dz.shape, examples, order, start, dw.shape)
        try requireShape("inputLinearGradient", "w", w.shape, dw.shape)
        try requireShape("inputLinearGradient", "db", db.shape, Shape(1, dz.cols))
        let m = dz.rows, n = dz.cols, features = examples.features
        if family == .gpu, let pixels = examples.storage.pixels {
            // A group per (LANE_COLUMNS features, row of dw), its lanes splitting the batch: see input.cl.
            try launch(.inputGradientLanes, global: [lanesColumns(features), n * sizes.lanes], [
                .int(m), .int(n), .int(features), .int(start), .real(decay), .buffer(pixels), .buffer(order.storage),
                .buffer(dz.storage), .buffer(w.storage), .buffer(dw.storage), .buffer(db.storage),
            ])
            return
        }
        // Partial sums over parts of the batch's rows from the non-zero pixels, [parts,
        // ⌈n/32⌉, features + 1, 32] (the extra feature is the constant 1: the bias gradient),
        // then input_gradient_sum adds them.
        let columnBlocks = (n + 31) / 32   // 32 columns per item, see input.cl
        let parts = gradientParts(columnBlocks: columnBlocks)
        let scratch = try scratchBuffer(&gradientScratch, bytes: parts * columnBlocks * (features + 1) * 32 * MemoryLayout<T>.stride)
        try launch(.inputGradientParts, global: [columnBlocks, parts], preferred: [1, 1], [
            .int(m), .int(n), .int(features), .int(start), .int(parts), .buffer(examples.storage.offsets),
            .buffer(examples.storage.columns), .buffer(examples.storage.values), .buffer(order.storage),
            .buffer(pixelScale), .buffer(dz.storage), .buffer(scratch),
        ])
        try launch2D(.inputGradientSum, cols: features + 1, rows: n, [
            .int(n), .int(features), .int(parts), .real(decay), .buffer(scratch), .buffer(w.storage),
            .buffer(dw.storage), .buffer(db.storage),
        ])
    }

    /// The columns of a gradient lanes kernel's launch for `k` columns of x: k rounded up to
    /// whole column groups, and one more group for the bias gradient (see epilogue.cl).
    private func lanesColumns(_ k: Int) -> Int { ((k + sizes.columns - 1) / sizes.columns + 1) * sizes.columns }

    /// `scratch`, grown to at least `bytes`. A new scratch buffer starts as zeros, written from
    /// the host, like every tensor: no kernel ever sees memory nobody wrote, and Oclgrind's
    /// uninitialized-value checker, which keeps a released buffer's bookkeeping for the next
    /// buffer that gets its number, sees the whole buffer written (docs/PORTABILITY.md).
    private func scratchBuffer(_ scratch: inout CLBuffer?, bytes: Int) throws -> CLBuffer {
        if let buffer = scratch, buffer.byteCount >= bytes { return buffer }
        let zeros = [UInt8](repeating: 0, count: bytes)
        let buffer = try zeros.withUnsafeBytes { try CLBuffer(context: device.context, byteCount: bytes, copying: $0.baseAddress) }
        scratch = buffer
        return buffer
    }

    /// op(b) [k, n] packed in strips of `width` columns (pack_strips in matmul.cl) in scratch
    /// memory, queued: valid until the next op that uses the scratch.
    private func packedStrips(_ b: Tensor<OpenCLBackend<T>>, transposed: Bool, k: Int, n: Int, width: Int) throws -> CLBuffer {
        let padded = (n + width - 1) / width * width
        let strips = try scratchBuffer(&operandScratch, bytes: padded * k * MemoryLayout<T>.stride)
        // Items copy 16 neighbouring elements of b: see pack_strips.
        try launch2D(.packStrips, cols: transposed ? (k + 15) / 16 : padded / 16, rows: transposed ? padded : k, [
            .int(k), .int(n), .int(width), .int(transposed ? 1 : 0), .buffer(b.storage), .buffer(strips),
        ])
        return strips
    }

    /// A transposed copy of `t` in scratch memory, queued: valid until the next op that uses the scratch.
    private func transposed(_ t: Tensor<OpenCLBackend<T>>) throws -> CLBuffer {
        let scratch = try scratchBuffer(&operandScratch, bytes: t.count * MemoryLayout<T>.stride)
        try launch2D(.transpose, cols: t.rows, rows: t.cols, [
            .int(t.rows), .int(t.cols), .buffer(t.storage), .buffer(scratch),
        ])
        return scratch
    }

    public func matmul(_ a: Tensor<OpenCLBackend<T>>, transposeA: Bool, _ b: Tensor<OpenCLBackend<T>>, transposeB: Bool,
                       into c: Tensor<OpenCLBackend<T>>) throws {
        let (m, k, n) = try ShapeChecks.matmul(a.shape, transposeA, b.shape, transposeB, c.shape)
        try product(a, transposeA: transposeA, b, transposeB: transposeB, into: c, m: m, k: k, n: n)
    }

    public func linear(_ x: Tensor<OpenCLBackend<T>>, _ w: Tensor<OpenCLBackend<T>>, _ b: Tensor<OpenCLBackend<T>>,
                       activation: Activation, into y: Tensor<OpenCLBackend<T>>) throws {
        try ShapeChecks.linear(x.shape, w.shape, b.shape, y.shape)
        try product(x, transposeA: false, w, transposeB: true, into: y, m: x.rows, k: x.cols, n: w.rows,   // y = x·wᵀ
                    epilogue: [.bias, Epilogue(activation)], vector: b)                                     //   + b, f(·)
    }

    public func linearGradient(_ dz: Tensor<OpenCLBackend<T>>, _ x: Tensor<OpenCLBackend<T>>, _ w: Tensor<OpenCLBackend<T>>,
                               decay: T, weightGradient dw: Tensor<OpenCLBackend<T>>, biasGradient db: Tensor<OpenCLBackend<T>>) throws {
        try ShapeChecks.linearGradient(dz.shape, x.shape, w.shape, dw.shape, db.shape)
        if family == .gpu && !usesBlockedProduct(m: dz.cols, n: x.cols) {
            // A group per (LANE_COLUMNS columns of x, row of dw), its lanes splitting the batch: see matmul.cl.
            try launch(.weightGradientLanes, global: [lanesColumns(x.cols), dz.cols * sizes.lanes], [
                .int(dz.rows), .int(dz.cols), .int(x.cols), .real(decay), .buffer(dz.storage), .buffer(x.storage),
                .buffer(w.storage), .buffer(dw.storage), .buffer(db.storage),
            ])
            return
        }
        if family == .gpu {
            // The blocked product has no row sums: db takes its own launch.
            try product(dz, transposeA: true, x, transposeB: false, into: dw, m: dz.cols, k: dz.rows, n: x.cols,   // dw = dzᵀ·x
                        epilogue: .add, alpha: decay, operand: w)                                               //   + decay·w
            return try columnSums(dz, into: db)                                                                 // db = Σ_rows dz
        }
        try product(dz, transposeA: true, x, transposeB: false, into: dw, m: dz.cols, k: dz.rows, n: x.cols,   // dw = dzᵀ·x
                    epilogue: [.add, .rowSums], alpha: decay, operand: w, vector: db)                       //   + decay·w; db = Σ_rows dz
    }

    /// Whether the GPU family computes an [m, n] product with matmul_blocked: where C holds at
    /// least one whole block of the kernel in each direction. Below that most of a block's items
    /// would compute nothing, and the tiled kernel (or, for a weight gradient, the lanes kernel,
    /// which spreads a small gradient's batch over many items) keeps more of the device busy.
    private func usesBlockedProduct(m: Int, n: Int) -> Bool {
        let block = KernelSizes.itemBlock * sizes.tile
        return m >= block && n >= block
    }

    public func backpropagate(_ dz: Tensor<OpenCLBackend<T>>, _ w: Tensor<OpenCLBackend<T>>,
                              activation: Activation, output a: Tensor<OpenCLBackend<T>>,
                              into dx: Tensor<OpenCLBackend<T>>) throws {
        try ShapeChecks.backpropagate(dz.shape, w.shape, a.shape, dx.shape)
        let derivative = Epilogue(derivativeOf: activation)
        try product(dz, transposeA: false, w, transposeB: false, into: dx, m: dz.rows, k: dz.cols, n: w.cols,   // dx = dz·w
                    epilogue: derivative, operand: derivative.isEmpty ? nil : a)                             //   ⊙ f'(a)
    }

    /// c = op(a) · op(b) [m, n] with inner size k (shapes already checked), then `epilogue`.
    private func product(_ a: Tensor<OpenCLBackend<T>>, transposeA: Bool, _ b: Tensor<OpenCLBackend<T>>, transposeB: Bool,
                         into c: Tensor<OpenCLBackend<T>>, m: Int, k: Int, n: Int, epilogue: Epilogue = [],
                         alpha: T = 0, operand: Tensor<OpenCLBackend<T>>? = nil, vector: Tensor<OpenCLBackend<T>>? = nil) throws {
        // Only matmul_rows computes row sums; on the GPU family linearGradient takes its lanes kernel.
        assert(family == .cpu || !epilogue.contains(.rowSums), "the tiled matmul has no row sums")
        let extra: [Argument] = [
            .int(epilogue.rawValue), .real(alpha), .buffer((operand ?? c).storage), .buffer((vector ?? c).storage),
        ]
        if family == .cpu {
            // The barrier-free kernel, with op(B) packed in strips of 16 columns first.
            let groups = (n + 15) / 16   // matmul_rows items across: 16 columns each; items down: 4 rows each
            let strips = try packedStrips(b, transposed: transposeB, k: k, n: n, width: 16)
            // Work-groups of 32 items down the rows: fewer, larger groups cost a CPU device less to schedule.
            try launch(.matmulRows, global: [groups, (m + 3) / 4], preferred: [1, 32], [
                .int(m), .int(n), .int(k), .int(transposeA ? 1 : 0), .buffer(a.storage), .buffer(strips), .buffer(c.storage),
            ] + extra)
            return
        }
        let operands: [Argument] = [
            .int(m), .int(n), .int(k), .int(transposeA ? 1 : 0), .int(transposeB ? 1 : 0),
            .buffer(a.storage), .buffer(b.storage), .buffer(c.storage),
        ]
        if usesBlockedProduct(m: m, n: n) {
            // A TILE x TILE group per (ITEM_BLOCK · TILE)² block of C: see matmul.cl.
            let block = KernelSizes.itemBlock * sizes.tile
            try launch(.matmulBlocked, global: [(n + block - 1) / block * sizes.tile, (m + block - 1) / block * sizes.tile],
                       operands + extra)
            return
        }
        try launch2D(.matmul, cols: n, rows: m, operands + extra)
    }

    public func add(_ a: Tensor<OpenCLBackend<T>>, _ b: Tensor<OpenCLBackend<T>>, into c: Tensor<OpenCLBackend<T>>) throws {
        let (ba, bb) = try ShapeChecks.add(a.shape, b.shape, c.shape)
        if ba == .none, bb == .row {   // every layer's bias add
            try launch1D(.addRow, c.rows, [.int(c.rows), .int(c.cols), .buffer(a.storage), .buffer(b.storage), .buffer(c.storage)])
            return
        }
        try launch2D(.addBroadcast, cols: c.cols, rows: c.rows, [
            .int(c.rows), .int(c.cols), .int(ba.kernelMode), .int(bb.kernelMode),
            .buffer(a.storage), .buffer(b.storage), .buffer(c.storage),
        ])
    }

    public func relu(_ x: Tensor<OpenCLBackend<T>>, into y: Tensor<OpenCLBackend<T>>) throws {
        try ShapeChecks.same("relu", [("x", x.shape), ("y", y.shape)])
        try launch1D(.relu, x.count, [.int(x.count), .buffer(x.storage), .buffer(y.storage)])
    }

    public func reluBackward(_ dy: Tensor<OpenCLBackend<T>>, _ x: Tensor<OpenCLBackend<T>>,
                             into dx: Tensor<OpenCLBackend<T>>) throws {
        try ShapeChecks.same("reluBackward", [("dy", dy.shape), ("x", x.shape), ("dx", dx.shape)])
        try launch1D(.reluBackward, x.count, [.int(x.count), .buffer(dy.storage), .buffer(x.storage), .buffer(dx.storage)])
    }

    public func softmaxRows(_ z: Tensor<OpenCLBackend<T>>, into p: Tensor<OpenCLBackend<T>>) throws {
        try ShapeChecks.same("softmaxRows", [("z", z.shape), ("p", p.shape)])
        try launch1D(.softmaxRows, z.rows, [.int(z.rows), .int(z.cols), .buffer(z.storage), .buffer(p.storage)])
    }

    public func softmaxCrossEntropyBackward(_ p: Tensor<OpenCLBackend<T>>, _ y: Tensor<OpenCLBackend<T>>,
                                            into dz: Tensor<OpenCLBackend<T>>) throws {
        try ShapeChecks.same("softmaxCrossEntropyBackward", [("p", p.shape), ("y", y.shape), ("dz", dz.shape)])
        try launch1D(.softmaxXentBackward, p.count, [
            .int(p.count), .real(1 / T(p.rows)), .buffer(p.storage), .buffer(y.storage), .buffer(dz.storage),
        ])
    }

    public func layersAfterFirst(weights: TensorGroup<OpenCLBackend<T>>, biases: TensorGroup<OpenCLBackend<T>>,
                                 activations: TensorGroup<OpenCLBackend<T>>, logits: Tensor<OpenCLBackend<T>>,
                                 targets y: Tensor<OpenCLBackend<T>>, probabilities p: Tensor<OpenCLBackend<T>>,
                                 gradients dz: TensorGroup<OpenCLBackend<T>>?, stats: Tensor<OpenCLBackend<T>>,
                                 at index: Int, weightNorms: Bool) throws {
        try ShapeChecks.layersAfterFirst(weights.parts, biases.parts, activations.parts, logits.shape, y.shape, p.shape,
                                         dz?.parts, stats.shape, at: index, weightNorms: weightNorms)
        // The one-launch kernel gives each row of the batch a work-group that reads every
        // layer's whole weights: that pays on a GPU for narrow layers only (at most 128 x 128
        // weights each), and never on a CPU device, whose few cores then each read all the
        // weights once per row (docs/PERFORMANCE.md, "figures behind the code").
        guard family == .gpu, weights.parts.allSatisfy({ $0.rows <= 128 && $0.cols <= 128 }) else {
            return try layersAfterFirstByOps(weights: weights, biases: biases, activations: activations, logits: logits,
                                             targets: y, probabilities: p, gradients: dz, stats: stats, at: index,
                                             weightNorms: weightNorms)
        }
        // The layer table (see layers.cl); dz's offsets are unused without dz.
        let layers = weights.parts.count, m = logits.rows
        var table: [Int32] = []
        for l in 0..<layers {
            let w = weights.parts[l]
            table += [w.cols, w.rows, weights.offsets[l], biases.offsets[l],
                      l > 0 ? activations.offsets[l - 1] : 0, l < layers - 1 ? activations.offsets[l] : 0,
                      dz?.offsets[l] ?? 0, l > 0 ? dz?.offsets[l - 1] ?? 0 : 0].map { Int32($0) }
        }
        let layout = try layerTable(table)
        let rowStats = try scratchBuffer(&rowStatsScratch, bytes: BatchStatistics.width * m * MemoryLayout<T>.stride)
        try launch(.layersAfterFirst, global: [m * sizes.rowGroup], [
            .int(layers), .int(m), .int(dz == nil ? 0 : 1), .real(1 / T(m)),
            .int(weightNorms ? weights.whole.count : 0), .buffer(layout),
            .buffer(weights.whole.storage), .buffer(biases.whole.storage), .buffer(activations.whole.storage),
            .buffer(logits.storage), .buffer(y.storage), .buffer(p.storage), .buffer((dz?.whole ?? p).storage),
            .buffer(rowStats),
        ])
        // The rows' statistics added up by a second launch: OpenCL 1.2 lets no work-group see
        // another's writes before the launch that made them has finished.
        try launch(.rowStatsSum, global: [sizes.rowGroup], [
            .int(m), .int(index), .int(weightNorms ? 1 : 0), .buffer(rowStats), .buffer(stats.storage),
        ])
    }

    /// A device copy of a layer table, made once per distinct table (a few per run).
    private func layerTable(_ table: [Int32]) throws -> CLBuffer {
        if let buffer = layerTables[table] { return buffer }
        let buffer = try table.withUnsafeBytes(readOnlyBuffer)
        layerTables[table] = buffer
        return buffer
    }

    public func crossEntropyStats(_ p: Tensor<OpenCLBackend<T>>, _ y: Tensor<OpenCLBackend<T>>,
                                  into stats: Tensor<OpenCLBackend<T>>, at index: Int) throws {
        try ShapeChecks.stats(p.shape, y.shape, stats.shape, at: index)
        try launchReduction(.crossEntropyStats, [
            .int(p.rows), .int(p.cols), .int(index), .buffer(p.storage), .buffer(y.storage), .buffer(stats.storage),
        ])
    }

    public func softmaxCrossEntropy(_ z: Tensor<OpenCLBackend<T>>, _ y: Tensor<OpenCLBackend<T>>,
                                    probabilities p: Tensor<OpenCLBackend<T>>, gradient dz: Tensor<OpenCLBackend<T>>?,
                                    stats: Tensor<OpenCLBackend<T>>, at index: Int) throws {
        try ShapeChecks.same("softmaxCrossEntropy", [("z", z.shape), ("y", y.shape), ("p", p.shape)] + (dz.map { [("dz", $0.shape)] } ?? []))
        try ShapeChecks.stats(p.shape, y.shape, stats.shape, at: index)
        try launchReduction(.softmaxCrossEntropy, [
            .int(z.rows), .int(z.cols), .int(index), .int(dz == nil ? 0 : 1), .real(1 / T(z.rows)), .buffer(z.storage),
            .buffer(y.storage), .buffer(p.storage), .buffer((dz ?? p).storage), .buffer(stats.storage),
        ])
    }

    public func sumOfSquares(_ x: Tensor<OpenCLBackend<T>>, into out: Tensor<OpenCLBackend<T>>, at index: Int) throws {
        try ShapeChecks.index("sumOfSquares", index, in: out.shape)
        try launchReduction(.sumOfSquares, [.int(x.count), .int(index), .buffer(x.storage), .buffer(out.storage)])
    }

    public func columnSums(_ x: Tensor<OpenCLBackend<T>>, into s: Tensor<OpenCLBackend<T>>) throws {
        try requireShape("columnSums", "output", s.shape, Shape(1, x.cols))
        try launch1D(.columnSums, x.cols, [.int(x.rows), .int(x.cols), .buffer(x.storage), .buffer(s.storage)])
    }

    public func scaledAdd(_ alpha: T, _ x: Tensor<OpenCLBackend<T>>, into y: Tensor<OpenCLBackend<T>>) throws {
        try ShapeChecks.same("scaledAdd", [("x", x.shape), ("y", y.shape)])
        try launch1D(.scaledAdd, x.count, [.int(x.count), .real(alpha), .buffer(x.storage), .buffer(y.storage)])
    }
}

extension OpenCLBackend {
    public func momentumStep(_ w: Tensor<OpenCLBackend<T>>, gradient g: Tensor<OpenCLBackend<T>>,
                             velocity v: Tensor<OpenCLBackend<T>>, learningRate: T, momentum: T) throws {
        try ShapeChecks.same("momentumStep", [("w", w.shape), ("g", g.shape), ("v", v.shape)])
        try launch1D(.momentumStep, w.count, [
            .int(w.count), .real(learningRate), .real(momentum), .buffer(w.storage), .buffer(g.storage), .buffer(v.storage),
        ])
    }

    public func adamStep(_ w: Tensor<OpenCLBackend<T>>, gradient g: Tensor<OpenCLBackend<T>>, m: Tensor<OpenCLBackend<T>>,
                         v: Tensor<OpenCLBackend<T>>, learningRate: T, beta1: T, beta2: T, epsilon: T,
                         correction1: T, correction2: T) throws {
        try ShapeChecks.same("adamStep", [("w", w.shape), ("g", g.shape), ("m", m.shape), ("v", v.shape)])
        try launch1D(.adamStep, w.count, [
            .int(w.count), .real(learningRate), .real(beta1), .real(beta2), .real(epsilon), .real(correction1),
            .real(correction2), .buffer(w.storage), .buffer(g.storage), .buffer(m.storage), .buffer(v.storage),
        ])
    }
}

extension OpenCLBackend: ProfilingBackend {
    public func setProfiling(_ enabled: Bool) { profiling = enabled }

    public func resetProfile() { recorded.removeAll() }

    public func profile() throws -> [KernelProfile] {
        try device.queue.finish()
        var totals: [KernelName: (count: Int, seconds: Double)] = [:]
        for (kernel, event) in recorded {
            let seconds = try event.deviceSeconds()
            totals[kernel, default: (0, 0)].count += 1
            totals[kernel, default: (0, 0)].seconds += seconds
        }
        return totals.map { KernelProfile(kernel: $0.key.rawValue, count: $0.value.count, totalSeconds: $0.value.seconds) }
            .sorted { $0.totalSeconds > $1.totalSeconds }
    }
}
