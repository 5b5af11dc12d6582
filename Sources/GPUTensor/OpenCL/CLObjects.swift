internal import COpenCL

// One owning class per OpenCL handle kind. Each initializer creates its handle or throws; each
// deinit releases it and never throws (a failed release is ignored: nothing useful can be done).
// Children hold strong references to their parents (buffer -> context, kernel -> program,
// queue -> context), so the release order is right by construction. Only these classes touch
// raw handles. The objects are thread-safe per the OpenCL spec except kernel arguments, which
// only one backend (one thread) sets.

@inline(__always)
func check(_ status: cl_int, _ call: String) throws(OpenCLError) {
    guard status == CL_SUCCESS else { throw OpenCLError(call: call, code: status) }
}

/// Counts of live OpenCL objects this process created and has not released yet: a leak shows
/// as a count that grows over a run.
public enum OpenCLObjectCounts {
    private static let lock = Lock()
    nonisolated(unsafe) private static var live: [String: Int] = [:]

    static func created(_ kind: String) { lock.withLock { live[kind, default: 0] += 1 } }
    static func released(_ kind: String) { lock.withLock { live[kind, default: 0] -= 1 } }

    /// Live objects by kind ("context", "queue", "program", "kernel", "buffer", "event"); kinds
    /// with none alive are left out.
    public static var current: [String: Int] { lock.withLock { live.filter { $0.value != 0 } } }
}

final class CLContext: @unchecked Sendable {
    let handle: cl_context
    let device: cl_device_id

    init(device: cl_device_id) throws(OpenCLError) {
        var status: cl_int = CL_SUCCESS
        var id: cl_device_id? = device
        let context = clCreateContext(nil, 1, &id, nil, nil, &status)
        try check(status, "clCreateContext")
        guard let context else { throw OpenCLError(call: "clCreateContext", code: CL_INVALID_CONTEXT) }
        handle = context
        self.device = device
        OpenCLObjectCounts.created("context")
    }

    deinit {
        clReleaseContext(handle)
        OpenCLObjectCounts.released("context")
    }
}

final class CLQueue: @unchecked Sendable {
    let handle: cl_command_queue
    let context: CLContext

    init(context: CLContext, profiling: Bool) throws(OpenCLError) {
        var status: cl_int = CL_SUCCESS
        let properties = cl_command_queue_properties(profiling ? CL_QUEUE_PROFILING_ENABLE : 0)
        let queue = clCreateCommandQueue(context.handle, context.device, properties, &status)
        try check(status, "clCreateCommandQueue")
        guard let queue else { throw OpenCLError(call: "clCreateCommandQueue", code: CL_INVALID_COMMAND_QUEUE) }
        handle = queue
        self.context = context
        OpenCLObjectCounts.created("queue")
    }

    func finish() throws(OpenCLError) { try check(clFinish(handle), "clFinish") }

    deinit {
        clReleaseCommandQueue(handle)
        OpenCLObjectCounts.released("queue")
    }
}

final class CLProgram: @unchecked Sendable {
    let handle: cl_program
    let context: CLContext

    /// Compiles `source` for the context's device; a compile error throws `KernelBuildError`
    /// with the full build log.
    init(context: CLContext, source: String, options: String, deviceName: String) throws {
        var status: cl_int = CL_SUCCESS
        let program = source.withCString { text -> cl_program? in
            var pointer: UnsafePointer<CChar>? = text
            return clCreateProgramWithSource(context.handle, 1, &pointer, nil, &status)
        }
        try check(status, "clCreateProgramWithSource")
        guard let program else { throw OpenCLError(call: "clCreateProgramWithSource", code: CL_INVALID_PROGRAM) }
        handle = program
        self.context = context
        OpenCLObjectCounts.created("program")
        var device: cl_device_id? = context.device
        let built = clBuildProgram(program, 1, &device, options, nil, nil)
        if built == CL_BUILD_PROGRAM_FAILURE {
            throw KernelBuildError(device: deviceName, options: options, log: buildLog())
        }
        try check(built, "clBuildProgram")
    }

    /// CL_PROGRAM_BUILD_LOG: first its size, then its bytes.
    func buildLog() -> String {
        var size = 0
        guard clGetProgramBuildInfo(handle, context.device, cl_program_build_info(CL_PROGRAM_BUILD_LOG), 0, nil, &size) == CL_SUCCESS,
              size > 0 else { return "(no build log)" }
        var bytes = [CChar](repeating: 0, count: size)
        guard clGetProgramBuildInfo(handle, context.device, cl_program_build_info(CL_PROGRAM_BUILD_LOG), size, &bytes, nil) == CL_SUCCESS
        else { return "(build log unavailable)" }
        return String(decoding: bytes.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    deinit {
        clReleaseProgram(handle)
        OpenCLObjectCounts.released("program")
    }
}

final class CLKernel: @unchecked Sendable {
    let handle: cl_kernel
    let program: CLProgram
    let name: String

    init(program: CLProgram, name: String) throws(OpenCLError) {
        var status: cl_int = CL_SUCCESS
        let kernel = clCreateKernel(program.handle, name, &status)
        try check(status, "clCreateKernel(\(name))")
        guard let kernel else { throw OpenCLError(call: "clCreateKernel(\(name))", code: CL_INVALID_KERNEL) }
        handle = kernel
        self.program = program
        self.name = name
        OpenCLObjectCounts.created("kernel")
    }

    /// CL_KERNEL_WORK_GROUP_SIZE: the most items a work-group of this kernel may have on the
    /// context's device (at most the device's maximum; less where the kernel needs more
    /// registers or local memory than a full group could have).
    func workGroupSizeLimit() throws(OpenCLError) -> Int {
        var size = 0
        try check(clGetKernelWorkGroupInfo(handle, program.context.device, cl_kernel_work_group_info(CL_KERNEL_WORK_GROUP_SIZE),
                                           MemoryLayout<Int>.size, &size, nil), "clGetKernelWorkGroupInfo(\(name))")
        return size
    }

    /// CL_KERNEL_LOCAL_MEM_SIZE: the local memory a work-group of this kernel uses, in bytes.
    func localMemoryBytes() throws(OpenCLError) -> Int {
        var size: cl_ulong = 0
        try check(clGetKernelWorkGroupInfo(handle, program.context.device, cl_kernel_work_group_info(CL_KERNEL_LOCAL_MEM_SIZE),
                                           MemoryLayout<cl_ulong>.size, &size, nil), "clGetKernelWorkGroupInfo(\(name))")
        return Int(size)
    }

    func setArgument(_ index: Int, _ size: Int, _ value: UnsafeRawPointer) throws(OpenCLError) {
        try check(clSetKernelArg(handle, cl_uint(index), size, value), "clSetKernelArg(\(name), \(index))")
    }

    deinit {
        clReleaseKernel(handle)
        OpenCLObjectCounts.released("kernel")
    }
}

/// A device buffer of `byteCount` bytes.
public final class CLBuffer: @unchecked Sendable {
    let handle: cl_mem
    let context: CLContext
    public let byteCount: Int
    /// For a sub-buffer: the buffer it is a region of, kept alive.
    private let parent: CLBuffer?

    init(context: CLContext, byteCount: Int, readOnly: Bool = false, copying host: UnsafeRawPointer? = nil) throws(OpenCLError) {
        var status: cl_int = CL_SUCCESS
        var flags = cl_mem_flags(readOnly ? CL_MEM_READ_ONLY : CL_MEM_READ_WRITE)
        if host != nil { flags |= cl_mem_flags(CL_MEM_COPY_HOST_PTR) }
        // A zero-size buffer is invalid in OpenCL, so small ones get 16 bytes; the copy then
        // reads 16 bytes, so a shorter host array is first padded into a buffer of that size.
        let size = max(byteCount, 16)
        var padded = [UInt8]()
        if let host, byteCount < size {
            padded = [UInt8](repeating: 0, count: size)
            padded.withUnsafeMutableBytes { $0.baseAddress!.copyMemory(from: host, byteCount: byteCount) }
        }
        let buffer = padded.isEmpty
            ? clCreateBuffer(context.handle, flags, size, UnsafeMutableRawPointer(mutating: host), &status)
            : padded.withUnsafeMutableBytes { clCreateBuffer(context.handle, flags, size, $0.baseAddress, &status) }
        try check(status, "clCreateBuffer(\(size) bytes)")
        guard let buffer else { throw OpenCLError(call: "clCreateBuffer", code: CL_MEM_OBJECT_ALLOCATION_FAILURE) }
        handle = buffer
        self.context = context
        self.byteCount = byteCount
        parent = nil
        OpenCLObjectCounts.created("buffer")
    }

    /// A sub-buffer: `byteCount` bytes of `parent` from `byteOffset` on (which must be a
    /// multiple of the device's base address alignment).
    init(regionOf parent: CLBuffer, byteOffset: Int, byteCount: Int) throws(OpenCLError) {
        var status: cl_int = CL_SUCCESS
        var region = cl_buffer_region(origin: byteOffset, size: max(byteCount, 1))
        let buffer = clCreateSubBuffer(parent.handle, cl_mem_flags(CL_MEM_READ_WRITE),
                                       cl_buffer_create_type(CL_BUFFER_CREATE_TYPE_REGION), &region, &status)
        try check(status, "clCreateSubBuffer(\(byteCount) bytes at \(byteOffset))")
        guard let buffer else { throw OpenCLError(call: "clCreateSubBuffer", code: CL_MEM_OBJECT_ALLOCATION_FAILURE) }
        handle = buffer
        context = parent.context
        self.byteCount = byteCount
        self.parent = parent
        OpenCLObjectCounts.created("buffer")
    }

    deinit {
        clReleaseMemObject(handle)
        OpenCLObjectCounts.released("buffer")
    }
}

/// A finished command's event, kept to read its profiling times.
final class CLEvent: @unchecked Sendable {
    let handle: cl_event

    init(_ handle: cl_event) {
        self.handle = handle
        OpenCLObjectCounts.created("event")
    }

    /// CL_PROFILING_COMMAND_END − CL_PROFILING_COMMAND_START, in seconds.
    func deviceSeconds() throws(OpenCLError) -> Double {
        var start: cl_ulong = 0, end: cl_ulong = 0
        let size = MemoryLayout<cl_ulong>.size
        try check(clGetEventProfilingInfo(handle, cl_profiling_info(CL_PROFILING_COMMAND_START), size, &start, nil), "clGetEventProfilingInfo")
        try check(clGetEventProfilingInfo(handle, cl_profiling_info(CL_PROFILING_COMMAND_END), size, &end, nil), "clGetEventProfilingInfo")
        return Double(end &- start) * 1e-9
    }

    deinit {
        clReleaseEvent(handle)
        OpenCLObjectCounts.released("event")
    }
}
