import GPUTensor

/// Gradient checking as the reference does it: for every parameter θ, the centred difference
/// (J(θ + ε) - J(θ - ε)) / 2ε against backprop's dθ, scored by ‖num - bp‖ / (‖num‖ + ‖bp‖).
/// Run it on a backend whose `Element` is `Double`: in Float, ε = 1e-7 drowns in rounding, and
/// `GradientCheck.float`'s larger step and looser threshold apply (for devices without fp64).
public struct GradientCheck {
    public var sizes = [20, 8, 6, 10]
    public var batchSize = 7
    public var lambda = 0.01
    public var epsilon = 1e-7
    public var threshold = 1e-7
    public var seed: UInt64 = 0
    /// The λ backprop differentiates with, when it should differ from the loss's (only to show
    /// that the check catches a wrong gradient); nil means `lambda`.
    public var backpropLambda: Double?
    /// The numerical derivative's stencil: false, the centred difference (J(θ+ε) − J(θ−ε)) / 2ε
    /// (error ε²·J‴/6); true, the five-point one (−J(θ+2ε) + 8J(θ+ε) − 8J(θ−ε) + J(θ−2ε)) / 12ε
    /// (error ε⁴·J⁽⁵⁾/30), which lets Float use a step large enough to rise above its rounding.
    public var fivePoint = false
    /// Whether each parameter tensor must pass on its own, not only all of them together (one
    /// small wrong tensor, such as a bias gradient of zeros, can hide in the overall score).
    public var everyParameter = false
    /// The path the batch takes into the first layer: the ones training takes, so that the
    /// gradients checked are the ones training uses.
    public var input = Input.bytes

    public enum Input: String, CaseIterable, Sendable {
        /// Byte examples, read by `inputLinear` and `inputLinearGradient` (IDX data: MNIST).
        case bytes
        /// Float examples, gathered by `gatherRows` into a batch for `linear` (.npz float data).
        case floats
    }

    public init() {}

    /// The settings for a check in Float (devices without fp64). Float's rounding of the loss
    /// (about 1e-7 of it) divided by the step dominates a small step, the stencil's error and
    /// ReLU's kinks a large one; the five-point stencil with ε = 3e-3 kept every parameter
    /// tensor's relative difference at or below 5e-3 over ten seeds (the first layer's, whose
    /// gradients are the smallest, is the largest). Every tensor must then be within 2e-2: a
    /// missing L2 term, half of it, or a gradient of zeros is well beyond that (the tests).
    public static var float: GradientCheck {
        var check = GradientCheck()
        check.fivePoint = true
        check.epsilon = 3e-3
        check.threshold = 2e-2
        check.everyParameter = true
        return check
    }

    public struct ParameterResult: Sendable {
        public let name: String
        public let count: Int
        public let relativeDifference: Double
    }

    public struct Result: Sendable {
        public let parameters: [ParameterResult]
        /// Over all parameters together.
        public let relativeDifference: Double
        public let threshold: Double
        /// Whether each parameter must pass on its own too (`GradientCheck.everyParameter`).
        public let everyParameter: Bool
        public var passed: Bool {
            relativeDifference <= threshold && (!everyParameter || parameters.allSatisfy { $0.relativeDifference <= threshold })
        }
    }

    /// Builds a small random network and data set from `seed` and checks every parameter's
    /// gradient on one batch of it, picked through a shuffled order as training picks them.
    /// Inputs are bytes uniform in 0...255, scaled by 1/255 (as floats, their Float values);
    /// not MNIST's 81% zeros, which put many pre-activations near ReLU's kink, where Float's
    /// large step crosses it (OpCheck covers the zero-skipping paths). Weights and biases
    /// uniform in [-0.5, 0.5] (non-zero biases keep pre-activations off the kink at exactly 0).
    public func run<B: Backend>(on backend: B) throws -> Result {
        precondition((2...256).contains(sizes.last ?? 0), "labels are bytes: 2 to 256 classes")
        var generator = SeededGenerator(seed: seed)
        let layers = sizes.count - 1
        let weights = (0..<layers).map { l in
            (0..<(sizes[l + 1] * sizes[l])).map { _ in B.Element(generator.uniform(-0.5, 0.5)) }
        }
        let biases = (0..<layers).map { l in
            (0..<sizes[l + 1]).map { _ in B.Element(generator.uniform(-0.5, 0.5)) }
        }
        let model = try MLP(backend: backend, sizes: sizes, weights: weights, biases: biases)
        let ws = try Workspace(backend: backend, sizes: sizes, batchSize: batchSize)
        // A few more examples than the batch, and the batch starting past the order's start: a
        // path that ignored the order or the start would read the wrong examples.
        let count = batchSize + 3, start = 2
        let pixels = (0..<(count * sizes[0])).map { _ in UInt8(generator.below(256)) }
        let labels = (0..<count).map { _ in UInt8(generator.below(sizes[layers])) }
        var order = (0..<count).map(Int32.init)
        for i in stride(from: count - 1, to: 0, by: -1) { order.swapAt(i, generator.below(i + 1)) }
        let bytes = LabelledExamples.Inputs.bytes(pixels)
        let data = LabelledExamples(inputs: input == .bytes ? bytes : .floats(bytes.asFloats), labels: labels,
                                    features: sizes[0])
        ws.load(try ResidentExamples(data, classes: sizes[layers], backend: backend),
                order: try backend.makeIndexList(order), start: start)

        // Backprop's gradients at the unperturbed parameters.
        try model.forward(ws, gradient: true)
        try model.backward(ws, lambda: backpropLambda ?? lambda)
        let analytic = try (0..<layers).flatMap { l in
            [try backend.download(ws.dw[l]), try backend.download(ws.db[l])]
        }.map { $0.map(Double.init) }

        var results: [ParameterResult] = []
        var allNumeric: [Double] = [], allAnalytic: [Double] = []
        // The parameters as host arrays, by group; each step writes its group whole.
        let groups = model.namedGroups
        var host = try groups.map { _, group in try group.parts.map { try backend.download($0) } }
        // Layer by layer, each group's part: w1, b1, w2, b2, ... (model.parameters' order).
        for (p, (part, g)) in (0..<model.layerCount).flatMap({ l in groups.indices.map { (l, $0) } }).enumerated() {
            let name = groups[g].names[part], values = host[g][part]
            var numeric = [Double](repeating: 0, count: values.count)
            for i in values.indices {
                let original = values[i]
                /// J with this parameter moved by `steps` · ε.
                func shifted(_ steps: Double) throws -> Double {
                    host[g][part][i] = original + B.Element(steps * epsilon)
                    try backend.upload(host[g], into: groups[g].group)
                    return try loss(model, ws)
                }
                numeric[i] = fivePoint
                    ? (8 * (try shifted(1) - shifted(-1)) - (try shifted(2) - shifted(-2))) / (12 * epsilon)
                    : (try shifted(1) - shifted(-1)) / (2 * epsilon)
                host[g][part][i] = original
            }
            try backend.upload(host[g], into: groups[g].group)
            results.append(ParameterResult(name: name, count: values.count,
                                           relativeDifference: relativeDifference(numeric, analytic[p])))
            allNumeric += numeric
            allAnalytic += analytic[p]
        }
        return Result(parameters: results, relativeDifference: relativeDifference(allNumeric, allAnalytic),
                      threshold: threshold, everyParameter: everyParameter)
    }

    private func loss<B: Backend>(_ model: MLP<B>, _ ws: Workspace<B>) throws -> Double {
        try model.forward(ws)
        return try model.readStats(ws, lambda: lambda).loss
    }
}

/// ‖a - b‖ / (‖a‖ + ‖b‖), 0 when both are zero.
public func relativeDifference(_ a: [Double], _ b: [Double]) -> Double {
    precondition(a.count == b.count)
    func norm(_ v: [Double]) -> Double { v.reduce(0) { $0 + $1 * $1 }.squareRoot() }
    let denominator = norm(a) + norm(b)
    return denominator == 0 ? 0 : norm(zip(a, b).map { $0 - $1 }) / denominator
}
