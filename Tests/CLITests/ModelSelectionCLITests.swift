// The command line's model selection (--validation, --save-best, --early-stop), learning-rate
// schedules, and data of other shapes than MNIST's, run through the built binary.
import Foundation
import Testing

/// The JSON objects a `--json` run printed, one per epoch.
func epochObjects(_ r: Outcome) throws -> [[String: Any]] {
    try r.stdout.split(separator: "\n").map { line in
        try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not a JSON object: \(line)")
    }
}

/// A safetensors file's `__metadata__` (the 8-byte little-endian header length, then the JSON header).
func checkpointMetadata(_ path: String) throws -> [String: String] {
    let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    let length = (0..<8).reduce(0) { $0 | Int(bytes[$1]) << (8 * $1) }
    let header = try #require(try JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + length)])) as? [String: Any])
    return try #require(header["__metadata__"] as? [String: String])
}

@Suite("command line: validation, best epoch, early stop and schedules")
struct ModelSelectionCLITests {
    @Test("--validation reports validation loss and accuracy each epoch; --save-best keeps the best epoch's checkpoint, its epoch in the metadata")
    func saveBest() async throws {
        let scratch = try Scratch()
        let best = scratch.sub("best.safetensors")
        let r = try await deriv8(try shortTraining(scratch, epochs: 4, train: 2_000) + ["--validation", "0.1", "--save-best", best, "--json"],
                                 scratch: scratch)
        #expect(r.exited(0), "\(r)")
        let epochs = try epochObjects(r)
        #expect(epochs.count == 4, "\(r)")
        let accuracies = try epochs.map { try #require($0["validation_accuracy"] as? Double, "\($0)") }
        #expect(epochs.allSatisfy { ($0["validation_loss"] as? Double ?? -1) > 0 && $0["learning_rate"] as? Double == 0.1 })
        #expect(r.stderr.contains("validation  200 training examples held out"), "\(r)")
        // The first epoch with the highest validation accuracy.
        let bestEpoch = accuracies.indices.first { accuracies[$0] == accuracies.max()! }! + 1
        let metadata = try checkpointMetadata(best)
        #expect(metadata["epoch"] == String(bestEpoch) && metadata["best_epoch"] == String(bestEpoch), "\(metadata), \(accuracies)")
        #expect(metadata["best_validation_accuracy"].flatMap(Double.init) == accuracies.max())
    }

    @Test("--early-stop K ends the run after K epochs without a better validation accuracy, and says so")
    func earlyStop() async throws {
        let scratch = try Scratch()
        // A rate so small that no prediction changes: epoch 1 stays the best.
        let r = try await deriv8(try shortTraining(scratch, epochs: 10) + ["--validation", "100", "--early-stop", "2",
                                                                           "--learning-rate", "1e-12"], scratch: scratch)
        #expect(r.exited(0), "\(r)")
        #expect(r.stdout.contains("epoch  3/10"), "\(r)")
        #expect(!r.stdout.contains("epoch  4/10"), "\(r)")
        #expect(r.stdout.contains("early stop after epoch 3: no better validation accuracy for 2 epochs (best "), "\(r)")
        #expect(r.stdout.contains("at epoch 1)"), "\(r)")
    }

    @Test("a step schedule with warm-up: each epoch's rate in --json; resuming continues it exactly as the uninterrupted run")
    func scheduleResumes() async throws {
        let scratch = try Scratch()
        let flags = ["--validation", "100", "--lr-schedule", "step", "--lr-step", "1", "--lr-gamma", "0.5", "--warmup", "1", "--json"]
        let straight = try await deriv8(try shortTraining(scratch, epochs: 3) + flags, scratch: scratch)
        #expect(straight.exited(0), "\(straight)")
        let expected = try epochObjects(straight)
        #expect(expected.map { $0["learning_rate"] as? Double } == [0.05, 0.1, 0.05], "\(straight)")

        let path = scratch.sub("m.safetensors"), best = scratch.sub("best.safetensors")
        let first = try await deriv8(try shortTraining(scratch, epochs: 2) + flags + ["--save", path, "--save-best", best], scratch: scratch)
        #expect(first.exited(0), "\(first)")
        // The schedule, the validation set and the best-epoch file all come from the checkpoint.
        let resumed = try await deriv8(try shortTraining(scratch, epochs: 3) + ["--resume", path, "--json"], scratch: scratch)
        #expect(resumed.exited(0), "\(resumed)")
        let last = try #require(try epochObjects(resumed).first)
        for key in ["learning_rate", "train_loss", "validation_accuracy", "validation_loss", "test_accuracy"] {
            #expect(last[key] as? Double == expected[2][key] as? Double, "\(key): \(last[key] ?? "nil") vs \(expected[2][key] ?? "nil")")
        }
        #expect(resumed.stderr.contains("best        \(best): the epoch with the best validation accuracy (so far epoch "), "\(resumed)")
        #expect(try checkpointMetadata(path)["save_best"] == best)
    }

    @Test("impossible model-selection and schedule flags exit 64 with one line naming the flag")
    func refusals() async throws {
        let scratch = try Scratch()
        let existing = scratch.sub("existing.safetensors")
        try write([1, 2, 3], to: existing)
        let cases: [([String], [String])] = [
            (["--save-best", scratch.sub("b.safetensors")], ["--save-best", "--validation"]),
            (["--early-stop", "3"], ["--early-stop", "--validation"]),
            (["--validation", "0"], ["--validation", "got 0"]),
            (["--validation", "1.5"], ["--validation", "got 1.5"]),
            (["--validation", "1000"], ["--validation 1000", "leaves none of the 1000 training examples"]),
            (["--validation", "10", "--early-stop", "0"], ["--early-stop", "got 0"]),
            (["--lr-step", "2"], ["--lr-step and --lr-gamma apply to --lr-schedule step"]),
            (["--lr-schedule", "step", "--lr-gamma", "2"], ["--lr-gamma must be in (0, 1], got 2.0"]),
            (["--warmup", "-1"], ["--warmup must be >= 0"]),
            (["--validation", "10", "--save-best", existing], ["--save-best \(existing): the file exists", "--force"]),
            (["--validation", "10", "--save", existing, "--save-best", existing, "--force"], ["--save-best", "is the file --save writes"]),
        ]
        for (flags, phrases) in cases {
            let r = try await deriv8(try shortTraining(scratch) + flags, scratch: scratch)
            expectOneLineError(r, code: 64, phrases)
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: existing)) == Data([1, 2, 3]))
    }

    @Test("--resume refuses another --validation, and --save-best on a run that holds out nothing")
    func resumeRefusals() async throws {
        let scratch = try Scratch()
        let validated = scratch.sub("v.safetensors"), plain = scratch.sub("p.safetensors")
        #expect(try await deriv8(try shortTraining(scratch) + ["--validation", "100", "--save", validated], scratch: scratch).exited(0))
        #expect(try await deriv8(try shortTraining(scratch) + ["--save", plain], scratch: scratch).exited(0))
        let other = try await deriv8(try shortTraining(scratch, epochs: 2) + ["--resume", validated, "--validation", "0.2"], scratch: scratch)
        expectOneLineError(other, code: 64, ["--validation 0.2 (the checkpoint holds out 100 examples)"])
        let same = try await deriv8(try shortTraining(scratch, epochs: 2) + ["--resume", validated, "--validation", "0.1"], scratch: scratch)
        #expect(same.exited(0), "0.1 of the 1000 examples is the checkpoint's 100: \(same)")
        let best = try await deriv8(try shortTraining(scratch, epochs: 2) + ["--resume", plain, "--save-best", scratch.sub("b")], scratch: scratch)
        expectOneLineError(best, code: 64, ["--save-best", "--validation", "the resumed run holds out no examples"])
    }

    @Test("IDX images of another size and class count train a network of their shape; eval and predict check data against it")
    func otherShapes() async throws {
        let scratch = try Scratch()
        let folder = try scratch.folder("shapes")
        // 40 training and 12 test images of 5x3 pixels in 3 classes: the class sets one row bright.
        func images(_ count: Int) -> ([UInt8], [UInt8]) {
            let labels = (0..<count).map { UInt8($0 % 3) }
            var pixels: [UInt8] = []
            for label in labels {
                for p in 0..<15 { pixels.append(p / 5 == Int(label) ? UInt8(200 + p) : UInt8((p * 7) % 40)) }
            }
            return (pixels, labels)
        }
        let (trainPixels, trainLabels) = images(40), (testPixels, testLabels) = images(12)
        try write(idx(magic: 2051, dims: [40, 3, 5], payload: trainPixels), to: "\(folder)/train-images-idx3-ubyte")
        try write(idx(magic: 2049, dims: [40], payload: trainLabels), to: "\(folder)/train-labels-idx1-ubyte")
        try write(idx(magic: 2051, dims: [12, 3, 5], payload: testPixels), to: "\(folder)/t10k-images-idx3-ubyte")
        try write(idx(magic: 2049, dims: [12], payload: testLabels), to: "\(folder)/t10k-labels-idx1-ubyte")
        let model = scratch.sub("m.safetensors")
        let train = try await deriv8(["train", "--backend", "cpu", "--data", folder, "--epochs", "30", "--batch-size", "10",
                                      "--hidden", "8", "--save", model, "--results", scratch.sub("results")], scratch: scratch)
        #expect(train.exited(0), "\(train)")
        #expect(train.stdout.contains("network   15-8-3"), "\(train)")
        #expect(train.stdout.contains("test 100.00%"), "an easy problem is learnt: \(train)")
        let eval = try await deriv8(["eval", "--backend", "cpu", "--model", model, "--data", folder, "--json"], scratch: scratch)
        #expect(eval.exited(0), "\(eval)")
        #expect(eval.stdout.contains("\"examples\":12"), "\(eval)")
        let predict = try await deriv8(["predict", "--backend", "cpu", "--model", model, "--data", folder, "--index", "0,1,2", "--json"],
                                       scratch: scratch)
        #expect(predict.exited(0), "\(predict)")
        #expect(predict.stdout.contains("\"predicted_name\":\"2\""), "\(predict)")
        // MNIST is not this network's data: 784 inputs, not 15.
        let mnist = try await deriv8(["eval", "--backend", "cpu", "--model", model, "--data", try CLI.requireData()], scratch: scratch)
        expectOneLineError(mnist, code: 64, ["expects 15 inputs", "have 784"])
        // A test set with a label beyond the network's 3 classes.
        try write(idx(magic: 2049, dims: [12], payload: testLabels.map { $0 == 2 ? 3 : $0 }), to: "\(folder)/t10k-labels-idx1-ubyte")
        let beyond = try await deriv8(["eval", "--backend", "cpu", "--model", model, "--data", folder], scratch: scratch)
        expectOneLineError(beyond, code: 64, ["has 3 classes", "label 3"])
    }
}
