internal import COpenCL
import Foundation
import Kernels

/// What `deriv8-gpu devices` shows about one OpenCL device. `index` counts devices across all
/// platforms in the order the platforms report them; `--device N` uses it.
public struct OpenCLDeviceInfo: Sendable, CustomStringConvertible {
    public let index: Int
    public let platform: String
    public let name: String
    /// "GPU", "CPU", "accelerator" or "other"
    public let type: String
    public let version: String
    public let computeUnits: Int
    public let globalMemoryBytes: Int
    public let maxWorkGroupSize: Int
    /// CL_DEVICE_MAX_WORK_ITEM_SIZES: the most items of a group along each dimension.
    public let maxWorkItemSizes: [Int]
    /// CL_DEVICE_LOCAL_MEM_SIZE, in bytes.
    public let localMemoryBytes: Int
    public let supportsFP64: Bool
    nonisolated(unsafe) let id: cl_device_id

    public var isGPU: Bool { type == "GPU" }
    public var description: String { "\(name) (\(platform), \(version))" }
}

/// One OpenCL device in use: its context and queue, and its programs, built once per process
/// and element type. Backends for Float and Double on the same device share one of these.
final class OpenCLDevice: @unchecked Sendable {
    let info: OpenCLDeviceInfo
    let context: CLContext
    let queue: CLQueue
    /// Where a sub-buffer may start: CL_DEVICE_MEM_BASE_ADDR_ALIGN, in bytes.
    let baseAlignmentBytes: Int
    private var programs: [String: BuiltProgram] = [:]
    private let lock = Lock()

    private static let cacheLock = Lock()
    nonisolated(unsafe) private static var cache: [Int: OpenCLDevice] = [:]

    /// Every device of every platform. No platform: an OpenCLError with a hint to install a driver.
    static func list() throws -> [OpenCLDeviceInfo] {
        var platformCount: cl_uint = 0
        let status = clGetPlatformIDs(0, nil, &platformCount)
        if status == -1001 || (status == CL_SUCCESS && platformCount == 0) {
            throw OpenCLError(call: "clGetPlatformIDs", code: -1001)
        }
        try check(status, "clGetPlatformIDs")
        var platforms = [cl_platform_id?](repeating: nil, count: Int(platformCount))
        try check(clGetPlatformIDs(platformCount, &platforms, nil), "clGetPlatformIDs")
        var devices: [OpenCLDeviceInfo] = []
        for case let platform? in platforms {
            let platformName = try platformString(platform, CL_PLATFORM_NAME)
            var deviceCount: cl_uint = 0
            let found = clGetDeviceIDs(platform, cl_device_type(CL_DEVICE_TYPE_ALL), 0, nil, &deviceCount)
            if found == CL_DEVICE_NOT_FOUND || deviceCount == 0 { continue }
            try check(found, "clGetDeviceIDs")
            var ids = [cl_device_id?](repeating: nil, count: Int(deviceCount))
            try check(clGetDeviceIDs(platform, cl_device_type(CL_DEVICE_TYPE_ALL), deviceCount, &ids, nil), "clGetDeviceIDs")
            for case let id? in ids {
                let type: cl_device_type = try deviceValue(id, CL_DEVICE_TYPE)
                let typeName = type & cl_device_type(CL_DEVICE_TYPE_GPU) != 0 ? "GPU"
                    : type & cl_device_type(CL_DEVICE_TYPE_CPU) != 0 ? "CPU"
                    : type & cl_device_type(CL_DEVICE_TYPE_ACCELERATOR) != 0 ? "accelerator" : "other"
                let fp64: cl_device_fp_config = try deviceValue(id, CL_DEVICE_DOUBLE_FP_CONFIG)
                let extensions = try deviceString(id, CL_DEVICE_EXTENSIONS)
                let units: cl_uint = try deviceValue(id, CL_DEVICE_MAX_COMPUTE_UNITS)
                let memory: cl_ulong = try deviceValue(id, CL_DEVICE_GLOBAL_MEM_SIZE)
                let groupSize: Int = try deviceValue(id, CL_DEVICE_MAX_WORK_GROUP_SIZE)
                let local: cl_ulong = try deviceValue(id, CL_DEVICE_LOCAL_MEM_SIZE)
                let dimensions: cl_uint = try deviceValue(id, CL_DEVICE_MAX_WORK_ITEM_DIMENSIONS)
                var itemSizes = [Int](repeating: 0, count: Int(dimensions))
                try check(clGetDeviceInfo(id, cl_device_info(CL_DEVICE_MAX_WORK_ITEM_SIZES), itemSizes.count * MemoryLayout<Int>.size,
                                          &itemSizes, nil), "clGetDeviceInfo")
                devices.append(OpenCLDeviceInfo(
                    index: devices.count, platform: platformName, name: try deviceString(id, CL_DEVICE_NAME),
                    type: typeName, version: try deviceString(id, CL_DEVICE_VERSION), computeUnits: Int(units),
                    globalMemoryBytes: Int(memory), maxWorkGroupSize: groupSize, maxWorkItemSizes: itemSizes,
                    localMemoryBytes: Int(local),
                    supportsFP64: fp64 != 0 || extensions.contains("cl_khr_fp64"), id: id))
            }
        }
        return devices
    }

    /// The device `auto` picks: the first GPU, if any.
    static func autoChoice(_ devices: [OpenCLDeviceInfo]) -> OpenCLDeviceInfo? {
        devices.first(where: \.isGPU)
    }

    /// The device at `index` (`nil`: the first GPU, else the first device), its context and
    /// queue created once per process.
    static func shared(index: Int?) throws -> OpenCLDevice {
        try cacheLock.withLock {
            let devices = try list()
            guard let chosen = index.map({ i in devices.first { $0.index == i } }) ?? (autoChoice(devices) ?? devices.first) else {
                if let index {
                    throw OpenCLUnavailable("no OpenCL device with index \(index): \(devices.count) device(s) found; see `deriv8-gpu devices`")
                }
                throw OpenCLError(call: "clGetDeviceIDs", code: CL_DEVICE_NOT_FOUND,
                                  hint: "no OpenCL device found: install an OpenCL driver (e.g. pocl-opencl-icd) or pass --backend cpu")
            }
            if let device = cache[chosen.index] { return device }
            let device = try OpenCLDevice(chosen)
            cache[chosen.index] = device
            return device
        }
    }

    private init(_ info: OpenCLDeviceInfo) throws {
        self.info = info
        context = try CLContext(device: info.id)
        queue = try CLQueue(context: context, profiling: true)
        let alignmentBits: cl_uint = try deviceValue(info.id, CL_DEVICE_MEM_BASE_ADDR_ALIGN)
        baseAlignmentBytes = max(Int(alignmentBits) / 8, 1)
    }

    /// The kernels compiled for element type `T`, built on first use.
    func program<T: TensorElement>(for type: T.Type) throws -> BuiltProgram {
        try lock.withLock {
            if let built = programs[T.openCLTypeName] { return built }
            guard T.self != Double.self || info.supportsFP64 else {
                throw OpenCLUnavailable("\(info.name) does not support double precision (cl_khr_fp64); use --backend cpu for gradient checks")
            }
            let built = try build(T.self)
            programs[T.openCLTypeName] = built
            return built
        }
    }

    /// Builds the kernel files with the largest work-group sizes the device allows, then asks
    /// each kernel how large a group it takes (CL_KERNEL_WORK_GROUP_SIZE: a kernel's registers
    /// and local memory can put it below the device's maximum) and, where one cannot take the
    /// size compiled into it, builds again with smaller sizes.
    private func build<T: TensorElement>(_ type: T.Type) throws -> BuiltProgram {
        let requestedTile = try Tuning.tile
        var sizes = KernelSizes(maxGroup: info.maxWorkGroupSize, maxItems: info.maxWorkItemSizes, localBytes: info.localMemoryBytes,
                                elementBytes: MemoryLayout<T>.stride, tile: requestedTile)
        var attempts = 0
        while true {
            let program = try CLProgram(context: context, source: source(for: T.self, sizes: sizes), options: Tuning.buildOptions,
                                        deviceName: info.description)
            var limits: [KernelName: Int] = [:]
            var fitted = sizes
            for name in KernelName.allCases {
                let kernel = try CLKernel(program: program, name: name.rawValue)
                let limit = min(try kernel.workGroupSizeLimit(), info.maxWorkGroupSize)
                let local = try kernel.localMemoryBytes()
                if local > info.localMemoryBytes {
                    // Only a tile forced larger than the device takes can get here: the sizes are
                    // otherwise chosen from the device's local memory.
                    let fix = requestedTile.map { "; DERIV8_OPENCL_TILE=\($0) is too large a tile for it: set a smaller one, or unset it" } ?? ""
                    throw OpenCLUnavailable("\(name.rawValue) needs \(local) bytes of local memory; \(info.name) has \(info.localMemoryBytes)\(fix)")
                }
                limits[name] = limit
                fitted = fitted.fitting(name, limit: limit)
            }
            if fitted == sizes { return BuiltProgram(program: program, sizes: sizes, groupLimits: limits) }
            if let requestedTile, fitted.tile != requestedTile {
                throw OpenCLUnavailable("DERIV8_OPENCL_TILE=\(requestedTile): the matmul kernel takes at most \(fitted.tile) x \(fitted.tile) items on \(info.name); set \(fitted.tile) or less, or unset it")
            }
            attempts += 1
            // Each pass only shrinks, and by at least a half: a few passes at most.
            guard attempts < 8 else { throw OpenCLUnavailable("no work-group sizes fit the kernels on \(info.name) (last tried: \(fitted))") }
            sizes = fitted
        }
    }

    /// The prelude and the kernel files, as one program's source.
    func source<T: TensorElement>(for type: T.Type, sizes: KernelSizes) -> String {
        kernelPrelude(for: T.self, sizes: sizes) + KernelSources.files.map(\.source).joined(separator: "\n")
    }
}

/// A program built for one element type, with the work-group sizes compiled into it and each
/// kernel's largest work-group.
struct BuiltProgram {
    let program: CLProgram
    let sizes: KernelSizes
    let groupLimits: [KernelName: Int]
}

private func platformString(_ platform: cl_platform_id, _ param: Int32) throws -> String {
    try infoString("clGetPlatformInfo") { clGetPlatformInfo(platform, cl_platform_info(param), $0, $1, $2) }
}

private func deviceString(_ device: cl_device_id, _ param: Int32) throws -> String {
    try infoString("clGetDeviceInfo") { clGetDeviceInfo(device, cl_device_info(param), $0, $1, $2) }
}

/// An OpenCL info query's string, asked for the way the API wants: its size first, then its bytes.
/// `query(size, buffer, sizeOut)` is the clGet*Info call.
private func infoString(_ call: String, _ query: (Int, UnsafeMutableRawPointer?, UnsafeMutablePointer<Int>?) -> cl_int) throws -> String {
    var size = 0
    try check(query(0, nil, &size), call)
    var bytes = [CChar](repeating: 0, count: max(size, 1))
    try check(bytes.withUnsafeMutableBytes { query(size, $0.baseAddress, nil) }, call)
    return cString(bytes)
}

private func deviceValue<V: FixedWidthInteger>(_ device: cl_device_id, _ param: Int32) throws -> V {
    var value: V = 0
    try check(clGetDeviceInfo(device, cl_device_info(param), MemoryLayout<V>.size, &value, nil), "clGetDeviceInfo")
    return value
}

private func cString(_ bytes: [CChar]) -> String {
    String(decoding: bytes.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        .trimmingCharacters(in: " ")
}

private extension String {
    func trimmingCharacters(in character: Character) -> String {
        var s = Substring(self)
        while s.first == character { s.removeFirst() }
        while s.last == character { s.removeLast() }
        return String(s)
    }
}

/// Settings from the environment for tuning (and for provoking faults on purpose):
///   DERIV8_OPENCL_OPTIONS  extra options for the OpenCL compiler, e.g. "-cl-mad-enable"
///   DERIV8_OPENCL_TILE     the side of the tiled matmul's work-groups (default: 16 where the device and
///                          the kernel allow 256-item groups, else the largest power of two that fits)
enum Tuning {
    static var buildOptions: String {
        ProcessInfo.processInfo.environment["DERIV8_OPENCL_OPTIONS"] ?? ""
    }

    static var tile: Int? {
        get throws {
            guard let text = ProcessInfo.processInfo.environment["DERIV8_OPENCL_TILE"] else { return nil }
            guard let value = Int(text), value >= 1, value <= 1024 else {
                throw OpenCLUnavailable("DERIV8_OPENCL_TILE=\(text) is not a work-group side in 1...1024")
            }
            return value
        }
    }
}
