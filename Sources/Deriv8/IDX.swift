import CZlib
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A data file that cannot be used, with the path and what is wrong, in one line.
public struct DataFileError: Error, Equatable, CustomStringConvertible {
    public let path: String
    public let problem: String

    /// Control characters (a newline in a tensor name read from a hostile file, say) are
    /// escaped, so the message stays one line whatever the file holds.
    public init(path: String, problem: String) {
        self.path = path
        self.problem = String(problem.unicodeScalars.flatMap { scalar -> [Character] in
            scalar.properties.generalCategory == .control ? Array(scalar.escaped(asASCII: true)) : [Character(scalar)]
        })
    }

    public var description: String { "\(path): \(problem)" }
}

/// Reader for the IDX format of the MNIST files, gzipped or not:
///   bytes 0-1 zero, byte 2 the element type (0x08 = unsigned byte), byte 3 the number of
///   dimensions d, then d big-endian UInt32 sizes, then the elements, row-major, nothing after.
/// Images are magic 0x00000803 (2051) [count, rows, cols]; labels 0x00000801 (2049) [count].
public enum IDX {
    public static let imagesMagic: UInt32 = 0x0000_0803
    public static let labelsMagic: UInt32 = 0x0000_0801
    /// The most decompressed bytes accepted from one file (MNIST's largest is 47 MB), so a
    /// hostile or corrupt file cannot make us allocate without bound.
    public static let maximumBytes = 512 << 20

    /// The images in `path`: count, rows, cols and the pixels, `count * rows * cols` bytes.
    public static func readImages(_ path: String) throws(DataFileError) -> (count: Int, rows: Int, cols: Int, pixels: [UInt8]) {
        var (dims, bytes) = try read(path, magic: imagesMagic, dimensions: 3)
        bytes.removeFirst(headerSize(dimensions: 3))
        return (dims[0], dims[1], dims[2], bytes)
    }

    /// The labels in `path` (a byte each: at most 256 classes).
    public static func readLabels(_ path: String) throws(DataFileError) -> [UInt8] {
        var (_, bytes) = try read(path, magic: labelsMagic, dimensions: 1)
        bytes.removeFirst(headerSize(dimensions: 1))
        return bytes
    }

    static func headerSize(dimensions: Int) -> Int { 4 + 4 * dimensions }

    /// Decompresses `path` and validates the header against `magic`, `dimensions` and the real length.
    static func read(_ path: String, magic: UInt32, dimensions: Int) throws(DataFileError) -> (dims: [Int], bytes: [UInt8]) {
        let bytes = try readWholeFile(path)
        let header = headerSize(dimensions: dimensions)
        guard bytes.count >= 4 else {
            throw DataFileError(path: path, problem: bytes.isEmpty ? "file is empty" : "file is \(bytes.count) bytes, too short for an IDX header")
        }
        let found = bigEndianUInt32(bytes, at: 0)
        guard found == magic else {
            throw DataFileError(path: path, problem: "bad magic number \(found) (0x\(hex(found))), expected \(magic) (0x\(hex(magic)))")
        }
        guard bytes.count >= header else {
            throw DataFileError(path: path, problem: "file is \(bytes.count) bytes, too short for its \(header)-byte header")
        }
        var dims: [Int] = []
        var expected = 1
        for d in 0..<dimensions {
            let size = Int(bigEndianUInt32(bytes, at: 4 + 4 * d))
            guard size > 0 else { throw DataFileError(path: path, problem: "dimension \(d) is 0") }
            // Multiply with overflow checks: a lying header must not wrap around to a small size.
            let (product, overflow) = expected.multipliedReportingOverflow(by: size)
            guard !overflow, product <= maximumBytes else {
                throw DataFileError(path: path, problem: "header claims \(dims + [size]) elements, more than the file holds")
            }
            expected = product
            dims.append(size)
        }
        let payload = bytes.count - header
        guard payload == expected else {
            let what = payload < expected ? "truncated" : "has trailing bytes"
            throw DataFileError(path: path, problem: "\(what): header says \(dims.map(String.init).joined(separator: "x")) = \(expected) bytes of data, file has \(payload)")
        }
        return (dims, bytes)
    }

    /// The bytes of `path`, gunzipped when it is gzip (zlib passes other files through unchanged).
    static func readWholeFile(_ path: String) throws(DataFileError) -> [UInt8] {
        let fileSize = try regularFileSize(path)
        guard let file = gzopen(path, "rb") else {
            throw DataFileError(path: path, problem: "cannot open: \(String(cString: strerror(errno)).lowercased())")
        }
        // Reserve what the file will most likely hold, so the bytes are not copied as the array
        // grows: the gzip trailer's size (bounded), or the file's own size when it is not gzip.
        var bytes: [UInt8] = []
        bytes.reserveCapacity(min(expectedSize(path, fileSize: fileSize), maximumBytes))
        let chunk = 1 << 20
        while true {
            let before = bytes.count
            guard before <= maximumBytes else {
                gzclose_r(file)
                throw DataFileError(path: path, problem: "more than \(maximumBytes >> 20) MiB of data; not an MNIST file")
            }
            bytes.append(contentsOf: repeatElement(0, count: chunk))
            let got = bytes.withUnsafeMutableBytes { gzread(file, $0.baseAddress! + before, UInt32(chunk)) }
            if got < 0 {
                let message = gzErrorMessage(file)
                gzclose_r(file)
                throw DataFileError(path: path, problem: "not a valid gzip file (\(message))")
            }
            bytes.removeLast(chunk - Int(got))
            if got == 0 { break }
        }
        // gzclose_r reports a stream that ended before its gzip trailer (a truncated download).
        let status = gzclose_r(file)
        guard status == Z_OK else {
            throw DataFileError(path: path, problem: status == Z_BUF_ERROR ? "gzip data is truncated" : "gzip data is corrupt (zlib status \(status))")
        }
        return bytes
    }

    /// The uncompressed size a gzip file announces in its last four bytes (ISIZE, little-endian,
    /// modulo 2³²), plus room for one read chunk; the file size itself for anything else. Only
    /// a capacity hint: the real length is what decides.
    private static func expectedSize(_ path: String, fileSize: Int) -> Int {
        guard fileSize >= 18, let file = fopen(path, "rb") else { return fileSize }
        defer { fclose(file) }
        var magic = [UInt8](repeating: 0, count: 2), trailer = [UInt8](repeating: 0, count: 4)
        guard fread(&magic, 1, 2, file) == 2, magic == [0x1f, 0x8b],
              fseek(file, -4, SEEK_END) == 0, fread(&trailer, 1, 4, file) == 4 else { return fileSize + (1 << 20) }
        let size = Int(trailer[0]) | Int(trailer[1]) << 8 | Int(trailer[2]) << 16 | Int(trailer[3]) << 24
        return size + (1 << 20)
    }

    private static func gzErrorMessage(_ file: gzFile) -> String {
        var code: Int32 = 0
        guard let text = gzerror(file, &code) else { return "zlib error \(code)" }
        return String(cString: text)
    }

    private static func bigEndianUInt32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        (UInt32(bytes[offset]) << 24) | (UInt32(bytes[offset + 1]) << 16) | (UInt32(bytes[offset + 2]) << 8) | UInt32(bytes[offset + 3])
    }

    private static func hex(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, 8 - digits.count)) + digits
    }
}
