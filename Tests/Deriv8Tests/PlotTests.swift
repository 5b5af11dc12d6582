import Deriv8
import Foundation
import Testing
#if canImport(FoundationXML)
import FoundationXML
#endif

/// EpochResult's memberwise initialiser is internal to Deriv8. Decoding goes through its public
/// Codable conformance instead of `@testable import`, which `swift build --build-tests` does not
/// allow (only `swift test` compiles modules for testing by default).
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
        }
        elementCounts[name, default: 0] += 1
        for key in ["x", "y", "x1", "y1", "x2", "y2", "cx", "cy", "r", "points", "transform"] {
            if let value = attributes[key] { geometry.append(value) }
        }
        if name == "polyline" { polylineLengths.append(attributes["points", default: ""].split(separator: " ").count) }
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
}
