// End-to-end tests of `deriv8-gpu runs`: listing, --json and --plot over results folders written
// by hand (fast, and exactly known), their failures, and one real short training run listed.
// The helpers (deriv8, Scratch, expectOneLineError, shortTraining) are CLITests.swift's.
import Foundation
import Testing

/// A results folder in `scratch`, filled with hand-written runs.
private struct FakeResults {
    let path: String

    init(_ scratch: Scratch) throws { path = try scratch.folder("results") }

    /// A run folder `name` with these files (nil: the file is absent); returns its path.
    @discardableResult
    func run(_ name: String, config: String?, metrics: String?) throws -> String {
        let folder = "\(path)/\(name)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        if let config { try Data(config.utf8).write(to: URL(fileURLWithPath: "\(folder)/config.json")) }
        if let metrics { try Data(metrics.utf8).write(to: URL(fileURLWithPath: "\(folder)/metrics.csv")) }
        return folder
    }
}

/// config.json as `train` writes it, with only the fields `runs` reads; nil leaves a field out,
/// as older files do.
private func config(dataset: String? = "mnist", network: [Int]? = [784, 32, 32, 10], hidden: [Int] = [32, 32],
                    optimizer: String = "sgd", epochs: Int = 3, save: String? = nil) -> String {
    var fields = ["\"backend\" : \"cpu\"", "\"device\" : \"test\"",
                  "\"config\" : { \"hidden\" : \(hidden), \"epochs\" : \(epochs), \"optimizer\" : { \"kind\" : \"\(optimizer)\" } }"]
    if let dataset { fields.append("\"dataset\" : \"\(dataset)\"") }
    if let network { fields.append("\"network\" : \(network)") }
    if let save { fields.append("\"save\" : \"\(save)\"") }
    return "{\n  " + fields.joined(separator: ",\n  ") + "\n}\n"
}

/// metrics.csv in the current 10-column format: one row per test accuracy.
private func metrics(test: [Double], seconds: [Double], validation: [Double]? = nil) -> String {
    let header = "epoch,train_loss,train_accuracy,test_loss,test_accuracy,train_seconds,eval_seconds,learning_rate,validation_loss,validation_accuracy"
    let rows = test.indices.map { i in
        let valid = validation.map { String(format: "%.6f,%.6f", 0.5, $0[i]) } ?? ","
        return String(format: "%d,0.400000,0.900000,%.6f,%.6f,%.6f,0.100000,0.100000,", i + 1, 0.5 - 0.01 * Double(i), test[i], seconds[i]) + valid
    }
    return ([header] + rows).joined(separator: "\n") + "\n"
}

/// metrics.csv as runs before the learning rate and validation columns wrote it.
private let oldMetrics = """
    epoch,train_loss,train_accuracy,test_loss,test_accuracy,train_seconds,eval_seconds
    1,0.900000,0.700000,0.800000,0.750000,3.000000,0.100000
    2,0.500000,0.850000,0.450000,0.870000,1.000000,0.100000
    3,0.400000,0.880000,0.420000,0.860000,2.000000,0.100000

    """

/// Four runs: one with validation (fashion-mnist, adam, a checkpoint), one from before `network`
/// and `dataset` were recorded that stopped at 3 of 20 epochs, and two started in the same second.
private func fourRuns(_ scratch: Scratch) throws -> FakeResults {
    let results = try FakeResults(scratch)
    try results.run("20250110-090000-cpu-seed1",
                    config: config(dataset: "fashion-mnist", network: [784, 128, 10], hidden: [128], optimizer: "adam",
                                   save: "/tmp/a.safetensors"),
                    metrics: metrics(test: [0.90, 0.92, 0.91], seconds: [3, 1, 2], validation: [0.80, 0.85, 0.83]))
    try results.run("20250112-170000-opencl-seed2", config: config(dataset: nil, network: nil, epochs: 20), metrics: oldMetrics)
    try results.run("20250111-000000-cpu-seed0", config: config(), metrics: metrics(test: [0.5], seconds: [1]))
    try results.run("20250111-000000-cpu-seed0-2", config: config(), metrics: metrics(test: [0.6, 0.7], seconds: [1, 4]))
    return results
}

/// The cells of a `printTable` line, cut where the header's columns start.
private func cells(_ line: String, header: String, columns: [String]) -> [String] {
    var starts: [String.Index] = []
    var from = header.startIndex
    for column in columns {
        guard let range = header.range(of: column, range: from..<header.endIndex) else { return [] }
        starts.append(range.lowerBound)
        from = range.upperBound
    }
    let offsets = starts.map { header.distance(from: header.startIndex, to: $0) }
    let characters = Array(line)
    return offsets.indices.map { i in
        let end = i + 1 < offsets.count ? min(offsets[i + 1], characters.count) : characters.count
        return offsets[i] < characters.count ? String(characters[offsets[i]..<end]).trimmingCharacters(in: .whitespaces) : ""
    }
}

private let columns = ["run", "date (UTC)", "data", "network", "optimizer", "epochs", "test", "best", "val", "best val",
                       "s/epoch", "checkpoint"]

@Suite("command line: runs")
struct RunsCLITests {
    @Test("lists every run, newest first, one aligned line each with what it recorded")
    func listing() async throws {
        let scratch = try Scratch()
        let results = try fourRuns(scratch)
        let r = try await deriv8(["runs", "--results", results.path], scratch: scratch)
        #expect(r.exited(0) && r.stderr.isEmpty, "\(r)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        try #require(lines.count == 5, "\(r)")
        let header = lines[0]
        #expect(cells(header, header: header, columns: columns) == columns, "\(header)")
        let rows = lines.dropFirst().map { cells($0, header: header, columns: columns) }
        #expect(rows.map { $0.first ?? "" } == ["20250112-170000-opencl-seed2", "20250111-000000-cpu-seed0-2",
                                                 "20250111-000000-cpu-seed0", "20250110-090000-cpu-seed1"], "\(r)")
        #expect(rows[3] == ["20250110-090000-cpu-seed1", "2025-01-10 09:00:00", "fashion-mnist", "784-128-10", "adam", "3",
                            "91.00%", "92.00%", "83.00%", "85.00%", "2.00", "/tmp/a.safetensors"], "\(r)")
        // An older run: no data set recorded, the network built from hidden, 3 of 20 epochs, no validation, no checkpoint.
        #expect(rows[0] == ["20250112-170000-opencl-seed2", "2025-01-12 17:00:00", "-", "784-32-32-10", "sgd", "3/20",
                            "86.00%", "87.00%", "-", "-", "2.00", "-"], "\(r)")
        #expect(Array(rows[1][5...7]) == ["2/3", "70.00%", "70.00%"] && rows[1][10] == "2.50", "\(r)")
    }

    @Test("--json: one array in the same order, every key present, fractions, null where unknown")
    func json() async throws {
        let scratch = try Scratch()
        let results = try fourRuns(scratch)
        let r = try await deriv8(["runs", "--results", results.path, "--json"], scratch: scratch)
        #expect(r.exited(0) && r.stderr.isEmpty, "\(r)")
        let array = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]], "\(r)")
        try #require(array.count == 4)
        let keys: Set = ["run", "path", "date", "dataset", "backend", "network", "hidden", "optimizer", "epochs", "epochs_planned",
                         "final_test_accuracy", "best_test_accuracy", "final_validation_accuracy", "best_validation_accuracy",
                         "seconds_per_epoch", "save", "save_best"]
        for object in array { #expect(Set(object.keys) == keys, "\(object.keys.sorted())") }
        #expect(array.map { $0["run"] as? String } == ["20250112-170000-opencl-seed2", "20250111-000000-cpu-seed0-2",
                                                         "20250111-000000-cpu-seed0", "20250110-090000-cpu-seed1"])
        let a = array[3]
        #expect(a["path"] as? String == "\(results.path)/20250110-090000-cpu-seed1")
        #expect(a["date"] as? String == "2025-01-10T09:00:00Z")
        #expect(a["dataset"] as? String == "fashion-mnist" && a["optimizer"] as? String == "adam" && a["backend"] as? String == "cpu")
        #expect(a["network"] as? [Int] == [784, 128, 10] && a["hidden"] as? [Int] == [128])
        #expect(a["epochs"] as? Int == 3 && a["epochs_planned"] as? Int == 3)
        #expect(a["final_test_accuracy"] as? Double == 0.91 && a["best_test_accuracy"] as? Double == 0.92)
        #expect(a["final_validation_accuracy"] as? Double == 0.83 && a["best_validation_accuracy"] as? Double == 0.85)
        #expect(a["seconds_per_epoch"] as? Double == 2)
        #expect(a["save"] as? String == "/tmp/a.safetensors" && a["save_best"] is NSNull)
        let old = array[0]
        #expect(old["dataset"] is NSNull && old["final_validation_accuracy"] is NSNull && old["save"] is NSNull)
        #expect(old["network"] as? [Int] == [784, 32, 32, 10] && old["epochs_planned"] as? Int == 20)
    }

    @Test("--plot: the runs named (by name or path) in one SVG, a colour and legend line each, validation dashed")
    func plot() async throws {
        let scratch = try Scratch()
        let results = try fourRuns(scratch)
        let output = scratch.sub("compare.svg")
        let r = try await deriv8(["runs", "--results", results.path, "--plot", "20250110-090000-cpu-seed1",
                                  "\(results.path)/20250112-170000-opencl-seed2", "--output", output], scratch: scratch)
        #expect(r.exited(0) && r.stderr.isEmpty, "\(r)")
        #expect(r.stdout == "wrote \(output) (2 runs)\n", "\(r)")
        let svg = try String(contentsOfFile: output, encoding: .utf8)
        #expect(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\"") && svg.hasSuffix("</svg>\n"))
        #expect(svg.contains(">20250110-090000-cpu-seed1: fashion-mnist, 784-128-10, adam, 3 epochs, best test 92.00%</text>"), "\(svg)")
        #expect(svg.contains(">20250112-170000-opencl-seed2: 784-32-32-10, sgd, 3 epochs, best test 87.00%</text>"), "\(svg)")
        // Per panel: run 1's test and validation lines, run 2's test line.
        let polylines = svg.components(separatedBy: "<polyline").dropFirst().map { $0.components(separatedBy: "/>")[0] }
        #expect(polylines.count == 6)
        #expect(polylines.filter { $0.contains("stroke-dasharray") }.count == 2)
        // The two runs have different colours.
        let strokes = Set(polylines.compactMap { chunk in
            chunk.range(of: "stroke=\"#[0-9a-f]{6}\"", options: .regularExpression).map { String(chunk[$0]) }
        })
        #expect(strokes.count == 2, "\(strokes)")
    }

    @Test("--plot with a run that is not there: exit 64 naming it, nothing written")
    func plotUnknown() async throws {
        let scratch = try Scratch()
        let results = try fourRuns(scratch)
        let output = scratch.sub("x.svg")
        let r = try await deriv8(["runs", "--results", results.path, "--plot", "20250110-090000-cpu-seed1", "20990101-nope",
                                  "--output", output], scratch: scratch)
        expectOneLineError(r, code: 64, ["--plot 20990101-nope", "no such run in \(results.path)"])
        #expect(!FileManager.default.fileExists(atPath: output))
    }

    @Test("no results folder: exit 64 naming it; an empty one says there are no runs ([] with --json)")
    func missingAndEmpty() async throws {
        let scratch = try Scratch()
        for extra in [[], ["--json"]] {
            let missing = try await deriv8(["runs", "--results", scratch.sub("nothing")] + extra, scratch: scratch)
            expectOneLineError(missing, code: 64, ["--results \(scratch.sub("nothing")): no such folder"])
            #expect(missing.stdout.isEmpty)
        }
        let empty = try scratch.folder("empty")
        let listed = try await deriv8(["runs", "--results", empty], scratch: scratch)
        #expect(listed.exited(0) && listed.stdout == "no runs in \(empty)\n" && listed.stderr.isEmpty, "\(listed)")
        let json = try await deriv8(["runs", "--results", empty, "--json"], scratch: scratch)
        #expect(json.exited(0) && json.stdout == "[]\n", "\(json)")
    }

    @Test("corrupt runs and stray folders: listed with what is known or skipped, a note each on stderr; --plot of one fails in one line")
    func corrupt() async throws {
        let scratch = try Scratch()
        let results = try FakeResults(scratch)
        try results.run("20250103-000000-cpu-seed0", config: "{ \"dataset\" : ", metrics: oldMetrics)
        try results.run("20250102-000000-cpu-seed0", config: config(), metrics: "epoch,train_loss\n\u{0}\u{1}garbage")
        try results.run("20250101-000000-cpu-seed0", config: "null", metrics: "")
        try results.run("plots", config: nil, metrics: nil)
        let r = try await deriv8(["runs", "--results", results.path], scratch: scratch)
        #expect(r.exited(0), "\(r)")
        let rows = r.stdout.split(separator: "\n").dropFirst().map { $0.split(separator: " ").first.map(String.init) ?? "" }
        #expect(rows == ["20250103-000000-cpu-seed0", "20250102-000000-cpu-seed0"], "\(r)")
        let notes = r.stderrLines
        #expect(notes.count == 5 && notes.allSatisfy { $0.hasPrefix("note: \(results.path)/") }, "\(r)")
        for phrase in ["20250103-000000-cpu-seed0/config.json: not a JSON object; listing the run without its configuration",
                       "20250102-000000-cpu-seed0/metrics.csv: line 1 is not a metrics.csv header",
                       "20250101-000000-cpu-seed0/config.json: not a JSON object; run skipped",
                       "20250101-000000-cpu-seed0/metrics.csv: empty",
                       "plots: not a run (no config.json or metrics.csv); skipped"] {
            #expect(notes.contains { $0.contains(phrase) }, "no note with \(phrase): \(r)")
        }

        let output = scratch.sub("x.svg")
        let unreadable = try await deriv8(["runs", "--results", results.path, "--plot", "20250102-000000-cpu-seed0",
                                           "--output", output], scratch: scratch)
        expectOneLineError(unreadable, code: 1, ["20250102-000000-cpu-seed0/metrics.csv", "not a metrics.csv header"])
        let notARun = try await deriv8(["runs", "--results", results.path, "--plot", "plots", "--output", output], scratch: scratch)
        expectOneLineError(notARun, code: 64, ["plots is not a run folder"])
        #expect(!FileManager.default.fileExists(atPath: output))
    }

    @Test("flags that do not go together are refused with exit 64")
    func usage() async throws {
        let scratch = try Scratch()
        let results = try fourRuns(scratch)
        let output = try await deriv8(["runs", "--results", results.path, "--output", scratch.sub("x.svg")], scratch: scratch)
        expectOneLineError(output, code: 64, ["--output", "--plot"])
        let json = try await deriv8(["runs", "--results", results.path, "--json", "--plot", "20250110-090000-cpu-seed1"], scratch: scratch)
        expectOneLineError(json, code: 64, ["--json", "--plot"])
    }

    @Test("--help explains the columns and the JSON keys, with examples")
    func help() async throws {
        let scratch = try Scratch()
        let r = try await deriv8(["runs", "--help"], scratch: scratch)
        #expect(r.exited(0), "\(r)")
        for phrase in ["newest first", "--results", "--json", "--plot", "--output", "best_validation_accuracy", "Examples:",
                       "deriv8-gpu runs --plot"] {
            #expect(r.stdout.contains(phrase), "--help lacks \(phrase): \(r)")
        }
    }

    @Test("a real run is listed with its recorded network, data set and checkpoint; its metrics.csv has the new columns")
    func realRun() async throws {
        let scratch = try Scratch()
        let save = scratch.sub("m.safetensors")
        let train = try await deriv8(try shortTraining(scratch, epochs: 2) + ["--save", save], scratch: scratch)
        try #require(train.exited(0), "\(train)")
        let results = scratch.sub("results")
        let r = try await deriv8(["runs", "--results", results, "--json"], scratch: scratch)
        #expect(r.exited(0) && r.stderr.isEmpty, "\(r)")
        let array = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]], "\(r)")
        try #require(array.count == 1, "\(r)")
        let run = array[0]
        #expect(run["network"] as? [Int] == [784, 32, 32, 10] && run["dataset"] as? String == "mnist", "\(run)")
        #expect(run["epochs"] as? Int == 2 && run["save"] as? String == save && run["optimizer"] as? String == "sgd", "\(run)")
        let accuracy = try #require(run["final_test_accuracy"] as? Double)
        #expect(accuracy > 0.1 && accuracy <= 1, "a fraction, and better than chance: \(accuracy)")
        #expect((run["seconds_per_epoch"] as? Double ?? 0) > 0)
        #expect(run["final_validation_accuracy"] is NSNull)

        let name = try #require(run["run"] as? String)
        let lines = try String(contentsOfFile: "\(results)/\(name)/metrics.csv", encoding: .utf8).split(separator: "\n")
        #expect(lines.first == "epoch,train_loss,train_accuracy,test_loss,test_accuracy,train_seconds,eval_seconds,learning_rate,validation_loss,validation_accuracy")
        #expect(lines.count == 3 && lines.dropFirst().allSatisfy { $0.hasSuffix(",0.1,,") }, "\(lines)")

        let output = scratch.sub("real.svg")
        let plotted = try await deriv8(["runs", "--results", results, "--plot", name, "--output", output], scratch: scratch)
        #expect(plotted.exited(0) && FileManager.default.fileExists(atPath: output), "\(plotted)")
    }
}
