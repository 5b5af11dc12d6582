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
        #expect(lines[1] == "1,1.000000,0.800000,0.500000,0.900000,2.000000,0.250000,0.1,0.700000,0.810000")
        #expect(lines[2] == "2,0.500000,0.800000,0.250000,0.900000,2.000000,0.250000,,,")
        #expect(lines[3].hasSuffix(",0.1,nan,0.500000"))

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
        #expect(lines[3].hasPrefix("3,") && lines[3].hasSuffix(",0.1,0.300000,0.900000"))
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

@Suite("RunListing")
struct RunListingTests {
    func config(dataset: String? = "mnist", network: [Int]? = [784, 64, 10], hidden: [Int] = [64], epochs: Int = 3,
                save: String? = nil) -> String {
        var fields = ["\"backend\" : \"cpu\"",
                      "\"config\" : { \"hidden\" : \(hidden), \"epochs\" : \(epochs), \"optimizer\" : { \"kind\" : \"adam\" } }"]
        if let dataset { fields.append("\"dataset\" : \"\(dataset)\"") }
        if let network { fields.append("\"network\" : \(network)") }
        if let save { fields.append("\"save\" : \"\(save)\"") }
        return "{ " + fields.joined(separator: ", ") + " }"
    }

    @Test("newest first: by the folder name's UTC stamp, a -N suffix before the run it was numbered after")
    func order() throws {
        let directory = try temporaryFolder()
        for name in ["20250102-000000-cpu-seed0", "20250103-120000-cpu-seed0", "20250103-120000-cpu-seed0-2",
                     "20250103-120000-cpu-seed0-10", "20241231-235959-opencl-seed7"] {
            _ = try fakeRun(directory, name, config: config(), metrics: oldMetrics)
        }
        let (runs, notes) = try RunListing.read(directory: directory)
        #expect(notes.isEmpty)
        #expect(runs.map(\.name) == ["20250103-120000-cpu-seed0-10", "20250103-120000-cpu-seed0-2", "20250103-120000-cpu-seed0",
                                     "20250102-000000-cpu-seed0", "20241231-235959-opencl-seed7"])
        #expect(runs[0].date == Date(timeIntervalSince1970: 1_735_905_600))   // 2025-01-03 12:00:00 UTC
    }

    @Test("the summary: epochs done, final and best accuracy, the median training time, what config.json recorded")
    func summary() throws {
        let directory = try temporaryFolder()
        let folder = try fakeRun(directory, "20250101-000000-cpu-seed0", config: config(epochs: 5, save: "m.safetensors"),
                                 metrics: oldMetrics)
        let run = try #require(RunListing.read(folder: URL(fileURLWithPath: folder)).run)
        #expect(run.epochsDone == 3 && run.plannedEpochs == 5)
        #expect(run.finalTestAccuracy == 0.86 && run.bestTestAccuracy == 0.87)
        #expect(run.finalValidationAccuracy == nil && run.bestValidationAccuracy == nil)
        #expect(run.medianTrainSeconds == 2)   // of 3, 1 and 2
        #expect(run.dataset == "mnist" && run.optimizer == "adam" && run.backend == "cpu" && run.save == "m.safetensors")
        #expect(run.network == [784, 64, 10] && run.hidden == [64])

        let even = RunSummary(name: "r", folder: URL(fileURLWithPath: "/r"), date: nil, dataset: nil, backend: nil, network: nil,
                              hidden: nil, optimizer: nil, plannedEpochs: nil, save: nil, saveBest: nil,
                              results: [epoch(1, trainSeconds: 4, validation: (0.5, 0.6)), epoch(2, trainSeconds: 1, validation: (0.4, 0.7)),
                                        epoch(3, trainSeconds: 2, validation: (0.45, 0.65)), epoch(4, trainSeconds: 9)])
        #expect(even.medianTrainSeconds == 3)
        #expect(even.bestValidationAccuracy == 0.7 && even.finalValidationAccuracy == nil)
    }

    @Test("a network not recorded is built from hidden for MNIST-shaped data only")
    func inferredNetwork() throws {
        let directory = try temporaryFolder()
        let old = try fakeRun(directory, "20250101-000000-cpu-seed0", config: config(dataset: nil, network: nil, hidden: [32, 16]), metrics: oldMetrics)
        let npz = try fakeRun(directory, "20250101-000001-cpu-seed0", config: config(dataset: "iris.npz", network: nil), metrics: oldMetrics)
        #expect(RunListing.read(folder: URL(fileURLWithPath: old)).run?.network == [784, 32, 16, 10])
        let other = try #require(RunListing.read(folder: URL(fileURLWithPath: npz)).run)
        #expect(other.network == nil && other.hidden == [64])
    }

    @Test("corrupt files are notes, not failures: the run is listed with what can be read, or skipped")
    func corrupt() throws {
        let directory = try temporaryFolder()
        _ = try fakeRun(directory, "20250105-000000-cpu-seed0", config: "{ not json", metrics: oldMetrics)
        _ = try fakeRun(directory, "20250104-000000-cpu-seed0", config: config(), metrics: "garbage\n")
        _ = try fakeRun(directory, "20250103-000000-cpu-seed0", config: "[1, 2]", metrics: "")
        _ = try fakeRun(directory, "20250102-000000-cpu-seed0", config: "{ \"config\" : { \"hidden\" : [32, \"x\"] } }", metrics: nil)
        _ = try fakeRun(directory, "notes", config: nil, metrics: nil)
        _ = try fakeRun(directory, ".hidden", config: nil, metrics: nil)
        try write("not a run either", directory + "/README")
        let (runs, notes) = try RunListing.read(directory: directory)
        #expect(runs.map(\.name) == ["20250105-000000-cpu-seed0", "20250104-000000-cpu-seed0"])
        #expect(runs[0].epochsDone == 3 && runs[0].dataset == nil)
        #expect(runs[1].epochsDone == 0 && runs[1].dataset == "mnist")
        let expected = [
            "20250102-000000-cpu-seed0/config.json: 'config.hidden[1]' is not what a run's config.json holds there; run skipped",
            "20250102-000000-cpu-seed0/metrics.csv: no such file; run skipped",
            "20250103-000000-cpu-seed0/config.json: not a JSON object; run skipped",
            "20250103-000000-cpu-seed0/metrics.csv: empty",
            "20250104-000000-cpu-seed0/metrics.csv: line 1 is not a metrics.csv header",
            "20250105-000000-cpu-seed0/config.json: not a JSON object; listing the run without its configuration",
            "notes: not a run (no config.json or metrics.csv); skipped",
        ]
        #expect(notes.count == expected.count, "\(notes)")
        for phrase in expected {
            #expect(notes.contains { $0.contains(phrase) && !$0.contains("\n") }, "no note with \(phrase) in \(notes)")
        }
    }

    @Test("a missing folder, or a file, is an error; an empty folder lists nothing")
    func missingAndEmpty() throws {
        let directory = try temporaryFolder()
        #expect(throws: DataFileError(path: directory + "/none", problem: "no such folder")) {
            try RunListing.read(directory: directory + "/none")
        }
        try write("x", directory + "/file")
        #expect(throws: DataFileError.self) { try RunListing.read(directory: directory + "/file") }
        let (runs, notes) = try RunListing.read(directory: directory)
        #expect(runs.isEmpty && notes.isEmpty)
    }

    @Test("the date is the folder name's stamp; other names have none")
    func folderDate() {
        #expect(RunListing.folderDate("20250103-120000-cpu-seed0") == Date(timeIntervalSince1970: 1_735_905_600))
        #expect(RunListing.folderDate("20250103-120000") != nil)
        #expect(RunListing.folderDate("20251303-120000-cpu-seed0") == nil)   // month 13
        #expect(RunListing.folderDate("20250103-1200001") == nil)
        #expect(RunListing.folderDate("my-run") == nil)
    }
}
