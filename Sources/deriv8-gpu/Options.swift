import ArgumentParser
import Deriv8
import Foundation

/// Which backend runs the job.
enum BackendKind: String, CaseIterable, ExpressibleByArgument {
    case cpu
}

struct BackendOptions: ParsableArguments {
    @Option(help: "Where the math runs: \(BackendKind.allCases.map(\.rawValue).joined(separator: ", ")).")
    var backend: BackendKind = .cpu
}

/// A comma-separated list of positive integers, e.g. `32,32`.
struct LayerWidths: ExpressibleByArgument, CustomStringConvertible {
    let widths: [Int]

    init?(argument: String) {
        let parts = argument.split(separator: ",", omittingEmptySubsequences: false)
        let widths = parts.compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !parts.isEmpty, widths.count == parts.count, widths.allSatisfy({ $0 > 0 && $0 <= 1 << 16 }) else {
            return nil
        }
        self.widths = widths
    }

    var description: String { widths.map(String.init).joined(separator: ",") }
    static var defaultCompletionKind: CompletionKind { .default }
}

/// Standard error, for progress and messages that must not mix with --json output on stdout.
struct StandardError: TextOutputStream {
    mutating func write(_ string: String) { FileHandle.standardError.write(Data(string.utf8)) }
}

func printError(_ message: String) {
    var stderr = StandardError()
    print(message, to: &stderr)
}

func positive(_ value: Int, _ flag: String) throws {
    guard value > 0 else { throw ValidationError("\(flag) must be a positive integer, got \(value)") }
}

func positive(_ value: Double, _ flag: String) throws {
    guard value > 0, value.isFinite else { throw ValidationError("\(flag) must be a positive number, got \(value)") }
}
