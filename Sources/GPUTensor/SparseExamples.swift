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
        guard let nonZeros = Self.nonZeros(pixels, features: features),
              Double(nonZeros) <= densityLimit * Double(pixels.count) else { return nil }
        self.count = count
        self.nonZeros = nonZeros
        offsets = .allocate(capacity: count + 1)
        columns = .allocate(capacity: max(nonZeros, 1))
        values = .allocate(capacity: max(nonZeros, 1))
        Self.fill(pixels, count: count, features: features, offsets: offsets.baseAddress!,
                  columns: columns.baseAddress!, values: values.baseAddress!)
    }

    /// How many of `pixels` are not zero; nil when the rows cannot be stored this way (more
    /// features than `maxFeatures`, or more non-zeros than an Int32 offset can count).
    public static func nonZeros(_ pixels: [UInt8], features: Int) -> Int? {
        guard features <= maxFeatures else { return nil }
        let nonZeros = pixels.reduce(0) { $0 + ($1 == 0 ? 0 : 1) }
        return nonZeros <= Int(Int32.max) ? nonZeros : nil
    }

    /// Writes the compressed rows of `pixels` [count, features]: offsets [count + 1], and
    /// columns and values [`nonZeros(pixels)`]. Also how the OpenCL backend fills its buffers in
    /// place, without a second copy on the host.
    static func fill(_ pixels: [UInt8], count: Int, features: Int, offsets: UnsafeMutablePointer<Int32>,
                     columns: UnsafeMutablePointer<UInt16>, values: UnsafeMutablePointer<UInt8>) {
        precondition(pixels.count == count * features)
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
