import Deriv8
import Foundation

/// Prints what training reports: a header, one line (or JSON object) per epoch, and on a
/// terminal a progress line redrawn in place on stderr.
struct EpochPrinter {
    let json: Bool
    let backend: String
    let epochs: Int
    /// Whether a progress line is drawn: only on a terminal.
    let showProgress = isatty(STDERR_FILENO) == 1
    private var progressShown = false
    private var lastDraw = ContinuousClock.now

    /// Whether epoch lines show the learning rate (it changes only under a schedule).
    let showRate: Bool

    init(json: Bool, backend: String, epochs: Int, showRate: Bool = false) {
        self.json = json
        self.backend = backend
        self.epochs = epochs
        self.showRate = showRate
    }

    /// The resolved configuration; on stderr with --json so stdout stays pure JSON.
    func header(_ rows: [(String, String)]) {
        let width = rows.map(\.0.count).max() ?? 0
        for (key, value) in rows {
            let line = key.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + value
            if json { printError(line) } else { print(line) }
        }
        fflush(nil)  // all streams: lines reach a pipe as they happen
    }

    mutating func progress(_ p: BatchProgress) {
        guard showProgress else { return }
        // A redraw per batch would cost more than a fast batch; ten per second is plenty.
        let now = ContinuousClock.now
        guard p.batch == p.batchCount || now - lastDraw > .milliseconds(100) else { return }
        lastDraw = now
        var stderr = StandardError()
        let line = String(format: "epoch %d/%d  batch %d/%d  loss %.4f  train %.2f%%",
                          p.epoch, epochs, p.batch, p.batchCount, p.meanLoss, 100 * p.accuracy)
        print("\r\u{1B}[K" + line, terminator: "", to: &stderr)
        progressShown = true
    }

    /// Erases the progress line, if one is shown.
    mutating func clearProgress() {
        guard progressShown else { return }
        var stderr = StandardError()
        print("\r\u{1B}[K", terminator: "", to: &stderr)
        progressShown = false
    }

    /// One epoch's line; the validation accuracy and the learning rate appear when the run has
    /// a validation set and a schedule other than constant.
    mutating func epoch(_ r: EpochResult) {
        clearProgress()
        if json {
            print(jsonLine(r))
        } else {
            let digits = String(epochs).count
            var line = String(format: "epoch %*d/%d  loss %.4f  train %.2f%%", digits, r.epoch, epochs, r.trainLoss, 100 * r.trainAccuracy)
            if let validation = r.validationAccuracy { line += String(format: "  val %.2f%%", 100 * validation) }
            line += String(format: "  test %.2f%%", 100 * r.testAccuracy)
            if showRate, let rate = r.learningRate { line += String(format: "  lr %.4g", rate) }
            line += String(format: "  %.3f s train  %.3f s eval", r.trainSeconds, r.evalSeconds)
            print(line)
        }
        fflush(nil)  // all streams: lines reach a pipe as they happen
    }

    /// A line about the run as a whole (an early stop): on stderr with --json, like the header.
    func note(_ line: String) {
        if json { printError(line) } else { print(line) }
        fflush(nil)
    }

    private func jsonLine(_ r: EpochResult) -> String {
        struct Line: Encodable {
            let backend: String
            let result: EpochResult
            func encode(to encoder: Encoder) throws {
                try result.encode(to: encoder)
                var container = encoder.container(keyedBy: Key.self)
                try container.encode(backend, forKey: Key(stringValue: "backend"))
            }
            struct Key: CodingKey {
                var stringValue: String
                init(stringValue: String) { self.stringValue = stringValue }
                var intValue: Int? { nil }
                init?(intValue: Int) { nil }
            }
        }
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(Line(backend: backend, result: r))) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}
