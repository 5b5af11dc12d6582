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
            be changed; --learning-rate, --lambda, --momentum, --epochs and the schedule can.

            Model selection: --validation N (or a fraction such as 0.1) holds out training \
            examples, chosen by the seed and never trained on, and reports their loss and \
            accuracy every epoch; --save-best PATH keeps the checkpoint of the epoch with the best \
            validation accuracy, and --early-stop K ends the run after K epochs without a better \
            one. Without --validation the run is exactly the reference recipe.

            Learning-rate schedules (the rate each epoch used is in --json and metrics.csv): \
            constant; step, multiplied by --lr-gamma every --lr-step epochs; cosine, from \
            --learning-rate down towards 0 at the last epoch. --warmup E first ramps the rate up \
            linearly over E epochs.

            Examples:
              deriv8-gpu train --validation 0.1 --save-best best.safetensors --early-stop 5
              deriv8-gpu train --epochs 30 --lr-schedule cosine --warmup 2
              deriv8-gpu train --data mydata.npz --hidden 64 --epochs 10
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

    @Flag(help: "Let --save and --save-best replace an existing file.")
    var force = false

    @Option(parsing: .unconditional, help: ArgumentHelp("Hold out N training examples, or a fraction of them (0.1), chosen by the seed and never trained on; report their loss and accuracy every epoch.", valueName: "N|fraction"))
    var validation: ValidationSize?

    @Option(help: ArgumentHelp("Keep the checkpoint of the epoch with the best validation accuracy in this file (needs --validation).", valueName: "path"))
    var saveBest: String?

    @Option(parsing: .unconditional, help: ArgumentHelp("Stop after K epochs without a better validation accuracy (needs --validation).", valueName: "K"))
    var earlyStop: Int?

    @Option(help: "Learning-rate schedule: constant (default), step (× --lr-gamma every --lr-step epochs) or cosine (towards 0 at the last epoch).")
    var lrSchedule: LearningRateSchedule.Kind?

    @Option(parsing: .unconditional, help: ArgumentHelp("Ramp the learning rate up linearly over the first E epochs (default 0).", valueName: "E"))
    var warmup: Int?

    @Option(parsing: .unconditional, help: ArgumentHelp("Epochs between the step schedule's reductions (default 10).", valueName: "E"))
    var lrStep: Int?

    @Option(parsing: .unconditional, help: ArgumentHelp("The step schedule's factor (default 0.1).", valueName: "G"))
    var lrGamma: Double?

    func validate() throws {
        try positive(epochs, "--epochs")
        if let batchSize { try positive(batchSize, "--batch-size") }
        try hidden?.validate("--hidden")
        try LayerWidths.checkWeightCountForAnyData(hidden: config.hidden)   // makeTrainer checks the data's
        if let learningRate { try positive(learningRate, "--learning-rate") }
        if let momentum {
            guard momentum >= 0, momentum < 1 else { throw ValidationError("--momentum must be in [0, 1), got \(momentum)") }
        }
        if let lambda {
            guard lambda >= 0, lambda.isFinite else { throw ValidationError("--lambda must be >= 0, got \(lambda)") }
        }
        if let trainLimit { try positive(trainLimit, "--train-limit") }
        if let testLimit { try positive(testLimit, "--test-limit") }
        if let earlyStop { try positive(earlyStop, "--early-stop") }
        try validation?.validate()
        if let warmup, warmup < 0 { throw ValidationError("--warmup must be >= 0, got \(warmup)") }
        if let lrStep { try positive(lrStep, "--lr-step") }
        if let lrGamma {
            guard lrGamma > 0, lrGamma <= 1 else { throw ValidationError("--lr-gamma must be in (0, 1], got \(lrGamma)") }
        }
        let kind = lrSchedule ?? .constant
        if kind != .step, lrStep != nil || lrGamma != nil {
            throw ValidationError("--lr-step and --lr-gamma apply to --lr-schedule step\(lrSchedule == nil && resume != nil ? " (give it again with --resume)" : "")")
        }
        if let saveBest, let savePath, sameFile(saveBest, savePath) {
            throw ValidationError("--save-best \(saveBest) is the file --save\(save == nil ? " (--resume)" : "") writes; keep the best epoch in another file")
        }
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
        c.schedule = schedule(c.schedule)
        return c
    }

    /// `base` with the schedule flags given applied.
    func schedule(_ base: LearningRateSchedule) -> LearningRateSchedule {
        var s = base
        if let lrSchedule { s.kind = lrSchedule }
        if let warmup { s.warmupEpochs = warmup }
        if let lrStep { s.stepEpochs = lrStep }
        if let lrGamma { s.gamma = lrGamma }
        return s
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
        c.schedule = schedule(saved.schedule)
        if c.schedule != saved.schedule { changes.append("schedule \(saved.schedule.summary) → \(c.schedule.summary)") }
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
            if let validation, validation.count(of: saved.trainOrder.count + saved.config.validation) != saved.config.validation {
                conflicts.append("--validation \(validation) (the checkpoint holds out \(saved.config.validation) examples)")
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
        let validates = checkpoint.map { $0.config.validation > 0 } ?? (validation != nil)
        for (flag, given) in [("--save-best", saveBest != nil), ("--early-stop", earlyStop != nil)] where given && !validates {
            throw ValidationError("\(flag) chooses epochs by validation accuracy: add --validation N (or a fraction such as 0.1)\(checkpoint == nil ? "" : "; the resumed run holds out no examples")")
        }
        let (dataset, data) = try dataOptions.resolve(recorded: checkpoint?.dataset)
        var locks: [CheckpointLock] = []
        if let savePath {
            try refuseOverwrite(savePath, flag: "--save", continuing: resume)
            locks.append(try CheckpointLock(savePath))
        }
        if let saveBest = bestPath(checkpoint) {
            try refuseOverwrite(saveBest, flag: "--save-best", continuing: checkpoint?.saveBest)
            locks.append(try CheckpointLock(saveBest))
        }
        try withExtendedLifetime(locks) {
            try backendOptions.run(TrainingJob(command: self, checkpoint: checkpoint, data: data, dataset: dataset))
        }
    }

    /// Where the best epoch's checkpoint goes: --save-best, or the resumed run's.
    func bestPath(_ checkpoint: Checkpoint?) -> String? { saveBest ?? checkpoint?.saveBest }

    /// Refuses, before anything is trained, a `flag` file that would replace an existing file
    /// other than the one the resumed run wrote (`continuing`) unless --force, or whose folder
    /// cannot be written.
    private func refuseOverwrite(_ path: String, flag: String, continuing: String?) throws {
        let resuming = continuing.map { sameFile($0, path) } ?? false
        if !resuming, !force, FileManager.default.fileExists(atPath: path) {
            throw ValidationError("\(flag) \(path): the file exists; pass --force to replace it\(flag == "--save" ? " (or --resume \(path) to continue it)" : "")")
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
        let (requested, changes) = checkpoint.map { command.resumedConfig($0.config) } ?? (command.config, [])
        let epochs = command.epochs
        let trainer = try makeTrainer(backend: backend, config: requested, data: data, trainLimit: command.trainLimit,
                                      testLimit: command.testLimit, validation: checkpoint == nil ? command.validation : nil)
        let config = trainer.config
        let (batchSize, learningRate, lambda) = (config.batchSize, config.learningRate, config.lambda)
        let (shuffle, seed, results, json) = (config.shuffle, config.seed, command.results, command.json)
        let saveBest = command.bestPath(checkpoint)
        var best = checkpoint?.best
        if let checkpoint {
            // Data of other shapes than the checkpoint's (--data): a usage error, like the flags.
            do { try trainer.restore(checkpoint) } catch let mismatch as CheckpointMismatch {
                throw ValidationError("--resume \(command.resume ?? ""): \(mismatch)")
            }
        }
        let (train, test) = (trainer.trainSet, trainer.testSet)
        let provenance = RunRecord.Provenance(version: Version.description, command: CommandLine.arguments, dataset: dataset,
                                              dataChecksums: DataSet.checksums(data), save: command.savePath,
                                              network: trainer.model.sizes, saveBest: saveBest)
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
            current.best = best
            current.saveBest = saveBest
            return current
        }
        var out = EpochPrinter(json: json, backend: backend.name, epochs: epochs, showRate: config.schedule != LearningRateSchedule())
        var header: [(String, String)] = [
            ("backend", backend.deviceDescription),
            ("network", trainer.model.sizes.map(String.init).joined(separator: "-")),
            ("data", "\(data): \(train.count) train, \(test.count) test"),
            ("training", "\(epochs) epochs, batch \(batchSize) (\(trainer.batchesPerEpoch) per epoch), \(config.optimizer.kind.rawValue) lr \(learningRate)\(config.schedule == LearningRateSchedule() ? "" : " (\(config.schedule.summary))"), λ \(lambda), init \(config.initialization.rawValue), shuffle \(shuffle.rawValue), seed \(seed)"),
            ("results", record.folder.path),
        ]
        if let validation = trainer.validationSet {
            header.insert(("validation", "\(validation.count) training examples held out (chosen by seed \(seed)), never trained on"), at: 3)
        }
        if let resume = command.resume { header.append(("resumed", "\(resume) after epoch \(trainer.epochsDone)")) }
        if let save = command.savePath { header.append(("saving", save)) }
        if let saveBest { header.append(("best", "\(saveBest): the epoch with the best validation accuracy\(best.map { " (so far epoch \($0.epoch), \(percent($0.validationAccuracy)))" } ?? "")")) }
        if let k = command.earlyStop { header.append(("early stop", "after \(k) epoch\(k == 1 ? "" : "s") without a better validation accuracy")) }
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
                if let accuracy = result.validationAccuracy, accuracy > best?.validationAccuracy ?? -1 {
                    best = BestEpoch(epoch: result.epoch, validationAccuracy: accuracy)
                    if let saveBest { try currentCheckpoint().write(to: saveBest) }
                }
                try record.append(result)
                if let save = command.savePath { try currentCheckpoint().write(to: save) }
                out.epoch(result)
                if let k = command.earlyStop, let best, trainer.epochsDone - best.epoch >= k, trainer.epochsDone < epochs {
                    out.note("early stop after epoch \(trainer.epochsDone): no better validation accuracy for \(k) epoch\(k == 1 ? "" : "s") (best \(percent(best.validationAccuracy)) at epoch \(best.epoch))")
                    break
                }
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
extension LearningRateSchedule.Kind: ExpressibleByArgument {}

/// Loads the data and builds the trainer. The host arrays are released when this returns, so an
/// OpenCL run does not keep a second copy of the data set in host memory.
/// `validation` sets the held-out count from the training set's size; without it the config's stands.
func makeTrainer<B: Backend>(backend: B, config: TrainingConfig, data: String, trainLimit: Int?, testLimit: Int?,
                             validation: ValidationSize? = nil) throws -> Trainer<B> {
    let dataSet = try DataSet.load(data).prefix(train: trainLimit, test: testLimit)
    try LayerWidths.checkWeightCount(hidden: config.hidden, features: dataSet.features, classes: dataSet.classes)
    var config = config
    if let validation { config.validation = validation.count(of: dataSet.train.count) }
    do { return try Trainer(backend: backend, config: config, data: dataSet) } catch let split as ValidationSplitError {
        throw ValidationError("--validation \(validation.map(String.init(describing:)) ?? String(split.requested)): \(split)")
    }
}

/// `--validation`: a number of training examples (a whole number >= 1), or a fraction of them
/// (strictly between 0 and 1).
struct ValidationSize: ExpressibleByArgument, CustomStringConvertible {
    let text: String
    let value: Double

    init?(argument: String) {
        guard let value = Double(argument), value.isFinite else { return nil }
        (text, self.value) = (argument, value)
    }

    var description: String { text }

    func validate() throws {
        guard (value > 0 && value < 1) || (value >= 1 && value == value.rounded() && value < 1e15) else {
            throw ValidationError("--validation must be a count of examples (1, 2, ...) or a fraction between 0 and 1, got \(text)")
        }
    }

    /// The examples to hold out of `total`: the count, or the fraction rounded (at least 1).
    func count(of total: Int) -> Int {
        value < 1 ? max(1, Int((value * Double(total)).rounded())) : Int(value)
    }
}

/// A fraction as a percentage with two decimals: "97.12%".
func percent(_ fraction: Double) -> String { String(format: "%.2f%%", 100 * fraction) }
