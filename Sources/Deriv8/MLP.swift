import GPUTensor

// Layout: row-major, batch first. A batch of m examples is x [m, 784]; layer l maps
// [m, n(l)] -> [m, n(l+1)] with weight w[l] [n(l+1), n(l)] (stored [out, in], applied as x·wᵀ)
// and bias b[l] [1, n(l+1)]. For the reference network n = 784, 32, 32, 10:
//   w1 [32,784] b1 [1,32]   w2 [32,32] b2 [1,32]   w3 [10,32] b3 [1,10]
// Arrays are indexed from 0 here, so w[0] is the math's w1.

/// The multilayer perceptron: ReLU hidden layers, a softmax output, trained on the mean
/// cross-entropy plus an L2 penalty (λ / 2m) Σ_l ‖w_l‖² on the weights (not the biases).
public final class MLP<B: Backend> {
    public let backend: B
    /// Layer widths, input first: [784, 32, 32, 10].
    public let sizes: [Int]
    /// w[l] [sizes[l+1], sizes[l]]: the parts of `weights`
    public let w: [Tensor<B>]
    /// b[l] [1, sizes[l+1]]: the parts of `biases`
    public let b: [Tensor<B>]
    /// All the weights, and all the biases, each in one piece of memory: the optimiser updates
    /// each group in one op, and the L2 penalty's ‖w‖² is one sum over the weights.
    public let weights, biases: TensorGroup<B>

    public var layerCount: Int { w.count }

    /// A network with weights drawn from `generator`, layer by layer, row-major, and zero
    /// biases. The draws happen on the host, so every backend starts from exactly the same numbers.
    public convenience init(backend: B, sizes: [Int], initialization: Initialization = .uniform,
                            initScale: Double = 0.5, generator: inout SeededGenerator) throws {
        let weights = (0..<(sizes.count - 1)).map { l in
            let fanIn = Double(sizes[l])
            return (0..<(sizes[l + 1] * sizes[l])).map { _ in
                switch initialization {
                case .uniform: B.Element(generator.uniform(-initScale, initScale))
                case .he: B.Element(generator.normal() * (2 / fanIn).squareRoot())
                }
            }
        }
        let biases = (0..<(sizes.count - 1)).map { l in [B.Element](repeating: 0, count: sizes[l + 1]) }
        try self.init(backend: backend, sizes: sizes, weights: weights, biases: biases)
    }

    /// A network with the given parameters (row-major host arrays, one per layer).
    public init(backend: B, sizes: [Int], weights: [[B.Element]], biases: [[B.Element]]) throws {
        precondition(sizes.count >= 2 && sizes.allSatisfy { $0 > 0 }, "bad layer sizes \(sizes)")
        precondition(weights.count == sizes.count - 1 && biases.count == sizes.count - 1)
        self.backend = backend
        self.sizes = sizes
        self.weights = try backend.makeTensorGroup(MLP.weightShapes(sizes))
        self.biases = try backend.makeTensorGroup(MLP.biasShapes(sizes))
        w = self.weights.parts
        b = self.biases.parts
        try backend.upload(weights, into: self.weights)
        try backend.upload(biases, into: self.biases)
    }

    /// w[l]'s shape for each layer: [sizes[l+1], sizes[l]].
    public static func weightShapes(_ sizes: [Int]) -> [Shape] { (0..<(sizes.count - 1)).map { Shape(sizes[$0 + 1], sizes[$0]) } }
    /// b[l]'s shape for each layer: [1, sizes[l+1]].
    public static func biasShapes(_ sizes: [Int]) -> [Shape] { sizes.dropFirst().map { Shape(1, $0) } }

    /// The parameter groups with their parts' names: (["w1", "w2", ...], weights), (["b1", ...], biases).
    public var namedGroups: [(names: [String], group: TensorGroup<B>)] {
        [((1...layerCount).map { "w\($0)" }, weights), ((1...layerCount).map { "b\($0)" }, biases)]
    }

    /// Every parameter tensor, in the order w1, b1, w2, b2, ...
    public var parameters: [(name: String, tensor: Tensor<B>)] { layerMajor(namedGroups) }

    // MARK: Forward and backward

    /// How many numbers a batch's statistics take: see `forward`.
    public var statsWidth: Int { BatchStatistics.width }

    /// The forward pass: a[l] = max(0, a[l-1]·w[l]ᵀ + b[l]) for the hidden layers (a[-1] is the
    /// batch), logits = a[last-1]·w[last]ᵀ + b[last] and probs = softmax(logits). Reads the batch
    /// (ws.input) and fills ws.a, ws.logits and ws.probs. Queues the batch's statistics into row
    /// `row` of `table` [rows, statsWidth] (ws.stats when nil): [Σ_i -log probs[i, y_i], correct
    /// predictions, Σ_l ‖w_l‖²], the last only when `weightNorms`. With `gradient`, also the part
    /// of the backward pass that goes row by row: dz[last] = (probs - y)/m, the gradient of the
    /// mean cross-entropy, and down through the layers dz[l-1] = (dz[l]·w[l]) ⊙ 1[a[l-1] > 0].
    public func forward(_ ws: Workspace<B>, gradient: Bool = false, weightNorms: Bool = true,
                        into table: Tensor<B>? = nil, row: Int = 0) throws {
        let be = backend
        let last = layerCount - 1
        let first = last == 0 ? ws.logits : ws.a[0]                                  // [m, n(1)]
        let f: Activation = last == 0 ? .identity : .relu                            // the first layer's
        guard let input = ws.input else { throw ShapeError("forward", "no batch loaded (Workspace.load)") }
        switch input {
        case .examples(let set, let order, let start):
            try be.inputLinear(set, order: order, start: start, w[0], b[0], activation: f, into: first,
                               targets: ws.y)                                        // f(x·wᵀ + b), x from the bytes; y
        case .rows(let inputs, let targets, let order, let start):
            try be.gatherRows(inputs, order: order, start: start, into: ws.x)        // x = the batch's rows
            try be.gatherRows(targets, order: order, start: start, into: ws.y)       // y = their one-hot labels
            try be.linear(ws.x, w[0], b[0], activation: f, into: first)              // f(x·wᵀ + b)
        }
        let stats = table ?? ws.stats, at = row * statsWidth
        if last == 0 {
            try be.softmaxCrossEntropy(ws.logits, ws.y, probabilities: ws.probs, gradient: gradient ? ws.dz[0] : nil,
                                       stats: stats, at: at)                         // probs = softmax(logits), dz = (probs - y)/m
            if weightNorms { try be.sumOfSquares(weights.whole, into: stats, at: at + 2) }   // ‖w‖²
        } else {
            try be.layersAfterFirst(weights: weights, biases: biases, activations: ws.activations, logits: ws.logits,
                                    targets: ws.y, probabilities: ws.probs, gradients: gradient ? ws.gradients : nil,
                                    stats: stats, at: at, weightNorms: weightNorms)  // the other layers, softmax, dz's, Σ_l ‖w_l‖²
        }
    }

    /// The rest of the backward pass for the loss J = -(1/m) Σ_i log probs[i, y_i] + (λ/2m) Σ_l ‖w[l]‖²:
    /// the parameters' gradients, from the dz's of a `forward(ws, gradient: true)`, the batch and
    /// ws.a. Fills ws.dw and ws.db.
    public func backward(_ ws: Workspace<B>, lambda: Double) throws {
        let be = backend
        guard let input = ws.input else { throw ShapeError("backward", "no batch loaded (Workspace.load)") }
        let decay = B.Element(lambda) / B.Element(ws.batchSize)   // λ/m: the L2 term's gradient is (λ/m)·w
        for l in stride(from: layerCount - 1, through: 0, by: -1) {
            if l == 0, case .examples(let set, let order, let start) = input {
                try be.inputLinearGradient(ws.dz[0], set, order: order, start: start, w[0], decay: decay,
                                           weightGradient: ws.dw[0], biasGradient: ws.db[0])    // from the bytes
            } else {
                let input = l == 0 ? ws.x : ws.a[l - 1]                                        // [m, n(l)]
                try be.linearGradient(ws.dz[l], input, w[l], decay: decay,
                                      weightGradient: ws.dw[l], biasGradient: ws.db[l])       // dw = dzᵀ·input + (λ/m)·w, db = Σ_rows dz
            }
        }
    }

    /// One batch's statistics, as `forward` queued them, from a downloaded row of numbers:
    /// the batch's loss J (the L2 term weighted by `lambda`) and its correct count.
    public func batchStats(_ row: ArraySlice<Double>, examples: Int, lambda: Double) -> BatchStats {
        let s = Array(row)
        let m = Double(examples)
        return BatchStats(examples: examples, crossEntropySum: s[0], correct: Int(s[1]),
                          loss: s[0] / m + lambda / (2 * m) * s[2])
    }

    /// Reads ws.stats back (one small transfer): the statistics of the last `forward` into it.
    public func readStats(_ ws: Workspace<B>, lambda: Double) throws -> BatchStats {
        batchStats(try backend.download(ws.stats).map(Double.init)[...], examples: ws.batchSize, lambda: lambda)
    }

    /// Every parameter copied to the host, in `parameters` order.
    public func downloadParameters() throws -> [(name: String, values: [B.Element])] {
        try parameters.map { ($0.name, try backend.download($0.tensor)) }
    }
}

/// How the initial weights are drawn.
public enum Initialization: String, CaseIterable, Codable, Sendable {
    /// Uniform in [-s, s], s = 0.5: the reference's.
    case uniform
    /// He et al.: normal with mean 0 and variance 2 / fan-in, suited to ReLU layers.
    case he
}

/// What one batch's forward pass scored.
public struct BatchStats: Sendable {
    public let examples: Int
    /// Σ_i -log probs[i, y_i]
    public let crossEntropySum: Double
    public let correct: Int
    /// The batch's loss J: mean cross-entropy plus the L2 penalty.
    public let loss: Double
}

/// Where a workspace's inputs come from.
public enum BatchInput<B: Backend> {
    /// The examples at positions start..<start+m of `order` in a resident example set: the first
    /// layer reads their bytes directly (`Backend.inputLinear`), and ws.x is not used.
    case examples(ExampleSet<B>, IndexList<B>, start: Int)
    /// The rows at positions start..<start+m of `order` in resident float inputs [count, features]
    /// and one-hot targets [count, classes]: gathered into ws.x and ws.y.
    case rows(inputs: Tensor<B>, targets: Tensor<B>, IndexList<B>, start: Int)
}

/// A labelled data set kept on the backend, in the form its first layer reads.
public enum ResidentExamples<B: Backend> {
    /// Byte inputs, read by the first layer's sparse fast paths.
    case bytes(ExampleSet<B>)
    /// Float inputs [count, features] and one-hot targets [count, classes], for the dense path.
    case dense(inputs: Tensor<B>, targets: Tensor<B>)

    /// Uploads `examples` labelled in 0..<classes.
    public init(_ examples: LabelledExamples, classes: Int, backend: B) throws {
        switch examples.inputs {
        case .bytes(let pixels):
            self = .bytes(try backend.makeExampleSet(pixels: pixels, labels: examples.labels,
                                                     features: examples.features, classes: classes))
        case .floats(let values):
            var oneHot = [B.Element](repeating: 0, count: examples.count * classes)
            for (i, label) in examples.labels.enumerated() where Int(label) < classes { oneHot[i * classes + Int(label)] = 1 }
            self = .dense(inputs: try backend.makeTensor(Shape(examples.count, examples.features), values: values.map { B.Element($0) }),
                          targets: try backend.makeTensor(Shape(examples.count, classes), values: oneHot))
        }
    }

    public var count: Int {
        switch self {
        case .bytes(let set): return set.count
        case .dense(let inputs, _): return inputs.rows
        }
    }
}

/// Every tensor one training step touches for a batch of `batchSize` examples, allocated once
/// and reused for every batch of that size (llm.c's activations and gradients structs).
public final class Workspace<B: Backend> {
    public let batchSize: Int
    /// x [m, n(0)] the batch's float inputs (`BatchInput.rows`), y [m, classes] its one-hot targets
    public let x, y: Tensor<B>
    /// Where the first layer reads the batch from: nil until the first `load`.
    public private(set) var input: BatchInput<B>?
    private let backend: B
    /// a[l] [m, n(l+1)]: the hidden layers' outputs (after ReLU), the parts of `activations`
    public let a: [Tensor<B>]
    public let activations: TensorGroup<B>
    /// logits, probs [m, classes]: the output layer before and after softmax
    public let logits, probs: Tensor<B>
    /// dz[l] [m, n(l+1)]: the gradient of J with respect to layer l's pre-activation, the
    /// parts of `gradients`
    public let dz: [Tensor<B>]
    public let gradients: TensorGroup<B>
    /// dw[l], db[l]: gradients of J with respect to w[l] and b[l], shaped like them: the parts
    /// of `weightGradients` and `biasGradients`, laid out like the model's `weights` and `biases`
    public let dw, db: [Tensor<B>]
    public let weightGradients, biasGradients: TensorGroup<B>
    /// [1, 3]: one batch's statistics, see `MLP.forward`
    public let stats: Tensor<B>

    public init(backend: B, sizes: [Int], batchSize m: Int) throws {
        let layers = sizes.count - 1
        let outs = sizes.dropFirst().map { Shape(m, $0) }
        self.backend = backend
        batchSize = m
        x = try backend.makeTensor(Shape(m, sizes[0]))
        y = try backend.makeTensor(Shape(m, sizes[layers]))
        activations = try backend.makeTensorGroup(Array(outs.dropLast()))
        a = activations.parts
        logits = try backend.makeTensor(Shape(m, sizes[layers]))
        probs = try backend.makeTensor(Shape(m, sizes[layers]))
        gradients = try backend.makeTensorGroup(outs)
        dz = gradients.parts
        weightGradients = try backend.makeTensorGroup(MLP<B>.weightShapes(sizes))
        biasGradients = try backend.makeTensorGroup(MLP<B>.biasShapes(sizes))
        dw = weightGradients.parts
        db = biasGradients.parts
        stats = try backend.makeTensor(Shape(1, BatchStatistics.width))
    }

    /// Makes the batch the examples at positions start..<start+batchSize of `order`: the first
    /// layer reads their bytes (and writes their one-hot labels into y as it goes), or gathers
    /// their rows into x and y.
    public func load(_ examples: ResidentExamples<B>, order: IndexList<B>, start: Int) {
        switch examples {
        case .bytes(let set): input = .examples(set, order, start: start)
        case .dense(let inputs, let targets): input = .rows(inputs: inputs, targets: targets, order, start: start)
        }
    }
}

/// The parts of named groups, layer by layer: for each layer, each group's part for it, in the
/// groups' order (w1, b1, w2, b2, ... for a model's parameters).
func layerMajor<B: Backend>(_ groups: [(names: [String], group: TensorGroup<B>)]) -> [(name: String, tensor: Tensor<B>)] {
    let layers = groups.first?.names.count ?? 0
    return (0..<layers).flatMap { l in groups.map { ($0.names[l], $0.group.parts[l]) } }
}
