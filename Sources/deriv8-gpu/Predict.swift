import ArgumentParser
import Deriv8
import Foundation
import GPUTensor

struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Classify test-set examples or PGM images with a saved model.",
        discussion: """
            Prints each image as text, the predicted class and the three most probable classes \
            (with --json, one JSON object per image instead). --index reads the test set of the \
            checkpoint's data set (or --dataset/--data); --image needs no data set. PGM files \
            (binary P5 or plain P2) must be grayscale of the model's image size (28x28 for MNIST) \
            with the digit light on a dark background, as in MNIST; --invert flips dark-on-light \
            drawings. Class names are the data set's (Fashion-MNIST's clothing names for a \
            Fashion-MNIST model; the label numbers for your own data).

            Examples:
              deriv8-gpu predict --model model.safetensors --index 0,1,2
              deriv8-gpu predict --model model.safetensors --image seven.pgm --invert
            """)

    @OptionGroup var backendOptions: BackendOptions
    @OptionGroup var dataOptions: DataOptions

    @Option(help: ArgumentHelp("A checkpoint written by `train --save`.", valueName: "path"))
    var model: String

    @Option(parsing: .unconditional, help: ArgumentHelp("Test-set indices, comma-separated.", valueName: "i,j,..."))
    var index: ImageIndices?

    @Option(help: ArgumentHelp("PGM files, comma-separated.", valueName: "file,..."))
    var image: String?

    @Flag(help: "Invert PGM images (for dark strokes on a light background).")
    var invert = false

    @Flag(help: "Print one JSON object per image (title, true label, predicted class, every probability) and nothing else.")
    var json = false

    func validate() throws {
        guard (index == nil) != (image == nil) else { throw ValidationError("give either --index or --image") }
    }

    func run() throws {
        let checkpoint = try Checkpoint.read(model)
        var dataset = dataOptions.dataset?.rawValue ?? checkpoint.dataset
        let inputs: LabelledExamples.Inputs
        var labels: [UInt8?] = [], titles: [String] = []
        if let index {
            let (name, data) = try dataOptions.resolve(recorded: checkpoint.dataset)
            dataset = name
            warnIfOtherDataset(name, checkpoint: checkpoint, model: model)
            let test = try loadTestSet(data, for: checkpoint, model: model)
            if let i = index.values.first(where: { $0 >= test.count }) {
                throw ValidationError("--index \(i) is outside the test set's \(test.count) examples")
            }
            inputs = test.subset(index.values).inputs
            labels = index.values.map { test.labels[$0] }
            titles = index.values.map { "test example \($0)" }
        } else {
            var pixels: [UInt8] = []
            let features = checkpoint.sizes[0], side = Int(Double(features).squareRoot())
            for path in (image ?? "").split(separator: ",").map(String.init) {
                let picture = try PGM.read(path)
                guard picture.width * picture.height == features, picture.width == side else {
                    let takes = side * side == features ? "\(side)x\(side) images" : "\(features) inputs, not a square image"
                    throw DataFileError(path: path, problem: "is \(picture.width)x\(picture.height); the model takes \(takes)")
                }
                pixels += invert ? picture.pixels.map { 255 - $0 } : picture.pixels
                labels.append(nil)
                titles.append(path)
            }
            inputs = .bytes(pixels)
        }
        try backendOptions.run(PredictJob(checkpoint: checkpoint, names: classNames(dataset: dataset, classes: checkpoint.sizes.last!),
                                          inputs: inputs, labels: labels, titles: titles, json: json))
    }
}

struct PredictJob: BackendJob {
    let checkpoint: Checkpoint
    let names: [String]
    let inputs: LabelledExamples.Inputs
    let labels: [UInt8?]
    let titles: [String]
    let json: Bool

    /// What `predict --json` prints for one image.
    struct Prediction: Encodable {
        let image: String
        let trueClass: Int?, trueName: String?
        let predicted: Int, predictedName: String
        let probabilities: [Double]
    }

    func run<B: Backend>(on backend: B) throws {
        let features = checkpoint.sizes[0]
        let all = try Predictor(checkpoint: checkpoint, backend: backend).probabilities(inputs, count: titles.count)
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        for (n, probs) in all.enumerated() {
            // Most probable first; the first class on ties.
            let ranked = probs.indices.sorted { probs[$0] > probs[$1] || (probs[$0] == probs[$1] && $0 < $1) }
            if json {
                let prediction = Prediction(image: titles[n], trueClass: labels[n].map(Int.init), trueName: labels[n].map { names[Int($0)] },
                                            predicted: ranked[0], predictedName: names[ranked[0]], probabilities: probs)
                print(String(decoding: try encoder.encode(prediction), as: UTF8.self))
                continue
            }
            print(titles[n])
            let side = Int(Double(features).squareRoot())
            if side * side == features, case .bytes(let pixels) = inputs {
                print(asciiArt(Array(pixels[(n * features)..<((n + 1) * features)]), side: side))
            }
            let truth = labels[n].map { "  (true: \(names[Int($0)]))" } ?? ""
            print("predicted \(names[ranked[0]])\(truth)")
            for c in ranked.prefix(3) { print(String(format: "  %-12@ %6.2f%%", names[c] as NSString, 100 * probs[c])) }
            print("")
        }
    }
}

/// The image as text, two characters per pixel so it keeps its proportions; darker to lighter
/// pixels use denser characters.
func asciiArt(_ pixels: [UInt8], side: Int) -> String {
    let ramp = Array(" .:-=+*#%@")
    return (0..<side).map { row in
        String((0..<side).flatMap { col -> [Character] in
            let c = ramp[Int(pixels[row * side + col]) * (ramp.count - 1) / 255]
            return [c, c]
        })
    }.joined(separator: "\n")
}

/// A comma-separated list of non-negative integers, e.g. `0,1,2`.
struct ImageIndices: ExpressibleByArgument {
    let values: [Int]

    init?(argument: String) {
        let parts = argument.split(separator: ",", omittingEmptySubsequences: false)
        let values = parts.compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !parts.isEmpty, values.count == parts.count, values.allSatisfy({ $0 >= 0 }) else { return nil }
        self.values = values
    }
}
