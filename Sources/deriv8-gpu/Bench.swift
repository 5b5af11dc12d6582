import ArgumentParser
import Deriv8
import Foundation
import GPUTensor

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time training epochs of the reference workload and report medians.",
        discussion: """
            Loads MNIST, builds the backend (kernel builds timed separately), runs one warm-up \
            epoch (reported on its own), then times --epochs epochs of training on 60,000 examples \
            plus evaluation on 10,000, the workload the peers (numpy, PyTorch) time. Reports the \
            median, min and max seconds per epoch, examples per second and GFLOP/s against the \
            network's dense arithmetic (7.03 GFLOP per epoch for 784-32-32-10; both backends skip \
            the zero pixels in the first layer, so they do less of it, also reported). --hidden and \
            --batch-size time other networks (e.g. --hidden 1024,1024). With --profile, a table of time per op. Compare ratios against a \
            peer run in the same session, not absolute times.
            """)

    @OptionGroup var backendOptions: BackendOptions

    @OptionGroup var dataOptions: DataOptions

    @Option(parsing: .unconditional, help: "Timed epochs after the warm-up.")
    var epochs = 10

    @Option(parsing: .unconditional, help: "Examples per gradient step.")
    var batchSize = 500

    @Option(parsing: .unconditional, help: ArgumentHelp("Hidden layer widths, comma-separated.", valueName: "n,n,..."))
    var hidden = LayerWidths(argument: "32,32")!

    @Option(parsing: .unconditional, help: "Step size (the reference's 0.1 diverges from 2048,2048 on; time wide networks at e.g. 0.01, as their peers).")
    var learningRate = 0.1

    @Option(help: "Seed for the initial weights and the shuffle.")
    var seed: UInt64 = 0

    @Flag(help: "Print one JSON object on stdout instead of the table.")
    var json = false

    @Flag(help: "Time every op (OpenCL: each kernel from profiling events; CPU: each op's wall time) and print a table per op.")
    var profile = false

    func validate() throws {
        try positive(epochs, "--epochs")
        try positive(batchSize, "--batch-size")
        try positive(learningRate, "--learning-rate")
        try hidden.validate("--hidden")
        try LayerWidths.checkWeightCountForAnyData(hidden: hidden.widths)   // makeTrainer checks the data's
    }

    func run() throws {
        try backendOptions.run(BenchJob(command: self, data: try dataOptions.resolve().path))
    }
}

struct BenchJob: BackendJob {
    let command: Bench
    let data: String

    func run<B: Backend>(on backend: B) throws {
        let clock = ContinuousClock()
        // Loading is timed on its own; the trainer loads its own copy, so this one is dropped at once.
        // Only byte inputs take the first layer's zero-skipping paths: float inputs have no density.
        let (loadSeconds, density) = try { () throws -> (Double, (train: Double, test: Double)?) in
            let loadStart = clock.now
            let data = try DataSet.load(data)
            let loadSeconds = seconds(clock.now - loadStart)
            guard case .bytes(let train) = data.train.inputs, case .bytes(let test) = data.test.inputs else {
                return (loadSeconds, nil)
            }
            return (loadSeconds, (nonZeroFraction(train), nonZeroFraction(test)))
        }()
        var config = TrainingConfig()
        config.batchSize = command.batchSize
        config.seed = command.seed
        config.hidden = command.hidden.widths
        config.learningRate = command.learningRate
        let setupStart = clock.now
        let profiler = backend as? ProfilingBackend
        if command.profile {
            guard let profiler else { throw ValidationError("--profile: the \(backend.name) backend cannot time its ops") }
            profiler.setProfiling(true)
        }
        let trainer = try makeTrainer(backend: backend, config: config, data: data, trainLimit: nil, testLimit: nil)
        let (trainCount, testCount) = (trainer.trainSet.count, trainer.testSet.count)
        try backend.synchronize()
        let setupSeconds = seconds(clock.now - setupStart)
        let warmUp = try trainer.runEpoch()
        profiler?.resetProfile()
        var times: [Double] = []
        var last = warmUp
        for _ in 0..<command.epochs {
            last = try trainer.runEpoch()
            times.append(last.trainSeconds + last.evalSeconds)
        }
        let sorted = times.sorted()
        let median = sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        let flop = epochFlop(sizes: trainer.model.sizes, train: trainCount, test: testCount)
        let summary = BenchSummary(
            backend: backend.name, device: backend.deviceDescription,
            network: trainer.model.sizes.map(String.init).joined(separator: "-"), batchSize: command.batchSize,
            epochs: command.epochs,
            secondsPerEpochMedian: median, secondsPerEpochMin: sorted.first!, secondsPerEpochMax: sorted.last!,
            examplesPerSecond: Double(trainCount) / median, gflops: flop / median / 1e9,
            gflopPerEpoch: flop / 1e9,
            gflopPerEpochSkippingZeros: epochFlop(sizes: trainer.model.sizes, train: trainCount, test: testCount,
                                                  inputDensity: density ?? (1, 1)) / 1e9,
            nonZeroPixelFraction: density?.train, testAccuracy: last.testAccuracy, warmUpSeconds: warmUp.trainSeconds + warmUp.evalSeconds,
            setupSeconds: setupSeconds, loadSeconds: loadSeconds, peakResidentMB: peakResidentMegabytes())
        if command.json {
            let encoder = JSONEncoder()
            encoder.keyEncodingStrategy = .convertToSnakeCase
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(summary), as: UTF8.self))
        } else {
            summary.printTable()
        }
        if command.profile, let profiler {
            let rows = try profiler.profile()
            let total = rows.reduce(0) { $0 + $1.totalSeconds }
            printTable([[backend is CPUBackend<B.Element> ? "op" : "kernel", "count", "total ms", "mean µs", "share"]] + rows.map { r in
                [r.kernel, String(r.count), String(format: "%.2f", r.totalSeconds * 1e3),
                 String(format: "%.1f", r.totalSeconds / Double(r.count) * 1e6),
                 String(format: "%.1f%%", 100 * r.totalSeconds / max(total, 1e-12))]
            })
            print(String(format: "op time %.1f ms over %d timed epochs (%.2f ms per epoch); the rest of each epoch is launch and host overhead",
                         total * 1e3, command.epochs, total * 1e3 / Double(command.epochs)))
        }
    }
}

struct BenchSummary: Encodable {
    let backend: String
    let device: String
    /// Layer widths, e.g. 784-32-32-10.
    let network: String
    let batchSize: Int
    let epochs: Int
    let secondsPerEpochMedian: Double
    let secondsPerEpochMin: Double
    let secondsPerEpochMax: Double
    let examplesPerSecond: Double
    let gflops: Double
    let gflopPerEpoch: Double
    /// The arithmetic actually done: the first layer's two products only touch non-zero pixels.
    let gflopPerEpochSkippingZeros: Double
    /// Of the training images' pixels; nil for float inputs (absent from the JSON).
    let nonZeroPixelFraction: Double?
    let testAccuracy: Double
    let warmUpSeconds: Double
    let setupSeconds: Double
    let loadSeconds: Double
    let peakResidentMB: Double

    func printTable() {
        printTable([
            ["backend", device],
            ["network", "\(network), batches of \(batchSize)"],
            ["data load", String(format: "%.3f s", loadSeconds)],
            ["setup (upload, kernel builds)", String(format: "%.3f s", setupSeconds)],
            ["warm-up epoch", String(format: "%.4f s", warmUpSeconds)],
            ["epochs timed", String(epochs)],
            ["seconds per epoch", String(format: "median %.4f  min %.4f  max %.4f", secondsPerEpochMedian, secondsPerEpochMin, secondsPerEpochMax)],
            ["training examples per second", String(format: "%.0f", examplesPerSecond)],
            ["arithmetic", String(format: "%.1f GFLOP/s dense-equivalent (%.2f GFLOP per epoch)", gflops, gflopPerEpoch)],
            nonZeroPixelFraction.map { fraction in
                ["done, zero pixels skipped", String(format: "%.2f GFLOP per epoch (%.1f%% of the pixels are non-zero)",
                                                     gflopPerEpochSkippingZeros, 100 * fraction)]
            } ?? ["done", "all of it: float inputs take the dense first layer, which skips no zeros"],
            ["test accuracy after the last epoch", String(format: "%.2f%%", 100 * testAccuracy)],
            ["peak resident memory", String(format: "%.0f MB", peakResidentMB)],
        ])
    }

    private func printTable(_ rows: [[String]]) { deriv8_gpu.printTable(rows) }
}

/// Floating-point operations of one epoch: per training example the forward products
/// (2·in·out per layer), the weight gradients (the same again) and the input gradients of every
/// layer but the first; per test example the forward products. Elementwise work is left out.
/// With `inputDensity`, the first layer's two products count only the non-zero pixels (the
/// fraction given for each set), as the backends compute them.
func epochFlop(sizes: [Int], train: Int, test: Int, inputDensity: (train: Double, test: Double) = (1, 1)) -> Double {
    let layers = zip(sizes, sizes.dropFirst()).map { 2.0 * Double($0 * $1) }
    func forward(_ density: Double) -> Double { layers[0] * density + layers.dropFirst().reduce(0, +) }
    let backward = forward(inputDensity.train) + layers.dropFirst().reduce(0, +)
    return Double(train) * (forward(inputDensity.train) + backward) + Double(test) * forward(inputDensity.test)
}

/// The fraction of non-zero pixels.
func nonZeroFraction(_ pixels: [UInt8]) -> Double {
    Double(pixels.reduce(0) { $0 + ($1 == 0 ? 0 : 1) }) / Double(max(pixels.count, 1))
}

/// VmHWM from /proc/self/status: the most resident memory this process has had, in MB.
func peakResidentMegabytes() -> Double {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
          let kilobytes = Double(line.split(separator: " ").dropFirst().first ?? "") else { return .nan }
    return kilobytes / 1024
}
