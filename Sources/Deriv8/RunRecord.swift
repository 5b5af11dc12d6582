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

    /// Creates `directory/<UTC time>-<backend>-seed<seed>/` and writes the configuration there.
    public init(directory: String, backend: String, device: String, config: TrainingConfig,
                trainCount: Int, testCount: Int, dataDirectory: String) throws {
        let stamp = Self.timestamp()
        var folder = URL(fileURLWithPath: directory).appendingPathComponent("\(stamp)-\(backend)-seed\(config.seed)")
        var suffix = 1
        while FileManager.default.fileExists(atPath: folder.path) {
            suffix += 1
            folder = URL(fileURLWithPath: directory).appendingPathComponent("\(stamp)-\(backend)-seed\(config.seed)-\(suffix)")
        }
        try makeDirectories(folder.path)
        self.folder = folder
        title = "\(folder.lastPathComponent): hidden \(config.hidden.map(String.init).joined(separator: ",")), \(config.optimizer.kind.rawValue), lr \(config.learningRate), batch \(config.batchSize)"

        struct Record: Encodable {
            let backend: String, device: String, data: String
            let trainExamples: Int, testExamples: Int
            let config: TrainingConfig
        }
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let json = try encoder.encode(Record(backend: backend, device: device, data: dataDirectory,
                                             trainExamples: trainCount, testExamples: testCount, config: config))
        try json.write(to: folder.appendingPathComponent("config.json"), options: .atomic)
        try writeMetrics()
    }

    public func append(_ r: EpochResult) throws {
        rows.append([String(r.epoch), format(r.trainLoss), format(r.trainAccuracy), format(r.testLoss),
                     format(r.testAccuracy), format(r.trainSeconds), format(r.evalSeconds)].joined(separator: ","))
        results.append(r)
        try writeMetrics()
        try Data(TrainingPlot.svg(results, title: title).utf8).write(to: folder.appendingPathComponent("plot.svg"), options: .atomic)
    }

    private func writeMetrics() throws {
        let text = ([Self.csvHeader] + rows).joined(separator: "\n") + "\n"
        try Data(text.utf8).write(to: folder.appendingPathComponent("metrics.csv"), options: .atomic)
    }

    private func format(_ x: Double) -> String { String(format: "%.6f", x) }

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
