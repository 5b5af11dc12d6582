import ArgumentParser
import Deriv8
import Foundation
import GPUTensor

struct GradCheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gradcheck",
        abstract: "Check backprop against numerical gradients, in double precision.",
        discussion: """
            Builds a small network and a random batch from --seed, then compares every parameter's \
            backprop gradient with the centred difference (J(θ+ε) − J(θ−ε)) / 2ε. Passes when \
            ‖num − bp‖ / (‖num‖ + ‖bp‖) ≤ --threshold over all parameters; exits 1 otherwise.
            """)

    @OptionGroup var backendOptions: BackendOptions

    @Option(help: "Input width.")
    var inputs = 20

    @Option(help: ArgumentHelp("Hidden layer widths, comma-separated.", valueName: "n,n,..."))
    var hidden = LayerWidths(argument: "8,6")!

    @Option(help: "Output classes.")
    var classes = 10

    @Option(help: "Examples in the batch.")
    var batchSize = 7

    @Option(name: .customLong("lambda"), help: "L2 strength.")
    var lambda = 0.01

    @Option(help: "Finite-difference step.")
    var epsilon = 1e-7

    @Option(help: "Largest relative difference that passes.")
    var threshold = 1e-7

    @Option(help: "Seed for the network and the batch.")
    var seed: UInt64 = 0

    func validate() throws {
        try positive(inputs, "--inputs")
        try positive(classes, "--classes")
        try positive(batchSize, "--batch-size")
        try positive(epsilon, "--epsilon")
        try positive(threshold, "--threshold")
        guard lambda >= 0, lambda.isFinite else { throw ValidationError("--lambda must be >= 0, got \(lambda)") }
        guard inputs * hidden.widths.reduce(1, *) <= 1 << 22 else {
            throw ValidationError("the network is too large to check numerically; use a few units per layer")
        }
    }

    func run() throws {
        var check = GradientCheck()
        check.sizes = [inputs] + hidden.widths + [classes]
        check.batchSize = batchSize
        check.lambda = lambda
        check.epsilon = epsilon
        check.threshold = threshold
        check.seed = seed
        try backendOptions.run(GradientCheckJob(check: check), elementType: Double.self)
    }
}

struct GradientCheckJob: BackendJob {
    let check: GradientCheck

    func run<B: Backend>(on backend: B) throws {
        let result = try check.run(on: backend)
        let (batchSize, epsilon, lambda, seed) = (check.batchSize, check.epsilon, check.lambda, check.seed)
        print("gradient check on \(backend.deviceDescription): network \(check.sizes.map(String.init).joined(separator: "-")), batch \(batchSize), ε \(epsilon), λ \(lambda), seed \(seed)")
        for p in result.parameters {
            print(String(format: "  %-4@ %6d values  relative difference %.3e", p.name as NSString, p.count, p.relativeDifference))
        }
        let verdict = result.passed ? "PASS" : "FAIL"
        print(String(format: "overall relative difference %.3e (threshold %.0e): %@", result.relativeDifference,
                     result.threshold, verdict as NSString))
        if !result.passed { throw ExitCode.failure }
    }
}
