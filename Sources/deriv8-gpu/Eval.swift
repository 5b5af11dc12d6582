import ArgumentParser
import Deriv8
import Foundation
import GPUTensor

struct Eval: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate a saved model on the test set: accuracy, confusion matrix, precision and recall.")

    @OptionGroup var backendOptions: BackendOptions
    @OptionGroup var dataOptions: DataOptions

    @Option(help: ArgumentHelp("A checkpoint written by `train --save`.", valueName: "path"))
    var model: String

    @Flag(help: "Print one JSON object (accuracy, confusion, precision, recall) instead of tables.")
    var json = false

    func run() throws {
        let checkpoint = try Checkpoint.read(model)
        let (dataset, data) = try dataOptions.resolve(recorded: checkpoint.dataset)
        warnIfOtherDataset(dataset, checkpoint: checkpoint, model: model)
        try backendOptions.run(EvalJob(command: self, checkpoint: checkpoint, dataset: dataset, data: data))
    }
}

/// A note on stderr when a model is run on another data set than the one it was trained on (the
/// shapes are checked when the data is loaded).
func warnIfOtherDataset(_ dataset: String, checkpoint: Checkpoint, model: String) {
    if dataset != checkpoint.dataset {
        printError("note: \(model) was trained on \(checkpoint.dataset); using \(dataset), as asked")
    }
}

/// The test set at `path`, checked against the network in `checkpoint`: the same number of
/// inputs, and no label beyond its classes.
func loadTestSet(_ path: String, for checkpoint: Checkpoint, model: String) throws -> LabelledExamples {
    let test = try DataSet.load(path).test
    guard test.features == checkpoint.sizes[0] else {
        throw ValidationError("\(model) expects \(checkpoint.sizes[0]) inputs; the test examples in \(path) have \(test.features)")
    }
    let classes = checkpoint.sizes.last!
    if let bad = test.labels.firstIndex(where: { Int($0) >= classes }) {
        throw ValidationError("\(model) has \(classes) classes; test example \(bad) in \(path) has label \(test.labels[bad])")
    }
    return test
}

struct EvalJob: BackendJob {
    let command: Eval
    let checkpoint: Checkpoint
    let dataset: String
    let data: String

    func run<B: Backend>(on backend: B) throws {
        let test = try loadTestSet(data, for: checkpoint, model: command.model)
        let matrix = try Predictor(checkpoint: checkpoint, backend: backend).evaluate(test)
        let names = classNames(dataset: dataset, classes: checkpoint.sizes.last!)
        let classes = matrix.counts.indices
        if command.json {
            let encoder = JSONEncoder()
            encoder.keyEncodingStrategy = .convertToSnakeCase
            encoder.outputFormatting = [.sortedKeys]
            let report = EvalReport(model: command.model, backend: backend.deviceDescription, examples: matrix.total,
                                accuracy: matrix.accuracy, confusion: matrix.counts,
                                precision: classes.map(matrix.precision), recall: classes.map(matrix.recall))
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
            return
        }
        print("model     \(command.model) (\(checkpoint.architecture), \(checkpoint.epoch) epochs, \(checkpoint.config.optimizer.kind.rawValue))")
        print("backend   \(backend.deviceDescription)")
        print(String(format: "accuracy  %.2f%% (%d of %d test examples)", 100 * matrix.accuracy, matrix.correct, matrix.total))
        print("\nconfusion matrix (rows: true class, columns: predicted)")
        let short = names.map { String($0.prefix(7)) }
        printTable([[""] + short] + classes.map { c in [short[c]] + matrix.counts[c].map(String.init) })
        print("")
        func percentOrDash(_ x: Double?) -> String { x.map(percent) ?? "-" }
        printTable([["class", "precision", "recall", "examples"]] + classes.map { c in
            [names[c], percentOrDash(matrix.precision(c)), percentOrDash(matrix.recall(c)), String(matrix.counts[c].reduce(0, +))]
        })
    }
}

/// What `eval --json` prints.
struct EvalReport: Encodable {
    let model: String, backend: String, examples: Int, accuracy: Double
    let confusion: [[Int]], precision: [Double?], recall: [Double?]
}
