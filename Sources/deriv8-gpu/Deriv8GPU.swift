import ArgumentParser
import Foundation
import GPUTensor

@main
struct Deriv8GPU: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deriv8-gpu",
        abstract: "Train a multilayer perceptron on MNIST (or your own data) from scratch, on OpenCL or on the CPU.",
        discussion: """
            The default job trains the reference network (784-32-32-10, ReLU, softmax, \
            cross-entropy + L2, plain SGD, lr 0.1, batch 500, 20 epochs) and prints one line per epoch.

            Examples:
              deriv8-gpu train --epochs 5 --seed 1
              deriv8-gpu train --train-limit 5000 --test-limit 1000 --json
              deriv8-gpu runs
              deriv8-gpu gradcheck

            Exit codes: 0 success; 64 bad flags or values; 1 runtime failure (unreadable data, \
            a failed gradient check).
            """,
        version: Version.description,
        subcommands: [Train.self, Eval.self, Predict.self, Runs.self, GradCheck.self, Check.self, Devices.self, Bench.self],
        defaultSubcommand: Train.self)

    /// Parses and runs like ArgumentParser's own `main`, except that a failure prints a single
    /// line on stderr (`deriv8-gpu: error: ...`) instead of the error plus the whole usage.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            let code = exitCode(for: error)
            guard code != .success else { exit(withError: error) }   // --help, --version
            if let build = error as? KernelBuildError {
                // The one-line message, then the compiler's log as it wrote it.
                printError("deriv8-gpu: error: kernel build failed on \(build.device) (options '\(build.options)'); build log:")
                printError(build.log)
            } else {
                let lines = Self.message(for: error).split(separator: "\n", omittingEmptySubsequences: true)
                if !lines.isEmpty { printError("deriv8-gpu: error: " + lines.joined(separator: "; ")) }
            }
            Foundation.exit(code.rawValue)
        }
    }
}
