import ArgumentParser
import Deriv8
import Foundation
import GPUTensor

/// Which backend runs the job.
enum BackendKind: String, CaseIterable, ExpressibleByArgument {
    /// The first OpenCL GPU if there is one, else the CPU backend.
    case auto
    /// OpenCL on whatever device: a GPU, or the CPU through PoCL.
    case opencl
    /// The pure-Swift CPU backend.
    case cpu
}

/// `--kernels`: which OpenCL kernel family runs the ops (see `KernelFamily`).
enum KernelChoice: String, CaseIterable, ExpressibleByArgument {
    /// gpu on GPUs, cpu on other devices.
    case auto
    case gpu
    case cpu
    /// Both, one after the other (`check` only).
    case all

    /// The families this choice runs; nil for auto (the device decides).
    var families: [KernelFamily]? {
        switch self {
        case .auto: return nil
        case .gpu: return [.gpu]
        case .cpu: return [.cpu]
        case .all: return KernelFamily.allCases
        }
    }
}

/// Work that runs on whichever backend the options choose.
protocol BackendJob {
    func run<B: Backend>(on backend: B) throws
}

struct BackendOptions: ParsableArguments {
    @Option(help: "Where the math runs: auto (the first OpenCL GPU, else the CPU backend), opencl (any OpenCL device, PoCL included) or cpu.")
    var backend: BackendKind = .auto

    @Option(parsing: .unconditional, help: ArgumentHelp("The OpenCL device to use, by the index `deriv8-gpu devices` shows.", valueName: "N"))
    var device: Int?

    @Option(help: ArgumentHelp("""
        The OpenCL kernel family: auto (gpu on GPUs, cpu on other devices), gpu (local-memory tiles, many \
        small work-groups) or cpu (vector registers, no barriers); check also takes all (both in turn). \
        Both compute every op; `deriv8-gpu check --kernels all` shows they agree on a device.
        """, valueName: "auto|gpu|cpu"))
    var kernels: KernelChoice = .auto

    func validate() throws {
        if let device, device < 0 { throw ValidationError("--device must be >= 0, got \(device)") }
        if device != nil && backend == .cpu { throw ValidationError("--device selects an OpenCL device; it does not apply to --backend cpu") }
        if kernels != .auto && backend == .cpu { throw ValidationError("--kernels chooses OpenCL kernels; it does not apply to --backend cpu") }
    }

    /// The OpenCL device `run` uses, as it picks it: nil where the CPU backend runs (cpu; auto
    /// without a GPU or without OpenCL), and where there is no such device (`run` then says why).
    func openCLDevice() -> OpenCLDeviceInfo? {
        guard backend != .cpu, let devices = try? OpenCLBackend<Float>.devices() else { return nil }
        // auto without a GPU falls back to the CPU backend; opencl takes the first device.
        guard let chosen = device ?? OpenCLBackend<Float>.autoDeviceIndex(devices) ?? (backend == .opencl ? 0 : nil) else { return nil }
        return devices.first { $0.index == chosen }
    }

    /// Whether the backend these options choose computes in double precision: the CPU backend
    /// always; an OpenCL device where it has fp64.
    func supportsDouble() -> Bool { openCLDevice()?.supportsFP64 ?? true }

    /// Runs `job` on the chosen backend with element type T (Float to train, Double to check
    /// gradients), with `family` or else --kernels' family on OpenCL. With auto, a machine
    /// without an OpenCL GPU, or whose OpenCL fails to start, gets the CPU backend and a notice
    /// on stderr.
    func run<T: TensorElement>(_ job: some BackendJob, elementType: T.Type = Float.self, family: KernelFamily? = nil) throws {
        guard family != nil || kernels != .all else {
            throw ValidationError("--kernels all runs both families in `check`; here choose one: auto, gpu or cpu")
        }
        let family = family ?? kernels.families?.first
        switch backend {
        case .cpu:
            try job.run(on: CPUBackend<T>())
        case .opencl:
            try job.run(on: OpenCLBackend<T>(deviceIndex: device, family: family))
        case .auto where device != nil:
            // Naming a device means that device: no quiet fallback if it is not there.
            try job.run(on: OpenCLBackend<T>(deviceIndex: device, family: family))
        case .auto:
            // Only starting OpenCL may fall back; the job's own errors are the job's.
            let opencl: OpenCLBackend<T>?
            do {
                opencl = try OpenCLBackend<T>.autoDeviceIndex().map { try OpenCLBackend<T>(deviceIndex: $0, family: family) }
                if opencl == nil {
                    printError("note: no OpenCL GPU found; using the CPU backend (--backend opencl uses an OpenCL CPU device)")
                }
            } catch {
                printError("note: OpenCL could not start (\(firstLine(of: error))); using the CPU backend")
                opencl = nil
            }
            if let opencl { try job.run(on: opencl) } else { try job.run(on: CPUBackend<T>()) }
        }
    }
}

func firstLine(of error: Error) -> String {
    String(describing: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
}

/// A comma-separated list of positive integers, e.g. `32,32` (each below 2³¹; the commands say
/// what size of network they take).
struct LayerWidths: ExpressibleByArgument, CustomStringConvertible {
    let widths: [Int]

    init?(argument: String) {
        let parts = argument.split(separator: ",", omittingEmptySubsequences: false)
        let widths = parts.compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !parts.isEmpty, widths.count == parts.count, widths.allSatisfy({ $0 <= 1 << 31 }) else {
            return nil
        }
        self.widths = widths
    }

    var description: String { widths.map(String.init).joined(separator: ",") }

    /// Refuses a width below 1, saying which (the parser takes any integer so that this can).
    func validate(_ flag: String) throws {
        if let bad = widths.first(where: { $0 < 1 }) { throw ValidationError("\(flag) \(self): every width must be at least 1, got \(bad)") }
    }

    /// Refuses hidden widths that are too many weights for any data (1 input, 2 classes): checked
    /// before the data loads; `checkWeightCount` checks the data's own widths once it has.
    static func checkWeightCountForAnyData(hidden: [Int]) throws {
        try checkWeightCount(hidden: hidden, features: 1, classes: 2)
    }

    /// Refuses a network with these hidden widths, for data of `features` inputs and `classes`
    /// classes, that would hold more than 50 million weights.
    static func checkWeightCount(hidden: [Int], features: Int, classes: Int) throws {
        let widths = [features] + hidden + [classes]
        // In Double: widths up to 2³¹ would overflow an Int sum.
        let weights = zip(widths, widths.dropFirst()).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        guard weights <= 50_000_000 else {
            throw ValidationError("--hidden \(hidden.map(String.init).joined(separator: ",")) gives \(String(format: "%.0f", weights)) weights; the limit is 50 million (200 MB per copy)")
        }
    }
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

/// Which data set, and where it is: a folder of four IDX files, or a .npz file.
struct DataOptions: ParsableArguments {
    @Option(help: "A known data set: mnist, or fashion-mnist (Debian's dataset-fashion-mnist package). Default: mnist for a new run; the checkpoint's for eval, predict and train --resume.")
    var dataset: DatasetKind?

    @Option(help: ArgumentHelp("Your own data, or a known set elsewhere: a folder with four IDX files in MNIST's names (.gz or raw, any image size, 2 to 256 classes), or a .npz file with x_train, y_train, x_test, y_test (see the README's \"Your own data\"). Default: datasets/mnist, or /usr/share/datasets/fashion-mnist.", valueName: "path"))
    var data: String?

    /// The data set's name, as a checkpoint records it, and its path, which must exist: --data
    /// (named by --dataset, else by `recorded`, else mnist for a folder; by the file's name for
    /// a file), or the default folder of --dataset or of `recorded`. Called when the data is
    /// needed, after every flag was checked.
    func resolve(recorded: String? = nil) throws -> (name: String, path: String) {
        if let data {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: data, isDirectory: &isDirectory) else {
                throw ValidationError("--data \(data): no such file or folder")
            }
            let name = dataset?.rawValue ?? (isDirectory.boolValue ? recorded ?? DatasetKind.mnist.rawValue : (data as NSString).lastPathComponent)
            return (name, data)
        }
        guard let kind = dataset ?? (recorded.map { DatasetKind(rawValue: $0) } ?? .mnist) else {
            throw ValidationError("the model was trained on \(recorded ?? ""); pass --data PATH to say where that data is")
        }
        let folder = kind.defaultFolder
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
            let fix = kind == .mnist ? "run `make datasets`" : "install Debian's dataset-fashion-mnist"
            throw ValidationError("--data \(folder): no such folder (\(fix), or pass --data PATH)")
        }
        return (kind.rawValue, folder)
    }
}

/// The names of `classes` classes of the data set called `name`: a known set's own names, or
/// the labels as numbers.
func classNames(dataset name: String, classes: Int) -> [String] {
    if let names = DatasetKind(rawValue: name)?.classNames, names.count == classes { return names }
    return (0..<classes).map(String.init)
}

extension DatasetKind: ExpressibleByArgument {}
