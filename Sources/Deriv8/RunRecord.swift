import Foundation

/// A run's record on disk, like the reference's results/ folder: `DIR/RUN/config.json` with the
/// configuration, `DIR/RUN/metrics.csv` with one row per epoch and `DIR/RUN/plot.svg` charting
/// them, rewritten after every epoch so an interrupted run keeps what it finished.
public final class RunRecord {
    public let folder: URL
    private var rows: [String] = []
    private var results: [EpochResult] = []
    private let title: String

    public static let csvHeader = "epoch,train_loss,train_accuracy,test_loss,test_accuracy,train_seconds,eval_seconds"

    /// What config.json records about how the run was started: the command line, the data set's
    /// name and its files' checksums (`MNIST.checksums`), and the checkpoint it saves to.
    public struct Provenance: Encodable, Sendable {
        public let version: String
        public let command: [String]
        public let dataset: String
        public let dataChecksums: [String: String]
        public let save: String?
        public init(version: String, command: [String], dataset: String, dataChecksums: [String: String], save: String?) {
            self.version = version
            self.command = command
            self.dataset = dataset
            self.dataChecksums = dataChecksums
            self.save = save
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
            let resumedFrom: Resumption?
        }
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let json = try encoder.encode(Record(backend: backend, device: device, data: dataDirectory,
                                             trainExamples: trainCount, testExamples: testCount, config: config,
                                             version: provenance?.version, command: provenance?.command, dataset: provenance?.dataset,
                                             dataCrc32: provenance?.dataChecksums, save: provenance?.save,
                                             resumedFrom: resumed))
        try json.write(to: folder.appendingPathComponent("config.json"), options: .atomic)
        for result in earlier { rows.append(Self.row(result)); results.append(result) }
        try writeMetrics()
    }

    /// The epochs in a metrics.csv this class wrote, or nil when there is none or it is not one.
    private static func readMetrics(_ url: URL) -> [EpochResult]? {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else { return nil }
        let lines = text.split(separator: "\n")
        guard lines.first.map(String.init) == csvHeader else { return nil }
        return lines.dropFirst().compactMap { line in
            let f = line.split(separator: ",").map(String.init)
            guard f.count == 7, let epoch = Int(f[0]) else { return nil }
            let v = f.dropFirst().compactMap(Double.init)
            guard v.count == 6 else { return nil }
            return EpochResult(epoch: epoch, trainLoss: v[0], trainAccuracy: v[1], testLoss: v[2], testAccuracy: v[3],
                               trainSeconds: v[4], evalSeconds: v[5])
        }
    }

    private static func row(_ r: EpochResult) -> String {
        func format(_ x: Double) -> String { String(format: "%.6f", x) }
        return [String(r.epoch), format(r.trainLoss), format(r.trainAccuracy), format(r.testLoss),
                format(r.testAccuracy), format(r.trainSeconds), format(r.evalSeconds)].joined(separator: ",")
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
