/// The element types the CPU kernels are written for (Float and Double).
public protocol KernelScalar: BinaryFloatingPoint, SIMDScalar, Codable, Sendable {}
extension Float: KernelScalar {}
extension Double: KernelScalar {}
