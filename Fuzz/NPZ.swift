// NPZ.decodeDataSet (Sources/Deriv8/NPZ.swift): the zip's end records (ZIP64 too), central
// directory, local headers, stored and deflated entries, CRCs; the .npy headers, dtypes, shapes
// and data; the checks across the four arrays. The seeds are written here byte by byte: a
// stored archive of byte images and a deflated one of float32 features, laid out as NumPy's
// zipfile does (a ZIP64 extra field in every local header).
import CZlib
import Deriv8

/// A version 1.0 .npy: magic, version, header length, the header padded to 64 bytes, the data.
func npy(_ descr: String, _ shape: [Int], _ data: [UInt8]) -> [UInt8] {
    let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
    var header = Array("{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shapeText), }".utf8)
    while (10 + header.count + 1) % 64 != 0 { header.append(0x20) }
    header.append(0x0A)
    return [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.count & 0xFF), UInt8(header.count >> 8)] + header + data
}

func littleEndian<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
    values.flatMap { value in withUnsafeBytes(of: value.littleEndian) { Array($0) } }
}

/// A zip of the four arrays, each stored or deflated (raw deflate: zlib's stream without its
/// 2-byte header and 4-byte trailer).
func npz(_ arrays: [[UInt8]], deflate: Bool) -> [UInt8] {
    func u16(_ v: Int) -> [UInt8] { littleEndian([UInt16(v)]) }
    func u32(_ v: Int) -> [UInt8] { littleEndian([UInt32(v)]) }
    var out: [UInt8] = [], directory: [UInt8] = []
    for (name, contents) in zip(["x_train", "y_train", "x_test", "y_test"], arrays) {
        var data = contents
        if deflate {
            var length = compressBound(uLong(contents.count))
            var compressed = [UInt8](repeating: 0, count: Int(length))
            _ = compress2(&compressed, &length, contents, uLong(contents.count), 9)
            data = Array(compressed[2..<(Int(length) - 4)])
        }
        let fileName = Array((name + ".npy").utf8)
        let crc = Int(crc32(0, contents, uInt(contents.count)))
        let method = deflate ? 8 : 0
        let offset = out.count
        out += u32(0x0403_4b50) + u16(45) + u16(0) + u16(method) + u16(0) + u16(0x21) + u32(crc) + u32(0xFFFF_FFFF) + u32(0xFFFF_FFFF)
        out += u16(fileName.count) + u16(20) + fileName + u16(1) + u16(16) + littleEndian([UInt64(contents.count), UInt64(data.count)]) + data
        directory += u32(0x0201_4b50) + u16(0x031E) + u16(45) + u16(0) + u16(method) + u16(0) + u16(0x21) + u32(crc)
        directory += u32(data.count) + u32(contents.count) + u16(fileName.count) + u16(0) + u16(0) + u16(0) + u16(0) + u32(0)
        directory += u32(offset) + fileName
    }
    return out + directory + u32(0x0605_4b50) + u16(0) + u16(0) + u16(4) + u16(4) + u32(directory.count) + u32(out.count) + u16(0)
}

func fuzzSeeds() -> [[UInt8]] {
    let images = [npy("|u1", [3, 2, 2], (0..<12).map { UInt8($0 * 20) }), npy("<i8", [3], littleEndian([2, 0, 1] as [Int64])),
                  npy("|u1", [1, 2, 2], [9, 8, 7, 6]), npy("<i8", [1], littleEndian([1] as [Int64]))]
    let table = [npy("<f4", [2, 3], littleEndian([0.5, -1, 2, 3e38, 0, 1].map { ($0 as Float).bitPattern })),
                 npy("<i4", [2], littleEndian([1, 0] as [Int32])),
                 npy("<f4", [1, 3], littleEndian([1, 2, 3].map { ($0 as Float).bitPattern })), npy("<i4", [1], littleEndian([1] as [Int32]))]
    return [npz(images, deflate: false), npz(images, deflate: true), npz(table, deflate: false), npz(table, deflate: true)]
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    do {
        let set = try NPZ.decodeDataSet(fuzzBytes(data, size), path: "input")
        let features = set.exampleShape.reduce(1, *)
        require((1...2).contains(set.exampleShape.count) && set.features == features && (2...256).contains(set.classes),
                "data set \(set.exampleShape), \(set.features) features, \(set.classes) classes")
        for examples in [set.train, set.test] {
            require(examples.count > 0 && examples.inputs.count == examples.count * features, "\(examples.count) examples, \(examples.inputs.count) inputs")
            require(examples.labels.allSatisfy { Int($0) < set.classes }, "labels \(examples.labels) of \(set.classes) classes")
            require(examples.inputs.asFloats.allSatisfy(\.isFinite), "an input that is not finite")
        }
    } catch {
        require(error.path == "input" && !error.problem.isEmpty && !error.description.contains("\n"), "error \(error)")
    }
    return 0
}
