import Foundation

/// A run's record on disk, like the reference's results/ folder: `DIR/RUN/config.json` with the
/// configuration, `DIR/RUN/metrics.csv` with one row per epoch and `DIR/RUN/plot.svg` charting
/// them, rewritten after every epoch so an interrupted run keeps what it finished.
public final class RunRecord {
    public let folder: URL
    private var rows: [String] = []
    private var results: [EpochResult] = []
    private let title: String

    /// metrics.csv's header. A row holds the epoch, then numbers as `%.6f` (accuracies as
    /// fractions; a diverged loss as `nan` or `inf`); the last three are empty where the epoch
    /// has none (no --validation; a learning rate from before schedules existed).
    public static let csvHeader = csvHeaderBeforeValidation + ",learning_rate,validation_loss,validation_accuracy"
    /// The header of the metrics.csv files written before the learning rate and validation
    /// columns were added; `readMetrics` still reads them.
    public static let csvHeaderBeforeValidation = "epoch,train_loss,train_accuracy,test_loss,test_accuracy,train_seconds,eval_seconds"

    /// What config.json records about how the run was started: the command line, the data set's
    /// name and its files' checksums (`MNIST.checksums`), the layer widths, and the checkpoints
    /// it saves to (every epoch's, and the best epoch's).
    public struct Provenance: Encodable, Sendable {
        public let version: String
        public let command: [String]
        public let dataset: String
        public let dataChecksums: [String: String]
        public let save: String?
        /// Every layer's width, inputs to classes: [784, 32, 32, 10]. config.json's `hidden`
        /// alone does not say how many inputs and classes the data had.
        public let network: [Int]?
        public let saveBest: String?
        public init(version: String, command: [String], dataset: String, dataChecksums: [String: String], save: String?,
                    network: [Int]? = nil, saveBest: String? = nil) {
            self.version = version
            self.command = command
            self.dataset = dataset
            self.dataChecksums = dataChecksums
            self.save = save
            self.network = network
            self.saveBest = saveBest
        }
    }

    /// Where a resumed run came from: the checkpoint and the epochs it held.
    public struct Resumption: Encodable, Sendable {
        public let checkpoint: String
        public let afterEpoch: Int
        public init(checkpoint: String, afterEpoch: Int) {
            self.checkpoint = checkpoint
            self.afterEpoch = afterEpoch
        }
    }

    /// For a resumed run: continues `existing` (a checkpoint's results folder) when it still
    /// holds a metrics.csv, keeping its first `resumed.afterEpoch` epochs, so that metrics.csv and
    /// the plot hold every epoch; otherwise a new folder whose config.json records where the run
    /// was resumed from. Either way config.json is rewritten with this run's configuration.
    public convenience init(continuing existing: String?, resumed: Resumption, directory: String, backend: String, device: String,
                            config: TrainingConfig, trainCount: Int, testCount: Int, dataDirectory: String,
                            provenance: Provenance? = nil) throws {
        if let existing, let earlier = Self.readMetrics(URL(fileURLWithPath: existing).appendingPathComponent("metrics.csv")) {
            try self.init(folder: URL(fileURLWithPath: existing), backend: backend, device: device, config: config, trainCount: trainCount,
                          testCount: testCount, dataDirectory: dataDirectory, provenance: provenance, resumed: resumed,
                          earlier: earlier.filter { $0.epoch <= resumed.afterEpoch })
        } else {
            try self.init(folder: try Self.newFolder(directory: directory, backend: backend, seed: config.seed), backend: backend,
                          device: device, config: config, trainCount: trainCount, testCount: testCount,
                          dataDirectory: dataDirectory, provenance: provenance, resumed: resumed, earlier: [])
        }
    }

    /// Creates `directory/<UTC time>-<backend>-seed<seed>/` and writes the configuration there.
    public convenience init(directory: String, backend: String, device: String, config: TrainingConfig,
                            trainCount: Int, testCount: Int, dataDirectory: String, provenance: Provenance? = nil) throws {
        try self.init(folder: try Self.newFolder(directory: directory, backend: backend, seed: config.seed), backend: backend,
                      device: device, config: config, trainCount: trainCount, testCount: testCount,
                      dataDirectory: dataDirectory, provenance: provenance, resumed: nil, earlier: [])
    }

    /// A new, empty run folder under `directory`.
    private static func newFolder(directory: String, backend: String, seed: UInt64) throws -> URL {
        let stamp = Self.timestamp()
        var folder = URL(fileURLWithPath: directory).appendingPathComponent("\(stamp)-\(backend)-seed\(seed)")
        var suffix = 1
        while FileManager.default.fileExists(atPath: folder.path) {
            suffix += 1
            folder = URL(fileURLWithPath: directory).appendingPathComponent("\(stamp)-\(backend)-seed\(seed)-\(suffix)")
        }
        try makeDirectories(folder.path)
        return folder
    }

    private init(folder: URL, backend: String, device: String, config: TrainingConfig, trainCount: Int, testCount: Int,
                 dataDirectory: String, provenance: Provenance?, resumed: Resumption?, earlier: [EpochResult]) throws {
        self.folder = folder
        title = "\(folder.lastPathComponent): hidden \(config.hidden.map(String.init).joined(separator: ",")), \(config.optimizer.kind.rawValue), lr \(config.learningRate), batch \(config.batchSize)"

        struct Record: Encodable {
            let backend: String, device: String, data: String
            let trainExamples: Int, testExamples: Int
            let config: TrainingConfig
            let version: String?, command: [String]?, dataset: String?, dataCrc32: [String: String]?, save: String?
            let network: [Int]?, saveBest: String?
            let resumedFrom: Resumption?
        }
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let json = try encoder.encode(Record(backend: backend, device: device, data: dataDirectory,
                                             trainExamples: trainCount, testExamples: testCount, config: config,
                                             version: provenance?.version, command: provenance?.command, dataset: provenance?.dataset,
                                             dataCrc32: provenance?.dataChecksums, save: provenance?.save,
                                             network: provenance?.network, saveBest: provenance?.saveBest,
                                             resumedFrom: resumed))
        try json.write(to: folder.appendingPathComponent("config.json"), options: .atomic)
        for result in earlier { rows.append(Self.row(result)); results.append(result) }
        try writeMetrics()
    }

    /// The epochs in a metrics.csv this class wrote, or nil when there is none or it cannot be
    /// read in full (a resumed run then starts a new folder rather than drop epochs).
    private static func readMetrics(_ url: URL) -> [EpochResult]? { try? readMetrics(at: url) }

    /// The epochs in the metrics.csv at `url`, in either of the formats this class has written:
    /// the 7 columns of `csvHeaderBeforeValidation` or the 10 of `csvHeader`. Throws a one-line
    /// error naming the file, and the line, when it cannot be read or is not such a file.
    public static func readMetrics(at url: URL) throws(DataFileError) -> [EpochResult] {
        // Read with the project's own bounded reader: Foundation's String(contentsOf:) leaks its
        // buffer when the bytes are not UTF-8 (AddressSanitizer's leak check, `make sanitize`).
        let bytes = try readRegularFile(url.path, limit: 64 << 20, kind: "a metrics.csv")
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw DataFileError(path: url.path, problem: "cannot read it as UTF-8 text")
        }
        return try parseMetrics(text, path: url.path)
    }

    /// The epochs in metrics.csv's `text`; `path` names the file in errors.
    public static func parseMetrics(_ text: String, path: String) throws(DataFileError) -> [EpochResult] {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { $0.hasSuffix("\r") ? $0.dropLast() : $0 }
        if lines.last == "" { lines.removeLast() }   // the newline that ends the last row
        guard let header = lines.first else { throw DataFileError(path: path, problem: "empty; expected the header \(csvHeader)") }
        let columns: Int
        switch header {
        case csvHeader: columns = 10
        case csvHeaderBeforeValidation: columns = 7
        default: throw DataFileError(path: path, problem: "line 1 is not a metrics.csv header (\(csvHeader))")
        }
        var results: [EpochResult] = []
        for (index, line) in lines.dropFirst().enumerated() {
            let lineNumber = index + 2
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard fields.count == columns else {
                throw DataFileError(path: path, problem: "line \(lineNumber) has \(fields.count) fields; the header has \(columns)")
            }
            guard let epoch = Int(fields[0]) else {
                throw DataFileError(path: path, problem: "line \(lineNumber): epoch '\(fields[0].prefix(20))' is not a whole number")
            }
            func number(_ i: Int) throws(DataFileError) -> Double {
                guard let value = Double(fields[i]) else {
                    throw DataFileError(path: path, problem: "line \(lineNumber), field \(i + 1): '\(fields[i].prefix(20))' is not a number")
                }
                return value
            }
            /// The learning rate and validation columns: absent from old files, empty where the epoch had none.
            func optional(_ i: Int) throws(DataFileError) -> Double? { i < columns && !fields[i].isEmpty ? try number(i) : nil }
            results.append(EpochResult(epoch: epoch, trainLoss: try number(1), trainAccuracy: try number(2),
                                       testLoss: try number(3), testAccuracy: try number(4),
                                       trainSeconds: try number(5), evalSeconds: try number(6),
                                       learningRate: try optional(7), validationLoss: try optional(8),
                                       validationAccuracy: try optional(9)))
        }
        return results
    }

    /// A metrics.csv row under `csvHeader`.
    public static func row(_ r: EpochResult) -> String {
        func format(_ x: Double) -> String { String(format: "%.6f", x) }
        func optional(_ x: Double?) -> String { x.map(format) ?? "" }
        return [String(r.epoch), format(r.trainLoss), format(r.trainAccuracy), format(r.testLoss),
                format(r.testAccuracy), format(r.trainSeconds), format(r.evalSeconds),
                // A rate keeps its significant digits: a decayed one can be far below 1e-6.
                r.learningRate.map { String(format: "%.9g", $0) } ?? "", optional(r.validationLoss),
                optional(r.validationAccuracy)].joined(separator: ",")
    }

    public func append(_ r: EpochResult) throws {
        rows.append(Self.row(r))
        results.append(r)
        try writeMetrics()
        try Data(TrainingPlot.svg(results, title: title).utf8).write(to: folder.appendingPathComponent("plot.svg"), options: .atomic)
    }

    private func writeMetrics() throws {
        let text = ([Self.csvHeader] + rows).joined(separator: "\n") + "\n"
        try Data(text.utf8).write(to: folder.appendingPathComponent("metrics.csv"), options: .atomic)
    }


    private static func timestamp() -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        return formatter.string(from: Date())
    }
}

/// mkdir -p, with a one-line error naming the first path that could not be made.
func makeDirectories(_ path: String) throws(DataFileError) {
    var partial = path.hasPrefix("/") ? "" : "."
    for component in path.split(separator: "/") {
        partial += "/" + component
        if mkdir(partial, 0o755) == 0 || errno == EEXIST {
            var info = stat()
            guard stat(partial, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else {
                throw DataFileError(path: partial, problem: "is not a directory; cannot put results under it")
            }
            continue
        }
        throw DataFileError(path: partial, problem: "cannot create: \(String(cString: strerror(errno)).lowercased())")
    }
}
