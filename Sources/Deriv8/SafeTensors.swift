import Foundation

/// The safetensors format (the de-facto standard for weights, readable by Python's `safetensors`,
/// numpy and PyTorch without conversion):
///
///     [8 bytes]  N, the header length, unsigned little-endian
///     [N bytes]  a JSON object, UTF-8, padded with spaces to a multiple of 8 bytes:
///                { "__metadata__": { string: string },
///                  "NAME": { "dtype": "F32", "shape": [32, 784], "data_offsets": [begin, end] }, ... }
///     [rest]     the tensors' bytes, little-endian, row-major; offsets count from the rest's start
public enum SafeTensors {
    public enum DType: String, Sendable {
        case f32 = "F32"
        case i32 = "I32"

        public var byteCount: Int { 4 }
    }

    public struct Tensor: Sendable, Equatable {
        public let dtype: DType
        public let shape: [Int]
        /// Little-endian element bytes.
        public let bytes: [UInt8]

        public init(dtype: DType, shape: [Int], bytes: [UInt8]) {
            precondition(bytes.count == shape.reduce(1, *) * dtype.byteCount)
            self.dtype = dtype
            self.shape = shape
            self.bytes = bytes
        }

        public init(_ values: [Float], shape: [Int]) {
            self.init(dtype: .f32, shape: shape, bytes: values.flatMap { littleEndianBytes($0.bitPattern) })
        }

        public init(_ values: [Int32], shape: [Int]) {
            self.init(dtype: .i32, shape: shape, bytes: values.flatMap { littleEndianBytes(UInt32(bitPattern: $0)) })
        }

        public var floats: [Float]? {
            dtype == .f32 ? words().map(Float.init(bitPattern:)) : nil
        }

        public var int32s: [Int32]? {
            dtype == .i32 ? words().map(Int32.init(bitPattern:)) : nil
        }

        private func words() -> [UInt32] {
            stride(from: 0, to: bytes.count, by: 4).map { i in
                UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24
            }
        }
    }

    /// The largest header accepted: far above any real one, far below a memory problem.
    public static let maximumHeaderBytes = 1 << 24

    /// The file's bytes for `tensors` (laid out in the given order) and `metadata`.
    public static func encode(_ tensors: [(name: String, tensor: Tensor)], metadata: [String: String]) throws -> [UInt8] {
        var header: [String: Any] = ["__metadata__": metadata]
        var offset = 0
        for (name, tensor) in tensors {
            header[name] = ["dtype": tensor.dtype.rawValue, "shape": tensor.shape,
                            "data_offsets": [offset, offset + tensor.bytes.count]] as [String: Any]
            offset += tensor.bytes.count
        }
        var json = [UInt8](try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]))
        // Pad with spaces so the data starts 8-byte aligned, as the reference implementation does.
        while (8 + json.count) % 8 != 0 { json.append(0x20) }
        var out = littleEndianBytes(UInt64(json.count)) + json
        out.reserveCapacity(out.count + offset)
        for (_, tensor) in tensors { out += tensor.bytes }
        return out
    }

    /// Parses and validates `bytes` (the contents of `path`): header length against the file
    /// size, the JSON, every dtype, shape and offset. The first problem is thrown, in one line.
    public static func decode(_ bytes: [UInt8], path: String) throws(DataFileError) -> (tensors: [String: Tensor], metadata: [String: String]) {
        func fail(_ problem: String) -> DataFileError { DataFileError(path: path, problem: problem) }
        guard bytes.count >= 8 else { throw fail("\(bytes.count) bytes: too short for a safetensors file") }
        let headerLength = (0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[$1]) << (8 * UInt64($1)) }
        guard headerLength >= 2, headerLength <= UInt64(min(maximumHeaderBytes, bytes.count - 8)) else {
            // Text or another format read as a length is a huge number: say what the file is not.
            throw fail("not a safetensors file: its first 8 bytes give a header length of \(headerLength), which does not fit a \(bytes.count)-byte file")
        }
        let headerEnd = 8 + Int(headerLength)
        let parsed: Any
        do { parsed = try JSONSerialization.jsonObject(with: Data(bytes[8..<headerEnd])) } catch {
            throw fail("header is not valid JSON")
        }
        guard let header = parsed as? [String: Any] else { throw fail("header is not a JSON object") }
        let dataCount = bytes.count - headerEnd
        var metadata: [String: String] = [:]
        var tensors: [String: Tensor] = [:]
        var ranges: [(Int, Int, String)] = []
        for (name, value) in header.sorted(by: { $0.key < $1.key }) {
            if name == "__metadata__" {
                guard let map = value as? [String: Any], let strings = map as? [String: String] else {
                    throw fail("__metadata__ is not a map of strings")
                }
                metadata = strings
                continue
            }
            guard let entry = value as? [String: Any] else { throw fail("tensor \(name): entry is not an object") }
            guard let dtypeName = entry["dtype"] as? String else { throw fail("tensor \(name): no dtype") }
            guard let dtype = DType(rawValue: dtypeName) else { throw fail("tensor \(name): unsupported dtype \(dtypeName) (expected F32 or I32)") }
            guard let shape = integers(entry["shape"]), shape.allSatisfy({ $0 >= 0 && $0 <= 1 << 31 }) else {
                throw fail("tensor \(name): shape is not a list of non-negative integers")
            }
            guard let offsets = integers(entry["data_offsets"]), offsets.count == 2 else {
                throw fail("tensor \(name): data_offsets is not [begin, end]")
            }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin >= 0, begin <= end, end <= dataCount else {
                throw fail("tensor \(name): data_offsets [\(begin), \(end)] outside the \(dataCount) bytes of data")
            }
            var elements = 1
            for dimension in shape {
                let (product, overflow) = elements.multipliedReportingOverflow(by: dimension)
                guard !overflow, product <= dataCount else { throw fail("tensor \(name): shape \(shape) is larger than the file") }
                elements = product
            }
            guard end - begin == elements * dtype.byteCount else {
                throw fail("tensor \(name): shape \(shape) needs \(elements * dtype.byteCount) bytes, data_offsets give \(end - begin)")
            }
            ranges.append((begin, end, name))
            tensors[name] = Tensor(dtype: dtype, shape: shape, bytes: Array(bytes[(headerEnd + begin)..<(headerEnd + end)]))
        }
        // Tensors may not share bytes. Sorted by begin, then end (then name, for a deterministic
        // message): an empty tensor at the offset where another begins comes first and shares nothing.
        let sorted = ranges.sorted { ($0.0, $0.1, $0.2) < ($1.0, $1.1, $1.2) }
        for (a, b) in zip(sorted, sorted.dropFirst()) where b.0 < a.1 {
            throw fail("tensors \(a.2) and \(b.2) overlap in the data")
        }
        return (tensors, metadata)
    }

    private static func integers(_ value: Any?) -> [Int]? {
        guard let numbers = value as? [Any] else { return nil }
        var result: [Int] = []
        for number in numbers {
            // JSON numbers arrive as NSNumber; refuse strings, fractions and out-of-range values.
            guard !(number is String), let n = number as? NSNumber, let exact = Int(exactly: n.doubleValue) else { return nil }
            result.append(exact)
        }
        return result
    }
}

private func littleEndianBytes<I: FixedWidthInteger>(_ value: I) -> [UInt8] {
    withUnsafeBytes(of: value.littleEndian) { Array($0) }
}
