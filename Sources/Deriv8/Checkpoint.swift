import Foundation
import GPUTensor

/// A trained model and everything needed to continue training it exactly, stored as one
/// safetensors file.
///
/// Tensors (float32 unless noted, row-major):
///   w1 [n1, n0], b1 [n1], w2 [n2, n1], b2 [n2], ...   the network (784-32-32-10: w1 [32,784] ...)
///   momentum.w1 ...  or  adam.m.w1, adam.v.w1 ...       the optimiser's state, when it has one
///   train_order [count] int32                          the visiting order of the training set
/// `__metadata__` holds the format, the architecture ("784-32-32-10"), the training configuration
/// as JSON, the dataset, the epochs done (and batches of the next one, after an interruption),
/// the optimiser's step and the random generator's state.
public struct Checkpoint: Sendable {
    public static let format = "deriv8-gpu checkpoint 1"

    public var sizes: [Int]
    public var config: TrainingConfig
    public var dataset: String
    /// Whole epochs done.
    public var epoch: Int
    /// Batches of the next epoch already done (non-zero only after an interruption).
    public var batch: Int
    /// w1, b1, w2, b2, ... as float32, in that order.
    public var parameters: [(name: String, values: [Float])]
    public var optimizerStep: Int
    public var optimizerState: [(name: String, values: [Float])]
    public var generatorState: [UInt64]
    public var trainOrder: [Int32]
    /// The results folder of the run that wrote it (metadata `results_folder`), so that a resumed
    /// run continues the same metrics.csv and plot; nil when unknown.
    public var resultsFolder: String? = nil
    /// The run's best epoch by validation accuracy so far (metadata `best_epoch`,
    /// `best_validation_accuracy`): what --save-best and --early-stop continue from on resuming.
    public var best: BestEpoch? = nil
    /// Where the run keeps its best epoch's checkpoint (metadata `save_best`), nil when it does not.
    public var saveBest: String? = nil

    public var architecture: String { sizes.map(String.init).joined(separator: "-") }

    /// The shape each parameter has in the file: weights 2-D [out, in], biases 1-D [out].
    public static func shape(of name: String, sizes: [Int]) -> [Int]? {
        guard let layer = Int(name.dropFirst()), layer >= 1, layer < sizes.count else { return nil }
        switch name.first {
        case "w": return [sizes[layer], sizes[layer - 1]]
        case "b": return [sizes[layer]]
        default: return nil
        }
    }

    public static func parameterNames(layers: Int) -> [String] { (1...layers).flatMap { ["w\($0)", "b\($0)"] } }

    // MARK: Writing

    /// The file's bytes.
    public func encoded() throws -> [UInt8] {
        var tensors: [(name: String, tensor: SafeTensors.Tensor)] = []
        for (name, values) in parameters {
            tensors.append((name, SafeTensors.Tensor(values, shape: Self.shape(of: name, sizes: sizes)!)))
        }
        for (name, values) in optimizerState {
            let parameter = String(name.split(separator: ".").last!)
            tensors.append((name, SafeTensors.Tensor(values, shape: Self.shape(of: parameter, sizes: sizes)!)))
        }
        tensors.append(("train_order", SafeTensors.Tensor(trainOrder, shape: [trainOrder.count])))
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        let metadata = [
            "format": Self.format,
            "architecture": architecture,
            "config": String(decoding: try encoder.encode(config), as: UTF8.self),
            "dataset": dataset,
            "epoch": String(epoch),
            "batch": String(batch),
            "optimizer_step": String(optimizerStep),
            "rng_state": generatorState.map { String($0, radix: 16) }.joined(separator: ","),
        ].merging(optionalMetadata) { first, _ in first }
        return try SafeTensors.encode(tensors, metadata: metadata)
    }

    /// The metadata entries that are there only when known.
    private var optionalMetadata: [String: String] {
        var entries: [String: String] = [:]
        entries["results_folder"] = resultsFolder
        entries["save_best"] = saveBest
        if let best {
            entries["best_epoch"] = String(best.epoch)
            entries["best_validation_accuracy"] = String(best.validationAccuracy)
        }
        return entries
    }

    /// Writes atomically: a temporary file in the same folder, flushed to disk, then renamed over
    /// `path`, so a crash or Ctrl-C never leaves a truncated checkpoint in place of a good one.
    public func write(to path: String) throws {
        try writeAtomically(try encoded(), to: path)
    }

    // MARK: Reading

    /// Reads and validates a checkpoint; the first problem is thrown as one line naming the file.
    public static func read(_ path: String) throws(DataFileError) -> Checkpoint {
        let bytes = try readRegularFile(path, limit: 1 << 30, kind: "a checkpoint")
        return try decode(bytes, path: path)
    }

    public static func decode(_ bytes: [UInt8], path: String) throws(DataFileError) -> Checkpoint {
        func fail(_ problem: String) -> DataFileError { DataFileError(path: path, problem: problem) }
        let (tensors, metadata) = try SafeTensors.decode(bytes, path: path)
        guard metadata["format"] == format else {
            throw fail("not a deriv8-gpu checkpoint (metadata format is \(metadata["format"].map { "'\($0)'" } ?? "missing"))")
        }
        guard let architecture = metadata["architecture"] else { throw fail("metadata has no architecture") }
        let sizes = architecture.split(separator: "-").compactMap { Int($0) }
        guard sizes.count >= 2, sizes.count == architecture.split(separator: "-").count, sizes.allSatisfy({ $0 > 0 && $0 <= 1 << 16 }) else {
            throw fail("architecture '\(architecture)' is not a list of layer widths like 784-32-32-10")
        }
        let config: TrainingConfig
        do {
            let decoder = JSONDecoder()
            decoder.keyDecodingStrategy = .convertFromSnakeCase
            config = try decoder.decode(TrainingConfig.self, from: Data((metadata["config"] ?? "").utf8))
        } catch { throw fail("metadata config is missing or not a training configuration") }
        guard let epoch = metadata["epoch"].flatMap(Int.init), epoch >= 0 else { throw fail("metadata epoch is missing or not a count") }
        guard let batch = metadata["batch"].flatMap(Int.init), batch >= 0 else { throw fail("metadata batch is missing or not a count") }
        guard let step = metadata["optimizer_step"].flatMap(Int.init), step >= 0 else { throw fail("metadata optimizer_step is missing or not a count") }
        let words = (metadata["rng_state"] ?? "").split(separator: ",").compactMap { UInt64($0, radix: 16) }
        guard SeededGenerator(state: words) != nil else { throw fail("metadata rng_state is not four hexadecimal words") }

        func floats(_ name: String, shape: [Int]) throws(DataFileError) -> [Float] {
            guard let tensor = tensors[name] else { throw fail("tensor \(name) is missing") }
            guard tensor.shape == shape else {
                throw fail("tensor \(name) has shape \(tensor.shape), architecture \(architecture) needs \(shape)")
            }
            guard let values = tensor.floats else { throw fail("tensor \(name) is \(tensor.dtype.rawValue), expected F32") }
            return values
        }
        let names = parameterNames(layers: sizes.count - 1)
        var parameters: [(String, [Float])] = []
        for name in names { parameters.append((name, try floats(name, shape: shape(of: name, sizes: sizes)!))) }
        let prefixes: [String]
        switch config.optimizer.kind {
        case .sgd: prefixes = []
        case .momentum: prefixes = ["momentum."]
        case .adam: prefixes = ["adam.m.", "adam.v."]
        }
        var state: [(String, [Float])] = []
        for name in names {
            for prefix in prefixes { state.append((prefix + name, try floats(prefix + name, shape: shape(of: name, sizes: sizes)!))) }
        }
        guard let orderTensor = tensors["train_order"], orderTensor.shape.count == 1, let order = orderTensor.int32s else {
            throw fail("tensor train_order is missing or not a 1-D I32 list")
        }
        let expected = Set(names + state.map(\.0) + ["train_order"])
        if let extra = tensors.keys.sorted().first(where: { !expected.contains($0) }) {
            throw fail("unexpected tensor \(extra) for a \(config.optimizer.kind.rawValue) checkpoint")
        }
        var best: BestEpoch?
        if metadata["best_epoch"] != nil || metadata["best_validation_accuracy"] != nil {
            guard let bestEpoch = metadata["best_epoch"].flatMap(Int.init), bestEpoch >= 1, bestEpoch <= epoch,
                  let accuracy = metadata["best_validation_accuracy"].flatMap(Double.init), accuracy >= 0, accuracy <= 1 else {
                throw fail("metadata best_epoch and best_validation_accuracy are not an epoch of this run and a fraction")
            }
            best = BestEpoch(epoch: bestEpoch, validationAccuracy: accuracy)
        }
        return Checkpoint(sizes: sizes, config: config, dataset: metadata["dataset"] ?? "mnist", epoch: epoch, batch: batch,
                          parameters: parameters, optimizerStep: step, optimizerState: state,
                          generatorState: words, trainOrder: order, resultsFolder: metadata["results_folder"],
                          best: best, saveBest: metadata["save_best"])
    }
}

/// The epoch with the best validation accuracy so far.
public struct BestEpoch: Sendable, Equatable {
    public let epoch: Int
    public let validationAccuracy: Double
    public init(epoch: Int, validationAccuracy: Double) {
        self.epoch = epoch
        self.validationAccuracy = validationAccuracy
    }
}

/// Writes `bytes` to a temporary file next to `path`, flushes it to disk, renames it over
/// `path` and flushes the folder, so `path` holds either the old file or the new one, whole.
public func writeAtomically(_ bytes: [UInt8], to path: String) throws {
    let url = URL(fileURLWithPath: path)
    let folder = url.deletingLastPathComponent().path
    let temporary = folder + "/." + url.lastPathComponent + ".tmp-\(getpid())"
    let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    guard fd >= 0 else { throw DataFileError(path: path, problem: "cannot write: \(String(cString: strerror(errno)))") }
    var written = 0
    let ok = bytes.withUnsafeBytes { raw -> Bool in
        while written < raw.count {
            let n = Foundation.write(fd, raw.baseAddress! + written, raw.count - written)
            if n <= 0 { return false }
            written += n
        }
        return fsync(fd) == 0
    }
    let problem = ok ? nil : String(cString: strerror(errno))
    close(fd)
    guard ok else {
        unlink(temporary)
        throw DataFileError(path: path, problem: "cannot write: \(problem ?? "unknown error")")
    }
    guard rename(temporary, path) == 0 else {
        let message = String(cString: strerror(errno))
        unlink(temporary)
        throw DataFileError(path: path, problem: "cannot replace: \(message)")
    }
    let folderFD = open(folder.isEmpty ? "." : folder, O_RDONLY)
    if folderFD >= 0 {
        fsync(folderFD)
        close(folderFD)
    }
}
