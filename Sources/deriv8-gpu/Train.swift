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

    @Option(help: ArgumentHelp("Folder with the four MNIST IDX files (.gz or raw).", valueName: "dir"))
    var data = "datasets/mnist"

    @Option(help: "Passes over the training set.")
    var epochs = 20

    @Option(help: "Examples per gradient step.")
    var batchSize = 500

    @Option(help: "Gradient descent step size.")
    var learningRate = 0.1

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

    func validate() throws {
        try positive(epochs, "--epochs")
        try positive(batchSize, "--batch-size")
        try positive(learningRate, "--learning-rate")
        guard lambda >= 0, lambda.isFinite else { throw ValidationError("--lambda must be >= 0, got \(lambda)") }
        if let trainLimit { try positive(trainLimit, "--train-limit") }
        if let testLimit { try positive(testLimit, "--test-limit") }
        try requireDirectory(data, flag: "--data")
    }

    var config: TrainingConfig {
        var c = TrainingConfig()
        c.hidden = hidden.widths
        c.epochs = epochs
        c.batchSize = batchSize
        c.learningRate = learningRate
        c.lambda = lambda
        c.seed = seed
        c.shuffle = shuffle
        return c
    }

    func run() throws {
        try backendOptions.run(TrainingJob(command: self))
    }
}

struct TrainingJob: BackendJob {
    let command: Train

    func run<B: Backend>(on backend: B) throws {
        let (config, data, epochs) = (command.config, command.data, command.epochs)
        let (batchSize, learningRate, lambda) = (command.batchSize, command.learningRate, command.lambda)
        let (shuffle, seed, results, json) = (command.shuffle, command.seed, command.results, command.json)
        let trainer = try makeTrainer(backend: backend, config: config, data: data,
                                      trainLimit: command.trainLimit, testLimit: command.testLimit)
        let (train, test) = (trainer.trainSet, trainer.testSet)
        let record = try RunRecord(directory: results, backend: backend.name, device: backend.deviceDescription,
                                   config: config, trainCount: train.count, testCount: test.count,
                                   dataDirectory: data)
        var out = EpochPrinter(json: json, backend: backend.name, epochs: epochs)
        out.header([
            ("backend", backend.deviceDescription),
            ("network", trainer.model.sizes.map(String.init).joined(separator: "-")),
            ("data", "\(data): \(train.count) train, \(test.count) test"),
            ("training", "\(epochs) epochs, batch \(batchSize) (\(trainer.batchesPerEpoch) per epoch), lr \(learningRate), λ \(lambda), shuffle \(shuffle.rawValue), seed \(seed)"),
            ("results", record.folder.path),
        ])
        for _ in 0..<epochs {
            let result = try trainer.runEpoch(progress: { out.progress($0) })
            try record.append(result)
            out.epoch(result)
        }
    }
}

func requireDirectory(_ path: String, flag: String) throws {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else {
        throw ValidationError("\(flag) \(path): no such folder (run `make datasets` first, or pass \(flag) DIR)")
    }
}

extension ShufflePolicy: ExpressibleByArgument {}

/// Loads the data and builds the trainer. The host arrays are released when this returns, so an
/// OpenCL run does not keep a second copy of the data set in host memory.
func makeTrainer<B: Backend>(backend: B, config: TrainingConfig, data: String,
                             trainLimit: Int?, testLimit: Int?) throws -> Trainer<B> {
    let mnist = try MNIST.load(from: data)
    return try Trainer(backend: backend, config: config, train: mnist.train.prefix(trainLimit),
                       test: mnist.test.prefix(testLimit))
}
