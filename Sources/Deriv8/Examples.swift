import Foundation

/// Labelled examples: inputs [count, features] row-major, one label per example.
public struct LabelledExamples: Sendable {
    /// The inputs as the file stored them.
    public enum Inputs: Sendable, Equatable {
        /// Bytes (images): the network sees byte / 255, and the first layer reads the bytes
        /// themselves (the sparse fast paths).
        case bytes([UInt8])
        /// Numbers taken as they are (finite): the first layer reads a gathered float batch.
        case floats([Float])

        public var count: Int {
            switch self {
            case .bytes(let b): return b.count
            case .floats(let f): return f.count
            }
        }

        /// Elements start..<end, of the same kind.
        public subscript(range: Range<Int>) -> Inputs {
            switch self {
            case .bytes(let b): return .bytes(Array(b[range]))
            case .floats(let f): return .floats(Array(f[range]))
            }
        }

        /// The rows at `rows` (each `features` wide), in that order, of the same kind.
        public func rows(_ rows: [Int], features: Int) -> Inputs {
            func pick<T>(_ values: [T]) -> [T] { rows.flatMap { values[($0 * features)..<(($0 + 1) * features)] } }
            switch self {
            case .bytes(let b): return .bytes(pick(b))
            case .floats(let f): return .floats(pick(f))
            }
        }

        /// What the network sees: bytes scaled by 1/255, floats as they are.
        public var asFloats: [Float] {
            switch self {
            case .bytes(let b): return b.map { Float($0) / 255 }
            case .floats(let f): return f
            }
        }
    }

    public let inputs: Inputs
    /// In 0..<256: a data set has at most 256 classes.
    public let labels: [UInt8]
    public let features: Int

    public init(inputs: Inputs, labels: [UInt8], features: Int) {
        precondition(inputs.count == labels.count * features)
        self.inputs = inputs
        self.labels = labels
        self.features = features
    }

    /// Byte images: pixels [count, features].
    public init(pixels: [UInt8], labels: [UInt8], features: Int) {
        self.init(inputs: .bytes(pixels), labels: labels, features: features)
    }

    public var count: Int { labels.count }

    /// The first `limit` examples (all of them when `limit` is nil or larger).
    public func prefix(_ limit: Int?) -> LabelledExamples {
        guard let limit, limit < count else { return self }
        return LabelledExamples(inputs: inputs[0..<(limit * features)], labels: Array(labels[0..<limit]), features: features)
    }

    /// The examples at `indices`, in that order.
    public func subset(_ indices: [Int]) -> LabelledExamples {
        LabelledExamples(inputs: inputs.rows(indices, features: features), labels: indices.map { labels[$0] }, features: features)
    }
}

/// A training set and a test set of the same shape: the data a run learns from and is scored on.
public struct DataSet: Sendable {
    public let train: LabelledExamples
    public let test: LabelledExamples
    /// One more than the largest label in either set: 2 to 256.
    public let classes: Int
    /// One example's shape as the file gave it: [rows, cols] for images, [features] for a table.
    public let exampleShape: [Int]

    public var features: Int { train.features }

    /// Checks that both sets have `exampleShape`'s features and the same kind of inputs, and
    /// takes the class count from the labels; a problem is reported against `path`.
    public init(train: LabelledExamples, test: LabelledExamples, exampleShape: [Int], path: String) throws(DataFileError) {
        let features = exampleShape.reduce(1, *)
        guard train.features == features, test.features == features else {
            throw DataFileError(path: path, problem: "training examples have \(train.features) features, test examples \(test.features)")
        }
        guard train.count > 0, test.count > 0 else {
            throw DataFileError(path: path, problem: "the \(train.count == 0 ? "training" : "test") set is empty")
        }
        switch (train.inputs, test.inputs) {
        case (.bytes, .bytes), (.floats, .floats): break
        default: throw DataFileError(path: path, problem: "training and test inputs are of different types (bytes and floats)")
        }
        let largest = Int(max(train.labels.max() ?? 0, test.labels.max() ?? 0))
        guard largest >= 1 else {
            throw DataFileError(path: path, problem: "every label is 0: a classifier needs at least 2 classes")
        }
        self.train = train
        self.test = test
        classes = largest + 1
        self.exampleShape = exampleShape
    }

    /// The data at `path`: a folder of four IDX files (see `MNIST`), or a `.npz` file (see `NPZ`).
    public static func load(_ path: String) throws(DataFileError) -> DataSet {
        try isDirectory(path) ? MNIST.load(from: path) : NPZ.loadDataSet(path)
    }

    /// The CRC-32 of the data's files by name (see `MNIST.checksums`): the four IDX files of a
    /// folder, or the one file.
    public static func checksums(_ path: String) -> [String: String] {
        if isDirectory(path) { return MNIST.checksums(in: path) }
        return MNIST.fileCRC32(path).map { [(path as NSString).lastPathComponent: $0] } ?? [:]
    }

    /// The same data with only the first `trainLimit` training and `testLimit` test examples.
    public func prefix(train trainLimit: Int?, test testLimit: Int?) -> DataSet {
        DataSet(train: train.prefix(trainLimit), test: test.prefix(testLimit), classes: classes, exampleShape: exampleShape)
    }

    /// The training set split in two: the examples at `held` become the validation set (in that
    /// order), the rest stay for training (in their order).
    public func holdingOut(_ held: [Int]) -> (train: LabelledExamples, validation: LabelledExamples) {
        var isHeld = [Bool](repeating: false, count: train.count)
        for i in held { isHeld[i] = true }
        return (train.subset(train.labels.indices.filter { !isHeld[$0] }), train.subset(held))
    }

    private init(train: LabelledExamples, test: LabelledExamples, classes: Int, exampleShape: [Int]) {
        (self.train, self.test, self.classes, self.exampleShape) = (train, test, classes, exampleShape)
    }
}
