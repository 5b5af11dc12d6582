#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A grayscale image from a PGM file (Netpbm): binary "P5" or plain "P2".
///
/// The pixels keep PGM's sense, 0 = black ... 255 = white. MNIST's 28x28 images use the
/// opposite convention for ink: 0 = background, 255 = the pen stroke. A digit scanned or drawn
/// as dark ink on white paper therefore needs `255 - pixel` before it looks like MNIST, while
/// one already drawn white on black does not. Nothing here inverts (or resizes): the caller
/// decides.
public struct GrayImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// Row-major, 0 = black ... 255 = white, already scaled from the file's maxval to 0...255.
    public let pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        self.width = width
        self.height = height
        self.pixels = pixels
    }
}

/// Reader for PGM images (http://netpbm.sourceforge.net/doc/pgm.html), treating every file as
/// hostile: each problem is a `DataFileError` naming the file, never a crash, a hang or an
/// allocation larger than the limits below.
///
/// Accepted:
///   magic "P5" (binary) or "P2" (plain), then width, height and maxval as unsigned decimal
///   integers, separated by whitespace (space, tab, CR, LF, VT, FF) and `#` comments that run
///   to the end of the line; width and height 1...4096, maxval 1...65535.
///   P5: exactly one whitespace byte after maxval, then exactly width*height samples of one
///       byte (maxval < 256) or two bytes big-endian (maxval >= 256), nothing after.
///   P2: exactly width*height decimal samples separated by whitespace; trailing whitespace is
///       allowed, anything else after the last sample is not.
///   Every sample must be <= maxval; it is scaled to 0...255 as (v * 255 + maxval / 2) / maxval.
/// Not accepted (deliberately stricter than Netpbm): several images in one file, comments
/// inside the raster of a P2 file or in the middle of a header token.
public enum PGM {
    /// The largest width or height accepted.
    public static let maximumSide = 4096
    /// The most bytes read from one file: a 4096x4096 P2 file of 5-digit samples fits, and a
    /// hostile file cannot make us read without bound.
    public static let maximumFileBytes = 128 << 20

    /// Reads and validates a PGM file. Throws DataFileError naming the file and the problem.
    public static func read(_ path: String) throws(DataFileError) -> GrayImage {
        try parse(readRegularFile(path, limit: maximumFileBytes, kind: "a PGM image"), path: path)
    }

    /// Parses PGM bytes (path is only used in error messages).
    public static func parse(_ bytes: [UInt8], path: String) throws(DataFileError) -> GrayImage {
        var parser = Parser(bytes: bytes, path: path)
        return try parser.image()
    }

    /// A cursor over the bytes; every read is bounds-checked against `bytes.count`.
    struct Parser {
        let bytes: [UInt8]
        let path: String
        var position = 0

        init(bytes: [UInt8], path: String) {
            self.bytes = bytes
            self.path = path
        }

        func fail(_ problem: String) -> DataFileError { DataFileError(path: path, problem: problem) }

        mutating func image() throws(DataFileError) -> GrayImage {
            guard !bytes.isEmpty else { throw fail("file is empty") }
            guard bytes.count >= 2, bytes[0] == UInt8(ascii: "P"), bytes[1] == UInt8(ascii: "5") || bytes[1] == UInt8(ascii: "2") else {
                throw fail("bad magic number \"\(printable(bytes.prefix(2)))\", expected \"P5\" (binary PGM) or \"P2\" (plain PGM)")
            }
            let binary = bytes[1] == UInt8(ascii: "5")
            position = 2
            // The magic must be delimited from the width ("P52 3" is not "P5" with width 2).
            guard position == bytes.count || isWhitespace(bytes[position]) || bytes[position] == UInt8(ascii: "#") else {
                throw fail("bad magic number \"\(printable(bytes.prefix(3)))\", expected \"P5\" or \"P2\" followed by whitespace")
            }
            let width = try headerNumber("width")
            guard (1...PGM.maximumSide).contains(width) else { throw fail("width \(width) is outside 1...\(PGM.maximumSide)") }
            let height = try headerNumber("height")
            guard (1...PGM.maximumSide).contains(height) else { throw fail("height \(height) is outside 1...\(PGM.maximumSide)") }
            let maxval = try headerNumber("maxval", lastInHeader: true)
            guard (1...65535).contains(maxval) else { throw fail("maxval \(maxval) is outside 1...65535") }
            // width and height are at most 4096 each, so these products cannot overflow.
            let count = width * height
            let samples: [UInt8]
            if binary {
                samples = try binarySamples(count: count, width: width, maxval: maxval)
            } else {
                samples = try plainSamples(count: count, width: width, maxval: maxval)
            }
            return GrayImage(width: width, height: height, pixels: samples)
        }

        // MARK: Header

        /// Skips whitespace and `#` comments (a comment runs to the next CR or LF, or the end).
        mutating func skipWhitespaceAndComments() {
            while position < bytes.count {
                if isWhitespace(bytes[position]) {
                    position += 1
                } else if bytes[position] == UInt8(ascii: "#") {
                    while position < bytes.count, bytes[position] != UInt8(ascii: "\n"), bytes[position] != UInt8(ascii: "\r") {
                        position += 1
                    }
                } else {
                    return
                }
            }
        }

        /// The next header field, an unsigned decimal integer after whitespace and comments.
        /// Width and height may be followed by whitespace or a comment; maxval (`lastInHeader`)
        /// by whitespace only (in P5 exactly one byte of it, checked by the caller).
        mutating func headerNumber(_ name: String, lastInHeader: Bool = false) throws(DataFileError) -> Int {
            skipWhitespaceAndComments()
            guard position < bytes.count else { throw fail("missing \(name): the header ends early") }
            let value = try decimal(name)
            if position < bytes.count {
                let next = bytes[position]
                guard isWhitespace(next) || (!lastInHeader && next == UInt8(ascii: "#")) else {
                    throw fail("\(name) is not a decimal number: found \"\(printable(bytes[position...].prefix(1)))\" after \(value)")
                }
            }
            return value
        }

        /// Reads one run of decimal digits at `position` with overflow checks. `what` names the
        /// field in messages. Leaves `position` on the first byte after the digits.
        mutating func decimal(_ what: @autoclosure () -> String) throws(DataFileError) -> Int {
            let first = bytes[position]
            if first == UInt8(ascii: "-") { throw fail("\(what()) is negative") }
            guard isDigit(first) else {
                throw fail("\(what()) is not a decimal number: found \"\(printable(bytes[position...].prefix(8)))\"")
            }
            let start = position
            var value = 0
            while position < bytes.count, isDigit(bytes[position]) {
                let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
                let (sum, overflow2) = times10.addingReportingOverflow(Int(bytes[position] - UInt8(ascii: "0")))
                guard !overflow1, !overflow2 else {
                    let end = bytes[start...].firstIndex { !isDigit($0) } ?? bytes.count
                    let shown = printable(bytes[start..<min(end, start + 24)]) + (end - start > 24 ? "..." : "")
                    throw fail("\(what()) is too large: \(shown) overflows a \(Int.bitWidth)-bit integer")
                }
                value = sum
                position += 1
            }
            return value
        }

        // MARK: Raster

        /// P5: exactly one whitespace byte after maxval, then exactly `count` samples of one or
        /// two (big-endian) bytes.
        mutating func binarySamples(count: Int, width: Int, maxval: Int) throws(DataFileError) -> [UInt8] {
            let bytesPerSample = maxval < 256 ? 1 : 2
            let expected = count * bytesPerSample
            // headerNumber left `position` on a whitespace byte or at the end of the file.
            if position < bytes.count { position += 1 }
            let found = bytes.count - position
            guard found == expected else {
                if found < expected {
                    throw fail("truncated: expected \(expected) bytes of pixel data, found \(found)")
                }
                throw fail("has \(found - expected) trailing bytes after the \(expected) bytes of pixel data")
            }
            let scale = Scale(maxval: maxval)
            var pixels = [UInt8](repeating: 0, count: count)
            for i in 0..<count {
                let value = bytesPerSample == 1
                    ? Int(bytes[position + i])
                    : Int(bytes[position + 2 * i]) << 8 | Int(bytes[position + 2 * i + 1])
                guard value <= maxval else { throw sampleAboveMaxval(value, index: i, width: width, maxval: maxval) }
                pixels[i] = scale(value)
            }
            return pixels
        }

        /// P2: exactly `count` decimal samples separated by whitespace, then only whitespace.
        mutating func plainSamples(count: Int, width: Int, maxval: Int) throws(DataFileError) -> [UInt8] {
            let scale = Scale(maxval: maxval)
            var pixels = [UInt8](repeating: 0, count: count)
            for i in 0..<count {
                skipWhitespace()
                guard position < bytes.count else {
                    throw fail("truncated: expected \(count) samples of pixel data, found \(i)")
                }
                // Built only for an error message: a 4096x4096 image has 16M samples.
                func what() -> String { "sample \(i) (row \(i / width), column \(i % width))" }
                let value = try decimal(what())
                if position < bytes.count, !isWhitespace(bytes[position]) {
                    throw fail("\(what()) is not a decimal number: found \"\(printable(bytes[position...].prefix(1)))\" after \(value)")
                }
                guard value <= maxval else { throw sampleAboveMaxval(value, index: i, width: width, maxval: maxval) }
                pixels[i] = scale(value)
            }
            skipWhitespace()
            guard position == bytes.count else {
                throw fail("has trailing data after the \(count) samples of pixel data: \"\(printable(bytes[position...].prefix(8)))\"")
            }
            return pixels
        }

        mutating func skipWhitespace() {
            while position < bytes.count, isWhitespace(bytes[position]) { position += 1 }
        }

        func sampleAboveMaxval(_ value: Int, index: Int, width: Int, maxval: Int) -> DataFileError {
            fail("sample \(index) (row \(index / width), column \(index % width)) is \(value), above maxval \(maxval)")
        }
    }

    /// Scales a sample in 0...maxval to 0...255, rounding to nearest.
    struct Scale {
        let maxval: Int
        func callAsFunction(_ value: Int) -> UInt8 {
            // value <= maxval <= 65535, so value * 255 fits easily and the result is <= 255.
            UInt8((value * 255 + maxval / 2) / maxval)
        }
    }
}

/// Netpbm whitespace: space, tab, LF, VT, FF, CR.
private func isWhitespace(_ byte: UInt8) -> Bool {
    byte == 0x20 || (0x09...0x0D).contains(byte)
}

private func isDigit(_ byte: UInt8) -> Bool {
    (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
}

/// Bytes for an error message: printable ASCII as is, anything else as \xNN.
private func printable<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
    var text = ""
    for byte in bytes {
        if (0x20...0x7E).contains(byte) && byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "\\") {
            text.append(Character(Unicode.Scalar(byte)))
        } else {
            let digits = String(byte, radix: 16)
            text += "\\x" + (digits.count < 2 ? "0" : "") + digits
        }
    }
    return text
}
