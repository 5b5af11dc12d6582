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
            """)

    @OptionGroup var backendOptions: BackendOptions

    @OptionGroup var dataOptions: DataOptions

    @Option(help: "Passes over the training set.")
    var epochs = 20

    @Option(help: "Examples per gradient step.")
    var batchSize = 500

    @Option(help: "Step size (default: 0.1, or 0.001 with --optimizer adam).")
    var learningRate: Double?

    @Option(help: "Update rule: sgd (the reference), momentum or adam.")
    var optimizer: OptimizerKind = .sgd

    @Option(help: "Momentum coefficient μ for --optimizer momentum.")
    var momentum = 0.9

    @Option(name: .customLong("init"), help: "Initial weights: uniform in [-0.5, 0.5] (the reference) or he (normal, variance 2/fan-in).")
    var initialization: Initialization = .uniform

    @Option(name: .customLong("lambda"), help: "L2 strength: loss += λ/(2·batch) · Σ w².")
    var lambda = 0.01

    @Option(help: ArgumentHelp("Hidden layer widths, comma-separated.", valueName: "n,n,..."))
    var hidden = LayerWidths(argument: "32,32")!

    @Option(help: "Seed for the initial weights and the shuffle; same seed, same run.")
    var seed: UInt64 = 0

    @Option(help: "When to reshuffle the training set: once (the reference) or every-epoch.")
    var shuffle: ShufflePolicy = .once

    @Option(help: ArgumentHelp("Use only the first N training examples.", valueName: "N"))
    var trainLimit: Int?

    @Option(help: ArgumentHelp("Use only the first N test examples.", valueName: "N"))
    var testLimit: Int?

    @Option(help: ArgumentHelp("Folder that receives each run's config and metrics.", valueName: "dir"))
    var results = "results"

    @Flag(help: "Print one JSON object per epoch on stdout and nothing else (fractions, not percents).")
    var json = false

    @Option(help: ArgumentHelp("Write the model and training state to this safetensors file after every epoch (atomically).", valueName: "path"))
    var save: String?

    @Option(help: ArgumentHelp("Continue the run saved in this checkpoint: network, optimiser, seed and order come from it; --epochs is the total to reach.", valueName: "path"))
    var resume: String?

    func validate() throws {
        try positive(epochs, "--epochs")
        try positive(batchSize, "--batch-size")
        if let learningRate { try positive(learningRate, "--learning-rate") }
        guard momentum >= 0, momentum < 1 else { throw ValidationError("--momentum must be in [0, 1), got \(momentum)") }
        guard lambda >= 0, lambda.isFinite else { throw ValidationError("--lambda must be >= 0, got \(lambda)") }
        let widths = [784] + hidden.widths + [10]
        let weights = zip(widths, widths.dropFirst()).reduce(0) { $0 + $1.0 * $1.1 }
        guard weights <= 50_000_000 else {
            throw ValidationError("--hidden \(hidden) gives \(weights) weights; the limit is 50 million (200 MB per copy)")
        }
        if let trainLimit { try positive(trainLimit, "--train-limit") }
        if let testLimit { try positive(testLimit, "--test-limit") }
    }

    var config: TrainingConfig {
        var c = TrainingConfig()
        c.hidden = hidden.widths
        c.epochs = epochs
        c.batchSize = batchSize
        c.learningRate = learningRate ?? optimizer.defaultLearningRate
        c.optimizer.kind = optimizer
        c.optimizer.momentum = momentum
        c.initialization = initialization
        c.lambda = lambda
        c.seed = seed
        c.shuffle = shuffle
        return c
    }

    func run() throws {
        var checkpoint: Checkpoint?
        if let resume {
            let saved = try Checkpoint.read(resume)
            guard saved.dataset == dataOptions.dataset.rawValue else {
                throw ValidationError("\(resume) was trained on \(saved.dataset); pass --dataset \(saved.dataset)")
            }
            checkpoint = saved
        }
        try backendOptions.run(TrainingJob(command: self, checkpoint: checkpoint))
    }
}

struct TrainingJob: BackendJob {
    let command: Train
    let checkpoint: Checkpoint?

    func run<B: Backend>(on backend: B) throws {
        let config = checkpoint?.config ?? command.config
        let (data, epochs) = (command.dataOptions.folder, command.epochs)
        let (batchSize, learningRate, lambda) = (config.batchSize, config.learningRate, config.lambda)
        let (shuffle, seed, results, json) = (config.shuffle, config.seed, command.results, command.json)
        let trainer = try makeTrainer(backend: backend, config: config, data: data,
                                      trainLimit: command.trainLimit, testLimit: command.testLimit)
        if let checkpoint { try trainer.restore(checkpoint) }
        let (train, test) = (trainer.trainSet, trainer.testSet)
        let record = try RunRecord(directory: results, backend: backend.name, device: backend.deviceDescription,
                                   config: config, trainCount: train.count, testCount: test.count,
                                   dataDirectory: data)
        var out = EpochPrinter(json: json, backend: backend.name, epochs: epochs)
        var header: [(String, String)] = [
            ("backend", backend.deviceDescription),
            ("network", trainer.model.sizes.map(String.init).joined(separator: "-")),
            ("data", "\(data): \(train.count) train, \(test.count) test"),
            ("training", "\(epochs) epochs, batch \(batchSize) (\(trainer.batchesPerEpoch) per epoch), \(config.optimizer.kind.rawValue) lr \(learningRate), λ \(lambda), init \(config.initialization.rawValue), shuffle \(shuffle.rawValue), seed \(seed)"),
            ("results", record.folder.path),
        ]
        if let resume = command.resume { header.append(("resumed", "\(resume) after epoch \(trainer.epochsDone)")) }
        if let save = command.save { header.append(("saving", save)) }
        out.header(header)
        if trainer.epochsDone >= epochs {
            printError("note: \(command.resume ?? "") already holds \(trainer.epochsDone) epochs; ask for more with --epochs")
        }
        let dataset = command.dataOptions.dataset.rawValue
        Signals.install()
        trainer.stopRequested = { Signals.received != 0 }
        do {
            while trainer.epochsDone < epochs {
                // Without a progress line the batches' statistics are read once per epoch: no wait per batch.
                let result = try trainer.runEpoch(progress: out.showProgress ? { out.progress($0) } : nil)
                try record.append(result)
                if let save = command.save { try trainer.checkpoint(dataset: dataset).write(to: save) }
                out.epoch(result)
                if Signals.received != 0 && trainer.epochsDone < epochs {
                    throw TrainingInterrupted(epoch: trainer.epochsDone, batch: trainer.batchesPerEpoch,
                                              batchCount: trainer.batchesPerEpoch)
                }
            }
        } catch let stop as TrainingInterrupted {
            out.clearProgress()
            var message = "deriv8-gpu: \(stop)"
            if let save = command.save {
                try trainer.checkpoint(dataset: dataset).write(to: save)
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
    let mnist = try MNIST.load(from: data)
    return try Trainer(backend: backend, config: config, train: mnist.train.prefix(trainLimit),
                       test: mnist.test.prefix(testLimit))
}
