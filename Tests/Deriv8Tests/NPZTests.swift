import CZlib
import Deriv8
import Foundation
import Testing

// MARK: - Writing .npy arrays and zip archives

/// Little-endian bytes of integers, and of floats by their bit patterns.
func littleEndian<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
    values.flatMap { value in withUnsafeBytes(of: value.littleEndian) { Array($0) } }
}
func littleEndian(_ values: [Float]) -> [UInt8] { littleEndian(values.map(\.bitPattern)) }
func littleEndian(_ values: [Double]) -> [UInt8] { littleEndian(values.map(\.bitPattern)) }

/// A .npy file as NumPy writes it: magic, version, header length (2 bytes in version 1, 4 in 2
/// and 3), the header padded with spaces and a newline to a multiple of 64 bytes, the data.
/// `header` replaces the dictionary NumPy would write.
func npy(_ descr: String, _ shape: [Int], _ data: [UInt8], fortran: Bool = false, version: UInt8 = 1,
         header: String? = nil) -> [UInt8] {
    let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
    var text = Array((header ?? "{'descr': '\(descr)', 'fortran_order': \(fortran ? "True" : "False"), 'shape': \(shapeText), }").utf8)
    let prefix = version == 1 ? 10 : 12
    while (prefix + text.count + 1) % 64 != 0 { text.append(0x20) }
    text.append(0x0A)
    let length = version == 1 ? littleEndian([UInt16(text.count)]) : littleEndian([UInt32(text.count)])
    return [0x93] + Array("NUMPY".utf8) + [version, 0] + length + text + data
}

/// The raw deflate stream of `bytes`: zlib's compress2 output without its 2-byte header and
/// 4-byte Adler-32 trailer.
func rawDeflate(_ bytes: [UInt8]) -> [UInt8] {
    var length = compressBound(uLong(bytes.count))
    var out = [UInt8](repeating: 0, count: Int(length))
    let status = compress2(&out, &length, bytes, uLong(bytes.count), 9)
    precondition(status == Z_OK)
    return Array(out[2..<(Int(length) - 4)])
}

func crc32(of bytes: [UInt8]) -> UInt32 { UInt32(crc32(0, bytes, uInt(bytes.count))) }

/// One entry of a test archive, and the ways a test can make it wrong.
struct TestEntry {
    var name: String
    var contents: [UInt8]
    var deflate = false
    var flags: UInt16 = 0
    var method: UInt16?
    var crcXor: UInt32 = 0
    /// The uncompressed size the archive claims, when not the real one.
    var claimedSize: Int?
    /// The compressed size the archive claims, when not the real one.
    var claimedCompressedSize: Int?
    /// The local header offset the directory claims, when not the real one.
    var claimedOffset: Int?
    /// Changes the stored (maybe compressed) bytes after the sizes and CRC are taken from the
    /// real ones; the compressed size follows the change.
    var mangle: ([UInt8]) -> [UInt8] = { $0 }
    /// A name for the local header, when not the directory's.
    var localName: String?

    init(_ name: String, _ contents: [UInt8], deflate: Bool = false) {
        (self.name, self.contents, self.deflate) = (name, contents, deflate)
    }
}

/// How the archive around the entries is written.
struct ZipLayout {
    /// Sizes and offsets in the central directory as 0xFFFFFFFF, the real ones in a ZIP64 extra field.
    var zip64Directory = false
    /// A ZIP64 end of central directory record and locator, the 32-bit end record saturated.
    var zip64End = false
    /// Zeros in the local headers and a data descriptor after each entry's data (flag bit 3),
    /// as zipfile writes to a stream it cannot seek.
    var dataDescriptors = false
    var comment: [UInt8] = []
}

/// A zip archive as Python's zipfile writes it for NumPy (`force_zip64=True`: every local header
/// carries a ZIP64 extra field with the sizes, its own sizes 0xFFFFFFFF).
func zipArchive(_ entries: [TestEntry], _ layout: ZipLayout = ZipLayout()) -> [UInt8] {
    func u16(_ v: Int) -> [UInt8] { littleEndian([UInt16(truncatingIfNeeded: v)]) }
    func u32(_ v: Int) -> [UInt8] { littleEndian([UInt32(truncatingIfNeeded: v)]) }
    func u64(_ v: Int) -> [UInt8] { littleEndian([UInt64(v)]) }
    var out: [UInt8] = []
    var directory: [UInt8] = []
    for entry in entries {
        let compressed = entry.mangle(entry.deflate ? rawDeflate(entry.contents) : entry.contents)
        let size = entry.claimedSize ?? entry.contents.count
        let compressedSize = entry.claimedCompressedSize ?? compressed.count
        let crc = Int(crc32(of: entry.contents) ^ entry.crcXor)
        let method = Int(entry.method ?? (entry.deflate ? 8 : 0))
        let flags = Int(entry.flags) | (layout.dataDescriptors ? 8 : 0)
        let offset = out.count
        let localName = Array((entry.localName ?? entry.name).utf8), name = Array(entry.name.utf8)
        let localSizes = layout.dataDescriptors ? u64(0) + u64(0) : u64(size) + u64(compressedSize)
        out += u32(0x0403_4b50) + u16(45) + u16(flags) + u16(method) + u16(0) + u16(0x21)
        out += u32(layout.dataDescriptors ? 0 : crc) + u32(0xFFFF_FFFF) + u32(0xFFFF_FFFF)
        out += u16(localName.count) + u16(20) + localName + u16(1) + u16(16) + localSizes + compressed
        if layout.dataDescriptors { out += u32(0x0807_4b50) + u32(crc) + u64(compressedSize) + u64(size) }
        let wide = layout.zip64Directory
        let extra = wide ? u16(1) + u16(24) + u64(size) + u64(compressedSize) + u64(entry.claimedOffset ?? offset) : []
        directory += u32(0x0201_4b50) + u16(0x031E) + u16(45) + u16(flags) + u16(method) + u16(0) + u16(0x21) + u32(crc)
        directory += wide ? u32(0xFFFF_FFFF) + u32(0xFFFF_FFFF) : u32(compressedSize) + u32(size)
        directory += u16(name.count) + u16(extra.count) + u16(0) + u16(0) + u16(0) + u32(0)
        directory += (wide ? u32(0xFFFF_FFFF) : u32(entry.claimedOffset ?? offset)) + name + extra
    }
    let directoryOffset = out.count
    out += directory
    if layout.zip64End {
        let record = out.count
        out += u32(0x0606_4b50) + u64(44) + u16(45) + u16(45) + u32(0) + u32(0)
        out += u64(entries.count) + u64(entries.count) + u64(directory.count) + u64(directoryOffset)
        out += u32(0x0706_4b50) + u32(0) + u64(record) + u32(1)
        out += u32(0x0605_4b50) + u16(0xFFFF) + u16(0xFFFF) + u16(0xFFFF) + u16(0xFFFF) + u32(0xFFFF_FFFF) + u32(0xFFFF_FFFF)
    } else {
        out += u32(0x0605_4b50) + u16(0) + u16(0) + u16(entries.count) + u16(entries.count) + u32(directory.count) + u32(directoryOffset)
    }
    return out + u16(layout.comment.count) + layout.comment
}

// MARK: - Tests

@Suite("NPZ reader")
struct NPZTests {
    static let path = "/data/set.npz"

    /// A small valid data set: bytes [3, 2] with int64 labels, and one test example.
    static let arrays: [String: [UInt8]] = [
        "x_train": npy("|u1", [3, 2], [0, 1, 2, 3, 254, 255]),
        "y_train": npy("<i8", [3], littleEndian([1, 0, 1] as [Int64])),
        "x_test": npy("|u1", [1, 2], [7, 8]),
        "y_test": npy("<i8", [1], littleEndian([0] as [Int64])),
    ]

    /// The four arrays in order, with `changes` replacing or (nil) removing some.
    static func entries(_ changes: [String: [UInt8]?] = [:], deflate: Bool = false) -> [TestEntry] {
        ["x_train", "y_train", "x_test", "y_test"].compactMap { name in
            let contents = changes[name].map { $0 } ?? arrays[name]
            return contents.map { TestEntry(name + ".npy", $0, deflate: deflate) }
        }
    }

    static func decode(_ bytes: [UInt8]) throws(DataFileError) -> DataSet { try NPZ.decodeDataSet(bytes, path: path) }

    /// The fixture files NumPy wrote (see Fixtures/README.md).
    static func fixture(_ name: String) -> String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/" + name).path
    }

    // MARK: Files NumPy wrote

    @Test("np.savez: uint8 images [N, 2, 4] and int64 labels; another array in the file is ignored")
    func storedImages() throws {
        let data = try NPZ.loadDataSet(Self.fixture("stored-images.npz"))
        #expect(data.exampleShape == [2, 4] && data.features == 8 && data.classes == 2)
        #expect(data.train.inputs == .bytes((0..<24).map { UInt8($0 * 10) }))
        #expect(data.train.labels == [0, 1, 1])
        #expect(data.test.inputs == .bytes(Array(200..<216)))
        #expect(data.test.labels == [1, 0])
    }

    @Test("np.savez_compressed: float32 features [N, 3] and int32 labels of 200 classes")
    func deflatedTable() throws {
        let data = try NPZ.loadDataSet(Self.fixture("deflated-table.npz"))
        #expect(data.exampleShape == [3] && data.classes == 200)
        #expect(data.train.inputs == .floats([0.5, -1.25, 3e38, 0, 1e-3, -7, 1, 2, 3, -0.0, 65504, 0.1]))
        #expect(data.train.labels == [199, 0, 7, 150])
        #expect(data.test.inputs == .floats([4, 5, 6]) && data.test.labels == [3])
    }

    @Test("np.savez: one example of one float64 feature per set, int16 labels")
    func storedSingle() throws {
        let data = try NPZ.loadDataSet(Self.fixture("stored-single.npz"))
        #expect(data.exampleShape == [1] && data.classes == 2)
        #expect(data.train.inputs == .floats([2.5]) && data.train.labels == [1])
        #expect(data.test.inputs == .floats([-0.125]) && data.test.labels == [0])
    }

    @Test("np.savez_compressed to a stream that cannot seek: data descriptors, uint8 labels")
    func streamed() throws {
        let data = try NPZ.loadDataSet(Self.fixture("streamed-bytes.npz"))
        #expect(data.exampleShape == [1] && data.classes == 2)
        #expect(data.train.inputs == .bytes([255, 0, 17, 128, 1]) && data.train.labels == [1, 0, 1, 1, 0])
        #expect(data.test.inputs == .bytes([9, 99]) && data.test.labels == [0, 1])
    }

    // MARK: Files written here

    @Test("stored and deflated, with ZIP64 directory fields, a ZIP64 end record, data descriptors and a comment",
          arguments: [false, true])
    func layouts(deflate: Bool) throws {
        let layouts = [ZipLayout(), ZipLayout(zip64Directory: true), ZipLayout(zip64End: true),
                       ZipLayout(dataDescriptors: true), ZipLayout(comment: Array("PK\u{5}\u{6} a comment".utf8)),
                       ZipLayout(zip64Directory: true, zip64End: true, dataDescriptors: true)]
        for layout in layouts {
            let data = try Self.decode(zipArchive(Self.entries(deflate: deflate), layout))
            #expect(data.train.inputs == .bytes([0, 1, 2, 3, 254, 255]) && data.train.labels == [1, 0, 1], "\(layout)")
            #expect(data.test.inputs == .bytes([7, 8]) && data.test.labels == [0], "\(layout)")
            #expect(data.exampleShape == [2] && data.classes == 2)
        }
    }

    @Test("labels of every integer type, 0 to 255")
    func labelTypes() throws {
        let values: [Int] = [0, 255, 1, 128]
        let types: [(String, [UInt8])] = [
            ("|u1", values.map { UInt8($0) }),
            ("<i2", littleEndian(values.map { Int16($0) })), ("<u2", littleEndian(values.map { UInt16($0) })),
            ("<i4", littleEndian(values.map { Int32($0) })), ("<u4", littleEndian(values.map { UInt32($0) })),
            ("<i8", littleEndian(values.map { Int64($0) })), ("<u8", littleEndian(values.map { UInt64($0) })),
            ("=i4", littleEndian(values.map { Int32($0) })), ("<u1", values.map { UInt8($0) }),
        ]
        for (descr, bytes) in types {
            let data = try Self.decode(zipArchive(Self.entries([
                "x_train": npy("|u1", [4, 1], [1, 2, 3, 4]), "y_train": npy(descr, [4], bytes), "x_test": npy("|u1", [1, 1], [5]),
            ])))
            #expect(data.train.labels == [0, 255, 1, 128], "\(descr)")
            #expect(data.classes == 256)
        }
        // int8 holds no 255: its -1 is refused (below), its 0 and 1 read.
        let int8 = try Self.decode(zipArchive(Self.entries(["y_train": npy("|i1", [3], littleEndian([0, 1, 1] as [Int8]))])))
        #expect(int8.train.labels == [0, 1, 1])
    }

    @Test("float64 inputs are rounded to Float; [N, H, W] float images; float32 and float64 mix")
    func floats() throws {
        let doubles: [Double] = [0.1, -2.5, 1e-40, 3.4028234663852886e38, -0.0, 1.0000000001]
        let data = try Self.decode(zipArchive(Self.entries([
            "x_train": npy("<f8", [1, 2, 3], littleEndian(doubles)), "y_train": npy("<i8", [1], littleEndian([1] as [Int64])),
            "x_test": npy("<f4", [2, 2, 3], littleEndian((0..<12).map { Float($0) / 4 })),
            "y_test": npy("<i8", [2], littleEndian([0, 0] as [Int64])),
        ])))
        #expect(data.exampleShape == [2, 3])
        #expect(data.train.inputs == .floats(doubles.map { Float($0) }))
        #expect(data.test.inputs == .floats((0..<12).map { Float($0) / 4 }))
    }

    @Test("headers as other writers may put them: keys in any order, double quotes, no trailing comma, versions 2.0 and 3.0")
    func headers() throws {
        let headers = [
            "{'shape': (3, 2), 'fortran_order': False, 'descr': '|u1'}",
            "{\"descr\":\"|u1\",\"fortran_order\":False,\"shape\":(3,2)}",
            "  {  'descr' :  '|u1' ,\n 'fortran_order' : False , 'shape' : ( 3 , 2 , ) , 'extra': [None, 1, ('a', -2)] , }",
            "{'descr': '=u1', 'fortran_order': False, 'shape': [3, 2]}",
        ]
        for header in headers {
            for version: UInt8 in [1, 2, 3] {
                let x = npy("", [], [0, 1, 2, 3, 254, 255], version: version, header: header)
                let data = try Self.decode(zipArchive(Self.entries(["x_train": x])))
                #expect(data.train.inputs == .bytes([0, 1, 2, 3, 254, 255]), "\(header)")
            }
        }
        // A 1-tuple: (3,) is a tuple, and so is the label array's shape written that way.
        let y = npy("", [], littleEndian([1, 0, 1] as [Int64]), header: "{'descr': '<i8', 'fortran_order': False, 'shape': (3 ,)}")
        #expect(try Self.decode(zipArchive(Self.entries(["y_train": y]))).train.labels == [1, 0, 1])
    }

    @Test("a file on disk: found, or refused as missing or a directory")
    func files() throws {
        let folder = try temporaryFolder()
        let path = folder + "/data.npz"
        try Data(zipArchive(Self.entries(deflate: true))).write(to: URL(fileURLWithPath: path))
        #expect(try NPZ.loadDataSet(path).train.count == 3)
        #expect(try DataSet.load(path).test.count == 1)
        #expect(throws: DataFileError(path: folder + "/none.npz", problem: "no such file or directory")) {
            try NPZ.loadDataSet(folder + "/none.npz")
        }
        #expect(throws: DataFileError(path: folder, problem: "is a directory, expected a file")) { try NPZ.loadDataSet(folder) }
    }

    // MARK: Refusals

    /// Arrays that make no data set: the changes to the valid arrays, and the exact problem.
    struct Refusal: CustomStringConvertible {
        let description: String
        let changes: [String: [UInt8]?]
        let problem: String

        init(_ description: String, _ changes: [String: [UInt8]?], _ problem: String) {
            (self.description, self.changes, self.problem) = (description, changes, problem)
        }
    }

    static let refusedArrays: [Refusal] = [
        Refusal("no y_test", ["y_test": nil], "has no y_test array (no y_test.npy entry; a data set holds x_train, y_train, x_test and y_test)"),
        Refusal("Fortran order", ["x_train": npy("|u1", [3, 2], Array(0..<6), fortran: true)],
                "x_train is in Fortran order; only C-order arrays are read"),
        Refusal("objects", ["x_train": npy("|O", [3, 2], Array(repeating: 0, count: 48))],
                "x_train is an array of Python objects ('|O'); only arrays of numbers are read"),
        Refusal("big-endian", ["x_test": npy(">f4", [1, 2], [0x3F, 0x80, 0, 0, 0x40, 0, 0, 0])],
                "x_test is big-endian ('>f4'); only little-endian arrays are read"),
        Refusal("big-endian labels", ["y_train": npy(">i8", [3], Array(repeating: 0, count: 24))],
                "y_train is big-endian ('>i8'); only little-endian arrays are read"),
        Refusal("complex", ["x_train": npy("<c8", [3, 2], Array(repeating: 0, count: 48))], "x_train has unsupported dtype '<c8'"),
        Refusal("bool labels", ["y_train": npy("|b1", [3], [1, 0, 1])], "y_train has unsupported dtype '|b1'"),
        Refusal("no byte order on a 4-byte type", ["x_train": npy("|f4", [3, 2], Array(repeating: 0, count: 24))],
                "x_train has unsupported dtype '|f4'"),
        Refusal("int32 inputs", ["x_train": npy("<i4", [3, 2], Array(repeating: 0, count: 24))],
                "x_train has dtype int32 ('<i4'); inputs must be uint8, float32 or float64"),
        Refusal("float labels", ["y_train": npy("<f4", [3], littleEndian([1, 0, 1] as [Float]))],
                "y_train has dtype float32 ('<f4'); labels must be integers"),
        Refusal("structured dtype", ["x_train": npy("", [], Array(0..<6), header: "{'descr': [('a', '|u1')], 'fortran_order': False, 'shape': (3, 2)}")],
                "x_train has a structured dtype; only arrays of numbers are read"),
        Refusal("no shape", ["x_test": npy("", [], [7, 8], header: "{'descr': '|u1', 'fortran_order': False}")],
                "x_test has no 'shape' in its .npy header"),
        Refusal("no descr", ["x_test": npy("", [], [7, 8], header: "{'fortran_order': False, 'shape': (1, 2)}")],
                "x_test has no 'descr' in its .npy header"),
        Refusal("no fortran_order", ["x_test": npy("", [], [7, 8], header: "{'descr': '|u1', 'shape': (1, 2)}")],
                "x_test has no 'fortran_order' in its .npy header"),
        Refusal("fortran_order 0", ["x_test": npy("", [], [7, 8], header: "{'descr': '|u1', 'fortran_order': 0, 'shape': (1, 2)}")],
                "x_test has a 'fortran_order' that is not True or False"),
        Refusal("descr a number", ["x_test": npy("", [], [7, 8], header: "{'descr': 1, 'fortran_order': False, 'shape': (1, 2)}")],
                "x_test has a 'descr' that is not a string"),
        Refusal("shape a number", ["y_test": npy("", [], littleEndian([0] as [Int64]), header: "{'descr': '<i8', 'fortran_order': False, 'shape': (1)}")],
                "y_test has a 'shape' that is not a tuple"),
        Refusal("negative size", ["x_test": npy("", [], [7, 8], header: "{'descr': '|u1', 'fortran_order': False, 'shape': (1, -2)}")],
                "x_test has a 'shape' that is not a tuple of sizes"),
        Refusal("NaN", ["x_train": npy("<f4", [3, 2], littleEndian([0, 1, .nan, 2, 3, 4] as [Float])),
                        "x_test": npy("<f4", [1, 2], littleEndian([0, 1] as [Float]))],
                "x_train[1, 0] is NaN; inputs must be finite"),
        Refusal("infinite", ["x_train": npy("<f8", [3, 2], littleEndian([Double](repeating: 1, count: 6))),
                             "x_test": npy("<f8", [1, 2], littleEndian([0, -.infinity] as [Double]))],
                "x_test[0, 1] is infinite; inputs must be finite"),
        Refusal("beyond Float", ["x_train": npy("<f8", [3, 1, 2], littleEndian([0, 1, 2, 3, 4, -1e300] as [Double]))],
                "x_train[2, 0, 1] is -1e+300, beyond the range of a 32-bit float"),
        Refusal("counts", ["x_train": npy("|u1", [5, 2], Array(0..<10)), "y_train": npy("<i8", [4], littleEndian([0, 1, 0, 1] as [Int64]))],
                "x_train has 5 examples, but y_train has 4 labels"),
        Refusal("1-D inputs", ["x_train": npy("|u1", [3], [0, 1, 2])],
                "x_train has shape (3,); expected 2 dimensions (examples, features) or 3 (examples, height, width)"),
        Refusal("4-D inputs", ["x_train": npy("|u1", [3, 1, 1, 2], Array(0..<6))],
                "x_train has shape (3, 1, 1, 2); expected 2 dimensions (examples, features) or 3 (examples, height, width)"),
        Refusal("2-D labels", ["y_train": npy("<i8", [3, 1], littleEndian([1, 0, 1] as [Int64]))],
                "y_train has shape (3, 1); expected 1 dimension (a label per example)"),
        Refusal("scalar labels", ["y_test": npy("<i8", [], littleEndian([1] as [Int64]))],
                "y_test has shape (); expected 1 dimension (a label per example)"),
        Refusal("data too short", ["x_train": npy("|u1", [3, 2], Array(0..<5))], "x_train has 5 bytes of data, but shape (3, 2) of uint8 needs 6"),
        Refusal("data too long", ["y_test": npy("<i8", [1], Array(repeating: 0, count: 9))], "y_test has 9 bytes of data, but shape (1,) of int64 needs 8"),
        Refusal("huge shape", ["x_train": npy("|u1", [Int.max, 2], Array(0..<6))],
                "x_train has 6 bytes of data, too few for shape (9223372036854775807, 2) of uint8"),
        Refusal("zero-sized dimension", ["x_train": npy("|u1", [0, 2], [])], "x_train has shape (0, 2), with a dimension of size 0"),
        Refusal("negative label", ["y_train": npy("<i4", [3], littleEndian([1, -1, 0] as [Int32]))],
                "y_train[1] is -1; labels must be in 0...255 (at most 256 classes)"),
        Refusal("int8 label -128", ["y_train": npy("|i1", [3], littleEndian([1, 0, -128] as [Int8]))],
                "y_train[2] is -128; labels must be in 0...255 (at most 256 classes)"),
        Refusal("label 256", ["y_test": npy("<u2", [1], littleEndian([256] as [UInt16]))],
                "y_test[0] is 256; labels must be in 0...255 (at most 256 classes)"),
        Refusal("label 2^64 - 1", ["y_test": npy("<u8", [1], littleEndian([UInt64.max]))],
                "y_test[0] is 18446744073709551615; labels must be in 0...255 (at most 256 classes)"),
        Refusal("label -2^63", ["y_test": npy("<i8", [1], littleEndian([Int64.min]))],
                "y_test[0] is -9223372036854775808; labels must be in 0...255 (at most 256 classes)"),
        Refusal("example shapes", ["x_train": npy("|u1", [3, 2, 3], Array(0..<18)), "x_test": npy("|u1", [1, 3, 2], Array(0..<6))],
                "x_train examples have shape (2, 3), x_test examples (3, 2)"),
        Refusal("bytes and floats", ["x_test": npy("<f4", [1, 2], littleEndian([7, 8] as [Float]))],
                "x_train is uint8 and x_test float32; both must be bytes (uint8) or both floats"),
        Refusal("one class", ["y_train": npy("<i8", [3], Array(repeating: 0, count: 24))],
                "every label is 0: a classifier needs at least 2 classes"),
        Refusal("not .npy", ["x_train": Array("not numpy at all".utf8)], "x_train is not a .npy array (its entry does not start with \\x93NUMPY)"),
        Refusal("version 4.0", ["x_train": [0x93] + Array("NUMPY".utf8) + [4, 0] + Array(arrays["x_train"]!.dropFirst(8))],
                "x_train is in .npy format version 4.0; versions 1.0, 2.0 and 3.0 are read"),
        Refusal("header longer than the entry", ["x_train": [0x93] + Array("NUMPY".utf8) + [1, 0, 0xFF, 0x7F, 0x7B]],
                "x_train has a .npy header of 32767 bytes, longer than its entry"),
        Refusal("header without a colon", ["x_train": npy("", [], Array(0..<6), header: "{'descr' '|u1'}")],
                "x_train has a .npy header that is not a Python dictionary: expected ':' at byte 9"),
        Refusal("header with trailing text", ["x_train": npy("", [], Array(0..<6), header: "{'descr': '|u1', 'fortran_order': False, 'shape': (3, 2)} x")],
                "x_train has a .npy header that is not a Python dictionary: text after the closing brace at byte 58"),
        Refusal("header with a string that does not end", ["x_train": npy("", [], Array(0..<6), header: "{'descr': '|u1}")],
                "x_train has a .npy header that is not a Python dictionary: a string that does not end at byte 54"),
        Refusal("header with a name", ["x_train": npy("", [], Array(0..<6), header: "{'descr': uint8}")],
                "x_train has a .npy header that is not a Python dictionary: an unexpected character at byte 10"),
        Refusal("header nesting deeply", ["x_train": npy("", [], Array(0..<6), header: "{'a': " + String(repeating: "[", count: 100))],
                "x_train has a .npy header that is not a Python dictionary: nesting deeper than 16 at byte 22"),
        Refusal("header with a huge integer", ["x_train": npy("", [], Array(0..<6), header: "{'shape': (99999999999999999999,)}")],
                "x_train has a .npy header that is not a Python dictionary: an integer too large at byte 29"),
    ]

    @Test("arrays that make no data set are refused, stored or deflated, in one line naming the array", arguments: refusedArrays)
    func refusedArray(_ refusal: Refusal) {
        for deflate in [false, true] {
            #expect(throws: DataFileError(path: Self.path, problem: refusal.problem), "deflate: \(deflate)") {
                try Self.decode(zipArchive(Self.entries(refusal.changes, deflate: deflate)))
            }
        }
    }

    /// The valid entries with `change` made to the one named `name`.
    static func changed(_ name: String, deflate: Bool = false, _ change: (inout TestEntry) -> Void) -> [TestEntry] {
        entries(deflate: deflate).map { entry in
            var entry = entry
            if entry.name == name { change(&entry) }
            return entry
        }
    }

    /// `bytes` with `value` written at `offset` (from the end when negative).
    static func patched(_ bytes: [UInt8], at offset: Int, _ value: [UInt8]) -> [UInt8] {
        var bytes = bytes
        let start = offset < 0 ? bytes.count + offset : offset
        bytes.replaceSubrange(start..<(start + value.count), with: value)
        return bytes
    }

    static func crcText(_ name: String, xor: UInt32) -> String {
        let crc = crc32(of: arrays[name]!)
        return "computed \(String(format: "%08x", crc)), the zip says \(String(format: "%08x", crc ^ xor))"
    }

    /// Archives that are not well-formed zip files of the arrays, and the exact problem.
    static let refusedArchives: [(String, [UInt8], String)] = {
        let valid = zipArchive(entries())
        let size = arrays["x_train"]!.count, deflated = rawDeflate(arrays["x_train"]!).count
        let directoryOffset = Int(valid[valid.count - 6]) | Int(valid[valid.count - 5]) << 8
        let directorySize = valid.count - 22 - directoryOffset
        let wide = zipArchive(entries(), ZipLayout(zip64Directory: true))
        let zip64End = zipArchive(entries(), ZipLayout(zip64End: true))
        let zip64Field = Array("x_train.npy".utf8) + [1, 0, 24, 0]
        let field = wide.indices.first { wide[$0...].starts(with: zip64Field) }! + 11
        return [
            ("not a zip", Array("hello, world".utf8), "not a zip archive, or truncated: no end of central directory record"),
            ("truncated", Array(valid.dropLast(30)), "not a zip archive, or truncated: no end of central directory record"),
            ("empty", [], "not a zip archive, or truncated: no end of central directory record"),
            ("a .npy file", arrays["x_train"]!, "is a single .npy array, not an .npz archive of x_train, y_train, x_test and y_test"),
            ("a bad CRC", zipArchive(changed("y_train.npy") { $0.crcXor = 0x10 }),
             "y_train.npy fails its CRC-32 check (\(crcText("y_train", xor: 0x10)))"),
            ("a bad CRC, deflated", zipArchive(changed("x_test.npy", deflate: true) { $0.crcXor = 0x8000_0000 }),
             "x_test.npy fails its CRC-32 check (\(crcText("x_test", xor: 0x8000_0000)))"),
            ("encrypted", zipArchive(changed("x_test.npy") { $0.flags = 1 }), "x_test.npy is encrypted"),
            ("bzip2", zipArchive(changed("x_train.npy") { $0.method = 12 }),
             "x_train.npy uses compression method 12; only stored (0) and deflated (8) entries are read"),
            ("stored sizes differ", zipArchive(changed("x_train.npy") { $0.claimedSize = size + 1 }),
             "x_train.npy is stored, but its compressed size \(size) differs from its size \(size + 1)"),
            ("over 2 GiB", zipArchive(changed("x_train.npy") { $0.claimedSize = 3 << 30 }, ZipLayout(zip64Directory: true)),
             "x_train.npy is 3221225472 bytes uncompressed, more than the 2048 MiB accepted for an array"),
            ("too short for .npy", zipArchive(changed("y_test.npy") { $0.contents = [0x93, 0x4E] }), "y_test.npy is 2 bytes, too short for a .npy array"),
            ("deflate stream truncated", zipArchive(changed("x_train.npy", deflate: true) { $0.mangle = { Array($0.dropLast(4)) } }),
             "x_train.npy is truncated: its deflate stream ends early"),
            ("deflate stream corrupt", zipArchive(changed("x_train.npy", deflate: true) { $0.mangle = { _ in [0xFF, 0xFF, 0xFF, 0xFF] } }),
             "x_train.npy has corrupt deflate data (invalid block type)"),
            ("bytes after the deflate stream", zipArchive(changed("x_train.npy", deflate: true) { $0.mangle = { $0 + [0, 0] } }),
             "x_train.npy has compressed bytes after the end of its deflate stream"),
            ("inflates to more", zipArchive(changed("x_train.npy", deflate: true) { $0.claimedSize = size - 1 }),
             "x_train.npy inflates to more than the \(size - 1) bytes the zip says"),
            ("inflates to less", zipArchive(changed("x_train.npy", deflate: true) { $0.claimedSize = size + 1 }),
             "x_train.npy inflates to \(size) bytes, but the zip says \(size + 1)"),
            ("a deflate bomb's claim", zipArchive(changed("x_train.npy", deflate: true) { $0.claimedSize = 2 << 30 }),
             "x_train.npy claims 2147483648 bytes from \(deflated) compressed, more than deflate can produce"),
            ("data past the end", zipArchive(changed("x_test.npy") { $0.claimedSize = 1 << 30; $0.claimedCompressedSize = 1 << 30 }),
             "x_test.npy is truncated: its 1073741824 bytes of data run past the end of the file"),
            ("no local header", zipArchive(changed("y_train.npy") { $0.claimedOffset = 5 }), "y_train.npy has no local header at offset 5"),
            ("local header past the end", zipArchive(changed("y_train.npy") { $0.claimedOffset = 1 << 40 }, ZipLayout(zip64Directory: true)),
             "y_train.npy has no local header at offset 1099511627776"),
            ("local name differs", zipArchive(changed("x_test.npy") { $0.localName = "x_tesT.npy" }),
             "the local header of x_test.npy names another entry, or is truncated"),
            ("two x_train entries", zipArchive(entries() + [TestEntry("x_train.npy", arrays["x_train"]!)]), "has two x_train.npy entries"),
            ("no ZIP64 field", patched(wide, at: field, [9, 0]), "x_train.npy has 32-bit sizes of 0xFFFFFFFF but no ZIP64 extra field"),
            ("short ZIP64 field", patched(wide, at: field + 2, [8, 0]), "x_train.npy has a ZIP64 extra field too short for its sizes"),
            ("directory outside the file", patched(valid, at: -6, littleEndian([UInt32(valid.count)])),
             "the central directory (\(directorySize) bytes at offset \(valid.count)) does not fit in the file: truncated, or not a zip archive"),
            ("more entries claimed", patched(valid, at: -12, [5, 0]),
             "central directory entry 4 is damaged or missing (the directory claims 5 entries in \(directorySize) bytes)"),
            ("an entry past the directory", patched(valid, at: directoryOffset + 32, [0xFF, 0xFF]),
             "central directory entry 0 runs past the end of the directory"),
            ("several disks", patched(valid, at: -16, [1, 0]), "is a zip archive split over several disks, which is not read"),
            ("ZIP64 end record misplaced", patched(zip64End, at: -34, [1]), "the ZIP64 end of central directory record is missing or damaged"),
        ]
    }()

    @Test("archives that are not well-formed zip files are refused in one line", arguments: refusedArchives)
    func refusedArchive(_ what: String, _ bytes: [UInt8], _ problem: String) {
        #expect(throws: DataFileError(path: Self.path, problem: problem), "\(what)") { try Self.decode(bytes) }
    }
}
