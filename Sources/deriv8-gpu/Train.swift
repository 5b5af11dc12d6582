import ArgumentParser
import Deriv8
import Foundation
import GPUTensor

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train the network and report loss and accuracy after every epoch.",
        discussion: """
            The defaults reproduce the reference run: 784-32-32-10, lr 0.1, λ 0.01, batch 500, \
            20 epochs, weights uniform in [-0.5, 0.5], training set shuffled once. Every run writes \
            config.json and metrics.csv into a new folder under --results.

            --save never replaces an existing file unless --force is given (or it is the file \
            being resumed), and a lock file beside it (PATH.lock) keeps two runs from writing \
            the same checkpoint. --resume PATH continues a run and saves back to PATH after every \
            epoch (or to --save). What fixes the network and the data (--hidden, --init, --seed, \
            --shuffle, --batch-size, --optimizer, --dataset) comes from the checkpoint and cannot \
            be changed; --learning-rate, --lambda, --momentum and --epochs can.
            """)

    @OptionGroup var backendOptions: BackendOptions

    @OptionGroup var dataOptions: DataOptions

    @Option(parsing: .unconditional, help: "Passes over the training set.")
    var epochs = 20

    @Option(parsing: .unconditional, help: "Examples per gradient step (default 500).")
    var batchSize: Int?

    @Option(parsing: .unconditional, help: "Step size (default: 0.1, or 0.001 with --optimizer adam).")
    var learningRate: Double?

    @Option(help: "Update rule: sgd (the reference, default), momentum or adam.")
    var optimizer: OptimizerKind?

    @Option(parsing: .unconditional, help: "Momentum coefficient μ for --optimizer momentum (default 0.9).")
    var momentum: Double?

    @Option(name: .customLong("init"), help: "Initial weights: uniform in [-0.5, 0.5] (the reference, default) or he (normal, variance 2/fan-in).")
    var initialization: Initialization?

    @Option(name: .customLong("lambda"), parsing: .unconditional, help: "L2 strength: loss += λ/(2·batch) · Σ w² (default 0.01).")
    var lambda: Double?

    @Option(parsing: .unconditional, help: ArgumentHelp("Hidden layer widths, comma-separated (default 32,32).", valueName: "n,n,..."))
    var hidden: LayerWidths?

    @Option(help: "Seed for the initial weights and the shuffle; same seed, same run (default 0).")
    var seed: UInt64?

    @Option(help: "When to reshuffle the training set: once (the reference, default) or every-epoch.")
    var shuffle: ShufflePolicy?

    @Option(parsing: .unconditional, help: ArgumentHelp("Use only the first N training examples.", valueName: "N"))
    var trainLimit: Int?

    @Option(parsing: .unconditional, help: ArgumentHelp("Use only the first N test examples.", valueName: "N"))
    var testLimit: Int?

    @Option(help: ArgumentHelp("Folder that receives each run's config and metrics.", valueName: "dir"))
    var results = "results"

    @Flag(help: "Print one JSON object per epoch on stdout and nothing else (fractions, not percents).")
    var json = false

    @Option(help: ArgumentHelp("Write the model and training state to this safetensors file after every epoch (atomically).", valueName: "path"))
    var save: String?

    @Option(help: ArgumentHelp("Continue the run saved in this checkpoint, saving back to it (or to --save): network, optimiser, seed and order come from it; --epochs is the total to reach.", valueName: "path"))
    var resume: String?

    @Flag(help: "Let --save replace an existing file.")
    var force = false

    func validate() throws {
        try positive(epochs, "--epochs")
        if let batchSize { try positive(batchSize, "--batch-size") }
        try hidden?.validate("--hidden")
        if let learningRate { try positive(learningRate, "--learning-rate") }
        if let momentum {
            guard momentum >= 0, momentum < 1 else { throw ValidationError("--momentum must be in [0, 1), got \(momentum)") }
        }
        if let lambda {
            guard lambda >= 0, lambda.isFinite else { throw ValidationError("--lambda must be >= 0, got \(lambda)") }
        }
        try LayerWidths.checkWeightCount(hidden: config.hidden)
        if let trainLimit { try positive(trainLimit, "--train-limit") }
        if let testLimit { try positive(testLimit, "--test-limit") }
    }

    /// The configuration of a new run: the flags given, the defaults for the rest.
    var config: TrainingConfig {
        var c = TrainingConfig()
        if let hidden { c.hidden = hidden.widths }
        c.epochs = epochs
        if let batchSize { c.batchSize = batchSize }
        if let optimizer { c.optimizer.kind = optimizer }
        c.learningRate = learningRate ?? c.optimizer.kind.defaultLearningRate
        if let momentum { c.optimizer.momentum = momentum }
        if let initialization { c.initialization = initialization }
        if let lambda { c.lambda = lambda }
        if let seed { c.seed = seed }
        if let shuffle { c.shuffle = shuffle }
        return c
    }

    /// Where the checkpoint is written after every epoch: --save, or the file being resumed.
    var savePath: String? { save ?? resume }

    /// The flags given that would change what `saved` fixed, as "--flag VALUE (the checkpoint has X)".
    func conflicts(with saved: TrainingConfig) -> [String] {
        var found: [String] = []
        func differs<V: Equatable>(_ flag: String, _ given: V?, _ fixed: V, _ text: (V) -> String) {
            if let given, given != fixed { found.append("\(flag) \(text(given)) (the checkpoint has \(text(fixed)))") }
        }
        let widths = { (w: [Int]) in w.map(String.init).joined(separator: ",") }
        differs("--hidden", hidden?.widths, saved.hidden, widths)
        differs("--batch-size", batchSize, saved.batchSize, String.init)
        differs("--optimizer", optimizer, saved.optimizer.kind, \.rawValue)
        differs("--init", initialization, saved.initialization, \.rawValue)
        differs("--seed", seed, saved.seed, String.init)
        differs("--shuffle", shuffle, saved.shuffle, \.rawValue)
        return found
    }

    /// `saved` with the flags that may change on resuming applied, and a line per change.
    func resumedConfig(_ saved: TrainingConfig) -> (TrainingConfig, [String]) {
        var c = saved
        var changes: [String] = []
        if let learningRate, learningRate != saved.learningRate {
            changes.append("learning rate \(saved.learningRate) → \(learningRate)")
            c.learningRate = learningRate
        }
        if let lambda, lambda != saved.lambda {
            changes.append("λ \(saved.lambda) → \(lambda)")
            c.lambda = lambda
        }
        if let momentum, momentum != saved.optimizer.momentum {
            changes.append("momentum \(saved.optimizer.momentum) → \(momentum)")
            c.optimizer.momentum = momentum
        }
        if epochs != saved.epochs { changes.append("epochs \(saved.epochs) → \(epochs)") }
        c.epochs = epochs
        return (c, changes)
    }

    func run() throws {
        var checkpoint: Checkpoint?
        if let resume {
            let saved = try Checkpoint.read(resume)
            var conflicts = conflicts(with: saved.config)
            if let dataset = dataOptions.dataset, dataset.rawValue != saved.dataset {
                conflicts.append("--dataset \(dataset.rawValue) (the checkpoint has \(saved.dataset))")
            }
            guard conflicts.isEmpty else {
                throw ValidationError("--resume \(resume) cannot change what the checkpoint fixed: \(conflicts.joined(separator: "; ")); drop those flags, or start a new run")
            }
            checkpoint = saved
        }
        let optimizerKind = checkpoint?.config.optimizer.kind ?? config.optimizer.kind
        if momentum != nil && optimizerKind != .momentum {
            throw ValidationError("--momentum applies to --optimizer momentum only; this run uses \(optimizerKind.rawValue)")
        }
        let (dataset, data) = try dataOptions.resolve(recorded: checkpoint?.dataset)
        var lock: CheckpointLock?
        if let savePath {
            try refuseOverwrite(savePath)
            lock = try CheckpointLock(savePath)
        }
        try withExtendedLifetime(lock) {
            try backendOptions.run(TrainingJob(command: self, checkpoint: checkpoint, data: data, dataset: dataset))
        }
    }

    /// Refuses, before anything is trained, a --save that would replace an existing file other
    /// than the one being resumed (unless --force), or whose folder cannot be written.
    private func refuseOverwrite(_ path: String) throws {
        let resuming = resume.map { sameFile($0, path) } ?? false
        if save != nil, !resuming, !force, FileManager.default.fileExists(atPath: path) {
            throw ValidationError("--save \(path): the file exists; pass --force to replace it (or --resume \(path) to continue it)")
        }
        let folder = (path as NSString).deletingLastPathComponent
        let directory = folder.isEmpty ? "." : folder
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw SaveError(message: "\(path): cannot write: the folder \(directory) does not exist")
        }
        guard FileManager.default.isWritableFile(atPath: directory) else {
            throw SaveError(message: "\(path): cannot write: the folder \(directory) is not writable")
        }
    }
}

/// Whether two paths name the same file (the same device and inode), or the same path where
/// neither exists yet.
func sameFile(_ a: String, _ b: String) -> Bool {
    var sa = stat(), sb = stat()
    if stat(a, &sa) == 0, stat(b, &sb) == 0 { return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino }
    return (a as NSString).standardizingPath == (b as NSString).standardizingPath
}

/// A --save path that cannot be used: its folder cannot be written, or another run holds its lock.
/// A runtime failure (exit 1), found before training.
struct SaveError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

struct TrainingJob: BackendJob {
    let command: Train
    let checkpoint: Checkpoint?
    /// The data's folder, and the data set's name (recorded in checkpoints).
    let data: String
    let dataset: String

    func run<B: Backend>(on backend: B) throws {
        let (config, changes) = checkpoint.map { command.resumedConfig($0.config) } ?? (command.config, [])
        let epochs = command.epochs
        let (batchSize, learningRate, lambda) = (config.batchSize, config.learningRate, config.lambda)
        let (shuffle, seed, results, json) = (config.shuffle, config.seed, command.results, command.json)
        let trainer = try makeTrainer(backend: backend, config: config, data: data,
                                      trainLimit: command.trainLimit, testLimit: command.testLimit)
        if let checkpoint {
            // Data of other shapes than the checkpoint's (--data): a usage error, like the flags.
            do { try trainer.restore(checkpoint) } catch let mismatch as CheckpointMismatch {
                throw ValidationError("--resume \(command.resume ?? ""): \(mismatch)")
            }
        }
        let (train, test) = (trainer.trainSet, trainer.testSet)
        let provenance = RunRecord.Provenance(version: Version.description, command: CommandLine.arguments, dataset: dataset,
                                              dataChecksums: DataSet.checksums(data), save: command.savePath,
                                              network: trainer.model.sizes)
        let record = try checkpoint.map { saved in
            // A resumed run continues its results folder, where it still is.
            try RunRecord(continuing: saved.resultsFolder, resumed: .init(checkpoint: command.resume ?? "", afterEpoch: saved.epoch),
                          directory: results, backend: backend.name, device: backend.deviceDescription, config: config,
                          trainCount: train.count, testCount: test.count, dataDirectory: data, provenance: provenance)
        } ?? RunRecord(directory: results, backend: backend.name, device: backend.deviceDescription,
                       config: config, trainCount: train.count, testCount: test.count, dataDirectory: data, provenance: provenance)
        /// The checkpoint of the run as it stands, knowing its results folder.
        func currentCheckpoint() throws -> Checkpoint {
            var current = try trainer.checkpoint(dataset: dataset)
            current.resultsFolder = record.folder.path
            return current
        }
        var out = EpochPrinter(json: json, backend: backend.name, epochs: epochs)
        var header: [(String, String)] = [
            ("backend", backend.deviceDescription),
            ("network", trainer.model.sizes.map(String.init).joined(separator: "-")),
            ("data", "\(data): \(train.count) train, \(test.count) test"),
            ("training", "\(epochs) epochs, batch \(batchSize) (\(trainer.batchesPerEpoch) per epoch), \(config.optimizer.kind.rawValue) lr \(learningRate), λ \(lambda), init \(config.initialization.rawValue), shuffle \(shuffle.rawValue), seed \(seed)"),
            ("results", record.folder.path),
        ]
        if let resume = command.resume { header.append(("resumed", "\(resume) after epoch \(trainer.epochsDone)")) }
        if let save = command.savePath { header.append(("saving", save)) }
        if !changes.isEmpty { header.append(("changed", changes.joined(separator: ", "))) }
        if batchSize > train.count {
            header.append(("note", "batch \(batchSize) is more than the \(train.count) training examples: each step uses all of them"))
        }
        out.header(header)
        if trainer.epochsDone >= epochs {
            printError("note: \(command.resume ?? "") already holds \(trainer.epochsDone) epochs; ask for more with --epochs")
        }
        Signals.install()
        trainer.stopRequested = { Signals.received != 0 }
        do {
            while trainer.epochsDone < epochs {
                // Without a progress line the batches' statistics are read once per epoch: no wait per batch.
                let result = try trainer.runEpoch(progress: out.showProgress ? { out.progress($0) } : nil)
                try record.append(result)
                if let save = command.savePath { try currentCheckpoint().write(to: save) }
                out.epoch(result)
                if Signals.received != 0 && trainer.epochsDone < epochs {
                    throw TrainingInterrupted(epoch: trainer.epochsDone, batch: trainer.batchesPerEpoch,
                                              batchCount: trainer.batchesPerEpoch)
                }
            }
        } catch let stop as TrainingInterrupted {
            out.clearProgress()
            var message = "deriv8-gpu: \(stop)"
            if let save = command.savePath {
                try currentCheckpoint().write(to: save)
                message += "; saved \(save): continue with --resume \(save)"
            } else {
                message += "; nothing saved (pass --save PATH to keep interrupted runs)"
            }
            printError(message)
            throw ExitCode(128 + Signals.received)
        }
    }
}

extension ShufflePolicy: ExpressibleByArgument {}
extension OptimizerKind: ExpressibleByArgument {}
extension Initialization: ExpressibleByArgument {}

/// Loads the data and builds the trainer. The host arrays are released when this returns, so an
/// OpenCL run does not keep a second copy of the data set in host memory.
func makeTrainer<B: Backend>(backend: B, config: TrainingConfig, data: String,
                             trainLimit: Int?, testLimit: Int?) throws -> Trainer<B> {
    let dataSet = try DataSet.load(data).prefix(train: trainLimit, test: testLimit)
    try LayerWidths.checkWeightCount(hidden: config.hidden, features: dataSet.features, classes: dataSet.classes)
    return try Trainer(backend: backend, config: config, data: dataSet)
}
