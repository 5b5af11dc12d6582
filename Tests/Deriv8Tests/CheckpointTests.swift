import Deriv8
import Foundation
import GPUTensor
import Testing

@Suite("Checkpoints")
struct CheckpointTests {
    /// A small trainer on the first examples of real MNIST.
    func trainer(_ configure: (inout TrainingConfig) -> Void = { _ in }) throws -> Trainer<CPUBackend<Float>> {
        let mnist = try loadMNIST()
        var config = TrainingConfig()
        config.batchSize = 100
        config.seed = 9
        configure(&config)
        return try Trainer(backend: CPUBackend<Float>(), config: config, data: mnist.prefix(train: 1_000, test: 300))
    }

    @Test("the file is safetensors byte by byte: header length, JSON, alignment, offsets, little-endian data")
    func format() throws {
        let t = try trainer()
        _ = try t.runEpoch()
        let checkpoint = try t.checkpoint(dataset: "mnist")
        let bytes = try checkpoint.encoded()
        let headerLength = Int((0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[$1]) << (8 * UInt64($1)) })
        #expect((8 + headerLength) % 8 == 0, "data starts 8-byte aligned")
        let header = try #require(try JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + headerLength)])) as? [String: Any])
        let w1 = try #require(header["w1"] as? [String: Any])
        #expect(w1["dtype"] as? String == "F32")
        #expect(w1["shape"] as? [Int] == [32, 784])
        let b3 = try #require(header["b3"] as? [String: Any])
        #expect(b3["shape"] as? [Int] == [10])
        // Offsets tile the data exactly, in the order written, and the data ends the file.
        let names = ["w1", "b1", "w2", "b2", "w3", "b3", "train_order"]
        var expectedBegin = 0
        for name in names {
            let offsets = try #require((header[name] as? [String: Any])?["data_offsets"] as? [Int])
            #expect(offsets[0] == expectedBegin, "\(name) starts where the previous tensor ended")
            expectedBegin = offsets[1]
        }
        #expect(8 + headerLength + expectedBegin == bytes.count)
        // The first element of w1, read back as a little-endian float, is the model's.
        let first = UInt32(bytes[8 + headerLength]) | UInt32(bytes[9 + headerLength]) << 8
            | UInt32(bytes[10 + headerLength]) << 16 | UInt32(bytes[11 + headerLength]) << 24
        #expect(Float(bitPattern: first) == checkpoint.parameters[0].values[0])
        let metadata = try #require(header["__metadata__"] as? [String: String])
        #expect(metadata["architecture"] == "784-32-32-10")
        #expect(metadata["epoch"] == "1")
    }

    @Test("write then read gives back every tensor and setting")
    func roundTrip() throws {
        let t = try trainer { $0.optimizer.kind = .adam; $0.learningRate = 0.002 }
        _ = try t.runEpoch()
        let saved = try t.checkpoint(dataset: "mnist")
        let path = try temporaryFolder() + "/model.safetensors"
        try saved.write(to: path)
        let loaded = try Checkpoint.read(path)
        #expect(loaded.sizes == saved.sizes && loaded.epoch == 1 && loaded.optimizerStep == 10)
        #expect(loaded.parameters.map(\.values) == saved.parameters.map(\.values))
        #expect(loaded.optimizerState.map(\.name) == ["adam.m.w1", "adam.v.w1", "adam.m.b1", "adam.v.b1",
                                                      "adam.m.w2", "adam.v.w2", "adam.m.b2", "adam.v.b2",
                                                      "adam.m.w3", "adam.v.w3", "adam.m.b3", "adam.v.b3"])
        #expect(loaded.optimizerState.map(\.values) == saved.optimizerState.map(\.values))
        #expect(loaded.generatorState == saved.generatorState && loaded.trainOrder == saved.trainOrder)
        #expect(loaded.config.optimizer.kind == .adam && loaded.config.learningRate == 0.002)
    }

    @Test("resuming gives exactly the uninterrupted run", arguments: [OptimizerKind.sgd, .momentum, .adam])
    func resumeEqualsUninterrupted(optimizer: OptimizerKind) throws {
        let configure: (inout TrainingConfig) -> Void = {
            $0.optimizer.kind = optimizer
            $0.learningRate = optimizer.defaultLearningRate
            $0.shuffle = .everyEpoch
        }
        let straight = try trainer(configure)
        let expected = try (0..<3).map { _ in try straight.runEpoch() }

        let first = try trainer(configure)
        _ = try (0..<2).map { _ in try first.runEpoch() }
        let path = try temporaryFolder() + "/resume.safetensors"
        try first.checkpoint(dataset: "mnist").write(to: path)

        let second = try trainer(configure)
        try second.restore(try Checkpoint.read(path))
        #expect(second.epochsDone == 2)
        let resumed = try second.runEpoch()
        #expect(resumed.trainLoss == expected[2].trainLoss)
        #expect(resumed.testAccuracy == expected[2].testAccuracy)
        #expect(try second.checkpoint(dataset: "mnist").parameters.map(\.values)
                == straight.checkpoint(dataset: "mnist").parameters.map(\.values))
    }

    /// Each corruption of a good file and the words its one-line error must contain.
    static let corruptions: [(String, @Sendable ([UInt8]) -> [UInt8], String)] = [
        ("empty", { _ in [] }, "too short"),
        ("truncated data", { Array($0.dropLast(100)) }, "outside the"),
        ("header length past the end", { b in [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0] + b.dropFirst(8) }, "does not fit"),
        ("JSON broken", { b in var c = b; c[8] = UInt8(ascii: "["); c[9] = UInt8(ascii: "x"); return c }, "not valid JSON"),
        ("dtype changed", { replacing($0, "\"F32\"", "\"F16\"") }, "unsupported dtype F16"),
        ("shape changed", { replacing($0, "[32,784]", "[784,32]") }, "w1 has shape [784, 32]"),
        ("offsets changed", { replacing($0, "[0,100352]", "[0,100348]") }, "needs 100352 bytes"),
        ("not ours", { replacing($0, "deriv8-gpu checkpoint 1", "another-tool format 999") }, "not a deriv8-gpu checkpoint"),
    ]

    @Test("corrupt checkpoints are refused with a one-line message", arguments: 0..<corruptions.count)
    func corrupt(index: Int) throws {
        let t = try trainer()
        let good = try t.checkpoint(dataset: "mnist").encoded()
        let (name, corrupt, message) = Self.corruptions[index]
        let path = try temporaryFolder() + "/bad.safetensors"
        try Data(corrupt(good)).write(to: URL(fileURLWithPath: path))
        let error = #expect(throws: DataFileError.self, "\(name)") { try Checkpoint.read(path) }
        #expect(error?.problem.contains(message) == true, "\(name): \(error?.problem ?? "")")
        #expect(error?.description.contains("\n") == false)
    }

    @Test("writes are atomic: the temporary file is gone and an unwritable folder is an error")
    func atomic() throws {
        let folder = try temporaryFolder()
        try writeAtomically([1, 2, 3], to: folder + "/a")
        try writeAtomically([4, 5], to: folder + "/a")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder) == ["a"])
        #expect(try Data(contentsOf: URL(fileURLWithPath: folder + "/a")) == Data([4, 5]))
        #expect(throws: DataFileError.self) { try writeAtomically([1], to: folder + "/missing/a") }
    }
}

/// `bytes` with the first occurrence of `old` replaced by `new` (same length keeps offsets valid).
func replacing(_ bytes: [UInt8], _ old: String, _ new: String) -> [UInt8] {
    let o = Array(old.utf8), n = Array(new.utf8)
    guard let start = (0...(bytes.count - o.count)).first(where: { Array(bytes[$0..<($0 + o.count)]) == o }) else { return bytes }
    return Array(bytes[..<start]) + n + Array(bytes[(start + o.count)...])
}
