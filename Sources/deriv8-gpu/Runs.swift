import ArgumentParser
import Deriv8
import Foundation

struct Runs: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the training runs in a results folder, newest first, or plot chosen runs together.",
        discussion: """
            One line per run folder that `train` wrote under --results: its name (what --plot \
            takes), the date it started (UTC), the data set, the network, the optimizer, the \
            epochs done (done/asked when it stopped early), the final and best test accuracy, \
            the final and best validation accuracy (- without train --validation), the median \
            training seconds per epoch, and the checkpoints it saved to (--save, and --save-best \
            marked best:; - for none). A field \
            config.json does not hold (older runs) shows as -; a network not recorded is built \
            from the hidden widths with MNIST's 784 inputs and 10 classes.

            --json prints one JSON array instead, an object per run in the same order, with \
            every key always present (null where unknown) and accuracies as fractions: run, \
            path, date (ISO 8601, UTC), dataset, backend, network, hidden, optimizer, epochs, \
            epochs_planned, final_test_accuracy, best_test_accuracy, \
            final_validation_accuracy, best_validation_accuracy, seconds_per_epoch, save, \
            save_best.

            --plot draws the named runs' test loss and test accuracy per epoch into one SVG, \
            a colour per run, their validation curves dashed; it names the file it wrote. A \
            run is a folder name under --results or a path to a run folder.

            A folder that is not a run, or a run whose config.json or metrics.csv cannot be \
            read, is listed with what is known or skipped, with a note on stderr.

            Examples:
              deriv8-gpu runs
              deriv8-gpu runs --results /tmp/sweep --json
              deriv8-gpu runs --plot 20260105-101500-cpu-seed0 20260105-103000-cpu-seed1
              deriv8-gpu runs --plot ~/old/20251201-090000-cpu-seed0 --output old.svg

            Exit codes: 0 success (also for an empty results folder); 64 bad flags, no such \
            results folder, or a --plot run that is not there; 1 a plotted run whose \
            metrics.csv cannot be read, or an SVG that cannot be written.
            """)

    @Option(help: ArgumentHelp("The folder `train --results` wrote the runs into.", valueName: "dir"))
    var results = "results"

    @Flag(help: "Print one JSON array, an object per run (fractions, not percents), and nothing else.")
    var json = false

    @Option(parsing: .upToNextOption,
            help: ArgumentHelp("Plot these runs' test (and validation) curves together: folder names under --results, or paths to run folders.", valueName: "run"))
    var plot: [String] = []

    @Option(help: ArgumentHelp("The SVG file --plot writes, replacing any file there (default runs.svg).", valueName: "path"))
    var output: String?

    func validate() throws {
        if output != nil && plot.isEmpty { throw ValidationError("--output is where --plot writes; give --plot RUN ... too") }
        if json && !plot.isEmpty { throw ValidationError("--json lists the runs; it does not go with --plot") }
    }

    func run() throws {
        if plot.isEmpty { try list() } else { try drawPlot() }
    }

    private func list() throws {
        let listing: (runs: [RunSummary], notes: [String])
        do { listing = try RunListing.read(directory: results) } catch {
            guard folderExists(results) else {
                throw ValidationError("--results \(results): \(error.problem) (train --results DIR writes runs there)")
            }
            throw error
        }
        for note in listing.notes { printError("note: \(note)") }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(listing.runs.map(RunReport.init)), as: UTF8.self))
            return
        }
        guard !listing.runs.isEmpty else {
            print("no runs in \(results)")
            return
        }
        let header = ["run", "date (UTC)", "data", "network", "optimizer", "epochs", "test", "best", "val", "best val",
                      "s/epoch", "checkpoint"]
        printTable([header] + listing.runs.map { run in
            [run.name, run.date.map(Self.displayDate) ?? "-", run.dataset ?? "-", Self.network(run), run.optimizer ?? "-",
             Self.epochs(run), percent(run.finalTestAccuracy), percent(run.bestTestAccuracy),
             percent(run.finalValidationAccuracy), percent(run.bestValidationAccuracy),
             run.medianTrainSeconds.map(Self.seconds) ?? "-", Self.checkpoints(run)]
        })
    }

    private func drawPlot() throws {
        let chosen = try plot.map { try runFolder($0) }
        var plotted: [TrainingPlot.Run] = []
        for folder in chosen {
            let (run, notes) = RunListing.read(folder: folder)
            guard let run else {
                throw ValidationError("\(folder.path) is not a run folder (it has no config.json or metrics.csv)")
            }
            // The curves are the point: a run whose metrics cannot be read is an error, not a note.
            let results = try RunRecord.readMetrics(at: folder.appendingPathComponent("metrics.csv"))
            for note in notes { printError("note: \(note)") }
            plotted.append(TrainingPlot.Run(label: Self.label(run), results: results))
        }
        let path = output ?? "runs.svg"
        let title = "test loss and accuracy of \(plotted.count) run\(plotted.count == 1 ? "" : "s")"
        try writeAtomically(Array(TrainingPlot.comparison(plotted, title: title).utf8), to: path)
        print("wrote \(path) (\(plotted.count) run\(plotted.count == 1 ? "" : "s"))")
    }

    /// The folder a --plot argument names: a run under --results, else a path to a run folder.
    private func runFolder(_ name: String) throws -> URL {
        var candidates = [name]
        if !name.hasPrefix("/") { candidates.insert(URL(fileURLWithPath: results).appendingPathComponent(name).path, at: 0) }
        guard let found = candidates.first(where: folderExists) else {
            throw ValidationError("--plot \(name): no such run in \(results), nor a folder at that path (`deriv8-gpu runs` lists them)")
        }
        return URL(fileURLWithPath: found)
    }

    /// "784-32-32-10", or the hidden widths between question marks when the inputs and classes
    /// are not known; "-" with neither.
    private static func network(_ run: RunSummary) -> String {
        if let network = run.network { return network.map(String.init).joined(separator: "-") }
        if let hidden = run.hidden { return (["?"] + hidden.map(String.init) + ["?"]).joined(separator: "-") }
        return "-"
    }

    /// Epochs done, and the number asked for when the run stopped before it.
    private static func epochs(_ run: RunSummary) -> String {
        if let planned = run.plannedEpochs, planned > run.epochsDone { return "\(run.epochsDone)/\(planned)" }
        return String(run.epochsDone)
    }

    /// The run's checkpoint (--save) and its best epoch's (--save-best, marked "best:"), or -.
    private static func checkpoints(_ run: RunSummary) -> String {
        let paths = [run.save, run.saveBest.map { "best: \($0)" }].compactMap { $0 }
        return paths.isEmpty ? "-" : paths.joined(separator: ", ")
    }

    /// Two decimals, three below a second (a small run's epochs take milliseconds).
    private static func seconds(_ s: Double) -> String { String(format: s < 1 ? "%.3f" : "%.2f", s) }

    /// A plotted run's legend line: its name, then what it was.
    private static func label(_ run: RunSummary) -> String {
        var parts = [run.dataset, run.network == nil && run.hidden == nil ? nil : network(run), run.optimizer].compactMap { $0 }
        parts.append("\(run.epochsDone) epochs")
        if let best = run.bestTestAccuracy { parts.append("best test \(percent(best))") }
        return "\(run.name): \(parts.joined(separator: ", "))"
    }

    private static func displayDate(_ date: Date) -> String { format(date, "yyyy-MM-dd HH:mm:ss") }

    static func format(_ date: Date, _ pattern: String) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = pattern
        return formatter.string(from: date)
    }
}

/// Whether `path` names a folder (following links).
private func folderExists(_ path: String) -> Bool {
    var isDirectory: ObjCBool = false
    return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
}

private func percent(_ x: Double?) -> String { x.map { String(format: "%.2f%%", 100 * $0) } ?? "-" }

/// What `runs --json` prints for a run: snake_case keys, every one present (null where unknown),
/// accuracies as fractions, `epochs` the epochs done.
private struct RunReport: Encodable {
    let run: String, path: String, date: String?
    let dataset: String?, backend: String?, network: [Int]?, hidden: [Int]?, optimizer: String?
    let epochs: Int, epochsPlanned: Int?
    let finalTestAccuracy: Double?, bestTestAccuracy: Double?
    let finalValidationAccuracy: Double?, bestValidationAccuracy: Double?
    let secondsPerEpoch: Double?
    let save: String?, saveBest: String?

    init(_ s: RunSummary) {
        (run, path, date) = (s.name, s.folder.path, s.date.map { Runs.format($0, "yyyy-MM-dd'T'HH:mm:ss'Z'") })
        (dataset, backend, network, hidden, optimizer) = (s.dataset, s.backend, s.network, s.hidden, s.optimizer)
        (epochs, epochsPlanned) = (s.epochsDone, s.plannedEpochs)
        (finalTestAccuracy, bestTestAccuracy) = (s.finalTestAccuracy, s.bestTestAccuracy)
        (finalValidationAccuracy, bestValidationAccuracy) = (s.finalValidationAccuracy, s.bestValidationAccuracy)
        (secondsPerEpoch, save, saveBest) = (s.medianTrainSeconds, s.save, s.saveBest)
    }

    private enum CodingKeys: String, CodingKey {
        case run, path, date, dataset, backend, network, hidden, optimizer, epochs
        case epochsPlanned = "epochs_planned"
        case finalTestAccuracy = "final_test_accuracy", bestTestAccuracy = "best_test_accuracy"
        case finalValidationAccuracy = "final_validation_accuracy", bestValidationAccuracy = "best_validation_accuracy"
        case secondsPerEpoch = "seconds_per_epoch", save, saveBest = "save_best"
    }

    /// Written out so that a nil is `null` rather than a missing key (the synthesised one drops it).
    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(run, forKey: .run)
        try c.encode(path, forKey: .path)
        try c.encode(date, forKey: .date)
        try c.encode(dataset, forKey: .dataset)
        try c.encode(backend, forKey: .backend)
        try c.encode(network, forKey: .network)
        try c.encode(hidden, forKey: .hidden)
        try c.encode(optimizer, forKey: .optimizer)
        try c.encode(epochs, forKey: .epochs)
        try c.encode(epochsPlanned, forKey: .epochsPlanned)
        try c.encode(finalTestAccuracy, forKey: .finalTestAccuracy)
        try c.encode(bestTestAccuracy, forKey: .bestTestAccuracy)
        try c.encode(finalValidationAccuracy, forKey: .finalValidationAccuracy)
        try c.encode(bestValidationAccuracy, forKey: .bestValidationAccuracy)
        try c.encode(secondsPerEpoch, forKey: .secondsPerEpoch)
        try c.encode(save, forKey: .save)
        try c.encode(saveBest, forKey: .saveBest)
    }
}
