// End-to-end tests of the command line: each hostile input, divergence, device fault and
// interruption runs the BUILT BINARY and checks its exit code and the one line it writes on stderr.
//
// The binary is, in order: $DERIV8_BINARY; the deriv8-gpu next to the running test executable
// (the one this `swift test` just built, whatever --scratch-path or -c); else the newer of
// <package root>/.build/release/deriv8-gpu and .build/debug/deriv8-gpu. The data is
// $DERIV8_DATA, else <package root>/datasets/mnist (`make datasets`). Every process is killed,
// and the test fails, if it runs longer than its timeout: nothing here can hang.
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Locating the binary and the data

enum CLI {
    /// The package root: this file is <root>/Tests/CLITests/CLITests.swift.
    static let root: String = {
        let here = URL(fileURLWithPath: #filePath)
        let root = here.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        if FileManager.default.fileExists(atPath: root.appendingPathComponent("Package.swift").path) { return root.path }
        return FileManager.default.currentDirectoryPath
    }()

    static let binary: String? = {
        let fm = FileManager.default
        let environment = ProcessInfo.processInfo.environment
        if let path = environment["DERIV8_BINARY"], !path.isEmpty { return path }
        // The test runner lives in <scratch>/<configuration>/, next to the executable it built.
        if let runner = Bundle.main.executableURL?.resolvingSymlinksInPath() {
            var folder = runner.deletingLastPathComponent()
            for _ in 0..<4 {   // <config>/X.xctest on Linux; <config>/X.xctest/Contents/MacOS/X on macOS
                let candidate = folder.appendingPathComponent("deriv8-gpu").path
                if isExecutableFile(candidate) { return candidate }
                folder = folder.deletingLastPathComponent()
            }
        }
        let candidates = ["release", "debug"].map { "\(root)/.build/\($0)/deriv8-gpu" }.filter(isExecutableFile)
        return candidates.max { modified($0) < modified($1) }
    }()

    static let data: String = {
        if let path = ProcessInfo.processInfo.environment["DERIV8_DATA"], !path.isEmpty { return path }
        return "\(root)/datasets/mnist"
    }()

    private static func isExecutableFile(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && !isDirectory.boolValue
            && FileManager.default.isExecutableFile(atPath: path)
    }

    private static func modified(_ path: String) -> Date {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date) ?? .distantPast
    }

    static func requireBinary() throws -> String {
        try #require(binary != nil, "no deriv8-gpu binary: build it (swift build) or set DERIV8_BINARY")
        return binary!
    }

    static func requireData() throws -> String {
        let image = "\(data)/t10k-images-idx3-ubyte.gz"
        try #require(FileManager.default.fileExists(atPath: image),
                     "no MNIST at \(data): run `make datasets` or set DERIV8_DATA")
        return data
    }
}

// MARK: - Running it

/// What a finished run left behind.
struct Outcome: Sendable, CustomStringConvertible {
    let arguments: [String]
    let reason: Process.TerminationReason
    let status: Int32
    let stdout: String
    let stderr: String
    let timedOut: Bool

    /// Exited normally (not killed by a signal, not a crash) with `code`.
    func exited(_ code: Int32) -> Bool { !timedOut && reason == .exit && status == code }

    var stderrLines: [Substring] { stderr.split(separator: "\n", omittingEmptySubsequences: false).dropLast(stderr.hasSuffix("\n") ? 1 : 0).map { $0 } }

    var description: String {
        let how = timedOut ? "TIMED OUT" : reason == .exit ? "exit \(status)" : "killed by signal \(status)"
        return "\(CLI.binary ?? "deriv8-gpu") \(arguments.joined(separator: " ")) -> \(how)\n--- stderr:\n\(stderr)--- stdout (last 2000 characters):\n\(stdout.suffix(2000))"
    }
}

/// A temporary folder, removed when the test is done with it.
final class Scratch: Sendable {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "deriv8-cli-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func sub(_ name: String) -> String { "\(path)/\(name)" }

    func folder(_ name: String) throws -> String {
        try FileManager.default.createDirectory(atPath: sub(name), withIntermediateDirectories: true)
        return sub(name)
    }
}

/// A started deriv8-gpu process whose stdout and stderr go to files (no pipe can fill up and
/// block it, and stdout can be read while it runs).
final class Running: @unchecked Sendable {
    let process = Process()
    let arguments: [String]
    let stdoutPath: String
    let stderrPath: String

    /// How SIGINT and SIGTERM arrive in the child: unblocked, as a shell starts it, or blocked,
    /// as a child of a thread that blocks them (Swift concurrency and dispatch worker threads,
    /// where these tests run, block nearly every signal, and a child inherits its parent's mask).
    enum SignalMask { case unblocked, blocked }

    init(_ arguments: [String], environment: [String: String] = [:], signalMask: SignalMask = .unblocked,
         scratch: Scratch) throws {
        self.arguments = arguments
        let id = UUID().uuidString
        stdoutPath = scratch.sub("stdout-\(id)")
        stderrPath = scratch.sub("stderr-\(id)")
        _ = FileManager.default.createFile(atPath: stdoutPath, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: try CLI.requireBinary())
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: CLI.root)
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = try #require(FileHandle(forWritingAtPath: stdoutPath))
        let err = try #require(FileHandle(forWritingAtPath: stderrPath))
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        // posix_spawn runs in this thread and the child starts with this thread's signal mask;
        // set it for the spawn only (this function is synchronous: the thread cannot change).
        var signals = sigset_t(), saved = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGINT)
        sigaddset(&signals, SIGTERM)
        pthread_sigmask(signalMask == .blocked ? SIG_BLOCK : SIG_UNBLOCK, &signals, &saved)
        defer { pthread_sigmask(SIG_SETMASK, &saved, nil) }
        try process.run()
        try out.close()
        try err.close()
    }

    var stdoutSoFar: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }

    /// Signals the child. Foundation's `processIdentifier` was seen to name no live process
    /// while the child ran (kill failed with ESRCH) when many tests spawn at once, so the child
    /// is found in /proc as the process that has this run's stdout file open.
    func send(_ signal: Int32) {
        kill(childPID() ?? process.processIdentifier, signal)
    }

    private func childPID() -> pid_t? {
        // The stdout file is this run's alone; the child is the deriv8-gpu process holding it open.
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return nil }
        for entry in entries {
            guard let pid = pid_t(entry), pid != getpid(),
                  let fds = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(entry)/fd") else { continue }
            for fd in fds where (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(entry)/fd/\(fd)")) == stdoutPath {
                return pid
            }
        }
        return nil
    }

    /// Waits for the process to end; past `timeout` seconds kills it (SIGKILL) and records an issue.
    func finish(timeout: Double) async -> Outcome {
        let deadline = ContinuousClock.now + .milliseconds(Int(timeout * 1000))
        var timedOut = false
        while process.isRunning {
            if ContinuousClock.now > deadline {
                kill(childPID() ?? process.processIdentifier, SIGKILL)
                timedOut = true
                break
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        process.waitUntilExit()
        let outcome = Outcome(arguments: arguments, reason: process.terminationReason, status: process.terminationStatus,
                              stdout: (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "",
                              stderr: (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "",
                              timedOut: timedOut)
        if timedOut { Issue.record("killed after \(timeout) s (a hang): \(outcome)") }
        return outcome
    }

    /// Polls stdout until it contains `text`; false if the process ends first or `timeout` passes.
    func waitForStdout(_ text: String, timeout: Double) async -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int(timeout * 1000))
        while ContinuousClock.now < deadline {
            if stdoutSoFar.contains(text) { return true }
            if !process.isRunning { return stdoutSoFar.contains(text) }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return false
    }
}

/// Runs deriv8-gpu to the end (at most `timeout` seconds).
func deriv8(_ arguments: [String], environment: [String: String] = [:], timeout: Double = 60,
            scratch: Scratch) async throws -> Outcome {
    try await Running(arguments, environment: environment, scratch: scratch).finish(timeout: timeout)
}

/// The run failed with `code` and exactly one line on stderr, `deriv8-gpu: error: ...`,
/// containing every phrase.
func expectOneLineError(_ r: Outcome, code: Int32, _ phrases: [String],
                        sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(r.exited(code), "expected exit \(code): \(r)", sourceLocation: sourceLocation)
    let lines = r.stderrLines
    #expect(lines.count == 1, "expected one line on stderr, got \(lines.count): \(r)", sourceLocation: sourceLocation)
    let first = lines.first.map(String.init) ?? ""
    #expect(first.hasPrefix("deriv8-gpu: error: "), "stderr does not start with 'deriv8-gpu: error: ': \(r)",
            sourceLocation: sourceLocation)
    for phrase in phrases {
        #expect(first.contains(phrase), "stderr lacks \"\(phrase)\": \(r)", sourceLocation: sourceLocation)
    }
}

/// Arguments for a short training run on the first examples of real MNIST.
func shortTraining(_ scratch: Scratch, backend: String = "cpu", epochs: Int = 1, train: Int = 1000,
                   test: Int = 100) throws -> [String] {
    ["train", "--backend", backend, "--data", try CLI.requireData(), "--epochs", String(epochs),
     "--train-limit", String(train), "--test-limit", String(test), "--results", scratch.sub("results")]
}

// MARK: - Files to feed it

/// IDX bytes: magic, big-endian dimensions, then the payload.
func idx(magic: UInt32, dims: [UInt32], payload: [UInt8]) -> [UInt8] {
    func bigEndian(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 255), UInt8((v >> 8) & 255), UInt8(v & 255)] }
    return bigEndian(magic) + dims.flatMap(bigEndian) + payload
}

func write(_ bytes: [UInt8], to path: String) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

/// A --data folder of four tiny valid uncompressed IDX files (3 training and 3 test images of
/// 28x28), into which a test then puts one hostile file.
func tinyDataFolder(_ scratch: Scratch, _ name: String) throws -> String {
    let folder = try scratch.folder(name)
    try write(idx(magic: 2051, dims: [3, 28, 28], payload: Array(repeating: 7, count: 3 * 784)), to: "\(folder)/train-images-idx3-ubyte")
    try write(idx(magic: 2049, dims: [3], payload: [1, 2, 3]), to: "\(folder)/train-labels-idx1-ubyte")
    try write(idx(magic: 2051, dims: [3, 28, 28], payload: Array(repeating: 0, count: 3 * 784)), to: "\(folder)/t10k-images-idx3-ubyte")
    try write(idx(magic: 2049, dims: [3], payload: [4, 5, 6]), to: "\(folder)/t10k-labels-idx1-ubyte")
    return folder
}

struct FixtureError: Error, CustomStringConvertible { let description: String }

/// One checkpoint from a real 1-epoch run, made once and shared by the tests that only read it.
enum Fixture {
    static let checkpoint = Task<String, Error> {
        let scratch = try Scratch()
        let path = scratch.sub("m.safetensors")
        let r = try await deriv8(try shortTraining(scratch) + ["--save", path], scratch: scratch)
        guard r.exited(0) else { throw FixtureError(description: "could not make the shared checkpoint: \(r)") }
        // The scratch folder goes when this closure returns; keep the file until the test
        // process exits.
        try? FileManager.default.removeItem(atPath: keptPath)
        try FileManager.default.copyItem(atPath: path, toPath: keptPath)
        atexit { try? FileManager.default.removeItem(atPath: Fixture.keptPath) }
        return keptPath
    }

    static var keptPath: String {
        NSTemporaryDirectory() + "deriv8-cli-checkpoint-\(ProcessInfo.processInfo.processIdentifier).safetensors"
    }
}

// MARK: - 1. Usage errors: exit 64, one line

struct UsageCase: Sendable, CustomTestStringConvertible {
    let arguments: [String]
    let phrases: [String]
    /// Append --results (train only; eval and predict have no such option).
    let train: Bool
    var testDescription: String { arguments.joined(separator: " ") }
}

@Suite("command line: usage errors exit 64 with one line")
struct UsageErrorTests {
    static let cases: [UsageCase] = [
        UsageCase(arguments: ["train", "--batch-size", "0"], phrases: ["--batch-size must be a positive integer, got 0"], train: true),
        UsageCase(arguments: ["train", "--hidden", "32,x"], phrases: ["'32,x'", "--hidden"], train: true),
        UsageCase(arguments: ["train", "--hidden", "0"], phrases: ["--hidden 0: every width must be at least 1, got 0"], train: true),
        UsageCase(arguments: ["train", "--hidden", "32,-4"], phrases: ["--hidden 32,-4: every width must be at least 1, got -4"], train: true),
        UsageCase(arguments: ["train", "--epochs", "-1"], phrases: ["--epochs must be a positive integer, got -1"], train: true),
        UsageCase(arguments: ["train", "--hidden", "100000,100000"], phrases: ["--hidden 100000,100000 gives", "weights; the limit is 50 million"], train: true),
        UsageCase(arguments: ["predict", "--model", "/nonexistent/m.safetensors", "--index", "-1"], phrases: ["--index"], train: false),
        UsageCase(arguments: ["train", "--epochs=-1"], phrases: ["--epochs must be a positive integer, got -1"], train: true),
        UsageCase(arguments: ["train", "--learning-rate", "nan"], phrases: ["--learning-rate must be a positive number"], train: true),
        UsageCase(arguments: ["train", "--data", "/nonexistent"], phrases: ["--data /nonexistent", "no such file or folder"], train: true),
        UsageCase(arguments: ["train", "--no-such-flag"], phrases: ["Unknown option '--no-such-flag'"], train: true),
        // A mistake in the flags is named before any file is looked at, even where the data is missing.
        UsageCase(arguments: ["train", "--data", "/nonexistent", "--bogus"], phrases: ["Unknown option '--bogus'"], train: true),
        UsageCase(arguments: ["trian", "--data", "/nonexistent"], phrases: ["Unexpected argument 'trian'"], train: false),
        UsageCase(arguments: ["train", "--device", "1", "--backend", "cpu"], phrases: ["--device", "--backend cpu"], train: true),
        UsageCase(arguments: ["predict", "--model", "/nonexistent/m.safetensors"], phrases: ["give either --index or --image"], train: false),
        UsageCase(arguments: ["predict", "--model", "/nonexistent/m.safetensors", "--index", "0", "--image", "/nonexistent/a.pgm"],
                  phrases: ["give either --index or --image"], train: false),
        UsageCase(arguments: ["eval"], phrases: ["--model"], train: false),
        UsageCase(arguments: ["gradcheck", "--classes", "257"], phrases: ["--classes must be 2 to 256, got 257"], train: false),
    ]

    @Test("refused before anything runs", arguments: cases)
    func usage(_ c: UsageCase) async throws {
        let scratch = try Scratch()
        let results = try scratch.folder("results")
        let r = try await deriv8(c.arguments + (c.train ? ["--results", results] : []), timeout: 30, scratch: scratch)
        expectOneLineError(r, code: 64, c.phrases)
        #expect(r.stdout.isEmpty, "a usage error printed on stdout: \(r)")
        let written = try FileManager.default.contentsOfDirectory(atPath: results)
        #expect(written.isEmpty, "a usage error wrote \(written) under --results")
    }
}

// MARK: - 2. Hostile data files: exit 1, one line naming the file

enum HostileData: String, CaseIterable, Sendable {
    case truncatedGzip, garbage, garbageNamedGz, corruptGzip, badMagic, empty, directory, fourBillionImages, oneClass

    /// Writes the hostile file into `folder`; returns its path and a phrase the error must contain.
    func plant(in folder: String) throws -> (path: String, phrase: String) {
        let images = "\(folder)/train-images-idx3-ubyte"
        // Each case replaces the tiny valid training images (or labels) with its own file.
        try? FileManager.default.removeItem(atPath: images)
        switch self {
        case .truncatedGzip:
            // The first half of the real test images' gzip file: the stream ends without its trailer.
            let real = try Data(contentsOf: URL(fileURLWithPath: "\(try CLI.requireData())/t10k-images-idx3-ubyte.gz"))
            try real.prefix(real.count / 2).write(to: URL(fileURLWithPath: images + ".gz"))
            return (images + ".gz", "truncated")
        case .garbage:
            try write((0..<2000).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }, to: images)
            return (images, "bad magic number")
        case .garbageNamedGz:
            try write((0..<2000).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }, to: images + ".gz")
            return (images + ".gz", "bad magic number")
        case .corruptGzip:
            // A gzip header (magic, deflate, no flags) followed by bytes that are not deflate data.
            try write([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3] + Array(repeating: 0xff, count: 500), to: images + ".gz")
            return (images + ".gz", "gzip")
        case .badMagic:
            try write(idx(magic: 2049, dims: [3, 28, 28], payload: Array(repeating: 7, count: 3 * 784)), to: images)
            return (images, "bad magic number 2049")
        case .empty:
            try write([], to: images)
            return (images, "file is empty")
        case .directory:
            try FileManager.default.createDirectory(atPath: images + ".gz", withIntermediateDirectories: false)
            return (images + ".gz", "is a directory")
        case .fourBillionImages:
            try write(idx(magic: 2051, dims: [4_000_000_000, 28, 28], payload: [1, 2, 3]), to: images)
            return (images, "more than the file holds")
        case .oneClass:
            // Every label 0, in both sets: nothing to tell apart.
            try write(idx(magic: 2051, dims: [3, 28, 28], payload: Array(repeating: 7, count: 3 * 784)), to: images)
            try write(idx(magic: 2049, dims: [3], payload: [0, 0, 0]), to: "\(folder)/train-labels-idx1-ubyte")
            try write(idx(magic: 2049, dims: [3], payload: [0, 0, 0]), to: "\(folder)/t10k-labels-idx1-ubyte")
            return (folder, "every label is 0: a classifier needs at least 2 classes")
        }
    }
}

@Suite("command line: hostile data files exit 1 with one line naming the file")
struct HostileDataTests {
    @Test("the tiny data folder itself is valid (so each failure below is the hostile file's)")
    func tinyFolderTrains() async throws {
        let scratch = try Scratch()
        let folder = try tinyDataFolder(scratch, "data")
        let r = try await deriv8(["train", "--backend", "cpu", "--data", folder, "--epochs", "1", "--results", scratch.sub("results")],
                                 timeout: 30, scratch: scratch)
        #expect(r.exited(0), "\(r)")
    }

    @Test("train --data refuses it", arguments: HostileData.allCases)
    func hostile(_ c: HostileData) async throws {
        let scratch = try Scratch()
        let folder = try tinyDataFolder(scratch, "data")
        let (path, phrase) = try c.plant(in: folder)
        let r = try await deriv8(["train", "--backend", "cpu", "--data", folder, "--epochs", "1", "--results", scratch.sub("results")],
                                 timeout: 20, scratch: scratch)
        expectOneLineError(r, code: 1, [path, phrase])
    }

    @Test("eval --data refuses it too (a corrupt test-images file)")
    func evalHostileTestImages() async throws {
        let scratch = try Scratch()
        let model = try await Fixture.checkpoint.value
        let folder = try tinyDataFolder(scratch, "data")
        let images = "\(folder)/t10k-images-idx3-ubyte"
        try write(Array(idx(magic: 2051, dims: [3, 28, 28], payload: Array(repeating: 7, count: 3 * 784)).dropLast(100)), to: images)
        let r = try await deriv8(["eval", "--backend", "cpu", "--model", model, "--data", folder], timeout: 20, scratch: scratch)
        expectOneLineError(r, code: 1, [images, "truncated"])
    }
}

// MARK: - 3. Hostile checkpoints and PGM images

enum HostileCheckpoint: String, CaseIterable, Sendable {
    case empty, truncatedInHeader, truncatedInData, garbageJSONHeader, absurdHeaderLength, directory, missing

    func plant(_ good: String, in scratch: Scratch) throws -> (path: String, phrase: String) {
        let path = scratch.sub("\(rawValue).safetensors")
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: good)))
        switch self {
        case .empty:
            try write([], to: path)
            return (path, "too short for a safetensors file")
        case .truncatedInHeader:
            try write(Array(bytes.prefix(100)), to: path)
            return (path, "does not fit")
        case .truncatedInData:
            try write(Array(bytes.prefix(bytes.count / 2)), to: path)
            return (path, "outside the")
        case .garbageJSONHeader:
            let header = Array("{this is not json at all, no...}".utf8)
            try write([UInt8(header.count), 0, 0, 0, 0, 0, 0, 0] + header + Array(repeating: 0, count: 64), to: path)
            return (path, "header is not valid JSON")
        case .absurdHeaderLength:
            try write(Array(repeating: 0xff, count: 8) + Array(bytes.dropFirst(8)), to: path)
            return (path, "not a safetensors file")
        case .directory:
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
            return (path, "is a directory")
        case .missing:
            return (path, "no such file")
        }
    }
}

enum HostilePGM: String, CaseIterable, Sendable {
    case width27, badMagic, truncated

    func plant(in scratch: Scratch) throws -> (path: String, phrase: String) {
        let path = scratch.sub("\(rawValue).pgm")
        switch self {
        case .width27:
            try write(Array("P5\n27 28\n255\n".utf8) + Array(repeating: 0, count: 27 * 28), to: path)
            return (path, "is 27x28; the model takes 28x28 images")
        case .badMagic:
            try write(Array("P6\n28 28\n255\n".utf8) + Array(repeating: 0, count: 28 * 28), to: path)
            return (path, "bad magic number")
        case .truncated:
            try write(Array("P5\n28 28\n255\n".utf8) + Array(repeating: 0, count: 700), to: path)
            return (path, "truncated: expected 784 bytes of pixel data, found 700")
        }
    }
}

@Suite("command line: hostile checkpoints and images exit 1 with one line naming the file")
struct HostileModelTests {
    @Test("the shared checkpoint itself evaluates and predicts")
    func goodCheckpoint() async throws {
        let scratch = try Scratch()
        let model = try await Fixture.checkpoint.value
        let r = try await deriv8(["eval", "--backend", "cpu", "--model", model, "--data", try CLI.requireData()], scratch: scratch)
        #expect(r.exited(0), "\(r)")
        #expect(r.stdout.contains("accuracy"), "\(r)")
        let image = scratch.sub("good.pgm")
        try write(Array("P5\n28 28\n255\n".utf8) + Array(repeating: 0, count: 784), to: image)
        let p = try await deriv8(["predict", "--backend", "cpu", "--model", model, "--image", image], scratch: scratch)
        #expect(p.exited(0), "\(p)")
        #expect(p.stdout.contains("predicted"), "\(p)")
    }

    @Test("eval --model refuses it", arguments: HostileCheckpoint.allCases)
    func evalHostile(_ c: HostileCheckpoint) async throws {
        let scratch = try Scratch()
        let (path, phrase) = try c.plant(try await Fixture.checkpoint.value, in: scratch)
        let r = try await deriv8(["eval", "--backend", "cpu", "--model", path, "--data", try CLI.requireData()],
                                 timeout: 20, scratch: scratch)
        expectOneLineError(r, code: 1, [path, phrase])
    }

    @Test("train --resume and predict --model refuse a truncated checkpoint")
    func resumeAndPredictHostile() async throws {
        let scratch = try Scratch()
        let (path, phrase) = try HostileCheckpoint.truncatedInData.plant(try await Fixture.checkpoint.value, in: scratch)
        let train = try await deriv8(try shortTraining(scratch) + ["--resume", path], timeout: 20, scratch: scratch)
        expectOneLineError(train, code: 1, [path, phrase])
        let predict = try await deriv8(["predict", "--backend", "cpu", "--model", path, "--index", "0", "--data", try CLI.requireData()],
                                       timeout: 20, scratch: scratch)
        expectOneLineError(predict, code: 1, [path, phrase])
    }

    @Test("predict --image refuses it", arguments: HostilePGM.allCases)
    func predictHostile(_ c: HostilePGM) async throws {
        let scratch = try Scratch()
        let model = try await Fixture.checkpoint.value
        let (path, phrase) = try c.plant(in: scratch)
        let r = try await deriv8(["predict", "--backend", "cpu", "--model", model, "--image", path], timeout: 20, scratch: scratch)
        expectOneLineError(r, code: 1, [path, phrase])
        #expect(r.stdout.isEmpty, "\(r)")
    }
}

// MARK: - Saving and resuming

@Suite("command line: --save never overwrites by accident, --resume keeps what it trains")
struct SaveAndResumeTests {
    /// The checkpoint's epoch count, as `eval` reports it.
    func epochs(of path: String, _ scratch: Scratch) async throws -> String {
        let eval = try await deriv8(["eval", "--backend", "cpu", "--model", path, "--data", try CLI.requireData()], scratch: scratch)
        #expect(eval.exited(0), "\(eval)")
        return eval.stdout.firstMatch(of: /(\d+) epochs/).map { String($0.1) } ?? "none in \(eval)"
    }

    @Test("--resume without --save saves back to the file it resumed, and may change the learning rate, saying so")
    func resumeSavesBack() async throws {
        let scratch = try Scratch()
        let path = scratch.sub("m.safetensors")
        let first = try await deriv8(try shortTraining(scratch) + ["--save", path], scratch: scratch)
        #expect(first.exited(0), "\(first)")
        let resumed = try await deriv8(try shortTraining(scratch, epochs: 2) + ["--resume", path, "--learning-rate", "0.05"],
                                       scratch: scratch)
        #expect(resumed.exited(0), "\(resumed)")
        #expect(resumed.stdout.contains("saving    \(path)"), "\(resumed)")
        #expect(resumed.stdout.contains("changed   learning rate 0.1 → 0.05, epochs 1 → 2"), "\(resumed)")
        #expect(try await epochs(of: path, scratch) == "2")
    }

    @Test("--resume refuses, with exit 64, every flag that would change the network or the data, naming each")
    func resumeRefusesConflicts() async throws {
        let scratch = try Scratch()
        let path = scratch.sub("m.safetensors")
        #expect(try await deriv8(try shortTraining(scratch) + ["--save", path], scratch: scratch).exited(0))
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        let r = try await deriv8(try shortTraining(scratch, epochs: 2) + [
            "--resume", path, "--hidden", "64,64", "--seed", "3", "--batch-size", "100", "--optimizer", "adam",
            "--init", "he", "--shuffle", "every-epoch",
        ], scratch: scratch)
        expectOneLineError(r, code: 64, ["--hidden 64,64 (the checkpoint has 32,32)", "--seed 3", "--batch-size 100",
                                         "--optimizer adam", "--init he", "--shuffle every-epoch"])
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
        // Data of another image size than the checkpoint's network takes.
        let small = try scratch.folder("small")
        try write(idx(magic: 2051, dims: [3, 20, 20], payload: Array(repeating: 7, count: 3 * 400)), to: "\(small)/train-images-idx3-ubyte")
        try write(idx(magic: 2049, dims: [3], payload: [1, 2, 3]), to: "\(small)/train-labels-idx1-ubyte")
        try write(idx(magic: 2051, dims: [3, 20, 20], payload: Array(repeating: 0, count: 3 * 400)), to: "\(small)/t10k-images-idx3-ubyte")
        try write(idx(magic: 2049, dims: [3], payload: [4, 5, 6]), to: "\(small)/t10k-labels-idx1-ubyte")
        let otherShapes = try await deriv8(["train", "--backend", "cpu", "--data", small, "--epochs", "2", "--resume", path,
                                            "--results", scratch.sub("results")], scratch: scratch)
        expectOneLineError(otherShapes, code: 64, ["--resume \(path)", "784-32-32-10", "400-32-32-7"])
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
        // The same values as the checkpoint's are not a change.
        let same = try await deriv8(try shortTraining(scratch, epochs: 2) + ["--resume", path, "--hidden", "32,32", "--seed", "0"],
                                    scratch: scratch)
        #expect(same.exited(0), "\(same)")
    }

    @Test("--save onto an existing file: exit 64 naming it and --force, the file unchanged; --force replaces it")
    func saveRefusesOverwrite() async throws {
        let scratch = try Scratch()
        let path = scratch.sub("m.safetensors")
        #expect(try await deriv8(try shortTraining(scratch) + ["--save", path], scratch: scratch).exited(0))
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        let again = try await deriv8(try shortTraining(scratch) + ["--save", path, "--seed", "1"], scratch: scratch)
        expectOneLineError(again, code: 64, [path, "exists", "--force"])
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before, "the refused run changed the file")
        let forced = try await deriv8(try shortTraining(scratch) + ["--save", path, "--seed", "1", "--force"], scratch: scratch)
        #expect(forced.exited(0), "\(forced)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) != before, "--force did not replace the file")
    }

    @Test("a checkpoint another run is writing is refused, naming the process that holds its lock")
    func lockedCheckpoint() async throws {
        let scratch = try Scratch()
        let path = scratch.sub("m.safetensors")
        let lockPath = path + ".lock"
        let descriptor = open(lockPath, O_RDWR | O_CREAT, 0o644)
        #expect(descriptor >= 0)
        defer { close(descriptor) }
        #expect(flock(descriptor, LOCK_EX | LOCK_NB) == 0)
        _ = "4242\n".withCString { write(descriptor, $0, 5) }
        let r = try await deriv8(try shortTraining(scratch) + ["--save", path], scratch: scratch)
        expectOneLineError(r, code: 1, [path, "another run", "process 4242"])
        #expect(!FileManager.default.fileExists(atPath: path), "the refused run wrote the checkpoint")
        flock(descriptor, LOCK_UN)
        let after = try await deriv8(try shortTraining(scratch) + ["--save", path], scratch: scratch)
        #expect(after.exited(0), "once the lock is free the run saves: \(after)")
        #expect(!FileManager.default.fileExists(atPath: lockPath), "the run left its lock file behind")
    }

    @Test("eval, predict and --resume use the checkpoint's data set; another one only when asked, with a note; predict --image needs none")
    func checkpointsKnowTheirData() async throws {
        let scratch = try Scratch()
        let fashion = "/usr/share/datasets/fashion-mnist"   // Debian's dataset-fashion-mnist (make packages)
        try #require(FileManager.default.fileExists(atPath: fashion), "install dataset-fashion-mnist (make packages)")
        let path = scratch.sub("f.safetensors")
        let train = try await deriv8(["train", "--backend", "cpu", "--dataset", "fashion-mnist", "--epochs", "1", "--train-limit", "1000",
                                      "--test-limit", "100", "--save", path, "--results", scratch.sub("results")], scratch: scratch)
        #expect(train.exited(0), "\(train)")
        let eval = try await deriv8(["eval", "--backend", "cpu", "--model", path], scratch: scratch)
        #expect(eval.exited(0) && eval.stderr.isEmpty, "\(eval)")
        #expect(eval.stdout.contains("Ankle boot"), "eval did not use Fashion-MNIST's classes: \(eval)")
        let other = try await deriv8(["eval", "--backend", "cpu", "--model", path, "--dataset", "mnist", "--data", try CLI.requireData()],
                                     scratch: scratch)
        #expect(other.exited(0), "\(other)")
        #expect(other.stderr.contains("was trained on fashion-mnist; using mnist"), "\(other)")
        let predict = try await deriv8(["predict", "--backend", "cpu", "--model", path, "--index", "0", "--json"], scratch: scratch)
        #expect(predict.exited(0), "\(predict)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(predict.stdout.utf8)) as? [String: Any], "\(predict)")
        #expect(object["true_name"] as? String == "Ankle boot", "\(predict)")   // Fashion-MNIST's first test image
        let image = scratch.sub("blank.pgm")
        try write(Array("P5\n28 28\n255\n".utf8) + Array(repeating: 0, count: 784), to: image)
        let fromImage = try await deriv8(["predict", "--backend", "cpu", "--model", path, "--image", image, "--data", "/nonexistent"],
                                         scratch: scratch)
        #expect(fromImage.exited(0), "predict --image looked for a data set: \(fromImage)")
        let resumed = try await deriv8(try shortTraining(scratch, epochs: 2) + ["--resume", path, "--dataset", "mnist"], scratch: scratch)
        expectOneLineError(resumed, code: 64, ["--dataset mnist (the checkpoint has fashion-mnist)"])
    }

    @Test("a resumed run continues its results folder (metrics.csv holds every epoch); if that is gone, a new one records resumed_from")
    func resumeContinuesResults() async throws {
        let scratch = try Scratch()
        let path = scratch.sub("m.safetensors"), results = scratch.sub("results")
        #expect(try await deriv8(try shortTraining(scratch, epochs: 2) + ["--save", path], scratch: scratch).exited(0))
        let folders = try FileManager.default.contentsOfDirectory(atPath: results)
        try #require(folders.count == 1, "\(folders)")
        let resumed = try await deriv8(try shortTraining(scratch, epochs: 3) + ["--resume", path], scratch: scratch)
        #expect(resumed.exited(0), "\(resumed)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: results) == folders, "the resumed run made another folder")
        let metrics = try String(contentsOfFile: "\(results)/\(folders[0])/metrics.csv", encoding: .utf8)
        #expect(metrics.split(separator: "\n").dropFirst().map { $0.prefix(2) } == ["1,", "2,", "3,"], "\(metrics)")
        let config = try String(contentsOfFile: "\(results)/\(folders[0])/config.json", encoding: .utf8)
        #expect(config.contains("\"resumed_from\"") && config.contains("\"epochs\" : 3"), "\(config)")
        // How the run was started: the command line, the data set, the checkpoint it saves to.
        #expect(config.contains("\"version\" : \"deriv8-gpu ") && config.contains("\"command\"") && config.contains("\"--resume\"") && config.contains("\"dataset\" : \"mnist\"")
                && config.contains("\"save\" : \"\(path)\"")
                && config.contains("\"train-images-idx3-ubyte.gz\" : \"eb392171\""), "\(config)")   // the canonical file's CRC-32

        try FileManager.default.removeItem(atPath: results)
        let again = try await deriv8(try shortTraining(scratch, epochs: 4) + ["--resume", path], scratch: scratch)
        #expect(again.exited(0), "\(again)")
        let fresh = try FileManager.default.contentsOfDirectory(atPath: results)
        try #require(fresh.count == 1, "\(fresh)")
        let freshMetrics = try String(contentsOfFile: "\(results)/\(fresh[0])/metrics.csv", encoding: .utf8)
        #expect(freshMetrics.split(separator: "\n").dropFirst().map { $0.prefix(2) } == ["4,"], "\(freshMetrics)")
        let freshConfig = try String(contentsOfFile: "\(results)/\(fresh[0])/config.json", encoding: .utf8)
        #expect(freshConfig.contains("\"after_epoch\" : 3"), "\(freshConfig)")
    }

    @Test("a batch larger than the training set is said in the header, not silently capped")
    func batchLargerThanTrainingSet() async throws {
        let scratch = try Scratch()
        let r = try await deriv8(try shortTraining(scratch) + ["--batch-size", "5000"], scratch: scratch)
        #expect(r.exited(0), "\(r)")
        #expect(r.stdout.contains("note      batch 5000 is more than the 1000 training examples: each step uses all of them"), "\(r)")
    }

    @Test("--version names the release and the commit")
    func version() async throws {
        let scratch = try Scratch()
        let r = try await deriv8(["--version"], scratch: scratch)
        #expect(r.exited(0), "\(r)")
        #expect(r.stdout.hasPrefix("deriv8-gpu ") && r.stdout.contains("(commit "), "\(r)")
    }

    @Test("--momentum with an optimizer that has none is refused")
    func momentumWithoutMomentum() async throws {
        let scratch = try Scratch()
        let r = try await deriv8(try shortTraining(scratch) + ["--momentum", "0.5"], scratch: scratch)
        expectOneLineError(r, code: 64, ["--momentum", "sgd"])
    }
}

// MARK: - 4. Divergence

@Suite("command line: a diverging run stops with exit 1, one line, and keeps the last good checkpoint")
struct DivergenceTests {
    @Test("lr 1000 diverges in epoch 1 and saves nothing")
    func divergesFirstEpoch() async throws {
        let scratch = try Scratch()
        let saveFolder = try scratch.folder("save")
        let path = "\(saveFolder)/d.safetensors"
        let r = try await deriv8(try shortTraining(scratch, epochs: 2, train: 2000, test: 200) + ["--learning-rate", "1000", "--save", path],
                                 timeout: 30, scratch: scratch)
        expectOneLineError(r, code: 1, ["diverged", "epoch 1", "batch", "smaller --learning-rate"])
        // Nothing good to keep: no checkpoint, and no temporary file left by an atomic write.
        let left = try FileManager.default.contentsOfDirectory(atPath: saveFolder)
        #expect(left.isEmpty, "the save folder holds \(left)")
    }

    @Test("a run that diverges before its first save leaves an existing checkpoint at --save untouched")
    func keepsExistingCheckpoint() async throws {
        let scratch = try Scratch()
        let path = scratch.sub("p.safetensors")
        let good = try await deriv8(try shortTraining(scratch, train: 2000, test: 200) + ["--save", path], scratch: scratch)
        #expect(good.exited(0), "\(good)")
        let before = try Data(contentsOf: URL(fileURLWithPath: path))
        let r = try await deriv8(try shortTraining(scratch, epochs: 2, train: 2000, test: 200) + ["--learning-rate", "1000", "--save", path, "--force"],
                                 timeout: 30, scratch: scratch)
        expectOneLineError(r, code: 1, ["diverged", "epoch 1", "smaller --learning-rate"])
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before, "the good checkpoint was changed")
        let eval = try await deriv8(["eval", "--backend", "cpu", "--model", path, "--data", try CLI.requireData()], scratch: scratch)
        #expect(eval.exited(0), "\(eval)")
    }

    @Test("a run that diverges in a later epoch keeps the checkpoint of the epoch before")
    func divergesLaterEpoch() async throws {
        // One batch per epoch: the first batch's loss is measured before its (huge) update, so
        // epoch 1 completes and is saved, and the loss explodes in a later epoch.
        let scratch = try Scratch()
        let path = scratch.sub("p.safetensors")
        let r = try await deriv8(try shortTraining(scratch, epochs: 10, train: 500) + ["--batch-size", "500", "--learning-rate", "1000", "--save", path],
                                 timeout: 30, scratch: scratch)
        expectOneLineError(r, code: 1, ["diverged", "smaller --learning-rate"])
        let match = r.stderr.firstMatch(of: /at epoch (\d+), batch/)
        let epoch = try #require(match.flatMap { Int($0.1) }, "no epoch in \(r)")
        #expect(epoch >= 2, "expected the divergence after the first epoch: \(r)")
        let eval = try await deriv8(["eval", "--backend", "cpu", "--model", path, "--data", try CLI.requireData()], scratch: scratch)
        #expect(eval.exited(0), "\(eval)")
        #expect(eval.stdout.contains("\(epoch - 1) epochs"), "the checkpoint is not the one of epoch \(epoch - 1): \(eval)")
    }
}

// MARK: - 5. Device faults

@Suite("command line: OpenCL faults")
struct DeviceFaultTests {
    /// An OpenCL ICD loader that finds no platform at all.
    static func noPlatform(_ scratch: Scratch) throws -> [String: String] {
        ["OCL_ICD_VENDORS": try scratch.folder("no-vendors"), "OCL_ICD_FILENAMES": ""]
    }

    @Test("no OpenCL platform: devices and --backend opencl exit 1 with the hint")
    func noPlatformFails() async throws {
        let scratch = try Scratch()
        let environment = try Self.noPlatform(scratch)
        let devices = try await deriv8(["devices"], environment: environment, timeout: 20, scratch: scratch)
        expectOneLineError(devices, code: 1, ["no OpenCL platform", "pocl-opencl-icd"])
        let train = try await deriv8(try shortTraining(scratch, backend: "opencl"), environment: environment, timeout: 20, scratch: scratch)
        expectOneLineError(train, code: 1, ["no OpenCL platform", "pocl-opencl-icd"])
    }

    @Test("no OpenCL platform: --backend auto falls back to the CPU with a note")
    func noPlatformAutoFallsBack() async throws {
        let scratch = try Scratch()
        let r = try await deriv8(try shortTraining(scratch, backend: "auto"), environment: try Self.noPlatform(scratch), scratch: scratch)
        #expect(r.exited(0), "\(r)")
        #expect(r.stderr.hasPrefix("note:"), "\(r)")
        #expect(r.stderr.contains("CPU backend"), "\(r)")
        #expect(r.stdout.contains("epoch 1/1"), "\(r)")
    }

    @Test("--device 99 does not exist")
    func noSuchDevice() async throws {
        let scratch = try Scratch()
        let r = try await deriv8(try shortTraining(scratch, backend: "opencl") + ["--device", "99"], timeout: 30, scratch: scratch)
        expectOneLineError(r, code: 1, ["no OpenCL device with index 99", "deriv8-gpu devices"])
    }

    @Test("a buffer larger than any device can allocate fails with the OpenCL call and code")
    func allocationFailure() async throws {
        // Two million 1-pixel training images in one batch and 40,000 hidden units (under
        // train's limit on weights): the first layer's activations are 2·10^6 x 40,000 floats
        // (320 GB), beyond any device's largest allocation, while every host array stays small.
        let scratch = try Scratch()
        let folder = try tinyDataFolder(scratch, "data")
        let n = 2_000_000
        try write(idx(magic: 2051, dims: [UInt32(n), 1, 1], payload: Array(repeating: 7, count: n)), to: "\(folder)/train-images-idx3-ubyte")
        try write(idx(magic: 2049, dims: [UInt32(n)], payload: (0..<n).map { UInt8($0 % 10) }), to: "\(folder)/train-labels-idx1-ubyte")
        try write(idx(magic: 2051, dims: [3, 1, 1], payload: [0, 0, 0]), to: "\(folder)/t10k-images-idx3-ubyte")
        let r = try await deriv8(["train", "--backend", "opencl", "--data", folder, "--hidden", "40000", "--batch-size", String(n),
                                  "--epochs", "1", "--results", scratch.sub("results")], timeout: 60, scratch: scratch)
        expectOneLineError(r, code: 1, ["clCreateBuffer", "CL_"])
    }

    @Test("a kernel that does not compile: one line, then the compiler's build log")
    func kernelBuildFailure() async throws {
        // -Werror turns the prelude's redefinition of TILE into a compile error.
        let scratch = try Scratch()
        let r = try await deriv8(try shortTraining(scratch, backend: "opencl"),
                                 environment: ["DERIV8_OPENCL_OPTIONS": "-Werror -D TILE=4"], timeout: 60, scratch: scratch)
        #expect(r.exited(1), "\(r)")
        let lines = r.stderr.split(separator: "\n").map(String.init)
        let first = try #require(lines.firstIndex { $0.hasPrefix("deriv8-gpu: error:") }, "\(r)")
        #expect(lines[first].contains("kernel build failed") && lines[first].contains("build log:"), "\(r)")
        #expect(lines[(first + 1)...].contains { $0.contains("TILE") && $0.contains("redefined") }, "the log names the problem: \(r)")
    }

    @Test("a tile no device takes: refused when the kernels are built, in one line naming the variable and the largest tile")
    func impossibleTile() async throws {
        // Work-groups of 128 x 128 items are more than any device allows.
        let scratch = try Scratch()
        let r = try await deriv8(try shortTraining(scratch, backend: "opencl"),
                                 environment: ["DERIV8_OPENCL_TILE": "128"], timeout: 60, scratch: scratch)
        // The OpenCL compiler may print its own warnings for so large a tile (PoCL: "N warnings
        // generated."); ours is the one line of the run's own.
        let ours = r.stderrLines.filter { $0.hasPrefix("deriv8-gpu:") }
        #expect(r.exited(1) && ours.count == 1, "\(r)")
        // Too many items per group, or (where the device has room for the items) too much local memory.
        #expect(ours.first.map { $0.contains("DERIV8_OPENCL_TILE=128") && ($0.contains("matmul kernel takes at most") || $0.contains("too large a tile")) } == true,
                "\(r)")
    }
}

// MARK: - 6. Interruption

@Suite("command line: SIGINT and SIGTERM save, exit 128 + signal, and the run resumes")
struct InterruptionTests {
    @Test("interrupted after the first epoch", arguments: [SIGINT, SIGTERM])
    func interrupt(_ signal: Int32) async throws {
        let scratch = try Scratch()
        let path = scratch.sub("i.safetensors")
        let data = try CLI.requireData()
        let run = try Running(["train", "--backend", "cpu", "--data", data, "--epochs", "50", "--save", path,
                               "--results", scratch.sub("results")], scratch: scratch)
        let started = await run.waitForStdout("epoch  1/50", timeout: 60)
        if started { run.send(signal) }
        let r = await run.finish(timeout: 30)
        try #require(started, "epoch 1 never finished: \(r)")
        #expect(r.exited(128 + signal), "\(r)")
        let lines = r.stderrLines
        #expect(lines.count == 1, "expected one line on stderr: \(r)")
        let line = String(lines.last ?? "")
        #expect(line.hasPrefix("deriv8-gpu: interrupted in epoch"), "\(r)")
        #expect(line.contains("--resume \(path)"), "\(r)")
        let match = line.firstMatch(of: /interrupted in epoch (\d+) after batch (\d+) of (\d+)/)
        let epoch = try #require(match.flatMap { Int($0.1) }, "no epoch in \(r)")

        let eval = try await deriv8(["eval", "--backend", "cpu", "--model", path, "--data", data], scratch: scratch)
        #expect(eval.exited(0), "\(eval)")

        let resumed = try await deriv8(["train", "--backend", "cpu", "--data", data, "--resume", path, "--epochs", String(epoch + 1),
                                        "--save", path, "--results", scratch.sub("results")], scratch: scratch)
        #expect(resumed.exited(0), "\(resumed)")
        #expect(resumed.stdout.contains("epoch \(epoch + 1)/\(epoch + 1)"), "\(resumed)")
        #expect(resumed.stderr.isEmpty, "\(resumed)")
    }
}

extension InterruptionTests {
    /// A parent that blocks SIGTERM (a Swift or dispatch worker thread, some supervisors) passes
    /// the blocked mask on; a program that promises to save on SIGTERM must unblock what it
    /// handles, or the signal stays pending until the scheduler's SIGKILL.
    @Test("SIGTERM is handled even when the parent started the run with it blocked")
    func inheritedBlockedMask() async throws {
        let scratch = try Scratch()
        let path = scratch.sub("b.safetensors")
        let run = try Running(["train", "--backend", "cpu", "--data", try CLI.requireData(), "--epochs", "50", "--save", path,
                               "--results", scratch.sub("results")], signalMask: .blocked, scratch: scratch)
        let started = await run.waitForStdout("epoch  1/50", timeout: 60)
        if started { run.send(SIGTERM) }
        let r = await run.finish(timeout: 10)
        try #require(started, "epoch 1 never finished: \(r)")
        #expect(r.exited(143), "SIGTERM was not acted on (still blocked?): \(r)")
        #expect(r.stderr.hasPrefix("deriv8-gpu: interrupted in epoch"), "\(r)")
    }
}

extension InterruptionTests {
    @Test("a second signal stops at once, with one line saying so, and exit 128 + that signal")
    func secondSignal() async throws {
        // The two signals are sent back to back; a run that finishes its first-signal exit before
        // the second arrives has not seen a second signal, so up to three tries, and at least one
        // must show the second signal's handling.
        var outcomes: [Outcome] = []
        for _ in 0..<3 {
            let scratch = try Scratch()
            let run = try Running(["train", "--backend", "cpu", "--data", try CLI.requireData(), "--epochs", "50",
                                   "--results", scratch.sub("results")], scratch: scratch)
            let started = await run.waitForStdout("epoch  1/50", timeout: 60)
            // Two different signals: two of the same kind may arrive as one.
            if started {
                run.send(SIGINT)
                run.send(SIGTERM)
            }
            let r = await run.finish(timeout: 10)
            try #require(started, "epoch 1 never finished: \(r)")
            outcomes.append(r)
            if r.stderrLines.last?.hasPrefix("deriv8-gpu: second interrupt: stopping now") == true { break }
        }
        let r = try #require(outcomes.last)
        // The exit code is 128 + whichever of the two was handled second; the first signal's line
        // may already be out when the second arrives, the second's is last.
        #expect(r.exited(130) || r.exited(143), "\(r)")
        let lines = r.stderrLines
        #expect(lines.last?.hasPrefix("deriv8-gpu: second interrupt: stopping now") == true, "\(outcomes)")
        #expect(lines.count == 1 || (lines.count == 2 && lines[0].hasPrefix("deriv8-gpu: interrupted in epoch")), "\(r)")
    }
}

// MARK: - 7. --json keeps stdout pure

@Suite("command line: --json")
struct JSONOutputTests {
    @Test("stdout is exactly one JSON object per epoch")
    func pureJSON() async throws {
        let scratch = try Scratch()
        let r = try await deriv8(try shortTraining(scratch, epochs: 2) + ["--json"], scratch: scratch)
        #expect(r.exited(0), "\(r)")
        let lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 3 && lines.last == "", "expected two newline-terminated lines: \(r)")
        let objects = lines.filter { !$0.isEmpty }
        #expect(objects.count == 2, "\(r)")
        for (n, line) in objects.enumerated() {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not a JSON object: \(line)")
            for key in ["epoch", "train_loss", "train_accuracy", "test_accuracy", "train_seconds", "eval_seconds", "backend"] {
                #expect(object[key] != nil, "\(key) missing from \(line)")
            }
            #expect(object["epoch"] as? Int == n + 1, "\(line)")
            #expect(object["backend"] as? String == "cpu", "\(line)")
        }
    }

    @Test("bench --json: byte data reports its non-zero pixels and the work skipping them saves; float data neither")
    func benchJSON() async throws {
        let scratch = try Scratch()
        func bench(_ data: String, batch: Int) async throws -> [String: Any] {
            let r = try await deriv8(["bench", "--backend", "cpu", "--data", data, "--epochs", "1",
                                      "--batch-size", String(batch), "--json"], scratch: scratch)
            #expect(r.exited(0), "\(r)")
            return try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "\(r)")
        }
        // Training images all 7s: every pixel non-zero, so skipping zeros saves nothing either.
        let bytes = try await bench(try tinyDataFolder(scratch, "tiny"), batch: 3)
        #expect(bytes["non_zero_pixel_fraction"] as? Double == 1, "\(bytes)")
        #expect(bytes["network"] as? String == "784-32-32-7", "\(bytes)")
        // One example of one float feature (a fixture NumPy wrote).
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../Deriv8Tests/Fixtures/stored-single.npz").standardized.path
        let floats = try await bench(fixture, batch: 1)
        #expect(floats["non_zero_pixel_fraction"] == nil, "\(floats)")
        #expect(floats["gflop_per_epoch_skipping_zeros"] as? Double == floats["gflop_per_epoch"] as? Double, "\(floats)")
        #expect(floats["network"] as? String == "1-32-32-2", "\(floats)")
    }
}

// MARK: - Other hostile arguments

@Suite("command line: unusable output paths")
struct OutputPathTests {
    @Test("--results naming a file fails with one readable line")
    func resultsIsAFile() async throws {
        let scratch = try Scratch()
        let file = scratch.sub("file")
        try write([], to: file)
        var arguments = try shortTraining(scratch)
        arguments[arguments.count - 1] = file   // --results FILE
        let r = try await deriv8(arguments, timeout: 30, scratch: scratch)
        expectOneLineError(r, code: 1, [file])
        #expect(!r.stderr.contains("Error Domain"), "a Foundation error dump instead of a message: \(r)")
    }

    @Test("--save into a missing folder fails with one line naming it")
    func saveIntoMissingFolder() async throws {
        let scratch = try Scratch()
        let path = scratch.sub("no-such-folder/m.safetensors")
        let r = try await deriv8(try shortTraining(scratch) + ["--save", path], timeout: 30, scratch: scratch)
        expectOneLineError(r, code: 1, [path, "cannot write"])
    }
}
