import Deriv8
import Foundation
import GPUTensor
import Testing

/// The real MNIST files: `datasets/mnist` in this checkout (`make datasets` puts them there;
/// swift test runs in the package root), or the folder in DERIV8_DATA. Missing data fails the
/// tests that need it; they are never skipped.
func mnistFolder() -> String { ProcessInfo.processInfo.environment["DERIV8_DATA"] ?? "datasets/mnist" }

func loadMNIST() throws -> DataSet {
    do { return try MNIST.load(from: mnistFolder()) } catch {
        Issue.record("MNIST is needed for this test: run `make datasets` (\(error))")
        throw error
    }
}

@Suite("Training")
struct TrainingTests {
    @Test("the real files load with the published shapes and label counts")
    func mnistLoads() throws {
        let mnist = try loadMNIST()
        #expect(mnist.train.count == 60_000 && mnist.test.count == 10_000)
        #expect(mnist.train.features == 784 && mnist.classes == 10 && mnist.exampleShape == [28, 28])
        #expect(mnist.train.labels.prefix(1) == [5] && Array(mnist.test.labels.prefix(5)) == [7, 2, 1, 0, 4])
        var counts = [Int](repeating: 0, count: 10)
        for label in mnist.train.labels { counts[Int(label)] += 1 }
        #expect(counts == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949])
    }

    @Test("a short run on real MNIST learns: 2 epochs reach above 84% test accuracy (seed 1 gives 86.07%)")
    func shortRun() throws {
        let mnist = try loadMNIST()
        var config = TrainingConfig()
        config.epochs = 2
        config.seed = 1
        let trainer = try Trainer(backend: CPUBackend<Float>(), config: config, data: mnist)
        var results: [EpochResult] = []
        for _ in 0..<config.epochs { results.append(try trainer.runEpoch()) }
        #expect(results[1].trainLoss < results[0].trainLoss)
        #expect(results[1].testAccuracy > 0.84, "test accuracy \(results[1].testAccuracy)")
    }

    @Test("same seed, same run; a partial last batch is handled")
    func deterministic() throws {
        let mnist = try loadMNIST()
        var config = TrainingConfig()
        config.epochs = 2
        config.batchSize = 300
        config.seed = 5
        config.shuffle = .everyEpoch
        func run() throws -> [EpochResult] {
            let trainer = try Trainer(backend: CPUBackend<Float>(), config: config,
                                      data: mnist.prefix(train: 1_234, test: 345))
            #expect(trainer.batchesPerEpoch == 5)
            return try (0..<2).map { _ in try trainer.runEpoch() }
        }
        let a = try run(), b = try run()
        #expect(a.map(\.trainLoss) == b.map(\.trainLoss))
        #expect(a.map(\.testAccuracy) == b.map(\.testAccuracy))
    }
}

@Suite("Gradient check")
struct GradientCheckTests {
    @Test("backprop matches centred differences at the reference's 1e-7, in Double, through either input path",
          arguments: [0, 1, 2] as [UInt64], GradientCheck.Input.allCases)
    func passes(seed: UInt64, input: GradientCheck.Input) throws {
        var check = GradientCheck()
        check.seed = seed
        check.input = input
        let result = try check.run(on: CPUBackend<Double>())
        #expect(result.passed, "relative difference \(result.relativeDifference)")
        #expect(result.parameters.map(\.name) == ["w1", "b1", "w2", "b2", "w3", "b3"])
    }

    @Test("the check fails when the gradient is wrong: λ in backprop differs from λ in the loss")
    func canFail() throws {
        // The L2 term contributes (λ/m)·w to dw; a check whose numerical side uses λ = 0.5 while
        // the model was differentiated with λ = 0.01 must see the difference.
        var check = GradientCheck()
        check.lambda = 0.5
        check.backpropLambda = 0.01
        let result = try check.run(on: CPUBackend<Double>())
        #expect(!result.passed)
        #expect(result.parameters.filter { $0.name.hasPrefix("b") }.allSatisfy { $0.relativeDifference < 1e-7 })
    }

    @Test("in Float (devices without fp64) the float settings pass on the tuned kernels, through either input path",
          arguments: [0, 1, 2] as [UInt64], GradientCheck.Input.allCases)
    func floatPasses(seed: UInt64, input: GradientCheck.Input) throws {
        var check = GradientCheck.float
        check.seed = seed
        check.input = input
        let result = try check.run(on: CPUBackend<Float>())
        #expect(result.passed, "relative difference \(result.relativeDifference)")
        // Well inside the threshold, so that a real error is not lost in float's rounding.
        #expect(result.parameters.allSatisfy { $0.relativeDifference < check.threshold / 3 }, "\(result.parameters)")
    }

    @Test("in Float the check still catches a wrong gradient: a missing or halved L2 term", arguments: [0, 1, 2] as [UInt64])
    func floatCanFail(seed: UInt64) throws {
        var check = GradientCheck.float
        check.seed = seed
        check.lambda = 0.5
        check.backpropLambda = 0   // backprop forgets the L2 term
        #expect(!(try check.run(on: CPUBackend<Float>())).passed)
        var halved = GradientCheck.float
        halved.seed = seed
        halved.lambda = 0.1
        halved.backpropLambda = 0.05   // half the L2 term
        let result = try halved.run(on: CPUBackend<Float>())
        #expect(!result.passed, "\(result.parameters)")
    }

    @Test("it passes on the plain Float loops too, with Float's settings", arguments: [0, 1, 2] as [UInt64],
          GradientCheck.Input.allCases)
    func naiveKernels(seed: UInt64, input: GradientCheck.Input) throws {
        var check = GradientCheck.float
        check.seed = seed
        check.input = input
        let result = try check.run(on: CPUBackend<Float>(kernels: .naive))
        #expect(result.passed, "\(result.parameters)")
    }
}
