import GPUTensor

/// When the training set is reshuffled.
public enum ShufflePolicy: String, CaseIterable, Codable, Sendable {
    /// Once before the first epoch; every epoch then visits the batches in the same order (the reference).
    case once
    /// Before every epoch, as most frameworks do.
    case everyEpoch = "every-epoch"
}

/// Everything that decides a training run's numbers. The defaults are the reference workload.
public struct TrainingConfig: Codable, Sendable {
    public var hidden: [Int] = [32, 32]
    public var epochs = 20
    public var batchSize = 500
    public var learningRate = 0.1
    public var lambda = 0.01
    public var seed: UInt64 = 0
    public var shuffle = ShufflePolicy.once
    /// Initial weights: uniform in [-initScale, initScale] (the reference), or He's normal.
    public var initialization = Initialization.uniform
    public var initScale = 0.5
    public var optimizer = OptimizerConfig()
    /// Training examples held out as the validation set (chosen by the seed, never trained on); 0: none.
    public var validation = 0
    /// How the step size changes from epoch to epoch; constant by default (the reference).
    public var schedule = LearningRateSchedule()

    public init() {}

    private enum CodingKeys: String, CodingKey {
        case hidden, epochs, batchSize, learningRate, lambda, seed, shuffle, initialization, initScale, optimizer
        case validation, schedule
    }

    /// Reads a configuration, the fields added since the first checkpoints taking their defaults.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        hidden = try c.decode([Int].self, forKey: .hidden)
        epochs = try c.decode(Int.self, forKey: .epochs)
        batchSize = try c.decode(Int.self, forKey: .batchSize)
        learningRate = try c.decode(Double.self, forKey: .learningRate)
        lambda = try c.decode(Double.self, forKey: .lambda)
        seed = try c.decode(UInt64.self, forKey: .seed)
        shuffle = try c.decode(ShufflePolicy.self, forKey: .shuffle)
        initialization = try c.decode(Initialization.self, forKey: .initialization)
        initScale = try c.decode(Double.self, forKey: .initScale)
        optimizer = try c.decode(OptimizerConfig.self, forKey: .optimizer)
        validation = try c.decodeIfPresent(Int.self, forKey: .validation) ?? 0
        schedule = try c.decodeIfPresent(LearningRateSchedule.self, forKey: .schedule) ?? LearningRateSchedule()
    }

    /// The step size of `epoch` (1-based) of this run.
    public func learningRate(epoch: Int) -> Double { schedule.rate(base: learningRate, epoch: epoch, epochs: epochs) }

    /// The layer widths for data with `features` inputs and `classes` outputs.
    public func sizes(features: Int, classes: Int) -> [Int] { [features] + hidden + [classes] }
}

/// One epoch's results. Accuracies are fractions in [0, 1].
public struct EpochResult: Codable, Sendable {
    public let epoch: Int
    /// Mean over the epoch's batches of each batch's loss (cross-entropy + L2), as the batch saw it.
    public let trainLoss: Double
    /// Fraction of training examples classified correctly by the forward pass that preceded each update.
    public let trainAccuracy: Double
    public let testLoss: Double
    public let testAccuracy: Double
    public let trainSeconds: Double
    public let evalSeconds: Double
    /// The step size this epoch used (the schedule's; see `LearningRateSchedule`); nil in
    /// metrics written before schedules existed.
    public let learningRate: Double?
    /// Mean cross-entropy and accuracy on the held-out validation examples; nil without --validation.
    public let validationLoss: Double?
    public let validationAccuracy: Double?

    public init(epoch: Int, trainLoss: Double, trainAccuracy: Double, testLoss: Double, testAccuracy: Double,
                trainSeconds: Double, evalSeconds: Double, learningRate: Double? = nil,
                validationLoss: Double? = nil, validationAccuracy: Double? = nil) {
        (self.epoch, self.trainLoss, self.trainAccuracy, self.testLoss, self.testAccuracy) =
            (epoch, trainLoss, trainAccuracy, testLoss, testAccuracy)
        (self.trainSeconds, self.evalSeconds, self.learningRate, self.validationLoss, self.validationAccuracy) =
            (trainSeconds, evalSeconds, learningRate, validationLoss, validationAccuracy)
    }
}

/// Where the current epoch is, for a progress display.
public struct BatchProgress: Sendable {
    public let epoch: Int
    public let batch: Int
    public let batchCount: Int
    /// This batch's loss (cross-entropy + L2), before its update.
    public let batchLoss: Double
    /// Mean loss and accuracy of the epoch's batches so far.
    public let meanLoss: Double
    public let accuracy: Double
}

/// Trains an `MLP` on a labelled data set with mini-batch gradient descent. The data stay on the
/// backend as bytes; each batch is gathered there from a visiting order. The batches' statistics
/// stay there too, and come back in one small transfer per epoch (per batch when a progress
/// display asks for them).
public final class Trainer<B: Backend> {
    public let backend: B
    public let config: TrainingConfig
    public let model: MLP<B>
    public let optimizer: Optimizer<B>
    public let trainSet: ResidentExamples<B>
    public let testSet: ResidentExamples<B>
    /// The held-out examples (`config.validation` of the training set's), nil without them.
    public let validationSet: ResidentExamples<B>?
    public private(set) var epochsDone = 0
    /// The batch the next epoch starts at: 0, unless a run was interrupted inside an epoch.
    public private(set) var nextBatch = 0
    /// Asked after every batch; when it answers true the epoch stops there and `runEpoch`
    /// throws `TrainingInterrupted` (the state is consistent: a checkpoint resumes at the next batch).
    public var stopRequested: () -> Bool = { false }
    /// A batch loss at or above this stops training as diverged (see `TrainingDiverged`).
    public static var divergenceLoss: Double { 1e6 }

    private var generator: SeededGenerator
    private var trainIndices: [Int32]
    private var trainOrder: IndexList<B>
    private let testOrder: IndexList<B>
    private let validationOrder: IndexList<B>?
    /// One workspace per batch size seen: the full size, and the last partial batch if any.
    private var workspaces: [Int: Workspace<B>] = [:]
    /// [batchesPerEpoch, model.statsWidth]: row b holds batch b's statistics (see `MLP.forward`).
    private let trainStats: Tensor<B>
    /// [test batches, model.statsWidth], made at the first evaluation.
    private var evalStats: Tensor<B>?

    /// Uploads the data, holds out the validation examples, draws the initial weights and
    /// shuffles, all from `config.seed`: the same seed gives the same run on every backend.
    public init(backend: B, config: TrainingConfig, data: DataSet) throws {
        self.backend = backend
        self.config = config
        generator = SeededGenerator(seed: config.seed)
        model = try MLP(backend: backend, sizes: config.sizes(features: data.features, classes: data.classes),
                        initialization: config.initialization, initScale: config.initScale, generator: &generator)
        optimizer = try Optimizer(config: config.optimizer, learningRate: config.learningRate, model: model)
        var train = data.train
        if config.validation > 0 {
            guard config.validation < train.count else {
                throw ValidationSplitError(requested: config.validation, trainCount: train.count)
            }
            let (kept, held) = data.holdingOut(Self.validationIndices(config.validation, of: train.count, seed: config.seed))
            train = kept
            validationSet = try ResidentExamples(held, classes: data.classes, backend: backend)
            validationOrder = try backend.makeIndexList((0..<Int32(held.count)).map { $0 })
        } else {
            validationSet = nil
            validationOrder = nil
        }
        trainSet = try ResidentExamples(train, classes: data.classes, backend: backend)
        testSet = try ResidentExamples(data.test, classes: data.classes, backend: backend)
        trainIndices = (0..<Int32(train.count)).map { $0 }
        generator.shuffle(&trainIndices)
        trainOrder = try backend.makeIndexList(trainIndices)
        testOrder = try backend.makeIndexList((0..<Int32(data.test.count)).map { $0 })
        trainStats = try backend.makeTensor(Shape((train.count + config.batchSize - 1) / config.batchSize, model.statsWidth))
    }

    public var batchesPerEpoch: Int { (trainSet.count + config.batchSize - 1) / config.batchSize }

    /// The `count` training examples (of `trainCount`) held out for validation, ascending: the
    /// first `count` of a shuffle drawn from its own generator, so that the weights and the
    /// training order still come from `seed` as they would without a validation set.
    public static func validationIndices(_ count: Int, of trainCount: Int, seed: UInt64) -> [Int] {
        var generator = SeededGenerator(seed: seed ^ 0x7661_6c69_6461_7465)   // "validate"
        var indices = Array(0..<trainCount)
        generator.shuffle(&indices)
        return indices.prefix(count).sorted()
    }

    /// Runs the next epoch and evaluates on the test set. Each batch's statistics stay on the
    /// backend until the epoch ends (one transfer per epoch, no wait between batches), unless
    /// `progress` is given: then they are read after every batch, and `progress` is called with them.
    public func runEpoch(progress: ((BatchProgress) -> Void)? = nil) throws -> EpochResult {
        let epoch = epochsDone + 1
        if config.shuffle == .everyEpoch && epoch > 1 && nextBatch == 0 {
            generator.shuffle(&trainIndices)
            trainOrder = try backend.makeIndexList(trainIndices)
        }
        let learningRate = config.learningRate(epoch: epoch)
        optimizer.learningRate = learningRate
        let clock = ContinuousClock()
        let started = clock.now
        let firstBatch = nextBatch
        var totals = StatsTotals()
        for batch in firstBatch..<batchesPerEpoch {
            let start = batch * config.batchSize
            let ws = try workspace(min(config.batchSize, trainSet.count - start))
            ws.load(trainSet, order: trainOrder, start: start)
            try model.forward(ws, gradient: true, into: trainStats, row: batch)
            try model.backward(ws, lambda: config.lambda)
            try optimizer.update(model, gradients: ws)
            nextBatch = batch + 1
            if let progress {
                let table = try backend.download(trainStats).map(Double.init)
                let stats = try add(table, batches: batch..<(batch + 1), epoch: epoch, to: &totals)!
                progress(BatchProgress(epoch: epoch, batch: batch + 1, batchCount: batchesPerEpoch, batchLoss: stats.loss,
                                       meanLoss: totals.lossSum / Double(batch + 1 - firstBatch),
                                       accuracy: Double(totals.correct) / Double(totals.seen)))
            }
            if stopRequested() && batch + 1 < batchesPerEpoch {
                throw TrainingInterrupted(epoch: epoch, batch: batch + 1, batchCount: batchesPerEpoch)
            }
        }
        if progress == nil {
            let table = try backend.download(trainStats).map(Double.init)
            _ = try add(table, batches: firstBatch..<batchesPerEpoch, epoch: epoch, to: &totals)
        }
        nextBatch = 0
        let trained = clock.now
        let (testLoss, testAccuracy) = try evaluate(testSet, order: testOrder)
        let validation = try validationSet.map { try evaluate($0, order: validationOrder!) }
        let evaluated = clock.now
        epochsDone = epoch
        return EpochResult(epoch: epoch, trainLoss: totals.lossSum / Double(batchesPerEpoch - firstBatch),
                           trainAccuracy: Double(totals.correct) / Double(totals.seen),
                           testLoss: testLoss, testAccuracy: testAccuracy,
                           trainSeconds: seconds(trained - started), evalSeconds: seconds(evaluated - trained),
                           learningRate: learningRate, validationLoss: validation?.loss,
                           validationAccuracy: validation?.accuracy)
    }

    /// Running sums over an epoch's batches.
    private struct StatsTotals {
        var lossSum = 0.0, correct = 0, seen = 0
    }

    /// Adds the statistics of `batches` from the downloaded table to `totals`, in order, and
    /// returns the last batch's (nil for no batches). Throws `TrainingDiverged` at the first batch whose loss is NaN,
    /// infinite, or a loss no working run reaches: the cross-entropy part is at most about 87
    /// per example (probabilities are clamped), so above `divergenceLoss` the weights themselves
    /// have exploded.
    private func add(_ table: [Double], batches: Range<Int>, epoch: Int, to totals: inout StatsTotals) throws -> BatchStats? {
        let width = model.statsWidth
        var stats: BatchStats?
        for batch in batches {
            let examples = min(config.batchSize, trainSet.count - batch * config.batchSize)
            let batchStats = model.batchStats(table[(batch * width)..<((batch + 1) * width)], examples: examples,
                                              lambda: config.lambda)
            guard batchStats.loss.isFinite, batchStats.loss < Self.divergenceLoss else {
                throw TrainingDiverged(epoch: epoch, batch: batch + 1, batchCount: batchesPerEpoch, loss: batchStats.loss,
                                       learningRate: optimizer.learningRate)
            }
            totals.lossSum += batchStats.loss
            totals.correct += batchStats.correct
            totals.seen += batchStats.examples
            stats = batchStats
        }
        return stats
    }

    /// Mean cross-entropy (without the L2 term) and accuracy over `examples`, in batches; their
    /// statistics are read back once, at the end.
    public func evaluate(_ examples: ResidentExamples<B>, order: IndexList<B>) throws -> (loss: Double, accuracy: Double) {
        let batches = (examples.count + config.batchSize - 1) / config.batchSize
        let width = model.statsWidth
        if evalStats?.rows ?? 0 < batches { evalStats = try backend.makeTensor(Shape(batches, width)) }
        let table = evalStats!
        for batch in 0..<batches {
            let start = batch * config.batchSize
            let ws = try workspace(min(config.batchSize, examples.count - start))
            ws.load(examples, order: order, start: start)
            try model.forward(ws, weightNorms: false, into: table, row: batch)
        }
        let values = try backend.download(table).map(Double.init)
        var crossEntropy = 0.0, correct = 0
        for batch in 0..<batches {
            crossEntropy += values[batch * width]
            correct += Int(values[batch * width + 1])
        }
        let n = Double(max(examples.count, 1))
        return (crossEntropy / n, Double(correct) / n)
    }

    // MARK: Checkpoints

    /// Everything needed to continue this run exactly where it stands: after `epochsDone` epochs.
    public func checkpoint(dataset: String) throws -> Checkpoint {
        func floats(_ t: Tensor<B>) throws -> [Float] { try backend.download(t).map { Float($0) } }
        return Checkpoint(
            sizes: model.sizes, config: config, dataset: dataset, epoch: epochsDone, batch: nextBatch,
            parameters: try model.parameters.map { ($0.name, try floats($0.tensor)) },
            optimizerStep: optimizer.step,
            optimizerState: try optimizer.namedState(model).map { ($0.name, try floats($0.tensor)) },
            generatorState: generator.state, trainOrder: trainIndices)
    }

    /// Continues from `checkpoint`: its parameters, optimiser state, visiting order, generator
    /// state and epoch count replace this trainer's. The trainer must have been built with the
    /// checkpoint's configuration and the same training set.
    public func restore(_ checkpoint: Checkpoint) throws {
        guard checkpoint.sizes == model.sizes else {
            throw CheckpointMismatch("the checkpoint's network is \(checkpoint.architecture), this one \(model.sizes.map(String.init).joined(separator: "-"))")
        }
        guard checkpoint.trainOrder.count == trainSet.count else {
            throw CheckpointMismatch("the checkpoint was trained on \(checkpoint.trainOrder.count) examples, this training set has \(trainSet.count)")
        }
        guard checkpoint.config.optimizer.kind == config.optimizer.kind,
              checkpoint.optimizerState.count == optimizer.namedState(model).count else {
            throw CheckpointMismatch("the checkpoint's optimiser is \(checkpoint.config.optimizer.kind.rawValue), this run's \(config.optimizer.kind.rawValue)")
        }
        guard let restored = SeededGenerator(state: checkpoint.generatorState) else {
            throw CheckpointMismatch("the checkpoint's generator state is invalid")
        }
        guard checkpoint.batch < batchesPerEpoch else {
            throw CheckpointMismatch("the checkpoint stopped at batch \(checkpoint.batch), but an epoch here has \(batchesPerEpoch)")
        }
        // Each group in one write (see Backend.upload(_:into group:)), its parts found by name.
        let saved = Dictionary(checkpoint.parameters + checkpoint.optimizerState, uniquingKeysWith: { first, _ in first })
        let uploads = try (model.namedGroups + optimizer.namedStateGroups(model)).map { names, group in
            (group, try names.map { name in
                guard let values = saved[name] else { throw CheckpointMismatch("the checkpoint has no tensor \(name)") }
                return values.map { B.Element($0) }
            })
        }
        // Every check is done: only now does the trainer take the checkpoint's state, all of it.
        for (group, values) in uploads { try backend.upload(values, into: group) }
        optimizer.step = checkpoint.optimizerStep
        generator = restored
        trainIndices = checkpoint.trainOrder
        trainOrder = try backend.makeIndexList(trainIndices)
        epochsDone = checkpoint.epoch
        nextBatch = checkpoint.batch
    }

    private func workspace(_ batchSize: Int) throws -> Workspace<B> {
        if let ws = workspaces[batchSize] { return ws }
        let ws = try Workspace(backend: backend, sizes: model.sizes, batchSize: batchSize)
        workspaces[batchSize] = ws
        return ws
    }
}

/// Training stopped on request (Ctrl-C, SIGTERM) after `batch` of `batchCount` batches of `epoch`.
public struct TrainingInterrupted: Error, CustomStringConvertible {
    public let epoch: Int
    public let batch: Int
    public let batchCount: Int

    public init(epoch: Int, batch: Int, batchCount: Int) {
        (self.epoch, self.batch, self.batchCount) = (epoch, batch, batchCount)
    }

    public var description: String { "interrupted in epoch \(epoch) after batch \(batch) of \(batchCount)" }
}

/// The loss became NaN or infinite: the weights are lost, and continuing is pointless.
public struct TrainingDiverged: Error, CustomStringConvertible {
    public let epoch: Int
    public let batch: Int
    public let batchCount: Int
    public let loss: Double
    public let learningRate: Double
    public var description: String {
        "training diverged: the loss is \(loss) at epoch \(epoch), batch \(batch) of \(batchCount)"
            + (loss.isFinite ? " (the weights have exploded)" : "") + "; "
            + "try a smaller --learning-rate than \(learningRate) (the reference uses 0.1, Adam 0.001)"
    }
}

/// A checkpoint that does not fit the run it should continue.
public struct CheckpointMismatch: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A duration in seconds, as a Double.
public func seconds(_ d: Duration) -> Double {
    let (whole, atto) = d.components
    return Double(whole) + Double(atto) * 1e-18
}

/// --validation asks for at least as many examples as the training set has.
public struct ValidationSplitError: Error, CustomStringConvertible {
    public let requested: Int
    public let trainCount: Int
    public var description: String {
        "a validation set of \(requested) examples leaves none of the \(trainCount) training examples to train on"
    }
}
