import ArgumentParser
import Deriv8
import Foundation
import GPUTensor

struct GradCheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gradcheck",
        abstract: "Check backprop against numerical gradients, in double precision (float where the device has no fp64).",
        discussion: """
            Builds a small network and a random data set from --seed, takes one batch of it the \
            way training does (bytes through the first layer's byte path, or floats gathered \
            into a batch: --input), then compares every parameter's backprop gradient with the \
            centred difference (J(θ+ε) − J(θ−ε)) / 2ε. Passes when \
            ‖num − bp‖ / (‖num‖ + ‖bp‖) ≤ --threshold over all parameters; exits 1 otherwise.

            In double precision ε and the threshold default to 1e-7. Many GPUs (Intel Xe, Apple, \
            Mesa's llvmpipe) have no fp64; there --precision auto runs the check in float: the \
            five-point stencil (−J(θ+2ε) + 8J(θ+ε) − 8J(θ−ε) + J(θ−2ε)) / 12ε with ε = 3e-3, and \
            every parameter tensor must be within 2e-2 on its own. Float's rounding keeps a \
            correct gradient near 1e-3 (5e-3 at worst over ten seeds); a wrong one (a missing or \
            halved L2 term, a bias gradient of zeros) is far beyond 2e-2 (the tests show both). \
            The first line says which precision ran.
            """)

    @OptionGroup var backendOptions: BackendOptions

    @Option(parsing: .unconditional, help: "Input width.")
    var inputs = 20

    @Option(parsing: .unconditional, help: ArgumentHelp("Hidden layer widths, comma-separated.", valueName: "n,n,..."))
    var hidden = LayerWidths(argument: "8,6")!

    @Option(parsing: .unconditional, help: "Output classes.")
    var classes = 10

    @Option(parsing: .unconditional, help: "Examples in the batch.")
    var batchSize = 7

    @Option(name: .customLong("lambda"), parsing: .unconditional, help: "L2 strength.")
    var lambda = 0.01

    @Option(parsing: .unconditional, help: "Finite-difference step (default 1e-7 in double, 3e-3 in float).")
    var epsilon: Double?

    @Option(parsing: .unconditional, help: "Largest relative difference that passes (default 1e-7 in double, 2e-2 in float, for each parameter).")
    var threshold: Double?

    @Option(help: "auto (double where the device has fp64, else float), double or float (the five-point stencil).")
    var precision: Precision = .auto

    @Option(help: "Seed for the network, the data set and the order the batch is taken in.")
    var seed: UInt64 = 0

    @Option(help: "The first layer's input path: bytes (IDX data such as MNIST) or floats (.npz float data).")
    var input: GradientCheck.Input = .bytes

    func validate() throws {
        try positive(inputs, "--inputs")
        try hidden.validate("--hidden")
        try positive(classes, "--classes")
        // The check's data set has byte labels, like every data set: at most 256 classes.
        guard classes >= 2, classes <= 256 else { throw ValidationError("--classes must be 2 to 256, got \(classes)") }
        try positive(batchSize, "--batch-size")
        if let epsilon { try positive(epsilon, "--epsilon") }
        if let threshold { try positive(threshold, "--threshold") }
        guard lambda >= 0, lambda.isFinite else { throw ValidationError("--lambda must be >= 0, got \(lambda)") }
        guard Double(inputs) * hidden.widths.reduce(1.0, { $0 * Double($1) }) <= Double(1 << 22) else {
            throw ValidationError("the network is too large to check numerically; use a few units per layer")
        }
    }

    func run() throws {
        let double = switch precision {
        case .auto: backendOptions.supportsDouble()
        case .double: true
        case .float: false
        }
        var check = double ? GradientCheck() : GradientCheck.float
        check.sizes = [inputs] + hidden.widths + [classes]
        check.batchSize = batchSize
        check.lambda = lambda
        if let epsilon { check.epsilon = epsilon }
        if let threshold { check.threshold = threshold }
        check.seed = seed
        check.input = input
        let job = GradientCheckJob(check: check)
        if double { try backendOptions.run(job, elementType: Double.self) } else { try backendOptions.run(job, elementType: Float.self) }
    }
}

enum Precision: String, CaseIterable, ExpressibleByArgument {
    case auto, double, float
}

extension GradientCheck.Input: ExpressibleByArgument {}

struct GradientCheckJob: BackendJob {
    let check: GradientCheck

    func run<B: Backend>(on backend: B) throws {
        let result = try check.run(on: backend)
        let (batchSize, epsilon, lambda, seed) = (check.batchSize, check.epsilon, check.lambda, check.seed)
        print("gradient check in \(B.Element.self == Double.self ? "double" : "float") precision on \(backend.deviceDescription): network \(check.sizes.map(String.init).joined(separator: "-")), \(check.input) input, batch \(batchSize), ε \(epsilon), λ \(lambda), seed \(seed)")
        for p in result.parameters {
            print(String(format: "  %-4@ %6d values  relative difference %.3e", p.name as NSString, p.count, p.relativeDifference))
        }
        let verdict = result.passed ? "PASS" : "FAIL"
        print(String(format: "overall relative difference %.3e (threshold %.0e%@): %@", result.relativeDifference,
                     result.threshold, (result.everyParameter ? ", for each parameter too" : "") as NSString, verdict as NSString))
        if !result.passed { throw ExitCode.failure }
    }
}
