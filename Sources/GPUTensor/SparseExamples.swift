/// An example set's non-zero pixels as compressed sparse rows: example e's are
/// `columns[offsets[e]..<offsets[e+1]]` (ascending feature indices) with byte values
/// `values[...]`. About 3 bytes per non-zero pixel: 31 MB for the 70,000 MNIST images, whose
/// pixels are 81% zero. Both backends read the first layer's products from it (see
/// Sources/CPUKernels/Sparse.swift and Sources/Kernels/input.cl).
public final class SparseExamples: @unchecked Sendable {
    public let count: Int
    public let nonZeros: Int
    let offsets: UnsafeMutableBufferPointer<Int32>   // [count + 1]
    let columns: UnsafeMutableBufferPointer<UInt16>  // [nonZeros]
    let values: UnsafeMutableBufferPointer<UInt8>    // [nonZeros]

    /// The largest feature count a UInt16 column index can name.
    public static let maxFeatures = Int(UInt16.max) + 1

    /// nil when `pixels` [count, features] has more features than `maxFeatures`, more non-zeros
    /// than an Int32 offset can count, or a larger fraction of non-zeros than `densityLimit`.
    public init?(pixels: [UInt8], count: Int, features: Int, densityLimit: Double = 1) {
        precondition(pixels.count == count * features)
        guard features <= Self.maxFeatures else { return nil }
        let nonZeros = pixels.reduce(0) { $0 + ($1 == 0 ? 0 : 1) }
        guard nonZeros <= Int(Int32.max), Double(nonZeros) <= densityLimit * Double(pixels.count) else { return nil }
        self.count = count
        self.nonZeros = nonZeros
        offsets = .allocate(capacity: count + 1)
        columns = .allocate(capacity: max(nonZeros, 1))
        values = .allocate(capacity: max(nonZeros, 1))
        var q = 0
        pixels.withUnsafeBufferPointer { p in
            for e in 0..<count {
                offsets[e] = Int32(q)
                let row = e * features
                for f in 0..<features where p[row + f] != 0 {
                    columns[q] = UInt16(f)
                    values[q] = p[row + f]
                    q += 1
                }
            }
        }
        offsets[count] = Int32(q)
    }

    deinit {
        offsets.deallocate()
        columns.deallocate()
        values.deallocate()
    }

    /// The three arrays, handed to a kernel module's own `SparseRows` initialiser.
    func rows<R>(_ make: (UnsafePointer<Int32>, UnsafePointer<UInt16>, UnsafePointer<UInt8>) -> R) -> R {
        make(offsets.baseAddress!, columns.baseAddress!, values.baseAddress!)
    }
}
