// Shared by every fuzzer in this folder (each is built from this file and its own, by `make fuzz`).
// A fuzzer defines `fuzzSeeds()` (valid inputs to start from) and `LLVMFuzzerTestOneInput`.
import Foundation

/// libFuzzer calls this once, before it reads the corpus: with FUZZ_SEED_DIR set (the Makefile
/// sets it to the corpus folder), the fuzzer's seeds are written there, so the corpus always
/// starts from valid files of the current format without binary files in the repository.
@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: UnsafeMutablePointer<CInt>,
                           _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    if let folder = ProcessInfo.processInfo.environment["FUZZ_SEED_DIR"] {
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for (i, seed) in fuzzSeeds().enumerated() {
            _ = FileManager.default.createFile(atPath: "\(folder)/seed-\(i)", contents: Data(seed))
        }
    }
    return 0
}

/// The input as an array (libFuzzer may pass a null pointer for an empty input).
func fuzzBytes(_ data: UnsafePointer<UInt8>?, _ size: Int) -> [UInt8] {
    guard let data, size > 0 else { return [] }
    return Array(UnsafeBufferPointer(start: data, count: size))
}

/// Stops the fuzzer with a crash report (and the input saved) when a parser's result breaks
/// its own invariants: accepted, but inconsistent.
func require(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError("invariant broken: \(message())") }
}
