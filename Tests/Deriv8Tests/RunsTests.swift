import Deriv8
import Foundation
import Testing

/// An epoch with round numbers: losses and accuracies that show which epoch they came from.
private func epoch(_ n: Int, testAccuracy: Double = 0.9, trainSeconds: Double = 2, learningRate: Double? = 0.1,
                   validation: (loss: Double, accuracy: Double)? = nil) -> EpochResult {
    EpochResult(epoch: n, trainLoss: 1 / Double(n), trainAccuracy: 0.8, testLoss: 0.5 / Double(n), testAccuracy: testAccuracy,
                trainSeconds: trainSeconds, evalSeconds: 0.25, learningRate: learningRate,
                validationLoss: validation?.loss, validationAccuracy: validation?.accuracy)
}

private func write(_ text: String, _ path: String) throws {
    try Data(text.utf8).write(to: URL(fileURLWithPath: path))
}

/// A run folder as `RunRecord` leaves it, written by hand: config.json (nil: none) and metrics.csv (nil: none).
private func fakeRun(_ directory: String, _ name: String, config: String?, metrics: String?) throws -> String {
    let folder = directory + "/" + name
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    if let config { try write(config, folder + "/config.json") }
    if let metrics { try write(metrics, folder + "/metrics.csv") }
    return folder
}

private let oldMetrics = """
    epoch,train_loss,train_accuracy,test_loss,test_accuracy,train_seconds,eval_seconds
    1,0.900000,0.700000,0.800000,0.750000,3.000000,0.100000
    2,0.500000,0.850000,0.450000,0.870000,1.000000,0.100000
    3,0.400000,0.880000,0.420000,0.860000,2.000000,0.100000

    """

@Suite("metrics.csv")
struct MetricsCSVTests {
    @Test("a run writes the 10-column header, empty fields for nil, and reads back what it wrote; config.json has network and save_best")
    func roundTrip() throws {
        let directory = try temporaryFolder()
        let provenance = RunRecord.Provenance(version: "test", command: ["train"], dataset: "mnist", dataChecksums: [:],
                                              save: "m.safetensors", network: [784, 32, 32, 10], saveBest: "best.safetensors")
        let record = try RunRecord(directory: directory, backend: "cpu", device: "test", config: TrainingConfig(),
                                   trainCount: 100, testCount: 10, dataDirectory: "data", provenance: provenance)
        let written = [epoch(1, validation: (0.7, 0.81)), epoch(2, learningRate: nil), epoch(3, validation: (.nan, 0.5))]
        for r in written { try record.append(r) }

        let text = try String(contentsOf: record.folder.appendingPathComponent("metrics.csv"), encoding: .utf8)
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines[0] == "epoch,train_loss,train_accuracy,test_loss,test_accuracy,train_seconds,eval_seconds,learning_rate,validation_loss,validation_accuracy")
        #expect(lines[1] == "1,1.000000,0.800000,0.500000,0.900000,2.000000,0.250000,0.100000,0.700000,0.810000")
        #expect(lines[2] == "2,0.500000,0.800000,0.250000,0.900000,2.000000,0.250000,,,")
        #expect(lines[3].hasSuffix(",0.100000,nan,0.500000"))

        let read = try RunRecord.readMetrics(at: record.folder.appendingPathComponent("metrics.csv"))
        #expect(read.map(\.epoch) == [1, 2, 3])
        #expect(read.map(\.learningRate) == [0.1, nil, 0.1])
        #expect(read[0].validationLoss == 0.7 && read[0].validationAccuracy == 0.81)
        #expect(read[1].validationLoss == nil && read[1].validationAccuracy == nil)
        #expect(read[2].validationLoss?.isNaN == true && read[2].validationAccuracy == 0.5)
        #expect(read.map(\.testLoss) == written.map { (($0.testLoss * 1e6).rounded()) / 1e6 })

        let config = try String(contentsOf: record.folder.appendingPathComponent("config.json"), encoding: .utf8)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(config.utf8)) as? [String: Any])
        #expect(json["network"] as? [Int] == [784, 32, 32, 10])
        #expect(json["save_best"] as? String == "best.safetensors")
        #expect(json["save"] as? String == "m.safetensors")
    }

    @Test("the 7-column files written before learning_rate and validation still read, those fields nil")
    func oldFormat() throws {
        let read = try RunRecord.parseMetrics(oldMetrics, path: "old.csv")
        #expect(read.map(\.epoch) == [1, 2, 3])
        #expect(read.map(\.testAccuracy) == [0.75, 0.87, 0.86])
        #expect(read.allSatisfy { $0.learningRate == nil && $0.validationLoss == nil && $0.validationAccuracy == nil })
    }

    @Test("a NaN or infinite loss, as glibc prints it (-nan too), reads back as such")
    func nonFinite() throws {
        let text = RunRecord.csvHeader + "\n1,nan,0.1,-nan,0.1,1,1,0.1,inf,0.1\n"
        let read = try RunRecord.parseMetrics(text, path: "m.csv")
        #expect(read[0].trainLoss.isNaN && read[0].testLoss.isNaN)
        #expect(read[0].validationLoss == .infinity)
        #expect(RunRecord.row(read[0]).split(separator: ",", omittingEmptySubsequences: false).count == 10)
    }

    @Test("a resumed run continuing an old 7-column folder rewrites it in the new format, keeping the epochs before the checkpoint")
    func resumeOldFolder() throws {
        let directory = try temporaryFolder()
        let folder = try fakeRun(directory, "20250101-000000-cpu-seed0", config: "{}", metrics: oldMetrics)
        let record = try RunRecord(continuing: folder, resumed: .init(checkpoint: "m.safetensors", afterEpoch: 2),
                                   directory: directory, backend: "cpu", device: "test", config: TrainingConfig(),
                                   trainCount: 100, testCount: 10, dataDirectory: "data")
        #expect(record.folder.path == URL(fileURLWithPath: folder).path)
        try record.append(epoch(3, validation: (0.3, 0.9)))
        let lines = try String(contentsOfFile: folder + "/metrics.csv", encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 4)
        #expect(lines[0] == RunRecord.csvHeader)
        #expect(lines[1] == "1,0.900000,0.700000,0.800000,0.750000,3.000000,0.100000,,,")
        #expect(lines[3].hasPrefix("3,") && lines[3].hasSuffix(",0.100000,0.300000,0.900000"))
    }

    @Test("what is not a metrics.csv is a one-line error naming the file and the line", arguments: [
        ("", "empty"),
        ("epoch,loss\n1,2\n", "line 1 is not a metrics.csv header"),
        (RunRecord.csvHeader + "\n1,1,1,1,1,1,1\n", "line 2 has 7 fields; the header has 10"),
        (RunRecord.csvHeaderBeforeValidation + "\n1,1,1,1,1,1,1\nx,1,1,1,1,1,1\n", "line 3: epoch 'x' is not a whole number"),
        (RunRecord.csvHeader + "\n1,1,1,1,1,1,1,1,oops,1\n", "line 2, field 9: 'oops' is not a number"),
        (RunRecord.csvHeader + "\n1,1,1,,1,1,1,1,1,1\n", "line 2, field 4: '' is not a number"),
    ])
    func corrupt(_ text: String, _ phrase: String) {
        #expect {
            _ = try RunRecord.parseMetrics(text, path: "runs/x/metrics.csv")
        } throws: { error in
            let message = String(describing: error)
            return message.hasPrefix("runs/x/metrics.csv: ") && message.contains(phrase) && !message.contains("\n")
        }
    }
}
