// PGM.parse (Sources/Deriv8/PGM.swift): P5 (8- and 16-bit) and P2 headers, comments, samples.
import Deriv8

func fuzzSeeds() -> [[UInt8]] {
    [
        Array("P5\n# fuzz\n4 3\n255\n".utf8) + (0..<12).map { UInt8($0 * 21) },
        Array("P5 2 3 1000\n".utf8) + [0x00, 0x00, 0x00, 0x02, 0x01, 0x2C, 0x01, 0xF4, 0x03, 0xE7, 0x03, 0xE8],
        Array("P2\n# plain\n3 2\n15\n0 1 7\n8 14 15\n".utf8),
        Array("P2 1 1 1 1".utf8),
    ]
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    do {
        let image = try PGM.parse(fuzzBytes(data, size), path: "input")
        require((1...PGM.maximumSide).contains(image.width) && (1...PGM.maximumSide).contains(image.height)
                && image.pixels.count == image.width * image.height, "image \(image.width)x\(image.height), \(image.pixels.count) pixels")
    } catch {
        require(error.path == "input" && !error.problem.isEmpty, "error \(error)")
    }
    return 0
}
