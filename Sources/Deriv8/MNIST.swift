import CZlib
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A folder in MNIST's layout: four IDX files (MNIST, Fashion-MNIST, or any images of one size
/// with up to 256 classes), 28x28 or otherwise.
public enum MNIST {
    public static let fileNames = (
        trainImages: "train-images-idx3-ubyte", trainLabels: "train-labels-idx1-ubyte",
        testImages: "t10k-images-idx3-ubyte", testLabels: "t10k-labels-idx1-ubyte")

    /// Reads the four files from `directory` (each `NAME.gz`, or `NAME` uncompressed), validating
    /// every header, length and label.
    public static func load(from directory: String) throws(DataFileError) -> DataSet {
        let names = fileNames
        let (train, trainShape) = try loadSplit(directory, images: names.trainImages, labels: names.trainLabels)
        let (test, testShape) = try loadSplit(directory, images: names.testImages, labels: names.testLabels)
        guard trainShape == testShape else {
            throw DataFileError(path: directory, problem: "training images are \(trainShape[0])x\(trainShape[1]), test images \(testShape[0])x\(testShape[1])")
        }
        return try DataSet(train: train, test: test, exampleShape: trainShape, path: directory)
    }

    static func loadSplit(_ directory: String, images: String, labels: String) throws(DataFileError) -> (LabelledExamples, [Int]) {
        let imagesPath = try locate(directory, images), labelsPath = try locate(directory, labels)
        let (count, rows, cols, pixels) = try IDX.readImages(imagesPath)
        let labelBytes = try IDX.readLabels(labelsPath)
        guard labelBytes.count == count else {
            throw DataFileError(path: labelsPath, problem: "\(labelBytes.count) labels, but \(imagesPath) has \(count) images")
        }
        return (LabelledExamples(pixels: pixels, labels: labelBytes, features: rows * cols), [rows, cols])
    }

    /// The CRC-32 of each of the four files as stored (zlib's, in hexadecimal), by file name: what
    /// a run's config.json records, so that two runs can be told apart by their data. A file that
    /// cannot be read is left out (loading it reports the problem).
    public static func checksums(in directory: String) -> [String: String] {
        var sums: [String: String] = [:]
        let names = fileNames
        for name in [names.trainImages, names.trainLabels, names.testImages, names.testLabels] {
            guard let path = try? locate(directory, name), let crc = fileCRC32(path) else { continue }
            sums[(path as NSString).lastPathComponent] = crc
        }
        return sums
    }

    /// The CRC-32 of the file at `path` as stored (zlib's, in hexadecimal); nil when it cannot be read.
    static func fileCRC32(_ path: String) -> String? {
        guard let bytes = try? readRegularFile(path, limit: 1 << 30, kind: "a data file") else { return nil }
        let crc = bytes.withUnsafeBufferPointer { crc32(0, $0.baseAddress, uInt($0.count)) }
        return String(format: "%08x", UInt32(truncatingIfNeeded: crc))
    }

    static func locate(_ directory: String, _ name: String) throws(DataFileError) -> String {
        let gz = "\(directory)/\(name).gz", raw = "\(directory)/\(name)"
        if access(gz, F_OK) == 0 { return gz }
        if access(raw, F_OK) == 0 { return raw }
        throw DataFileError(path: gz, problem: "not found (nor \(name) uncompressed); run `make datasets` or pass --data DIR")
    }
}
