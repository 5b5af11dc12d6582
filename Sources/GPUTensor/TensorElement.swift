import CPUKernels
import CPUKernelsAVX2
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The element types a tensor can hold: `Float` for training, `Double` for gradient checking.
public protocol TensorElement: BinaryFloatingPoint, SIMDScalar, Codable, Sendable, LosslessStringConvertible,
    CPUKernels.KernelScalar, CPUKernelsAVX2.KernelScalar {
    /// The type's name in OpenCL C (`float`, `double`).
    static var openCLTypeName: String { get }
    static func exp(_ x: Self) -> Self
    static func log(_ x: Self) -> Self
}

extension Float: TensorElement {
    public static var openCLTypeName: String { "float" }
    @inline(__always) public static func exp(_ x: Float) -> Float { expf(x) }
    @inline(__always) public static func log(_ x: Float) -> Float { logf(x) }
}

extension Double: TensorElement {
    public static var openCLTypeName: String { "double" }
    @inline(__always) public static func exp(_ x: Double) -> Double { libmExp(x) }
    @inline(__always) public static func log(_ x: Double) -> Double { libmLog(x) }
}

// At file scope `exp`/`log` name the C library's functions; inside `extension Double` they
// would name the static requirements above.
@inline(__always) private func libmExp(_ x: Double) -> Double { exp(x) }
@inline(__always) private func libmLog(_ x: Double) -> Double { log(x) }
