import Foundation

/// What a results folder says about one run (a folder `RunRecord` wrote), for listing and
/// comparing runs. Fields are nil where config.json does not hold them: files written before
/// the field existed, or a config.json that could not be read.
public struct RunSummary: Sendable {
    /// The run folder's name, `<UTC yyyyMMdd-HHmmss>-<backend>-seed<seed>[-N]`, and its path.
    public let name: String
    public let folder: URL
    /// When the run started: the folder name's UTC stamp, else config.json's (or metrics.csv's)
    /// modification time.
    public let date: Date?
    public let dataset: String?
    public let backend: String?
    /// Every layer's width, inputs to classes. Recorded since config.json has had `network`;
    /// for older runs, built from `hidden` with MNIST's 784 inputs and 10 classes when the data
    /// set is MNIST-shaped (mnist, fashion-mnist, or not recorded: the runs before any other).
    public let network: [Int]?
    public let hidden: [Int]?
    public let optimizer: String?
    /// The epochs the run was asked for (config.json's config.epochs: the total, when resumed).
    public let plannedEpochs: Int?
    /// The checkpoint saved every epoch (`--save`), and the best epoch's (`--save-best`).
    public let save: String?
    public let saveBest: String?
    /// metrics.csv's epochs, in file order; empty when it has none or could not be read.
    public let results: [EpochResult]

    public init(name: String, folder: URL, date: Date?, dataset: String?, backend: String?, network: [Int]?,
                hidden: [Int]?, optimizer: String?, plannedEpochs: Int?, save: String?, saveBest: String?,
                results: [EpochResult]) {
        (self.name, self.folder, self.date, self.dataset, self.backend) = (name, folder, date, dataset, backend)
        (self.network, self.hidden, self.optimizer, self.plannedEpochs) = (network, hidden, optimizer, plannedEpochs)
        (self.save, self.saveBest, self.results) = (save, saveBest, results)
    }

    /// The last epoch metrics.csv holds (a resumed run's count from its first epoch); 0 for none.
    public var epochsDone: Int { results.map(\.epoch).max() ?? 0 }
    public var finalTestAccuracy: Double? { results.last.flatMap { finite($0.testAccuracy) } }
    public var bestTestAccuracy: Double? { results.compactMap { finite($0.testAccuracy) }.max() }
    public var finalValidationAccuracy: Double? { results.last.flatMap { $0.validationAccuracy.flatMap(finite) } }
    public var bestValidationAccuracy: Double? { results.compactMap { $0.validationAccuracy.flatMap(finite) }.max() }
    /// The median of the epochs' training times (evaluation left out): steadier than the mean
    /// when one epoch was slowed by something else on the machine.
    public var medianTrainSeconds: Double? {
        let sorted = results.compactMap { finite($0.trainSeconds) }.sorted()
        guard !sorted.isEmpty else { return nil }
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }
}

private func finite(_ x: Double) -> Double? { x.isFinite ? x : nil }

/// Reads the runs in a results folder.
public enum RunListing {
    /// Every run under `directory`, newest first (by date, then by name, so `-2` comes before the
    /// folder it was numbered after), and a note for each entry skipped or read only in part:
    /// "PATH: problem; what was done". Hidden entries and plain files are passed over silently.
    /// Throws only when `directory` itself cannot be listed.
    public static func read(directory: String) throws(DataFileError) -> (runs: [RunSummary], notes: [String]) {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: directory, isDirectory: &isDirectory) else {
            throw DataFileError(path: directory, problem: "no such folder")
        }
        guard isDirectory.boolValue else { throw DataFileError(path: directory, problem: "is a file, not a results folder") }
        let names: [String]
        do { names = try fm.contentsOfDirectory(atPath: directory) } catch {
            throw DataFileError(path: directory, problem: "cannot list it")
        }
        var runs: [RunSummary] = [], notes: [String] = []
        let base = URL(fileURLWithPath: directory)
        for name in names.sorted() where !name.hasPrefix(".") {
            let folder = base.appendingPathComponent(name)
            guard fm.fileExists(atPath: folder.path, isDirectory: &isDirectory), isDirectory.boolValue else { continue }
            let (run, runNotes) = read(folder: folder)
            notes += runNotes
            if let run { runs.append(run) }
        }
        runs.sort(by: newerFirst)
        return (runs, notes)
    }

    /// The run in `folder`, with notes on what could not be read; nil (and a note) when the
    /// folder is not a run (no config.json and no metrics.csv) or neither file can be read.
    public static func read(folder: URL) -> (run: RunSummary?, notes: [String]) {
        let fm = FileManager.default
        let configURL = folder.appendingPathComponent("config.json")
        let metricsURL = folder.appendingPathComponent("metrics.csv")
        let hasConfig = fm.fileExists(atPath: configURL.path), hasMetrics = fm.fileExists(atPath: metricsURL.path)
        guard hasConfig || hasMetrics else {
            return (nil, ["\(folder.path): not a run (no config.json or metrics.csv); skipped"])
        }
        var problems: [String] = []
        var recorded: RecordedConfig?
        if hasConfig {
            do { recorded = try RecordedConfig.read(configURL) } catch { problems.append(error.description) }
        } else {
            problems.append("\(configURL.path): no such file")
        }
        var results: [EpochResult]?
        if hasMetrics {
            do { results = try RunRecord.readMetrics(at: metricsURL) } catch { problems.append(error.description) }
        } else {
            problems.append("\(metricsURL.path): no such file")
        }
        guard recorded != nil || results != nil else {
            return (nil, problems.map { "\($0); run skipped" })
        }
        let missing = recorded == nil ? "configuration" : "epochs"
        let notes = problems.map { "\($0); listing the run without its \(missing)" }

        let name = folder.lastPathComponent
        let date = folderDate(name)
            ?? [configURL, metricsURL].lazy.compactMap { try? fm.attributesOfItem(atPath: $0.path)[.modificationDate] as? Date }.first
        let hidden = recorded?.config?.hidden
        var network = recorded?.network
        if network == nil, let hidden, [nil, "mnist", "fashion-mnist"].contains(recorded?.dataset) {
            network = [784] + hidden + [10]
        }
        return (RunSummary(name: name, folder: folder, date: date, dataset: recorded?.dataset, backend: recorded?.backend,
                           network: network, hidden: hidden, optimizer: recorded?.config?.optimizer?.kind,
                           plannedEpochs: recorded?.config?.epochs, save: recorded?.save, saveBest: recorded?.saveBest,
                           results: results ?? []), notes)
    }

    /// The UTC time at the start of a run folder's name (`yyyyMMdd-HHmmss-...`), nil if it has none.
    public static func folderDate(_ name: String) -> Date? {
        let stamp = name.prefix(15)
        guard stamp.count == 15, name.count == 15 || name.dropFirst(15).hasPrefix("-") else { return nil }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        formatter.isLenient = false
        return formatter.date(from: String(stamp))
    }

    private static func newerFirst(_ a: RunSummary, _ b: RunSummary) -> Bool {
        switch (a.date, b.date) {
        case let (x?, y?) where x != y: return x > y
        case (_?, nil): return true
        case (nil, _?): return false
        default: return a.name.compare(b.name, options: .numeric) == .orderedDescending
        }
    }
}

/// The parts of config.json a listing shows, every one optional: older files lack the newer ones.
private struct RecordedConfig: Decodable {
    let dataset: String?, backend: String?, network: [Int]?, save: String?, saveBest: String?
    let config: Training?

    struct Training: Decodable {
        let hidden: [Int]?, epochs: Int?
        let optimizer: Optimizer?
    }
    struct Optimizer: Decodable { let kind: String? }

    static func read(_ url: URL) throws(DataFileError) -> RecordedConfig {
        let data = Data(try readRegularFile(url.path, limit: 16 << 20, kind: "a config.json"))
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        do { return try decoder.decode(RecordedConfig.self, from: data) } catch {
            var path: [CodingKey] = []
            switch error as? DecodingError {
            case .typeMismatch(_, let context), .valueNotFound(_, let context), .keyNotFound(_, let context):
                path = context.codingPath
            default: break
            }
            // "config.hidden[1]"; Foundation names the top level with an empty key.
            var key = path.filter { !$0.stringValue.isEmpty }.map { $0.intValue.map { "[\($0)]" } ?? "." + $0.stringValue }.joined()
            if key.hasPrefix(".") { key.removeFirst() }
            throw DataFileError(path: url.path, problem: key.isEmpty ? "not a JSON object" : "'\(key)' is not what a run's config.json holds there")
        }
    }
}
