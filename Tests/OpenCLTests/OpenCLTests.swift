import Deriv8
import Foundation
import GPUTensor
import Testing

// OpenCL against the CPU backend. These run on whatever OpenCL device is present: PoCL on the
// CPU in CI, a GPU where there is one (DERIV8_OPENCL_DEVICE=N picks another device). They fail,
// never skip, when there is no OpenCL device: CI installs pocl-opencl-icd.

func openCLDeviceIndex() -> Int? {
    ProcessInfo.processInfo.environment["DERIV8_OPENCL_DEVICE"].flatMap(Int.init)
}

/// Whether the device the tests use has fp64 (llvmpipe, Intel Xe and Apple GPUs do not): the
/// double-precision tests are skipped where it has not, and say so.
func openCLDeviceHasFP64() -> Bool {
    guard let devices = try? OpenCLBackend<Float>.devices(), !devices.isEmpty else { return true }   // the tests then fail, as they should
    let index = openCLDeviceIndex() ?? OpenCLBackend<Float>.autoDeviceIndex(devices) ?? 0
    return devices.first { $0.index == index }?.supportsFP64 ?? true
}

/// `make datasets` puts MNIST in datasets/mnist (swift test runs in the package root), or DERIV8_DATA.
func mnistFolder() -> String { ProcessInfo.processInfo.environment["DERIV8_DATA"] ?? "datasets/mnist" }

@Suite("OpenCL backend", .serialized)
struct OpenCLTests {
    @Test("devices are listed; PoCL or a GPU is there")
    func devices() throws {
        let devices = try OpenCLBackend<Float>.devices()
        #expect(!devices.isEmpty)
        // The index --device takes names the same device on every listing.
        let again = try OpenCLBackend<Float>.devices()
        #expect(devices.map { "\($0.index) \($0.platform) \($0.name)" } == again.map { "\($0.index) \($0.platform) \($0.name)" })
    }

    @Test("every op agrees with the CPU backend (the check command's cases), with either kernel family",
          arguments: KernelFamily.allCases)
    func opCheck(family: KernelFamily) throws {
        let backend = try OpenCLBackend<Float>(deviceIndex: openCLDeviceIndex(), family: family)
        let rows = try OpCheck().run(backend, against: CPUBackend<Double>())
        #expect(rows.count == OpCheck.standardCases.count)
        for row in rows where !row.passed {
            Issue.record("\(row.op) \(row.shapes): \(row.closeness.summary)")
        }
    }

    @Test("in double precision the kernels agree with the CPU to rounding",
          .enabled(if: openCLDeviceHasFP64(), "the OpenCL device has no fp64 (cl_khr_fp64)"))
    func opCheckDouble() throws {
        let backend = try OpenCLBackend<Double>(deviceIndex: openCLDeviceIndex())
        var check = OpCheck()
        check.rtol = 1e-11
        check.atolPerTerm = 1e-13
        let rows = try check.run(backend, against: CPUBackend<Double>(kernels: .naive))
        for row in rows where !row.passed { Issue.record("\(row.op) \(row.shapes): \(row.closeness.summary)") }
    }

    @Test("gradient checking in double precision passes at 1e-7 on OpenCL, through either input path",
          .enabled(if: openCLDeviceHasFP64(), "the OpenCL device has no fp64 (cl_khr_fp64)"),
          arguments: GradientCheck.Input.allCases)
    func gradientCheck(input: GradientCheck.Input) throws {
        var check = GradientCheck()
        check.input = input
        let result = try check.run(on: OpenCLBackend<Double>(deviceIndex: openCLDeviceIndex()))
        #expect(result.passed, "relative difference \(result.relativeDifference)")
    }

    @Test("gradient checking in float (how devices without fp64 check) passes on either kernel family and catches a missing L2 term",
          arguments: KernelFamily.allCases, GradientCheck.Input.allCases)
    func gradientCheckFloat(family: KernelFamily, input: GradientCheck.Input) throws {
        let backend = try OpenCLBackend<Float>(deviceIndex: openCLDeviceIndex(), family: family)
        var check = GradientCheck.float
        check.input = input
        let result = try check.run(on: backend)
        #expect(result.passed, "relative difference \(result.relativeDifference)")
        var wrong = check
        wrong.lambda = 0.5
        wrong.backpropLambda = 0
        #expect(!(try wrong.run(on: backend)).passed)
    }

    @Test("small shapes (check --small) reach every op, and agree on either kernel family", arguments: KernelFamily.allCases)
    func opCheckSmall(family: KernelFamily) throws {
        let backend = try OpenCLBackend<Float>(deviceIndex: openCLDeviceIndex(), family: family)
        let rows = try OpCheck().run(backend, against: CPUBackend<Double>(), cases: OpCheck.smallCases)
        #expect(Set(rows.map(\.op)) == Set(OpCheck.Op.allCases))
        for row in rows where !row.passed { Issue.record("\(row.op) \(row.shapes): \(row.closeness.summary)") }
    }

    @Test("300 training steps from the same seed: every step's loss and the final parameters agree")
    func sameTraining() throws {
        let mnist = try MNIST.load(from: mnistFolder())
        var config = TrainingConfig()
        config.batchSize = 100
        config.seed = 11
        let data = mnist.prefix(train: 6_000, test: 1_000)
        func run<B: Backend>(_ backend: B) throws -> (losses: [Double], parameters: [[Double]], accuracy: Double) {
            let trainer = try Trainer(backend: backend, config: config, data: data)
            var losses: [Double] = []
            var accuracy = 0.0
            for _ in 0..<5 { accuracy = try trainer.runEpoch { losses.append($0.batchLoss) }.testAccuracy }
            return (losses, try trainer.model.downloadParameters().map { $0.values.map(Double.init) }, accuracy)
        }
        let cpu = try run(CPUBackend<Float>())
        let opencl = try run(OpenCLBackend<Float>(deviceIndex: openCLDeviceIndex()))
        #expect(cpu.losses.count == 300)
        // Float rounding differs between the backends (summation order, exp); over 300 steps the
        // difference grows but stays far below what a wrong kernel would cause.
        expectClose(opencl.losses, cpu.losses, atol: 1e-4, rtol: 1e-3, "loss of each step")
        for (p, (a, b)) in zip(opencl.parameters, cpu.parameters).enumerated() {
            expectClose(a, b, atol: 1e-3, rtol: 1e-2, "parameter tensor \(p)")
        }
        #expect(abs(opencl.accuracy - cpu.accuracy) <= 0.003)
    }

    @Test("float data (gathered rows, the dense first layer) and a validation set train as on the CPU backend, on either kernel family",
          arguments: KernelFamily.allCases)
    func floatData(family: KernelFamily) throws {
        let mnist = try MNIST.load(from: mnistFolder()).prefix(train: 1_500, test: 300)
        // Pixels as floats, scaled and shifted so that no input is zero and none is a byte's multiple.
        func asFloats(_ e: LabelledExamples) -> LabelledExamples {
            LabelledExamples(inputs: .floats(e.inputs.asFloats.map { $0 * 1.5 - 0.25 }), labels: e.labels, features: e.features)
        }
        let data = try DataSet(train: asFloats(mnist.train), test: asFloats(mnist.test), exampleShape: [784], path: "floats")
        var config = TrainingConfig()
        config.batchSize = 100
        config.validation = 200
        config.learningRate = 0.05
        func run<B: Backend>(_ backend: B) throws -> (losses: [Double], results: [EpochResult]) {
            let trainer = try Trainer(backend: backend, config: config, data: data)
            var losses: [Double] = []
            let results = try (0..<2).map { _ in try trainer.runEpoch { losses.append($0.batchLoss) } }
            return (losses, results)
        }
        let cpu = try run(CPUBackend<Float>())
        let opencl = try run(OpenCLBackend<Float>(deviceIndex: openCLDeviceIndex(), family: family))
        #expect(cpu.losses.count == 26)
        expectClose(opencl.losses, cpu.losses, atol: 1e-4, rtol: 1e-3, "loss of each step")
        for (a, b) in zip(opencl.results, cpu.results) {
            #expect(abs(a.validationAccuracy! - b.validationAccuracy!) <= 0.01 && abs(a.testAccuracy - b.testAccuracy) <= 0.01)
        }
    }

    @Test("a kernel with a syntax error raises the build log, not a crash")
    func buildError() throws {
        let backend = try OpenCLBackend<Float>(deviceIndex: openCLDeviceIndex())
        let error = #expect(throws: KernelBuildError.self) {
            try backend.compileForTesting("__kernel void broken(__global real* x) { x[0] = 1 +; }")
        }
        #expect(error?.log.isEmpty == false)
        #expect(error?.description.contains("CL_BUILD_PROGRAM_FAILURE") == true)
    }

    @Test("errors carry the call and the symbolic name")
    func errorNames() {
        let error = OpenCLError(call: "clSetKernelArg", code: -38)
        #expect(error.description == "clSetKernelArg failed: CL_INVALID_MEM_OBJECT (-38)")
        #expect(OpenCLError(call: "clCreateBuffer", code: -61).description.hasPrefix("clCreateBuffer failed: CL_INVALID_BUFFER_SIZE (-61); "))
        #expect(OpenCLError(call: "clGetPlatformIDs", code: -1001).description.contains("pocl-opencl-icd"))
    }

    @Test("a device index that does not exist is refused")
    func badDevice() {
        #expect(throws: OpenCLUnavailable.self) { try OpenCLBackend<Float>(deviceIndex: 99) }
    }
}

/// Records an issue unless every element of actual is within atol + rtol·|expected| (shapes
/// first), naming the largest difference and the first mismatches.
func expectClose(_ actual: [Double], _ expected: [Double], atol: Double = 1e-6, rtol: Double = 1e-5,
                 _ label: String = "", sourceLocation: SourceLocation = #_sourceLocation) {
    let result = Closeness(actual, expected, atol: atol, rtol: rtol)
    if !result.passed { Issue.record("\(label): \(result.summary)", sourceLocation: sourceLocation) }
}

// One serialized suite for everything that uses OpenCL: the object counts are process-wide, so
// the leak test must not overlap another OpenCL test.
extension OpenCLTests {
    @Test("momentum and adam on OpenCL equal the CPU backend's hand-checked ops, in double",
          .enabled(if: openCLDeviceHasFP64(), "the OpenCL device has no fp64 (cl_khr_fp64)"))
    func sameAsCPU() throws {
        let rows = try OpCheck().run(OpenCLBackend<Double>(deviceIndex: openCLDeviceIndex()), against: CPUBackend<Double>(),
                                     cases: OpCheck.standardCases.filter { $0.op == .momentumStep || $0.op == .adamStep })
        #expect(rows.count == 8)
        for row in rows where !row.passed { Issue.record("\(row.op) \(row.shapes): \(row.closeness.summary)") }
    }
}

extension OpenCLTests {
    @Test("a training run leaks no OpenCL objects: counts stay flat across epochs and return when the run ends")
    func noLeaks() throws {
        let mnist = try MNIST.load(from: mnistFolder())
        var config = TrainingConfig()
        config.shuffle = .everyEpoch   // a new index buffer every epoch: the old one must go
        config.optimizer.kind = .adam
        // The device's context, queue and program live for the process (built once); make sure
        // they exist before counting.
        _ = try OpenCLBackend<Float>(deviceIndex: openCLDeviceIndex())
        let before = OpenCLObjectCounts.current
        var afterEpochs: [[String: Int]] = []
        do {
            let backend = try OpenCLBackend<Float>(deviceIndex: openCLDeviceIndex())
            let trainer = try Trainer(backend: backend, config: config, data: mnist.prefix(train: 2_000, test: 500))
            for _ in 0..<3 {
                _ = try trainer.runEpoch()
                afterEpochs.append(OpenCLObjectCounts.current)
            }
        }
        #expect(afterEpochs[1] == afterEpochs[2], "objects created per epoch and not released")
        #expect(OpenCLObjectCounts.current == before, "objects still alive after the backend and trainer are gone")
        #expect((afterEpochs[2]["buffer"] ?? 0) > (before["buffer"] ?? 0), "the count sees the run's buffers")
    }
}

/// Where the byte paths are compared with the float paths: the CPU backend's tuned Float
/// kernels and each OpenCL kernel family.
enum BytePathBackend: String, CaseIterable, Sendable {
    case cpu, openclGPUKernels, openclCPUKernels
}

extension OpenCLTests {
    /// The first layer read from example bytes (`inputLinear`, `inputLinearGradient`: what
    /// training runs) against the same layer on the gathered float batch (`gatherBatch`, then
    /// `linear`, `linearGradient`), on one backend: the byte loops are checked, not trusted.
    @Test("the first layer from example bytes equals the float path on the gathered batch", arguments: BytePathBackend.allCases)
    func bytePathsEqualFloatPaths(_ which: BytePathBackend) throws {
        switch which {
        case .cpu: try compareBytePaths(CPUBackend<Float>())
        case .openclGPUKernels: try compareBytePaths(OpenCLBackend<Float>(deviceIndex: openCLDeviceIndex(), family: .gpu))
        case .openclCPUKernels: try compareBytePaths(OpenCLBackend<Float>(deviceIndex: openCLDeviceIndex(), family: .cpu))
        }
    }

    private func compareBytePaths<B: Backend>(_ be: B) throws where B.Element == Float {
        var g = SeededGenerator(seed: 5)
        // 41 examples of 50 features, 80% zero bytes like digits; a batch of 17 from position 9
        // of a shuffled order; a layer of 33 units (partial vector blocks and work-groups).
        let (count, features, m, n, start) = (41, 50, 17, 33, 9)
        let pixels = (0..<(count * features)).map { _ in g.uniform(0, 1) < 0.8 ? UInt8(0) : UInt8(1 + g.below(255)) }
        let labels = (0..<count).map { _ in UInt8(g.below(10)) }
        var order = (0..<Int32(count)).map { $0 }
        g.shuffle(&order)
        let examples = try be.makeExampleSet(pixels: pixels, labels: labels, features: features, classes: 10)
        let orderList = try be.makeIndexList(order)
        func tensor(_ shape: Shape) throws -> Tensor<B> {
            try be.makeTensor(shape, values: (0..<shape.count).map { _ in Float(g.uniform(-1, 1)) })
        }
        let w = try tensor(Shape(n, features)), b = try tensor(Shape(1, n)), dz = try tensor(Shape(m, n))
        let x = try be.makeTensor(Shape(m, features)), targets = try be.makeTensor(Shape(m, 10))
        try be.gatherBatch(examples, order: orderList, start: start, x: x, y: targets)

        let fromBytes = try be.makeTensor(Shape(m, n)), fromFloats = try be.makeTensor(Shape(m, n))
        let bytesTargets = try be.makeTensor(Shape(m, 10))
        try be.inputLinear(examples, order: orderList, start: start, w, b, activation: .relu, into: fromBytes, targets: bytesTargets)
        try be.linear(x, w, b, activation: .relu, into: fromFloats)
        expectClose(try be.download(fromBytes).map(Double.init), try be.download(fromFloats).map(Double.init),
                    atol: 1e-5, rtol: 1e-5, "\(be.deviceDescription): inputLinear against linear")
        #expect(try be.download(bytesTargets) == be.download(targets), "the one-hot targets differ")
        // One bias rule on every backend: a row [1, n], not a broadcast scalar or column.
        for bias in [Shape(1, 1), Shape(m, 1)] {
            let wrong = try tensor(bias)
            #expect(throws: ShapeError.self, "\(be.deviceDescription): linear with bias \(bias)") {
                try be.linear(x, w, wrong, activation: .relu, into: fromFloats)
            }
            #expect(throws: ShapeError.self, "\(be.deviceDescription): inputLinear with bias \(bias)") {
                try be.inputLinear(examples, order: orderList, start: start, w, wrong, activation: .relu, into: fromBytes, targets: nil)
            }
        }

        let dwBytes = try be.makeTensor(Shape(n, features)), dbBytes = try be.makeTensor(Shape(1, n))
        let dwFloats = try be.makeTensor(Shape(n, features)), dbFloats = try be.makeTensor(Shape(1, n))
        try be.inputLinearGradient(dz, examples, order: orderList, start: start, w, decay: 0.01, weightGradient: dwBytes, biasGradient: dbBytes)
        try be.linearGradient(dz, x, w, decay: 0.01, weightGradient: dwFloats, biasGradient: dbFloats)
        expectClose(try be.download(dwBytes).map(Double.init), try be.download(dwFloats).map(Double.init),
                    atol: 1e-5, rtol: 1e-5, "\(be.deviceDescription): inputLinearGradient's dw against linearGradient's")
        expectClose(try be.download(dbBytes).map(Double.init), try be.download(dbFloats).map(Double.init),
                    atol: 1e-5, rtol: 1e-5, "\(be.deviceDescription): inputLinearGradient's db against linearGradient's")
    }
}
