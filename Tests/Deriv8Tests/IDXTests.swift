import CZlib
import Deriv8
import Foundation
import Testing

/// A fresh temporary folder per test.
func temporaryFolder() throws -> String {
    let path = NSTemporaryDirectory() + "deriv8-tests-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// IDX bytes: magic, big-endian dimensions, then the payload.
func idx(magic: UInt32, dims: [UInt32], payload: [UInt8]) -> [UInt8] {
    func bigEndian(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 255), UInt8((v >> 8) & 255), UInt8(v & 255)] }
    return bigEndian(magic) + dims.flatMap(bigEndian) + payload
}

func write(_ bytes: [UInt8], to path: String, gzip: Bool) throws {
    if gzip {
        let file = try #require(gzopen(path, "wb"))
        let written = bytes.withUnsafeBytes { gzwrite(file, $0.baseAddress, UInt32($0.count)) }
        #expect(gzclose(file) == Z_OK)
        #expect(Int(written) == bytes.count)
    } else {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }
}

@Suite("IDX reader")
struct IDXTests {
    let images = idx(magic: 2051, dims: [3, 2, 2], payload: Array(0..<12))
    let labels = idx(magic: 2049, dims: [3], payload: [7, 0, 9])

    @Test("reads images and labels, gzipped or raw", arguments: [true, false])
    func good(gzip: Bool) throws {
        let dir = try temporaryFolder()
        try write(images, to: dir + "/i", gzip: gzip)
        try write(labels, to: dir + "/l", gzip: gzip)
        let (count, rows, cols, pixels) = try IDX.readImages(dir + "/i")
        #expect(count == 3 && rows == 2 && cols == 2)
        #expect(pixels == Array(0..<12))
        #expect(try IDX.readLabels(dir + "/l") == [7, 0, 9])
    }

    /// Each corrupt file and the words its one-line error must contain.
    static let corrupt: [(String, [UInt8], String)] = [
        ("bad magic", idx(magic: 2049, dims: [3, 2, 2], payload: Array(0..<12)), "bad magic number 2049"),
        ("truncated", Array(idx(magic: 2051, dims: [3, 2, 2], payload: Array(0..<12)).dropLast(5)), "truncated: header says 3x2x2 = 12 bytes of data, file has 7"),
        ("trailing bytes", idx(magic: 2051, dims: [3, 2, 2], payload: Array(0..<13)), "has trailing bytes"),
        ("wrong count", idx(magic: 2051, dims: [4, 2, 2], payload: Array(0..<12)), "truncated"),
        ("empty", [], "file is empty"),
        ("short header", [0, 0, 8, 3, 0, 0], "too short for its 16-byte header"),
        ("huge claim", idx(magic: 2051, dims: [0xFFFF_FFFF, 0xFFFF_FFFF, 0xFFFF_FFFF], payload: [1, 2]), "more than the file holds"),
        ("zero dimension", idx(magic: 2051, dims: [0, 28, 28], payload: []), "dimension 0 is 0"),
    ]

    @Test("corrupt image files are refused with a clear message", arguments: 0..<corrupt.count)
    func corruptImages(index: Int) throws {
        let (name, bytes, message) = Self.corrupt[index]
        for gzip in [false, true] {
            let path = try temporaryFolder() + "/images"
            try write(bytes, to: path, gzip: gzip)
            let error = #expect(throws: DataFileError.self, "\(name)") { try IDX.readImages(path) }
            #expect(error?.path == path)
            #expect(error?.problem.contains(message) == true, "\(name): \(error?.problem ?? "")")
        }
    }

    /// A folder of four IDX files: `trainLabels.count` training and `testLabels.count` test
    /// images of rows x cols, with pixel bytes from their index.
    func idxFolder(rows: Int, cols: Int, trainLabels: [UInt8], testLabels: [UInt8], testCols: Int? = nil) throws -> String {
        let dir = try temporaryFolder()
        func images(_ count: Int, _ cols: Int) -> [UInt8] {
            idx(magic: 2051, dims: [UInt32(count), UInt32(rows), UInt32(cols)], payload: (0..<(count * rows * cols)).map { UInt8(truncatingIfNeeded: $0 * 37) })
        }
        try write(images(trainLabels.count, cols), to: dir + "/train-images-idx3-ubyte", gzip: true)
        try write(idx(magic: 2049, dims: [UInt32(trainLabels.count)], payload: trainLabels), to: dir + "/train-labels-idx1-ubyte", gzip: false)
        try write(images(testLabels.count, testCols ?? cols), to: dir + "/t10k-images-idx3-ubyte", gzip: false)
        try write(idx(magic: 2049, dims: [UInt32(testLabels.count)], payload: testLabels), to: dir + "/t10k-labels-idx1-ubyte", gzip: true)
        return dir
    }

    @Test("a folder of images of any size: the classes come from the labels of both sets (2 and 200 classes)")
    func anyImagesAndClasses() throws {
        let two = try MNIST.load(from: try idxFolder(rows: 3, cols: 5, trainLabels: [1, 0, 1], testLabels: [0]))
        #expect(two.classes == 2 && two.features == 15 && two.exampleShape == [3, 5])
        #expect(two.train.count == 3 && two.test.count == 1 && two.train.labels == [1, 0, 1])
        #expect(two.train.inputs == .bytes((0..<45).map { UInt8(truncatingIfNeeded: $0 * 37) }))
        let many = try MNIST.load(from: try idxFolder(rows: 1, cols: 1, trainLabels: [0, 150, 3], testLabels: [199, 7]))
        #expect(many.classes == 200 && many.features == 1)
    }

    @Test("labels of a single class, and train and test images of different sizes, are refused")
    func refusedFolders() throws {
        let one = try idxFolder(rows: 2, cols: 2, trainLabels: [0, 0], testLabels: [0])
        let error = #expect(throws: DataFileError.self) { try MNIST.load(from: one) }
        #expect(error?.problem == "every label is 0: a classifier needs at least 2 classes")
        let sizes = try idxFolder(rows: 2, cols: 2, trainLabels: [0, 1], testLabels: [1], testCols: 3)
        let mismatch = #expect(throws: DataFileError.self) { try MNIST.load(from: sizes) }
        #expect(mismatch?.problem == "training images are 2x2, test images 2x3")
    }

    @Test("a truncated gzip stream is refused")
    func truncatedGzip() throws {
        let dir = try temporaryFolder()
        let big = idx(magic: 2051, dims: [100, 28, 28], payload: (0..<78400).map { UInt8(truncatingIfNeeded: $0 * 7919) })
        try write(big, to: dir + "/whole.gz", gzip: true)
        let compressed = try Data(contentsOf: URL(fileURLWithPath: dir + "/whole.gz"))
        try compressed.prefix(compressed.count / 2).write(to: URL(fileURLWithPath: dir + "/half.gz"))
        let error = #expect(throws: DataFileError.self) { try IDX.readImages(dir + "/half.gz") }
        #expect(error?.problem.contains("truncated") == true, "\(error?.problem ?? "")")
    }

    @Test("a missing file, a directory and a missing MNIST folder are refused")
    func notFiles() throws {
        let dir = try temporaryFolder()
        #expect(throws: DataFileError(path: dir + "/nothing", problem: "no such file or directory")) {
            try IDX.readImages(dir + "/nothing")
        }
        #expect(throws: DataFileError(path: dir, problem: "is a directory, expected a file")) {
            try IDX.readImages(dir)
        }
        let error = #expect(throws: DataFileError.self) { try MNIST.load(from: dir) }
        #expect(error?.description.contains("train-images-idx3-ubyte.gz: not found") == true)
    }

    @Test("images and labels of different counts are refused")
    func countMismatch() throws {
        let dir = try temporaryFolder()
        try write(images, to: dir + "/train-images-idx3-ubyte", gzip: false)
        try write(idx(magic: 2049, dims: [2], payload: [1, 2]), to: dir + "/train-labels-idx1-ubyte", gzip: false)
        let error = #expect(throws: DataFileError.self) { try MNIST.load(from: dir) }
        #expect(error?.problem.contains("2 labels, but") == true, "\(error?.problem ?? "")")
    }
}
