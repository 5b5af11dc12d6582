import Deriv8
import Foundation
import Testing
#if canImport(FoundationXML)
import FoundationXML
#endif

/// Goes through EpochResult's public Codable conformance, written when its initialiser was
/// internal to Deriv8 (`@testable import` is not allowed by `swift build --build-tests`); the
/// initialiser is public now, and `validatedEpochs` below uses it.
private func epochResult(epoch: Int, trainLoss: Double, trainAccuracy: Double,
                         testLoss: Double, testAccuracy: Double) -> EpochResult {
    // JSON has no NaN or infinity; the decoder below reads them from these strings.
    func json(_ x: Double) -> String { x.isNaN ? "\"nan\"" : x.isInfinite ? (x > 0 ? "\"inf\"" : "\"-inf\"") : "\(x)" }
    let text = """
        {"epoch": \(epoch), "trainLoss": \(json(trainLoss)), "trainAccuracy": \(json(trainAccuracy)),
         "testLoss": \(json(testLoss)), "testAccuracy": \(json(testAccuracy)), "trainSeconds": 1.5, "evalSeconds": 0.2}
        """
    let decoder = JSONDecoder()
    decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf",
                                                                    nan: "nan")
    return try! decoder.decode(EpochResult.self, from: Data(text.utf8))
}

/// Epochs shaped like a real run that held out a validation set: validation a little below test.
/// `from`: the first epoch that has validation values (an earlier one, resumed, may not).
private func validatedEpochs(_ count: Int, from first: Int = 1) -> [EpochResult] {
    realisticEpochs(count).map { r in
        EpochResult(epoch: r.epoch, trainLoss: r.trainLoss, trainAccuracy: r.trainAccuracy, testLoss: r.testLoss,
                    testAccuracy: r.testAccuracy, trainSeconds: r.trainSeconds, evalSeconds: r.evalSeconds, learningRate: 0.1,
                    validationLoss: r.epoch >= first ? r.testLoss + 0.05 : nil,
                    validationAccuracy: r.epoch >= first ? r.testAccuracy - 0.01 : nil)
    }
}

/// Epochs shaped like a real run: loss falling towards 0.3, accuracies rising towards 95%.
private func realisticEpochs(_ count: Int) -> [EpochResult] {
    (1...count).map { epoch in
        let progress = 1 - exp(-Double(epoch) / 4)
        return epochResult(epoch: epoch, trainLoss: 1.2 - 0.9 * progress, trainAccuracy: 0.70 + 0.26 * progress,
                           testLoss: 1.1 - 0.85 * progress, testAccuracy: 0.72 + 0.23 * progress)
    }
}

/// What XMLParser saw: whether the document is well-formed, and its elements, attributes and text.
private final class ParsedSVG: NSObject, XMLParserDelegate {
    private(set) var wellFormed = false
    private(set) var rootElement: String?
    private(set) var rootNamespace: String?
    private(set) var elementCounts: [String: Int] = [:]
    /// Each text element's content, entities resolved.
    private(set) var texts: [String] = []
    /// Every attribute that carries geometry, for checking that each number in it is finite.
    private(set) var geometry: [String] = []
    /// How many points each polyline has, in document order.
    private(set) var polylineLengths: [Int] = []
    /// Each polyline's stroke colour and whether it is dashed, in document order.
    private(set) var polylineStrokes: [(color: String, dashed: Bool)] = []
    /// The svg element's height.
    private(set) var height: Double?
    private var currentText: String?

    init(_ svg: String) {
        super.init()
        let parser = XMLParser(data: Data(svg.utf8))
        parser.delegate = self
        wellFormed = parser.parse()
    }

    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?,
                qualifiedName: String?, attributes: [String: String] = [:]) {
        if rootElement == nil {
            rootElement = name
            rootNamespace = attributes["xmlns"]
            height = attributes["height"].flatMap(Double.init)
        }
        elementCounts[name, default: 0] += 1
        for key in ["x", "y", "x1", "y1", "x2", "y2", "cx", "cy", "r", "points", "transform"] {
            if let value = attributes[key] { geometry.append(value) }
        }
        if name == "polyline" {
            polylineLengths.append(attributes["points", default: ""].split(separator: " ").count)
            polylineStrokes.append((attributes["stroke", default: ""], attributes["stroke-dasharray"] != nil))
        }
        if name == "text" { currentText = "" }
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
        currentText? += string
    }

    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
        if name == "text", let text = currentText {
            texts.append(text)
            currentText = nil
        }
    }

    /// The numbers in the geometry attributes: "x,y x,y" point lists and "rotate(a x y)" split apart.
    var geometryNumbers: [String] {
        geometry.flatMap { value in
            value.split { " ,()".contains($0) }.map(String.init).filter { $0 != "rotate" }
        }
    }
}

@Suite("TrainingPlot")
struct PlotTests {
    @Test("20 epochs give well-formed XML whose root is an svg element in the SVG namespace")
    func wellFormed() {
        let parsed = ParsedSVG(TrainingPlot.svg(realisticEpochs(20), title: "seed 1, cpu"))
        #expect(parsed.wellFormed)
        #expect(parsed.rootElement == "svg")
        #expect(parsed.rootNamespace == "http://www.w3.org/2000/svg")
        #expect(parsed.texts.contains("seed 1, cpu"))
    }

    @Test("20 epochs draw four lines (train and test loss and accuracy), with panel titles, axis titles and legends")
    func linesAndLabels() {
        let svg = TrainingPlot.svg(realisticEpochs(20), title: "run")
        let parsed = ParsedSVG(svg)
        #expect(svg.components(separatedBy: "<polyline").count - 1 == 4)
        #expect(parsed.elementCounts["polyline"] == 4)
        #expect(parsed.elementCounts["circle"] == nil)
        for label in ["train", "test", "loss", "accuracy (%)", "epoch", "accuracy %"] {
            #expect(parsed.texts.contains(label), "missing text \(label)")
        }
        // Nice ticks: epochs 1...20 are labelled 0, 5, ..., 20.
        for tick in ["0", "5", "10", "15", "20"] { #expect(parsed.texts.contains(tick), "missing tick \(tick)") }
        #expect(parsed.polylineLengths == [20, 20, 20, 20])
    }

    @Test("XML special characters in the title are escaped, and the title reads back unchanged")
    func escapedTitle() {
        let title = "a <b> & \"c\""
        let svg = TrainingPlot.svg(realisticEpochs(3), title: title)
        #expect(svg.contains("a &lt;b&gt; &amp; &quot;c&quot;"))
        #expect(!svg.contains(title))
        let parsed = ParsedSVG(svg)
        #expect(parsed.wellFormed)
        #expect(parsed.texts.contains(title))
    }

    @Test("one epoch gives a marker per series instead of lines; zero epochs say so")
    func oneAndZeroEpochs() {
        let one = ParsedSVG(TrainingPlot.svg(realisticEpochs(1), title: "one"))
        #expect(one.wellFormed)
        #expect(one.rootElement == "svg")
        #expect(one.elementCounts["circle"] == 4)
        #expect(one.elementCounts["polyline"] == nil)
        #expect(one.geometryNumbers.allSatisfy { Double($0)?.isFinite == true })

        let none = ParsedSVG(TrainingPlot.svg([], title: "none"))
        #expect(none.wellFormed)
        #expect(none.rootElement == "svg")
        #expect(none.texts.contains("no epochs yet"))
        #expect(none.elementCounts["polyline"] == nil)
    }

    @Test("non-finite losses are skipped: no nan or inf in the output, and the loss line loses those points")
    func nonFiniteLoss() {
        let epochs = realisticEpochs(20).map { r in
            let loss = r.epoch == 7 ? Double.nan : r.epoch == 12 ? Double.infinity : r.trainLoss
            return epochResult(epoch: r.epoch, trainLoss: loss, trainAccuracy: r.trainAccuracy,
                               testLoss: r.testLoss, testAccuracy: r.testAccuracy)
        }
        let svg = TrainingPlot.svg(epochs, title: "diverging")
        #expect(!svg.lowercased().contains("nan"))
        #expect(!svg.lowercased().contains("inf"))
        let parsed = ParsedSVG(svg)
        #expect(parsed.wellFormed)
        #expect(!parsed.geometryNumbers.isEmpty)
        #expect(parsed.geometryNumbers.allSatisfy { Double($0)?.isFinite == true })
        #expect(parsed.polylineLengths == [18, 20, 20, 20])
    }

    @Test("a loss that is NaN from the first epoch leaves an empty loss panel, still valid")
    func allNaNLoss() {
        let epochs = (1...5).map { epochResult(epoch: $0, trainLoss: .nan, trainAccuracy: 0.1, testLoss: .nan,
                                               testAccuracy: 0.098) }
        let svg = TrainingPlot.svg(epochs, title: "diverged at once")
        let parsed = ParsedSVG(svg)
        #expect(parsed.wellFormed)
        #expect(!svg.lowercased().contains("nan"))
        #expect(parsed.texts.contains("no finite values"))
        #expect(parsed.elementCounts["polyline"] == 2)
        #expect(parsed.geometryNumbers.allSatisfy { Double($0)?.isFinite == true })
    }

    @Test("a run with a validation set draws validation loss and accuracy as a third series, with its own colour and legend entry")
    func validationSeries() {
        let svg = TrainingPlot.svg(validatedEpochs(20), title: "validated")
        let parsed = ParsedSVG(svg)
        #expect(parsed.wellFormed)
        #expect(parsed.polylineLengths == [20, 20, 20, 20, 20, 20])
        let colors = parsed.polylineStrokes.map(\.color)
        #expect(colors[0] == colors[3] && colors[1] == colors[4] && colors[2] == colors[5], "\(colors)")
        #expect(Set(colors).count == 3, "train, test and validation each have a colour: \(colors)")
        #expect(parsed.texts.filter { $0 == "validation" }.count == 2, "a legend entry in each panel")
        // Without validation values there is no third series, and no legend entry for it.
        let plain = ParsedSVG(TrainingPlot.svg(realisticEpochs(20), title: "plain"))
        #expect(!plain.texts.contains("validation"))
        #expect(!Set(plain.polylineStrokes.map(\.color)).contains(colors[2]))
    }

    @Test("validation values missing from some epochs (before a resume) leave those points out")
    func partialValidation() {
        let parsed = ParsedSVG(TrainingPlot.svg(validatedEpochs(10, from: 4), title: "resumed"))
        #expect(parsed.wellFormed)
        #expect(parsed.polylineLengths == [10, 10, 7, 10, 10, 7])
    }

    @Test("comparison: a colour per run, its test curves solid and validation dashed, a legend line per run below the panels")
    func comparison() {
        let runs = [TrainingPlot.Run(label: "run-a: mnist", results: realisticEpochs(20)),
                    TrainingPlot.Run(label: "run-b <&>", results: validatedEpochs(8)),
                    TrainingPlot.Run(label: "run-c", results: realisticEpochs(1))]
        let svg = TrainingPlot.comparison(runs, title: "3 runs")
        let parsed = ParsedSVG(svg)
        #expect(parsed.wellFormed)
        #expect(parsed.rootElement == "svg")
        // Per panel: run a's test line, run b's test and dashed validation lines; run c's single epoch is a marker.
        #expect(parsed.polylineLengths == [20, 8, 8, 20, 8, 8])
        #expect(parsed.polylineStrokes.map(\.dashed) == [false, false, true, false, false, true])
        #expect(parsed.elementCounts["circle"] == 2)
        let strokes = parsed.polylineStrokes.map(\.color)
        #expect(strokes[0] != strokes[1] && strokes[1] == strokes[2] && strokes[0] == strokes[3], "\(strokes)")
        for label in ["3 runs", "run-a: mnist", "run-b <&>", "run-c", "test loss", "test accuracy (%)", "test", "validation"] {
            #expect(parsed.texts.contains(label), "missing text \(label)")
        }
        // The x axis covers the longest run: epochs 1...20 are labelled up to 20.
        #expect(parsed.texts.contains("20"))
        #expect(parsed.geometryNumbers.allSatisfy { Double($0)?.isFinite == true })
        // Each legend line needs room: a taller chart for more runs.
        let one = ParsedSVG(TrainingPlot.comparison(Array(runs.prefix(1)), title: "1 run"))
        #expect((parsed.height ?? 0) - (one.height ?? 0) == 40)
        #expect(!one.texts.contains("validation"), "no dashed key without validation curves")
    }

    @Test("comparison of runs with no epochs, or of none, is still a valid SVG")
    func emptyComparison() {
        for runs in [[], [TrainingPlot.Run(label: "empty", results: [])]] {
            let parsed = ParsedSVG(TrainingPlot.comparison(runs, title: "nothing"))
            #expect(parsed.wellFormed)
            #expect(parsed.texts.contains("no finite values"))
            #expect(parsed.geometryNumbers.allSatisfy { Double($0)?.isFinite == true })
        }
    }
}
