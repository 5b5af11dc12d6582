import Deriv8
import Foundation
import Testing

/// A fresh temporary folder for one PGM test.
private func pgmFolder() throws -> String {
    let path = NSTemporaryDirectory() + "deriv8-pgm-tests-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// Writes `bytes` to a new file in a fresh temporary folder and returns its path.
private func pgmFile(_ bytes: [UInt8], name: String = "image.pgm") throws -> String {
    let path = try pgmFolder() + "/" + name
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    return path
}

/// ASCII header text followed by raw bytes.
private func pgm(_ header: String, _ raster: [UInt8] = []) -> [UInt8] {
    Array(header.utf8) + raster
}

/// A small xorshift64 generator, so the mini-fuzz is the same on every run and platform.
private struct XorShift64 {
    var state: UInt64
    init(seed: UInt64) { state = seed == 0 ? 0x9E37_79B9_7F4A_7C15 : seed }
    mutating func next() -> UInt64 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        return state
    }
    /// Uniform enough in 0..<bound for a fuzz test (bound > 0).
    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
}

@Suite("PGM reader")
struct PGMTests {
    // MARK: Good files

    @Test("binary P5, maxval 255, comments in the header")
    func p5Maxval255() throws {
        let bytes = pgm("P5\n# written by hand\n3 # width\n2\n# maxval next\n255\n", [0, 1, 127, 128, 254, 255])
        let path = try pgmFile(bytes)
        let image = try PGM.read(path)
        #expect(image == GrayImage(width: 3, height: 2, pixels: [0, 1, 127, 128, 254, 255]))
    }

    @Test("binary P5, maxval 15, samples scaled to 0...255")
    func p5Maxval15() throws {
        let path = try pgmFile(pgm("P5 3 2 15\t", [0, 1, 7, 8, 14, 15]))
        let image = try PGM.read(path)
        #expect(image.width == 3 && image.height == 2)
        #expect(image.pixels == [0, 17, 119, 136, 238, 255])
    }

    @Test("binary P5, 16-bit maxval 1000, big-endian samples, rounded scaling")
    func p5Maxval1000() throws {
        // 0, 2, 300, 500, 999, 1000 -> (v * 255 + 500) / 1000
        let raster: [UInt8] = [0x00, 0x00, 0x00, 0x02, 0x01, 0x2C, 0x01, 0xF4, 0x03, 0xE7, 0x03, 0xE8]
        let path = try pgmFile(pgm("P5\r\n#16 bits\r\n3 2\r\n1000\n", raster))
        let image = try PGM.read(path)
        #expect(image == GrayImage(width: 3, height: 2, pixels: [0, 1, 77, 128, 255, 255]))
    }

    @Test("plain P2, maxval 15, comments in the header, trailing whitespace")
    func p2Maxval15() throws {
        let path = try pgmFile(pgm("P2\n# plain\n3\t2 #size\n15\n0  1 7\n8\n14 15\n\n"))
        let image = try PGM.read(path)
        #expect(image == GrayImage(width: 3, height: 2, pixels: [0, 17, 119, 136, 238, 255]))
    }

    @Test("plain P2, maxval 255 and 16-bit maxval 1000")
    func p2OtherMaxvals() throws {
        let path255 = try pgmFile(pgm("P2 3 2 255 0 1 127 128 254 255"))
        #expect(try PGM.read(path255) == GrayImage(width: 3, height: 2, pixels: [0, 1, 127, 128, 254, 255]))
        let path1000 = try pgmFile(pgm("P2\n3 2\n1000\n0 2 300\n500 999 1000\n"))
        #expect(try PGM.read(path1000) == GrayImage(width: 3, height: 2, pixels: [0, 1, 77, 128, 255, 255]))
    }

    @Test("the largest accepted sides and maxval")
    func limits() throws {
        let wide = try PGM.parse(pgm("P5 4096 1 65535\n", [UInt8](repeating: 0xFF, count: 8192)), path: "wide")
        #expect(wide.width == 4096 && wide.height == 1 && wide.pixels.allSatisfy { $0 == 255 })
        let one = try PGM.parse(pgm("P2 1 1 1 1"), path: "one")
        #expect(one == GrayImage(width: 1, height: 1, pixels: [255]))
    }

    @Test("a full-size 4096x4096 image parses, binary 16-bit and plain")
    func fullSize() throws {
        let side = PGM.maximumSide, count = side * side
        var binary = pgm("P5 \(side) \(side) 65535\n")
        binary.reserveCapacity(binary.count + 2 * count)
        for i in 0..<count { binary += [UInt8(truncatingIfNeeded: i >> 8), UInt8(truncatingIfNeeded: i)] }
        let wide = try PGM.parse(binary, path: "binary")
        #expect(wide.width == side && wide.height == side && wide.pixels.count == count)
        #expect(wide.pixels[0] == 0 && wide.pixels[65535] == 255 && wide.pixels[32768] == 128)
        var plain = pgm("P2\n\(side) \(side)\n9\n")
        plain.reserveCapacity(plain.count + 2 * count)
        for i in 0..<count { plain += [UInt8(ascii: "0") + UInt8(i % 10), i % side == side - 1 ? 0x0A : 0x20] }
        let text = try PGM.parse(plain, path: "plain")
        #expect(text.pixels.count == count && text.pixels[9] == 255 && text.pixels[10] == 0)
    }

    // MARK: Bad files

    /// Each bad file and a phrase its one-line error must contain.
    static let bad: [(String, [UInt8], String)] = [
        ("empty", [], "file is empty"),
        // Magic
        ("magic P6", pgm("P6 3 2 255\n", Array(repeating: 0, count: 18)), "bad magic number \"P6\""),
        ("magic P3", pgm("P3 3 2 255\n0 0 0"), "bad magic number \"P3\""),
        ("magic garbage", [0x89, 0x50, 0x4E, 0x47], "bad magic number \"\\x89P\""),
        ("magic one byte", pgm("P"), "bad magic number \"P\""),
        ("magic glued to width", pgm("P52 2 255\n", [0, 0, 0, 0]), "bad magic number \"P52\""),
        // Missing numbers
        ("no width", pgm("P5\n"), "missing width"),
        ("no height", pgm("P5 3"), "missing height"),
        ("no maxval", pgm("P5 3 2 "), "missing maxval"),
        ("comment instead of maxval", pgm("P2 3 2 # 255\n"), "missing maxval"),
        // Garbage numbers
        ("letter width", pgm("P5 x 2 255\n", [0, 0, 0, 0, 0, 0]), "width is not a decimal number"),
        ("plus sign", pgm("P5 +3 2 255\n", [0, 0, 0, 0, 0, 0]), "width is not a decimal number"),
        ("width 3x2", pgm("P5 3x2 255\n", [0, 0, 0, 0, 0, 0]), "width is not a decimal number"),
        ("hex height", pgm("P5 3 0x2 255\n", [0, 0, 0, 0, 0, 0]), "height is not a decimal number"),
        ("maxval 25a5", pgm("P2 3 2 25a5\n0 0 0 0 0 0"), "maxval is not a decimal number"),
        ("decimal point", pgm("P2 3 2 255.0\n0 0 0 0 0 0"), "maxval is not a decimal number"),
        ("comment glued to maxval", pgm("P5 3 2 255#x\n", [0, 0, 0, 0, 0, 0]), "maxval is not a decimal number"),
        // Negative numbers
        ("negative width", pgm("P5 -3 2 255\n", [0, 0, 0, 0, 0, 0]), "width is negative"),
        ("negative height", pgm("P2 3 -2 255\n0 0 0 0 0 0"), "height is negative"),
        ("negative maxval", pgm("P2 3 2 -255\n0 0 0 0 0 0"), "maxval is negative"),
        // Overflowing numbers
        ("overflowing width", pgm("P5 99999999999999999999 2 255\n", [0]), "width is too large"),
        ("overflowing height", pgm("P5 3 99999999999999999999 255\n", [0]), "height is too large"),
        ("overflowing maxval", pgm("P2 3 2 99999999999999999999\n0 0 0 0 0 0"), "maxval is too large"),
        ("Int.max + 1", pgm("P5 9223372036854775808 2 255\n", [0]), "width is too large"),
        ("very long digit run", pgm("P5 " + String(repeating: "7", count: 100_000) + " 2 255\n"), "width is too large"),
        // Out of range
        ("width 0", pgm("P5 0 2 255\n"), "width 0 is outside 1...4096"),
        ("width 4097", pgm("P5 4097 2 255\n", [0]), "width 4097 is outside 1...4096"),
        ("height 0", pgm("P5 3 0 255\n"), "height 0 is outside 1...4096"),
        ("height 1000000", pgm("P5 1 1000000 255\n", [0]), "height 1000000 is outside 1...4096"),
        ("maxval 0", pgm("P5 3 2 0\n", [0, 0, 0, 0, 0, 0]), "maxval 0 is outside 1...65535"),
        ("maxval 65536", pgm("P5 3 2 65536\n", [0, 0, 0, 0, 0, 0]), "maxval 65536 is outside 1...65535"),
        ("Int.max width", pgm("P5 9223372036854775807 9223372036854775807 255\n", [0]), "is outside 1...4096"),
        // P5 raster length
        ("truncated", pgm("P5 3 2 255\n", [1, 2, 3, 4, 5]), "truncated: expected 6 bytes of pixel data, found 5"),
        ("truncated 16-bit", pgm("P5 3 2 1000\n", Array(repeating: 0, count: 11)), "truncated: expected 12 bytes of pixel data, found 11"),
        ("no raster", pgm("P5 3 2 255"), "truncated: expected 6 bytes of pixel data, found 0"),
        ("large claim, tiny file", pgm("P5 4096 4096 65535\n", [1, 2, 3]), "truncated: expected 33554432 bytes of pixel data, found 3"),
        ("trailing bytes", pgm("P5 3 2 255\n", [1, 2, 3, 4, 5, 6, 7]), "has 1 trailing bytes after the 6 bytes of pixel data"),
        ("two whitespace bytes after maxval", pgm("P5 3 2 255\n\n", [1, 2, 3, 4, 5, 6]), "trailing bytes"),
        // Samples above maxval
        ("P5 sample above maxval", pgm("P5 3 2 15\n", [0, 1, 2, 3, 16, 5]), "sample 4 (row 1, column 1) is 16, above maxval 15"),
        ("P5 16-bit sample above maxval", pgm("P5 3 2 1000\n", [0, 0, 0, 0, 0x03, 0xE9, 0, 0, 0, 0, 0, 0]), "sample 2 (row 0, column 2) is 1001, above maxval 1000"),
        ("P2 sample above maxval", pgm("P2 3 2 15\n0 1 2\n3 4 16\n"), "sample 5 (row 1, column 2) is 16, above maxval 15"),
        // P2 raster
        ("P2 too few samples", pgm("P2 3 2 255\n1 2 3\n4 5\n"), "truncated: expected 6 samples of pixel data, found 5"),
        ("P2 no samples", pgm("P2 3 2 255"), "truncated: expected 6 samples of pixel data, found 0"),
        ("P2 too many samples", pgm("P2 3 2 255\n1 2 3\n4 5 6 7\n"), "trailing data after the 6 samples"),
        ("P2 letter sample", pgm("P2 3 2 255\n1 2 x 4 5 6"), "sample 2 (row 0, column 2) is not a decimal number"),
        ("P2 sample 12a", pgm("P2 3 2 255\n1 2 12a 4 5 6"), "sample 2 (row 0, column 2) is not a decimal number"),
        ("P2 negative sample", pgm("P2 3 2 255\n1 2 3 -4 5 6"), "sample 3 (row 1, column 0) is negative"),
        ("P2 overflowing sample", pgm("P2 3 2 255\n1 99999999999999999999 3 4 5 6"), "sample 1 (row 0, column 1) is too large"),
        ("P2 comment in raster", pgm("P2 3 2 255\n1 2 3\n# no\n4 5 6"), "sample 3 (row 1, column 0) is not a decimal number"),
        ("P2 sample glued to junk", pgm("P2 3 2 255\n1 2 3 4 5 6\0"), "sample 5 (row 1, column 2) is not a decimal number: found \"\\x00\" after 6"),
        ("P2 binary junk", pgm("P2 3 2 255\n1 2 3 4 5 6 \0"), "trailing data after the 6 samples"),
    ]

    @Test("bad files are refused with a one-line error naming the problem", arguments: 0..<bad.count)
    func badFile(index: Int) throws {
        let (name, bytes, phrase) = Self.bad[index]
        let path = try pgmFile(bytes)
        let error = #expect(throws: DataFileError.self, "\(name)") { try PGM.read(path) }
        #expect(error?.path == path, "\(name)")
        #expect(error?.problem.contains(phrase) == true, "\(name): \(error?.problem ?? "no error")")
        #expect(error?.description.contains("\n") == false, "\(name)")
        // parse gives the same error for the same bytes, with the path it was given.
        let parsed = #expect(throws: DataFileError.self, "\(name)") { try PGM.parse(bytes, path: "in memory") }
        #expect(parsed == DataFileError(path: "in memory", problem: error?.problem ?? ""), "\(name)")
    }

    @Test("a missing file, a directory, a device and an oversized file are refused")
    func notFiles() throws {
        let dir = try pgmFolder()
        #expect(throws: DataFileError(path: dir + "/nothing.pgm", problem: "no such file or directory")) {
            try PGM.read(dir + "/nothing.pgm")
        }
        #expect(throws: DataFileError(path: dir, problem: "is a directory, expected a file")) {
            try PGM.read(dir)
        }
        #expect(throws: DataFileError(path: "/dev/zero", problem: "is not a regular file")) {
            try PGM.read("/dev/zero")
        }
        // A sparse file just over the limit: refused from its size, before anything is read.
        let huge = dir + "/huge.pgm"
        #expect(FileManager.default.createFile(atPath: huge, contents: Data("P5 4096 4096 255\n".utf8)))
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: huge))
        try handle.truncate(atOffset: UInt64(PGM.maximumFileBytes + 1))
        try handle.close()
        let error = #expect(throws: DataFileError.self) { try PGM.read(huge) }
        #expect(error?.problem.contains("more than the 128 MiB accepted") == true, "\(error?.problem ?? "no error")")
    }

    // MARK: Mini-fuzz

    /// Applies 1 to 4 random edits: flip bits, overwrite, insert or delete a byte, or truncate.
    private static func mutate(_ original: [UInt8], _ random: inout XorShift64) -> [UInt8] {
        var bytes = original
        // Bytes that are likely to reach deeper into the parser than uniformly random ones.
        let interesting = Array("0123456789 \n\t\r#-+P52".utf8) + [0x00, 0xFF, 0x0B, 0x0C]
        for _ in 0...random.below(4) {
            let byte = random.below(2) == 0 ? interesting[random.below(interesting.count)] : UInt8(truncatingIfNeeded: random.next())
            switch random.below(5) {
            case 0 where !bytes.isEmpty:
                bytes[random.below(bytes.count)] ^= UInt8(1) << UInt8(random.below(8))
            case 1 where !bytes.isEmpty:
                bytes[random.below(bytes.count)] = byte
            case 2:
                bytes.insert(byte, at: random.below(bytes.count + 1))
            case 3 where !bytes.isEmpty:
                bytes.remove(at: random.below(bytes.count))
            case 4:
                bytes.removeLast(random.below(bytes.count + 1))
            default:
                bytes.append(byte)
            }
        }
        return bytes
    }

    /// Parses each mutation; it must give a consistent image or a DataFileError, never crash.
    private static func fuzz(_ original: [UInt8], seed: UInt64, rounds: Int) -> (parsed: Int, refused: Int) {
        var random = XorShift64(seed: seed)
        var parsed = 0, refused = 0
        for round in 0..<rounds {
            let bytes = mutate(original, &random)
            do throws(DataFileError) {
                let image = try PGM.parse(bytes, path: "mutation \(round)")
                #expect(image.pixels.count == image.width * image.height, "mutation \(round)")
                #expect((1...4096).contains(image.width) && (1...4096).contains(image.height), "mutation \(round)")
                parsed += 1
            } catch {
                // `error` is a DataFileError: the do block and PGM.parse have a typed throw.
                #expect(error.path == "mutation \(round)" && !error.problem.isEmpty)
                refused += 1
            }
        }
        return (parsed, refused)
    }

    @Test("2,000 seeded mutations of a valid P5 file each parse or throw DataFileError")
    func fuzzP5() {
        let original = pgm("P5\n# fuzz\n3 2\n255\n", [0, 64, 128, 192, 255, 7])
        #expect(throws: Never.self) { try PGM.parse(original, path: "original") }
        let (parsed, refused) = Self.fuzz(original, seed: 0x5EED_D317_8000_0001, rounds: 2_000)
        #expect(parsed + refused == 2_000)
        // Both outcomes occur, so the mutations really exercise the parser.
        #expect(parsed > 0 && refused > 0, "parsed \(parsed), refused \(refused)")
    }

    @Test("2,000 seeded mutations of valid 16-bit P5 and P2 files each parse or throw DataFileError")
    func fuzzOthers() {
        let wide = pgm("P5 3 2 1000\n", [0x00, 0x00, 0x00, 0x02, 0x01, 0x2C, 0x01, 0xF4, 0x03, 0xE7, 0x03, 0xE8])
        let plain = pgm("P2\n# fuzz\n3 2\n15\n0 1 7\n8 14 15\n")
        let (parsedWide, refusedWide) = Self.fuzz(wide, seed: 0x1234_5678_9ABC_DEF1, rounds: 1_000)
        let (parsedPlain, refusedPlain) = Self.fuzz(plain, seed: 0x0FED_CBA9_8765_4321, rounds: 1_000)
        #expect(parsedWide + refusedWide == 1_000 && parsedPlain + refusedPlain == 1_000)
        #expect(refusedWide > 0 && refusedPlain > 0)
    }
}
