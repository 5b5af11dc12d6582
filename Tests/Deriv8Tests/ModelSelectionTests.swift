import Foundation
import GPUTensor
import Testing
import Deriv8

@Suite("Validation, schedules and float data")
struct ModelSelectionTests {
    @Test("each schedule's rates, epoch by epoch, with and without warm-up")
    func scheduleRates() {
        func rates(_ s: LearningRateSchedule, epochs: Int = 6) -> [Double] {
            (1...epochs).map { s.rate(base: 0.8, epoch: $0, epochs: epochs) }
        }
        #expect(rates(LearningRateSchedule()) == Array(repeating: 0.8, count: 6))
        #expect(rates(LearningRateSchedule(kind: .step, stepEpochs: 2, gamma: 0.5)) == [0.8, 0.8, 0.4, 0.4, 0.2, 0.2])
        #expect(rates(LearningRateSchedule(kind: .step, warmupEpochs: 3, stepEpochs: 2, gamma: 0.5)) == [0.2, 0.4, 0.6000000000000001, 0.8, 0.8, 0.4])
        let cosine = rates(LearningRateSchedule(kind: .cosine, warmupEpochs: 1), epochs: 5)
        // Warm-up 0.8/2, then r(1 + cos(π t/4))/2 for t = 0..3: 0.8, 0.683, 0.4, 0.117.
        let expected = [0.4] + (0..<4).map { 0.8 * (1 + cos(Double.pi * Double($0) / 4)) / 2 }
        #expect(zip(cosine, expected).allSatisfy { abs($0 - $1) < 1e-15 }, "\(cosine)")
        #expect(cosine.dropFirst().allSatisfy { $0 > 0 } && cosine[1] == 0.8)
    }

    @Test("the validation examples: as many as asked, distinct, the same for the same seed, another set for another seed")
    func validationIndices() {
        let a = Trainer<CPUBackend<Float>>.validationIndices(100, of: 1_000, seed: 3)
        #expect(a.count == 100 && Set(a).count == 100 && a == a.sorted() && a.allSatisfy { (0..<1_000).contains($0) })
        #expect(a == Trainer<CPUBackend<Float>>.validationIndices(100, of: 1_000, seed: 3))
        #expect(a != Trainer<CPUBackend<Float>>.validationIndices(100, of: 1_000, seed: 4))
    }

    @Test("a validation set is held out of training, scored every epoch, and leaves the initial weights as they were")
    func heldOut() throws {
        let mnist = try loadMNIST().prefix(train: 1_000, test: 200)
        var config = TrainingConfig()
        config.batchSize = 100
        let plain = try Trainer(backend: CPUBackend<Float>(), config: config, data: mnist)
        config.validation = 150
        let validated = try Trainer(backend: CPUBackend<Float>(), config: config, data: mnist)
        #expect(validated.trainSet.count == 850 && validated.validationSet?.count == 150 && plain.validationSet == nil)
        #expect(try validated.model.downloadParameters().map(\.values) == plain.model.downloadParameters().map(\.values))

        let result = try validated.runEpoch(), plainResult = try plain.runEpoch()
        #expect(plainResult.validationAccuracy == nil && plainResult.validationLoss == nil && plainResult.learningRate == 0.1)
        let accuracy = try #require(result.validationAccuracy), loss = try #require(result.validationLoss)
        #expect(accuracy > 0.3 && accuracy <= 1 && loss > 0 && loss.isFinite, "validation \(accuracy), \(loss)")
        // The held-out examples scored by a predictor with the trained weights give the same accuracy.
        let held = mnist.holdingOut(Trainer<CPUBackend<Float>>.validationIndices(150, of: 1_000, seed: 0)).validation
        let predictor = try Predictor(checkpoint: validated.checkpoint(dataset: "mnist"), backend: CPUBackend<Float>())
        #expect(try predictor.evaluate(held).accuracy == accuracy)

        config.validation = 1_000
        #expect(throws: ValidationSplitError.self) { try Trainer(backend: CPUBackend<Float>(), config: config, data: mnist) }
    }

    @Test("float inputs (the dense path) train as the same values given as bytes (the sparse path), to float rounding")
    func floatsEqualBytes() throws {
        let mnist = try loadMNIST().prefix(train: 1_200, test: 300)
        func asFloats(_ e: LabelledExamples) -> LabelledExamples {
            LabelledExamples(inputs: .floats(e.inputs.asFloats), labels: e.labels, features: e.features)
        }
        let floats = try DataSet(train: asFloats(mnist.train), test: asFloats(mnist.test), exampleShape: [28, 28], path: "floats")
        var config = TrainingConfig()
        config.batchSize = 100
        config.validation = 100
        func run(_ data: DataSet) throws -> [EpochResult] {
            let trainer = try Trainer(backend: CPUBackend<Float>(), config: config, data: data)
            return try (0..<2).map { _ in try trainer.runEpoch() }
        }
        let fromBytes = try run(mnist), fromFloats = try run(floats)
        for (a, b) in zip(fromFloats, fromBytes) {
            #expect(abs(a.trainLoss - b.trainLoss) <= 1e-4 * b.trainLoss, "train loss \(a.trainLoss) vs \(b.trainLoss)")
            #expect(abs(a.testAccuracy - b.testAccuracy) <= 0.004 && abs(a.validationAccuracy! - b.validationAccuracy!) <= 0.02)
        }
        #expect(fromBytes[1].trainLoss < fromBytes[0].trainLoss)
    }

    @Test("a run with a validation set and a schedule, interrupted inside an epoch and resumed, is the uninterrupted run bit for bit",
          arguments: [LearningRateSchedule(kind: .step, warmupEpochs: 1, stepEpochs: 1, gamma: 0.5),
                      LearningRateSchedule(kind: .cosine, warmupEpochs: 1)])
    func resumeWithSchedule(schedule: LearningRateSchedule) throws {
        let mnist = try loadMNIST().prefix(train: 1_000, test: 200)
        var config = TrainingConfig()
        config.batchSize = 100
        config.epochs = 4
        config.validation = 100
        config.schedule = schedule
        config.shuffle = .everyEpoch
        config.optimizer.kind = .momentum
        let straight = try Trainer(backend: CPUBackend<Float>(), config: config, data: mnist)
        let expected = try (0..<4).map { _ in try straight.runEpoch() }
        #expect(Set(expected.map(\.learningRate)).count >= 3, "the rate changes: \(expected.map(\.learningRate))")

        let first = try Trainer(backend: CPUBackend<Float>(), config: config, data: mnist)
        _ = try (0..<2).map { _ in try first.runEpoch() }
        var batches = 0
        first.stopRequested = { batches += 1; return batches == 4 }
        #expect(throws: TrainingInterrupted.self) { try first.runEpoch() }
        let path = try temporaryFolder() + "/resume.safetensors"
        try first.checkpoint(dataset: "mnist").write(to: path)

        let second = try Trainer(backend: CPUBackend<Float>(), config: config, data: mnist)
        try second.restore(try Checkpoint.read(path))
        #expect(second.epochsDone == 2 && second.nextBatch == 4)
        let resumed = try (0..<2).map { _ in try second.runEpoch() }
        for (a, b) in zip(resumed.dropFirst(), expected.suffix(1)) {
            #expect(a.trainLoss == b.trainLoss && a.validationAccuracy == b.validationAccuracy && a.learningRate == b.learningRate)
        }
        #expect(resumed[0].learningRate == expected[2].learningRate && resumed[0].testAccuracy == expected[2].testAccuracy)
        #expect(try second.checkpoint(dataset: "mnist").parameters.map(\.values)
                == straight.checkpoint(dataset: "mnist").parameters.map(\.values))
    }

    @Test("a checkpoint keeps the best epoch and the save-best path; one from before them reads without")
    func bestInCheckpoint() throws {
        let mnist = try loadMNIST().prefix(train: 300, test: 100)
        var config = TrainingConfig()
        config.validation = 50
        let trainer = try Trainer(backend: CPUBackend<Float>(), config: config, data: mnist)
        _ = try trainer.runEpoch()
        var checkpoint = try trainer.checkpoint(dataset: "mnist")
        let folder = try temporaryFolder()
        try checkpoint.write(to: folder + "/plain.safetensors")
        let plain = try Checkpoint.read(folder + "/plain.safetensors")
        #expect(plain.best == nil && plain.saveBest == nil && plain.config.validation == 50)
        checkpoint.best = BestEpoch(epoch: 1, validationAccuracy: 0.625)
        checkpoint.saveBest = "best.safetensors"
        try checkpoint.write(to: folder + "/best.safetensors")
        let read = try Checkpoint.read(folder + "/best.safetensors")
        #expect(read.best == BestEpoch(epoch: 1, validationAccuracy: 0.625) && read.saveBest == "best.safetensors")
    }
}
