// IDX images and labels (Sources/Deriv8/IDX.swift). The readers take a path, so each input is
// written to one temporary file first. The first byte chooses how: bit 0 set, the rest of the
// input is gzipped through zlib (fuzzing the header checks behind the gzip path); clear, it is
// written as is (raw IDX, or a gzip stream for zlib's own checks). Bits 4-7 are the number of
// classes the labels must be below.
import CZlib
import Deriv8
import Foundation

let temporaryPath = NSTemporaryDirectory() + "deriv8-fuzz-idx-\(getpid())"

func fuzzSeeds() -> [[UInt8]] {
    func bigEndian(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)] }
    let images = bigEndian(IDX.imagesMagic) + [5, 4, 4].flatMap(bigEndian) + (0..<80).map { UInt8(($0 * 37) % 256) }
    let labels = bigEndian(IDX.labelsMagic) + bigEndian(6) + [7, 0, 9, 3, 1, 5]
    // Raw and to-be-gzipped versions of each (10 classes: 0xA0).
    return [[0xA0] + images, [0xA1] + images, [0xA0] + labels, [0xA1] + labels]
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = fuzzBytes(data, size)
    guard let mode = input.first else { return 0 }
    let payload = Array(input.dropFirst())
    unlink(temporaryPath)  // a new file each time: truncating one makes ext4 wait for the disk
    if mode & 1 == 1 {
        guard let file = gzopen(temporaryPath, "wb") else { fatalError("gzopen \(temporaryPath)") }
        _ = payload.withUnsafeBytes { gzwrite(file, $0.baseAddress, UInt32($0.count)) }
        gzclose(file)
    } else {
        guard let file = fopen(temporaryPath, "wb") else { fatalError("fopen \(temporaryPath)") }
        _ = payload.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
        fclose(file)
    }
    do {
        let (count, rows, cols, pixels) = try IDX.readImages(temporaryPath)
        require(count > 0 && rows > 0 && cols > 0 && pixels.count == count * rows * cols, "images \(count)x\(rows)x\(cols), \(pixels.count) pixels")
    } catch {
        require(error.path == temporaryPath && !error.problem.isEmpty, "error \(error)")
    }
    do {
        let labels = try IDX.readLabels(temporaryPath)
        require(!labels.isEmpty, "labels \(labels)")
    } catch {
        require(error.path == temporaryPath && !error.problem.isEmpty, "error \(error)")
    }
    return 0
}
