import CZlib
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Images with their labels, as bytes: pixels `[count, features]` row-major, labels `[count]`.
public struct LabelledImages: Sendable {
    public let pixels: [UInt8]
    public let labels: [UInt8]
    public let features: Int

    public init(pixels: [UInt8], labels: [UInt8], features: Int) {
        precondition(pixels.count == labels.count * features)
        self.pixels = pixels
        self.labels = labels
        self.features = features
    }

    public var count: Int { labels.count }

    /// The first `limit` examples (all of them when `limit` is nil or larger).
    public func prefix(_ limit: Int?) -> LabelledImages {
        guard let limit, limit < count else { return self }
        return LabelledImages(pixels: Array(pixels[0..<(limit * features)]), labels: Array(labels[0..<limit]),
                              features: features)
    }
}

/// The MNIST data set (or anything in its format, like Fashion-MNIST): 28x28 grayscale images
/// in ten classes, 60,000 for training and 10,000 for testing, read from the four IDX files.
public struct MNIST: Sendable {
    public static let classes = 10
    public static let fileNames = (
        trainImages: "train-images-idx3-ubyte", trainLabels: "train-labels-idx1-ubyte",
        testImages: "t10k-images-idx3-ubyte", testLabels: "t10k-labels-idx1-ubyte")

    public let train: LabelledImages
    public let test: LabelledImages

    public init(train: LabelledImages, test: LabelledImages) {
        self.train = train
        self.test = test
    }

    /// Reads the four files from `directory` (each `NAME.gz`, or `NAME` uncompressed), validating
    /// every header, length and label.
    public static func load(from directory: String) throws(DataFileError) -> MNIST {
        let names = fileNames
        let train = try loadSplit(directory, images: names.trainImages, labels: names.trainLabels)
        let test = try loadSplit(directory, images: names.testImages, labels: names.testLabels)
        guard train.features == test.features else {
            throw DataFileError(path: directory, problem: "training images have \(train.features) pixels, test images \(test.features)")
        }
        return MNIST(train: train, test: test)
    }

    static func loadSplit(_ directory: String, images: String, labels: String) throws(DataFileError) -> LabelledImages {
        let imagesPath = try locate(directory, images), labelsPath = try locate(directory, labels)
        let (count, rows, cols, pixels) = try IDX.readImages(imagesPath)
        let labelBytes = try IDX.readLabels(labelsPath, classes: classes)
        guard labelBytes.count == count else {
            throw DataFileError(path: labelsPath, problem: "\(labelBytes.count) labels, but \(imagesPath) has \(count) images")
        }
        return LabelledImages(pixels: pixels, labels: labelBytes, features: rows * cols)
    }

    /// The CRC-32 of each of the four files as stored (zlib's, in hexadecimal), by file name: what
    /// a run's config.json records, so that two runs can be told apart by their data. A file that
    /// cannot be read is left out (loading it reports the problem).
    public static func checksums(in directory: String) -> [String: String] {
        var sums: [String: String] = [:]
        let names = fileNames
        for name in [names.trainImages, names.trainLabels, names.testImages, names.testLabels] {
            guard let path = try? locate(directory, name), let bytes = try? readRegularFile(path, limit: 1 << 30, kind: "an IDX file") else {
                continue
            }
            let crc = bytes.withUnsafeBufferPointer { crc32(0, $0.baseAddress, uInt($0.count)) }
            sums[(path as NSString).lastPathComponent] = String(format: "%08x", UInt32(truncatingIfNeeded: crc))
        }
        return sums
    }

    static func locate(_ directory: String, _ name: String) throws(DataFileError) -> String {
        let gz = "\(directory)/\(name).gz", raw = "\(directory)/\(name)"
        if access(gz, F_OK) == 0 { return gz }
        if access(raw, F_OK) == 0 { return raw }
        throw DataFileError(path: gz, problem: "not found (nor \(name) uncompressed); run `make datasets` or pass --data DIR")
    }
}
