import CZlib

/// Reader for NumPy's .npz files in the layout Keras uses for its data sets: a zip archive of
/// .npy arrays, entries `x_train.npy`, `y_train.npy`, `x_test.npy` and `y_test.npy` (any other
/// entry is ignored), written by `np.savez` (entries stored) or `np.savez_compressed` (deflated).
///
///   x  uint8 (bytes: the network scales them by 1/255), or float32 or float64 (numbers taken as
///      they are, float64 rounded to Float; each must be finite), shape [N, F] or [N, H, W];
///      x_train and x_test of the same kind (bytes or floats) and the same shape per example
///   y  any integer type, shape [N], each label in 0...255
///
/// The zip is read through its central directory, the index at the end of the file, whose
/// sizes, CRCs and offsets are the ones that hold (a local header written before its data was
/// known may carry zeros, with a data descriptor after the data: general-purpose flag bit 3).
/// Integers are little-endian; offsets below are in bytes.
///
///   end of central directory (last, 22 bytes + comment): 0 signature 0x06054b50, 4 this disk,
///     6 the directory's disk, 10 entries, 12 directory size, 16 directory offset, 20 comment length
///   ZIP64 locator (the 20 bytes before it, in archives past 4 GiB or 65,535 entries):
///     0 signature 0x07064b50, 8 offset of the ZIP64 end record
///   ZIP64 end record: 0 signature 0x06064b50, 16 this disk, 20 the directory's disk,
///     32 entries, 40 directory size, 48 directory offset (8 bytes each)
///   central directory header (46 bytes + name + extra + comment): 0 signature 0x02014b50,
///     8 flags, 10 method, 16 CRC-32, 20 compressed size, 24 uncompressed size, 28 name length,
///     30 extra length, 32 comment length, 34 disk, 42 local header offset
///   local header (30 bytes + name + extra, then the data): 0 signature 0x04034b50,
///     26 name length, 28 extra length
///   extra field: records of id (2 bytes), size (2 bytes), data. ZIP64's, id 0x0001, holds the
///     uncompressed size, compressed size and local header offset (8 bytes each) and the disk
///     (4), in that order, but only those whose own field is 0xFFFFFFFF (0xFFFF for the disk).
///     NumPy writes one into every local header (`force_zip64=True`); only the directory's are read.
///
/// A .npy entry: the magic "\x93NUMPY", the version (two bytes: 1 0, 2 0 or 3 0), the header's
/// length (2 bytes in version 1, 4 in 2 and 3), the header, then the elements in C order:
///
///     {'descr': '<f4', 'fortran_order': False, 'shape': (60000, 28, 28), }   (spaces, then '\n')
///
/// Hostile files: every size and offset is checked against the bytes really there before it is
/// used, a deflated entry may not claim more than deflate can produce from its compressed size
/// (so a small file cannot make us allocate much), and no array is larger than 2 GiB.
public enum NPZ {
    /// The most bytes one array's .npy entry may take uncompressed.
    public static let maximumArrayBytes = 2 << 30
    /// The largest file read: four arrays at the maximum, stored, and room for the rest.
    public static let maximumFileBytes = 9 << 30

    fileprivate static let arrayNames = ["x_train", "y_train", "x_test", "y_test"]

    /// The data set in the .npz file at `path`.
    public static func loadDataSet(_ path: String) throws(DataFileError) -> DataSet {
        try decodeDataSet(readRegularFile(path, limit: maximumFileBytes, kind: "an .npz data set"), path: path)
    }

    /// The data set in `bytes`, the contents of the .npz file at `path` (named in every error).
    public static func decodeDataSet(_ bytes: [UInt8], path: String) throws(DataFileError) -> DataSet {
        let zip = ZipReader(bytes: bytes, path: path)
        let directory = try zip.centralDirectory()
        var entries: [ZipEntry] = []
        for name in arrayNames {
            guard let entry = directory[name + ".npy"] else {
                throw DataFileError(path: path, problem: "has no \(name) array (no \(name).npy entry; a data set holds x_train, y_train, x_test and y_test)")
            }
            entries.append(entry)
        }
        func array(_ index: Int) throws(DataFileError) -> NPYArray {
            try NPYArray(zip.contents(of: entries[index]), name: arrayNames[index], path: path)
        }
        // One array at a time, so that only one raw array is held besides the converted ones.
        let (trainInputs, trainX) = try inputs(array(0))
        let trainLabels = try labels(array(1), examples: trainX)
        let (testInputs, testX) = try inputs(array(2))
        let testLabels = try labels(array(3), examples: testX)
        guard (trainX.type == .unsigned(1)) == (testX.type == .unsigned(1)) else {
            throw DataFileError(path: path, problem: "x_train is \(trainX.type.name) and x_test \(testX.type.name); both must be bytes (uint8) or both floats")
        }
        let exampleShape = Array(trainX.shape.dropFirst())
        guard testX.shape.dropFirst().elementsEqual(exampleShape) else {
            throw DataFileError(path: path, problem: "x_train examples have shape \(tuple(exampleShape)), x_test examples \(tuple(Array(testX.shape.dropFirst())))")
        }
        let features = exampleShape.reduce(1, *)
        return try DataSet(train: LabelledExamples(inputs: trainInputs, labels: trainLabels, features: features),
                           test: LabelledExamples(inputs: testInputs, labels: testLabels, features: features),
                           exampleShape: exampleShape, path: path)
    }

    /// An x array's values: bytes for uint8, Floats for float32 and float64.
    private static func inputs(_ x: NPYArray) throws(DataFileError) -> (LabelledExamples.Inputs, NPYArray.Header) {
        guard x.shape.count == 2 || x.shape.count == 3 else {
            throw x.fail("has shape \(tuple(x.shape)); expected 2 dimensions (examples, features) or 3 (examples, height, width)")
        }
        switch x.type {
        case .unsigned(1): return (.bytes(Array(x.data)), x.header)
        case .float: return (.floats(try x.finiteFloats()), x.header)
        default: throw x.fail("has dtype \(x.type.name) ('\(x.descr)'); inputs must be uint8, float32 or float64")
        }
    }

    /// A y array's labels, one per example of `examples` (the x array of the same set).
    private static func labels(_ y: NPYArray, examples x: NPYArray.Header) throws(DataFileError) -> [UInt8] {
        guard y.shape.count == 1 else {
            throw y.fail("has shape \(tuple(y.shape)); expected 1 dimension (a label per example)")
        }
        if case .float = y.type { throw y.fail("has dtype \(y.type.name) ('\(y.descr)'); labels must be integers") }
        guard y.shape[0] == x.shape[0] else {
            throw DataFileError(path: y.path, problem: "\(x.name) has \(x.shape[0]) examples, but \(y.name) has \(y.shape[0]) labels")
        }
        return try y.labels()
    }
}

/// A shape as Python writes a tuple: (60000, 28, 28), (5,), ().
private func tuple(_ shape: [Int]) -> String {
    shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
}

// MARK: - The zip archive

/// Where one entry of the archive is and how it is stored, from the central directory.
private struct ZipEntry {
    let name: String
    let flags: Int
    let method: Int
    let crc: UInt32
    let compressedSize: Int
    let uncompressedSize: Int
    let localHeaderOffset: Int
}

private struct ZipReader {
    let bytes: [UInt8]
    let path: String

    /// The largest factor by which deflate can shrink data: its longest match (258 bytes) in
    /// two bits at best.
    static let maximumDeflateRatio = 1032

    func fail(_ problem: String) -> DataFileError { DataFileError(path: path, problem: problem) }

    /// The unsigned little-endian integer of `size` bytes at `offset` (checked by the caller),
    /// clamped to Int.max: a value that large fails every bounds check after.
    func integer(at offset: Int, size: Int) -> Int {
        var value: UInt64 = 0
        for k in (0..<size).reversed() { value = value << 8 | UInt64(bytes[offset + k]) }
        return Int(clamping: value)
    }

    /// The entries named like the four arrays, by name; the rest are skipped.
    func centralDirectory() throws(DataFileError) -> [String: ZipEntry] {
        let end = try endOfCentralDirectory()
        var (count, size, offset) = (integer(at: end + 10, size: 2), integer(at: end + 12, size: 4), integer(at: end + 16, size: 4))
        var disks = [integer(at: end + 4, size: 2), integer(at: end + 6, size: 2)]
        var directoryLimit = end
        if end >= 20, integer(at: end - 20, size: 4) == 0x0706_4b50 {
            let record = integer(at: end - 12, size: 8)
            guard record <= end - 20 - 56, integer(at: record, size: 4) == 0x0606_4b50 else {
                throw fail("the ZIP64 end of central directory record is missing or damaged")
            }
            (count, size, offset) = (integer(at: record + 32, size: 8), integer(at: record + 40, size: 8), integer(at: record + 48, size: 8))
            disks = [integer(at: record + 16, size: 4), integer(at: record + 20, size: 4)]
            directoryLimit = record
        }
        guard disks == [0, 0] else { throw fail("is a zip archive split over several disks, which is not read") }
        guard offset <= directoryLimit, size <= directoryLimit - offset else {
            throw fail("the central directory (\(size) bytes at offset \(offset)) does not fit in the file: truncated, or not a zip archive")
        }
        let wanted = Set(NPZ.arrayNames.map { $0 + ".npy" })
        var entries: [String: ZipEntry] = [:]
        var position = offset
        let directoryEnd = offset + size
        var index = 0
        while index < count {
            guard position <= directoryEnd - 46, integer(at: position, size: 4) == 0x0201_4b50 else {
                throw fail("central directory entry \(index) is damaged or missing (the directory claims \(count) entries in \(size) bytes)")
            }
            let nameLength = integer(at: position + 28, size: 2)
            let extraStart = position + 46 + nameLength
            let extraEnd = extraStart + integer(at: position + 30, size: 2)
            let next = extraEnd + integer(at: position + 32, size: 2)
            guard next <= directoryEnd else {
                throw fail("central directory entry \(index) runs past the end of the directory")
            }
            let name = String(decoding: bytes[(position + 46)..<extraStart], as: UTF8.self)
            if wanted.contains(name) {
                guard entries[name] == nil else { throw fail("has two \(name) entries") }
                entries[name] = try entry(name, header: position, extra: extraStart..<extraEnd)
            }
            position = next
            index += 1
        }
        return entries
    }

    /// The offset of the end of central directory record: the last one whose comment ends the file.
    private func endOfCentralDirectory() throws(DataFileError) -> Int {
        var candidate = bytes.count - 22
        while candidate >= max(0, bytes.count - 22 - 0xFFFF) {
            if integer(at: candidate, size: 4) == 0x0605_4b50, candidate + 22 + integer(at: candidate + 20, size: 2) == bytes.count {
                return candidate
            }
            candidate -= 1
        }
        if bytes.starts(with: NPYArray.magic) { throw fail("is a single .npy array, not an .npz archive of x_train, y_train, x_test and y_test") }
        throw fail("not a zip archive, or truncated: no end of central directory record")
    }

    /// The directory's header at `header`, its 32-bit fields replaced by the ZIP64 extra
    /// field's where they are saturated.
    private func entry(_ name: String, header: Int, extra: Range<Int>) throws(DataFileError) -> ZipEntry {
        var uncompressed = integer(at: header + 24, size: 4)
        var compressed = integer(at: header + 20, size: 4)
        var offset = integer(at: header + 42, size: 4)
        if uncompressed == 0xFFFF_FFFF || compressed == 0xFFFF_FFFF || offset == 0xFFFF_FFFF {
            guard var field = zip64Field(in: extra) else {
                throw fail("\(name) has 32-bit sizes of 0xFFFFFFFF but no ZIP64 extra field")
            }
            func take(_ value: inout Int, size: Int) throws(DataFileError) {
                guard field.count >= size else { throw fail("\(name) has a ZIP64 extra field too short for its sizes") }
                value = integer(at: field.lowerBound, size: size)
                field = (field.lowerBound + size)..<field.upperBound
            }
            if uncompressed == 0xFFFF_FFFF { try take(&uncompressed, size: 8) }
            if compressed == 0xFFFF_FFFF { try take(&compressed, size: 8) }
            if offset == 0xFFFF_FFFF { try take(&offset, size: 8) }
        }
        return ZipEntry(name: name, flags: integer(at: header + 8, size: 2), method: integer(at: header + 10, size: 2),
                        crc: UInt32(integer(at: header + 16, size: 4)), compressedSize: compressed,
                        uncompressedSize: uncompressed, localHeaderOffset: offset)
    }

    /// The data of the ZIP64 record (id 0x0001) in the extra field at `extra`, if there is one.
    private func zip64Field(in extra: Range<Int>) -> Range<Int>? {
        var record = extra.lowerBound
        while record <= extra.upperBound - 4 {
            let dataStart = record + 4, dataEnd = record + 4 + integer(at: record + 2, size: 2)
            guard dataEnd <= extra.upperBound else { return nil }
            if integer(at: record, size: 2) == 0x0001 { return dataStart..<dataEnd }
            record = dataEnd
        }
        return nil
    }

    /// The entry's uncompressed bytes, their CRC-32 checked.
    func contents(of entry: ZipEntry) throws(DataFileError) -> ArraySlice<UInt8> {
        let name = entry.name
        guard entry.flags & 1 == 0 else { throw fail("\(name) is encrypted") }
        guard entry.method == 0 || entry.method == 8 else {
            throw fail("\(name) uses compression method \(entry.method); only stored (0) and deflated (8) entries are read")
        }
        guard entry.uncompressedSize <= NPZ.maximumArrayBytes else {
            throw fail("\(name) is \(entry.uncompressedSize) bytes uncompressed, more than the \(NPZ.maximumArrayBytes >> 20) MiB accepted for an array")
        }
        guard entry.uncompressedSize >= NPYArray.smallestSize else {
            throw fail("\(name) is \(entry.uncompressedSize) bytes, too short for a .npy array")
        }
        let local = entry.localHeaderOffset
        guard local <= bytes.count - 30, integer(at: local, size: 4) == 0x0403_4b50 else {
            throw fail("\(name) has no local header at offset \(local)")
        }
        let nameEnd = local + 30 + integer(at: local + 26, size: 2)
        let dataStart = nameEnd + integer(at: local + 28, size: 2)
        guard dataStart <= bytes.count, bytes[(local + 30)..<nameEnd].elementsEqual(name.utf8) else {
            throw fail("the local header of \(name) names another entry, or is truncated")
        }
        guard entry.compressedSize <= bytes.count - dataStart else {
            throw fail("\(name) is truncated: its \(entry.compressedSize) bytes of data run past the end of the file")
        }
        let stored = bytes[dataStart..<(dataStart + entry.compressedSize)]
        let data: ArraySlice<UInt8>
        if entry.method == 0 {
            guard entry.compressedSize == entry.uncompressedSize else {
                throw fail("\(name) is stored, but its compressed size \(entry.compressedSize) differs from its size \(entry.uncompressedSize)")
            }
            data = stored
        } else {
            data = ArraySlice(try decompress(stored, size: entry.uncompressedSize, name: name))
        }
        let crc = UInt32(data.withUnsafeBytes { crc32(0, $0.bindMemory(to: Bytef.self).baseAddress, uInt($0.count)) })
        guard crc == entry.crc else {
            throw fail("\(name) fails its CRC-32 check (computed \(hex(crc)), the zip says \(hex(entry.crc)))")
        }
        return data
    }

    /// The `size` bytes the raw deflate stream `compressed` (no zlib header) inflates to: exactly
    /// that many, with no compressed bytes left over.
    private func decompress(_ compressed: ArraySlice<UInt8>, size: Int, name: String) throws(DataFileError) -> [UInt8] {
        // Checked before allocating: a few hostile bytes cannot claim gigabytes.
        guard size / ZipReader.maximumDeflateRatio <= compressed.count else {
            throw fail("\(name) claims \(size) bytes from \(compressed.count) compressed, more than deflate can produce")
        }
        var stream = z_stream()
        guard inflateInit2_(&stream, -MAX_WBITS, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw fail("\(name): zlib could not start inflating")
        }
        defer { inflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: size)
        // avail_in is 32 bits: the input goes in chunks, the output (at most 2 GiB) in one.
        let (status, leftOver) = compressed.withUnsafeBytes { input in
            output.withUnsafeMutableBytes { out in
                let inputBase = UnsafeMutablePointer(mutating: input.bindMemory(to: Bytef.self).baseAddress)
                stream.next_out = out.bindMemory(to: Bytef.self).baseAddress
                stream.avail_out = uInt(out.count)
                var fed = 0
                var status = Z_OK
                while status == Z_OK {
                    if stream.avail_in == 0, fed < input.count {
                        let chunk = min(input.count - fed, 1 << 30)
                        stream.next_in = inputBase.map { $0 + fed }
                        stream.avail_in = uInt(chunk)
                        fed += chunk
                    }
                    status = inflate(&stream, Z_NO_FLUSH)
                }
                return (status, stream.avail_in != 0 || fed < input.count)
            }
        }
        switch status {
        case Z_STREAM_END:
            guard !leftOver else { throw fail("\(name) has compressed bytes after the end of its deflate stream") }
            guard Int(stream.total_out) == size else {
                throw fail("\(name) inflates to \(stream.total_out) bytes, but the zip says \(size)")
            }
            return output
        case Z_BUF_ERROR where stream.avail_out == 0: throw fail("\(name) inflates to more than the \(size) bytes the zip says")
        case Z_BUF_ERROR: throw fail("\(name) is truncated: its deflate stream ends early")
        default:
            let reason = stream.msg.map { String(cString: $0) } ?? "zlib status \(status)"
            throw fail("\(name) has corrupt deflate data (\(reason))")
        }
    }

    private func hex(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 8 - digits.count) + digits
    }
}

// MARK: - .npy arrays

/// The element types read, with their size in bytes.
private enum ElementType: Equatable {
    case unsigned(Int)
    case signed(Int)
    case float(Int)

    /// By the part of a descr after its byte order: "u1", "i8", "f4"...
    static let byCode: [String: ElementType] = [
        "u1": .unsigned(1), "u2": .unsigned(2), "u4": .unsigned(4), "u8": .unsigned(8),
        "i1": .signed(1), "i2": .signed(2), "i4": .signed(4), "i8": .signed(8),
        "f4": .float(4), "f8": .float(8),
    ]

    var size: Int {
        switch self {
        case .unsigned(let size), .signed(let size), .float(let size): return size
        }
    }

    /// NumPy's name: uint8, int64, float32...
    var name: String {
        switch self {
        case .unsigned(let size): return "uint\(8 * size)"
        case .signed(let size): return "int\(8 * size)"
        case .float(let size): return "float\(8 * size)"
        }
    }
}

/// One array of the archive: its element type and shape from the .npy header, and its elements.
private struct NPYArray {
    static let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)
    /// The magic, the version and a 2-byte header length.
    static let smallestSize = 10

    /// What the checks across arrays need once the elements are converted.
    struct Header {
        let name: String
        let type: ElementType
        let shape: [Int]
    }

    let path: String
    let header: Header
    let descr: String
    /// count * type.size bytes, little-endian.
    let data: ArraySlice<UInt8>

    var name: String { header.name }
    var type: ElementType { header.type }
    var shape: [Int] { header.shape }
    /// The number of elements (the product of the shape; none is 0).
    var count: Int { data.count / type.size }

    func fail(_ problem: String) -> DataFileError { DataFileError(path: path, problem: "\(name) \(problem)") }

    /// An error about the element at flat index `index`, named as NumPy indexes it: x_train[2, 0, 27].
    func fail(at index: Int, _ problem: String) -> DataFileError {
        var rest = index
        var indices: [Int] = []
        for size in shape.reversed() {
            indices.append(rest % size)
            rest /= size
        }
        return DataFileError(path: path, problem: "\(name)[" + indices.reversed().map(String.init).joined(separator: ", ") + "] \(problem)")
    }

    /// Parses the .npy `entry` of the array `name`: version, header, dtype, order, shape, and
    /// the data's length against them.
    init(_ entry: ArraySlice<UInt8>, name: String, path: String) throws(DataFileError) {
        func fail(_ problem: String) -> DataFileError { DataFileError(path: path, problem: "\(name) \(problem)") }
        let bytes = Array(entry.prefix(12))
        guard bytes.starts(with: Self.magic), bytes.count >= Self.smallestSize else {
            throw fail("is not a .npy array (its entry does not start with \\x93NUMPY)")
        }
        let (major, minor) = (Int(bytes[6]), Int(bytes[7]))
        guard (1...3).contains(major), minor == 0 else {
            throw fail("is in .npy format version \(major).\(minor); versions 1.0, 2.0 and 3.0 are read")
        }
        let lengthSize = major == 1 ? 2 : 4
        guard bytes.count >= 8 + lengthSize else { throw fail("is truncated in its .npy header") }
        let headerLength = (0..<lengthSize).reduce(0) { $0 | Int(bytes[8 + $1]) << (8 * $1) }
        let headerStart = entry.startIndex + 8 + lengthSize
        guard headerLength <= entry.endIndex - headerStart else {
            throw fail("has a .npy header of \(headerLength) bytes, longer than its entry")
        }
        var parser = HeaderParser(text: Array(entry[headerStart..<(headerStart + headerLength)]))
        let fields: [String: Literal]
        do throws(HeaderParser.SyntaxError) { fields = try parser.dictionary() } catch {
            throw fail("has a .npy header that is not a Python dictionary: \(error.reason) at byte \(parser.position)")
        }

        let descr: String
        switch fields["descr"] {
        case .string(let text)?: descr = text
        case .sequence?: throw fail("has a structured dtype; only arrays of numbers are read")
        case nil: throw fail("has no 'descr' in its .npy header")
        default: throw fail("has a 'descr' that is not a string")
        }
        let order = descr.first ?? " ", code = String(descr.dropFirst())
        let type: ElementType
        switch (order, ElementType.byCode[code]) {
        case (_, let known?) where known.size == 1 && "<>|=".contains(order): type = known
        // '=' is the writer's native order: every platform NumPy and we run on is little-endian.
        case ("<", let known?), ("=", let known?): type = known
        case (">", _?): throw fail("is big-endian ('\(descr)'); only little-endian arrays are read")
        case (_, nil) where code.hasPrefix("O"): throw fail("is an array of Python objects ('\(descr)'); only arrays of numbers are read")
        default: throw fail("has unsupported dtype '\(descr)'")
        }
        switch fields["fortran_order"] {
        case .boolean(false)?: break
        case .boolean(true)?: throw fail("is in Fortran order; only C-order arrays are read")
        case nil: throw fail("has no 'fortran_order' in its .npy header")
        default: throw fail("has a 'fortran_order' that is not True or False")
        }
        guard case .sequence(let items)? = fields["shape"] else {
            throw fail(fields["shape"] == nil ? "has no 'shape' in its .npy header" : "has a 'shape' that is not a tuple")
        }
        var shape: [Int] = []
        for item in items {
            guard case .integer(let size) = item, size >= 0 else { throw fail("has a 'shape' that is not a tuple of sizes") }
            shape.append(size)
        }
        guard !shape.contains(0) else { throw fail("has shape \(tuple(shape)), with a dimension of size 0") }
        let dataStart = headerStart + headerLength
        let dataCount = entry.endIndex - dataStart
        // With overflow checks: a lying shape must not wrap around to the real length.
        var needed = type.size
        for size in shape {
            let (product, overflow) = needed.multipliedReportingOverflow(by: size)
            guard !overflow else { throw fail("has \(dataCount) bytes of data, too few for shape \(tuple(shape)) of \(type.name)") }
            needed = product
        }
        guard needed == dataCount else {
            throw fail("has \(dataCount) bytes of data, but shape \(tuple(shape)) of \(type.name) needs \(needed)")
        }
        self.path = path
        header = Header(name: name, type: type, shape: shape)
        self.descr = descr
        data = entry[dataStart...]
    }

    /// The element at flat index `index` as its raw little-endian bits.
    private func bits(_ raw: UnsafeRawBufferPointer, _ index: Int) -> UInt64 {
        switch type.size {
        case 1: return UInt64(raw[index])
        case 2: return UInt64(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * index, as: UInt16.self)))
        case 4: return UInt64(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * index, as: UInt32.self)))
        default: return UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * index, as: UInt64.self))
        }
    }

    /// The float32 or float64 elements as Floats; each must be finite, and float64 within Float's range.
    func finiteFloats() throws(DataFileError) -> [Float] {
        var values = [Float](repeating: 0, count: count)
        var firstBad: (index: Int, value: Double)?
        data.withUnsafeBytes { raw in
            for i in 0..<values.count {
                let value = type.size == 4 ? Double(Float(bitPattern: UInt32(bits(raw, i)))) : Double(bitPattern: bits(raw, i))
                values[i] = Float(value)
                if !values[i].isFinite {
                    firstBad = (i, value)
                    return
                }
            }
        }
        guard let (index, value) = firstBad else { return values }
        if value.isNaN { throw fail(at: index, "is NaN; inputs must be finite") }
        if value.isInfinite { throw fail(at: index, "is infinite; inputs must be finite") }
        throw fail(at: index, "is \(value), beyond the range of a 32-bit float")
    }

    /// The integer elements as labels; each must be in 0...255.
    func labels() throws(DataFileError) -> [UInt8] {
        var labels = [UInt8](repeating: 0, count: count)
        var firstBad: (index: Int, value: String)?
        let signed: Bool
        if case .signed = type { signed = true } else { signed = false }
        let unused = UInt64(64 - 8 * type.size)
        data.withUnsafeBytes { raw in
            for i in 0..<labels.count {
                let bits = bits(raw, i)
                // A signed type's negative values have their top bit set: sign-extended, they are below 0.
                let negative = signed && bits >> (UInt64(8 * type.size) - 1) == 1
                if negative || bits > 255 {
                    firstBad = (i, negative ? "\(Int64(bitPattern: bits << unused) >> Int64(unused))" : "\(bits)")
                    return
                }
                labels[i] = UInt8(bits)
            }
        }
        guard let (index, value) = firstBad else { return labels }
        throw fail(at: index, "is \(value); labels must be in 0...255 (at most 256 classes)")
    }
}

// MARK: - The .npy header

/// A value of the Python literals NumPy writes in a .npy header: strings, integers, booleans,
/// None, and tuples or lists of them.
private indirect enum Literal: Equatable {
    case string(String)
    case integer(Int)
    case boolean(Bool)
    case none
    case sequence([Literal])
}

/// Parses a .npy header as Python's `ast.literal_eval` would, for what NumPy writes: a dict with
/// string keys in any order, single or double quotes, any spacing, a trailing comma, and
/// tuples ((5,) is a tuple, (5) the number 5).
private struct HeaderParser {
    struct SyntaxError: Error {
        let reason: String
    }

    let text: [UInt8]
    var position = 0
    /// Deeper nesting is no header NumPy writes (a structured dtype nests two or three deep),
    /// and the recursion must not run out of stack.
    static let maximumDepth = 16

    mutating func dictionary() throws(SyntaxError) -> [String: Literal] {
        skipSpace()
        try expect("{")
        var fields: [String: Literal] = [:]
        while true {
            skipSpace()
            if take("}") { break }
            guard case .string(let key) = try value(depth: 1) else { throw SyntaxError(reason: "a key that is not a string") }
            skipSpace()
            try expect(":")
            skipSpace()
            fields[key] = try value(depth: 1)
            skipSpace()
            if take(",") { continue }
            try expect("}")
            break
        }
        skipSpace()
        guard position == text.count else { throw SyntaxError(reason: "text after the closing brace") }
        return fields
    }

    private mutating func value(depth: Int) throws(SyntaxError) -> Literal {
        guard depth <= Self.maximumDepth else { throw SyntaxError(reason: "nesting deeper than \(Self.maximumDepth)") }
        guard position < text.count else { throw SyntaxError(reason: "the end of the header where a value belongs") }
        switch text[position] {
        case UInt8(ascii: "'"), UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "("): return try sequence(closedBy: ")", depth: depth)
        case UInt8(ascii: "["): return try sequence(closedBy: "]", depth: depth)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .integer(try integer())
        default:
            let start = position
            while position < text.count, isLetter(text[position]) { position += 1 }
            switch String(decoding: text[start..<position], as: UTF8.self) {
            case "True": return .boolean(true)
            case "False": return .boolean(false)
            case "None": return .none
            default:
                position = start
                throw SyntaxError(reason: "an unexpected character")
            }
        }
    }

    private mutating func string() throws(SyntaxError) -> String {
        let quote = text[position]
        var characters: [UInt8] = []
        position += 1
        while position < text.count, text[position] != quote {
            // An escape keeps the character after it (NumPy writes none; a quote must not end the string).
            if text[position] == UInt8(ascii: "\\") { position += 1 }
            if position < text.count { characters.append(text[position]) }
            position += 1
        }
        guard position < text.count else { throw SyntaxError(reason: "a string that does not end") }
        position += 1
        return String(decoding: characters, as: UTF8.self)
    }

    private mutating func sequence(closedBy close: Unicode.Scalar, depth: Int) throws(SyntaxError) -> Literal {
        let isTuple = close == ")"
        var items: [Literal] = []
        var sawComma = false
        position += 1
        while true {
            skipSpace()
            if take(close) { break }
            items.append(try value(depth: depth + 1))
            skipSpace()
            if take(",") {
                sawComma = true
                continue
            }
            try expect(close)
            break
        }
        return isTuple && items.count == 1 && !sawComma ? items[0] : .sequence(items)
    }

    private mutating func integer() throws(SyntaxError) -> Int {
        let negative = take("-")
        let start = position
        var value = 0
        while position < text.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(text[position]) {
            let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(Int(text[position] - UInt8(ascii: "0")))
            guard !overflow1, !overflow2 else { throw SyntaxError(reason: "an integer too large") }
            value = sum
            position += 1
        }
        guard position > start else { throw SyntaxError(reason: "a minus sign without digits") }
        return negative ? -value : value
    }

    private func isLetter(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
    }

    private mutating func skipSpace() {
        while position < text.count, [0x20, 0x0A, 0x0D, 0x09].contains(text[position]) { position += 1 }
    }

    private mutating func take(_ character: Unicode.Scalar) -> Bool {
        guard position < text.count, text[position] == UInt8(ascii: character) else { return false }
        position += 1
        return true
    }

    private mutating func expect(_ character: Unicode.Scalar) throws(SyntaxError) {
        guard take(character) else { throw SyntaxError(reason: "expected '\(character)'") }
    }
}
