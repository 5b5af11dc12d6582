import GPUTensor

/// Counts of (true class, predicted class) over a data set, and what follows from them.
public struct ConfusionMatrix: Sendable, Codable {
    /// counts[label][prediction]
    public private(set) var counts: [[Int]]

    public init(classes: Int) { counts = Array(repeating: Array(repeating: 0, count: classes), count: classes) }

    public mutating func add(label: Int, prediction: Int) { counts[label][prediction] += 1 }

    public var total: Int { counts.joined().reduce(0, +) }
    public var correct: Int { counts.indices.reduce(0) { $0 + counts[$1][$1] } }
    public var accuracy: Double { total == 0 ? 0 : Double(correct) / Double(total) }

    /// Of the examples predicted as class c, the fraction that are c (nil when none was predicted c).
    public func precision(_ c: Int) -> Double? {
        let predicted = counts.reduce(0) { $0 + $1[c] }
        return predicted == 0 ? nil : Double(counts[c][c]) / Double(predicted)
    }

    /// Of the examples of class c, the fraction predicted as c (nil when there are none).
    public func recall(_ c: Int) -> Double? {
        let actual = counts[c].reduce(0, +)
        return actual == 0 ? nil : Double(counts[c][c]) / Double(actual)
    }
}

/// A trained network's predictions on a backend.
public struct Predictor<B: Backend> {
    public let model: MLP<B>
    public let batchSize: Int

    /// The network stored in `checkpoint`, on `backend`.
    public init(checkpoint: Checkpoint, backend: B, batchSize: Int = 500) throws {
        let layers = checkpoint.sizes.count - 1
        let values = Dictionary(uniqueKeysWithValues: checkpoint.parameters.map { ($0.name, $0.values) })
        model = try MLP(backend: backend, sizes: checkpoint.sizes,
                        weights: (1...layers).map { values["w\($0)"]!.map { B.Element($0) } },
                        biases: (1...layers).map { values["b\($0)"]!.map { B.Element($0) } })
        self.batchSize = batchSize
    }

    /// Softmax probabilities for every example, [count][classes]: inputs [count, features].
    public func probabilities(_ inputs: LabelledExamples.Inputs, count: Int) throws -> [[Double]] {
        let be = model.backend
        let classes = model.sizes.last!, features = model.sizes[0]
        let unlabelled = LabelledExamples(inputs: inputs, labels: [UInt8](repeating: 0, count: count), features: features)
        let examples = try ResidentExamples(unlabelled, classes: classes, backend: be)
        let order = try be.makeIndexList((0..<Int32(count)).map { $0 })
        var result: [[Double]] = []
        var start = 0
        while start < count {
            let ws = try Workspace(backend: be, sizes: model.sizes, batchSize: min(batchSize, count - start))
            ws.load(examples, order: order, start: start)
            try model.forward(ws)
            let probs = try be.download(ws.probs).map(Double.init)
            for i in 0..<ws.batchSize { result.append(Array(probs[(i * classes)..<((i + 1) * classes)])) }
            start += ws.batchSize
        }
        return result
    }

    /// The confusion matrix over a labelled set (argmax of the probabilities, first on ties).
    public func evaluate(_ data: LabelledExamples) throws -> ConfusionMatrix {
        var matrix = ConfusionMatrix(classes: model.sizes.last!)
        for (probs, label) in zip(try probabilities(data.inputs, count: data.count), data.labels) {
            matrix.add(label: Int(label), prediction: probs.indices.max { probs[$0] < probs[$1] || (probs[$0] == probs[$1] && $0 > $1) }!)
        }
        return matrix
    }
}
