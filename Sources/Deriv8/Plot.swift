import Foundation

/// SVG charts of runs: `svg` draws one run's train and test (and validation) loss and accuracy
/// per epoch; `comparison` draws several runs' test (and validation) curves, one colour per run.
///
/// Two panels side by side, loss and accuracy, each scaled to its own data so that late-epoch
/// changes stay visible. Non-finite values (a diverged run's NaN or infinite loss) and missing
/// ones are left out of the lines rather than written as coordinates, which would make the SVG
/// unrenderable.
public enum TrainingPlot {
    public static func svg(_ results: [EpochResult], title: String) -> String {
        var canvas = Canvas(width: Layout.width, height: Layout.height)
        canvas.text(title, x: Layout.width / 2, y: Layout.titleBaseline, size: 18, anchor: "middle", bold: true)
        guard !results.isEmpty else {
            canvas.text("no epochs yet", x: Layout.width / 2, y: Layout.height / 2, size: 14,
                        anchor: "middle", color: Style.mutedText)
            return canvas.document()
        }
        let epochs = results.map { Double($0.epoch) }
        // The validation series only for runs that held a validation set out.
        let validated = results.contains { $0.validationLoss != nil || $0.validationAccuracy != nil }
        func series(_ name: String, _ color: String, _ values: [Double?]) -> Series {
            Series(name: name, color: color, epochs: epochs, values: values)
        }
        var loss = [series("train", Style.trainColor, results.map(\.trainLoss)),
                    series("test", Style.testColor, results.map(\.testLoss))]
        var accuracy = [series("train", Style.trainColor, results.map { $0.trainAccuracy * 100 }),
                        series("test", Style.testColor, results.map { $0.testAccuracy * 100 })]
        if validated {
            loss.append(series("validation", Style.validationColor, results.map(\.validationLoss)))
            accuracy.append(series("validation", Style.validationColor, results.map { $0.validationAccuracy.map { $0 * 100 } }))
        }
        drawPanel(on: &canvas, left: 0, title: "loss", yTitle: "loss", epochs: epochs, series: loss,
                  legend: loss.map(\.legendEntry))
        drawPanel(on: &canvas, left: Layout.panelWidth, title: "accuracy (%)", yTitle: "accuracy %", epochs: epochs,
                  series: accuracy, legend: accuracy.map(\.legendEntry))
        return canvas.document()
    }

    /// One run in a `comparison`: its epochs and the name its legend entry shows.
    public struct Run: Sendable {
        public let label: String
        public let results: [EpochResult]
        public init(label: String, results: [EpochResult]) {
            self.label = label
            self.results = results
        }
    }

    /// Several runs' test loss and accuracy, one colour per run (the colours repeat after ten
    /// runs), their validation curves dashed in the same colour. The panels are `svg`'s; below
    /// them, one legend line per run, in the order given.
    public static func comparison(_ runs: [Run], title: String) -> String {
        let legendTop = Layout.height + 10   // the first legend line's baseline, below the axis titles
        var canvas = Canvas(width: Layout.width, height: legendTop + Layout.legendRowHeight * Double(runs.count))
        canvas.text(title, x: Layout.width / 2, y: Layout.titleBaseline, size: 18, anchor: "middle", bold: true)
        var loss: [Series] = [], accuracy: [Series] = []
        for (index, run) in runs.enumerated() {
            let color = Style.runColors[index % Style.runColors.count]
            let epochs = run.results.map { Double($0.epoch) }
            loss.append(Series(name: run.label, color: color, epochs: epochs, values: run.results.map(\.testLoss)))
            accuracy.append(Series(name: run.label, color: color, epochs: epochs,
                                   values: run.results.map { $0.testAccuracy * 100 }))
            if run.results.contains(where: { $0.validationLoss != nil || $0.validationAccuracy != nil }) {
                loss.append(Series(name: run.label, color: color, dashed: true, epochs: epochs,
                                   values: run.results.map(\.validationLoss)))
                accuracy.append(Series(name: run.label, color: color, dashed: true, epochs: epochs,
                                       values: run.results.map { $0.validationAccuracy.map { $0 * 100 } }))
            }
            let y = legendTop + Layout.legendRowHeight * Double(index)
            canvas.line(Layout.plotLeft, y - 4, Layout.plotLeft + 18, y - 4, color: color, width: 2.5)
            canvas.text(run.label, x: Layout.plotLeft + 24, y: y, size: 12)
        }
        // The title row explains the line styles; the colours are explained below the panels.
        var key = [LegendEntry(name: "test", color: Style.axisColor, dashed: false)]
        if loss.contains(where: \.dashed) { key.append(LegendEntry(name: "validation", color: Style.axisColor, dashed: true)) }
        let epochs = runs.flatMap { $0.results.map { Double($0.epoch) } }
        drawPanel(on: &canvas, left: 0, title: "test loss", yTitle: "loss", epochs: epochs, series: loss, legend: key)
        drawPanel(on: &canvas, left: Layout.panelWidth, title: "test accuracy (%)", yTitle: "accuracy %", epochs: epochs,
                  series: accuracy, legend: key)
        return canvas.document()
    }

    private enum Layout {
        static let width = 960.0, height = 400.0
        static let panelWidth = width / 2
        static let titleBaseline = 30.0
        static let panelTitleBaseline = 58.0
        // The plot area inside each panel; the margins hold tick labels and axis titles.
        static let plotLeft = 72.0, plotRight = 20.0, plotTop = 72.0, plotBottom = 340.0
        static let tickLength = 5.0
        /// The horizontal room a legend entry takes: a line sample, then its name at about 7
        /// pixels a character (12-pixel sans-serif), then a gap.
        static func legendEntryWidth(_ name: String) -> Double { 24 + 7 * Double(name.count) + 12 }
        /// A comparison's legend lines below the panels.
        static let legendRowHeight = 20.0
    }

    private enum Style {
        static let trainColor = "#1f77b4"
        static let testColor = "#ff7f0e"
        static let validationColor = "#2ca02c"
        /// A comparison's run colours (matplotlib's "tab10").
        static let runColors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
        static let axisColor = "#333333"
        static let gridColor = "#e6e6e6"
        static let mutedText = "#666666"
        static let dashPattern = "6 4"
    }

    private struct LegendEntry {
        let name: String
        let color: String
        let dashed: Bool
    }

    private struct Series {
        let name: String
        let color: String
        var dashed = false
        /// The (epoch, value) pairs that can be drawn: missing and non-finite values left out.
        let points: [(x: Double, y: Double)]

        init(name: String, color: String, dashed: Bool = false, epochs: [Double], values: [Double?]) {
            (self.name, self.color, self.dashed) = (name, color, dashed)
            points = zip(epochs, values).compactMap { x, y in y.flatMap { $0.isFinite ? (x: x, y: $0) : nil } }
        }

        var legendEntry: LegendEntry { LegendEntry(name: name, color: color, dashed: dashed) }
    }

    /// One panel `left` pixels from the canvas's left edge. The x axis covers `epochs` (every
    /// run's, drawable or not); `legend` goes in the title row when it has more than one entry.
    private static func drawPanel(on canvas: inout Canvas, left: Double, title: String, yTitle: String,
                                  epochs: [Double], series: [Series], legend: [LegendEntry]) {
        let plotLeft = left + Layout.plotLeft
        let plotRight = left + Layout.panelWidth - Layout.plotRight
        let (plotTop, plotBottom) = (Layout.plotTop, Layout.plotBottom)
        let lines = series.map(\.points)
        // Both panels share the x axis, so it comes from the epochs, not from the drawable points.
        let xAxis = NiceAxis(covering: epochs, integerSteps: true)
        let yAxis = NiceAxis(covering: lines.flatMap { $0.map(\.y) }, integerSteps: false)
        func px(_ x: Double) -> Double { plotLeft + xAxis.fraction(x) * (plotRight - plotLeft) }
        func py(_ y: Double) -> Double { plotBottom - yAxis.fraction(y) * (plotBottom - plotTop) }

        canvas.text(title, x: plotLeft, y: Layout.panelTitleBaseline, size: 14, bold: true)
        if legend.count > 1 {
            // In the title row, not over the plot, where it could hide the lines.
            var x = plotRight - legend.map { Layout.legendEntryWidth($0.name) }.reduce(0, +)
            for entry in legend {
                canvas.line(x, Layout.panelTitleBaseline - 4, x + 18, Layout.panelTitleBaseline - 4,
                            color: entry.color, width: 2.5, dash: entry.dashed ? Style.dashPattern : nil)
                canvas.text(entry.name, x: x + 24, y: Layout.panelTitleBaseline, size: 12)
                x += Layout.legendEntryWidth(entry.name)
            }
        }

        for tick in xAxis.ticks {
            let x = px(tick)
            canvas.line(x, plotTop, x, plotBottom, color: Style.gridColor, width: 1)
            canvas.line(x, plotBottom, x, plotBottom + Layout.tickLength, color: Style.axisColor, width: 1)
            canvas.text(xAxis.label(tick), x: x, y: plotBottom + 20, size: 12, anchor: "middle")
        }
        for tick in yAxis.ticks {
            let y = py(tick)
            canvas.line(plotLeft, y, plotRight, y, color: Style.gridColor, width: 1)
            canvas.line(plotLeft - Layout.tickLength, y, plotLeft, y, color: Style.axisColor, width: 1)
            canvas.text(yAxis.label(tick), x: plotLeft - 8, y: y + 4, size: 12, anchor: "end")
        }
        canvas.line(plotLeft, plotTop, plotLeft, plotBottom, color: Style.axisColor, width: 1)
        canvas.line(plotLeft, plotBottom, plotRight, plotBottom, color: Style.axisColor, width: 1)
        canvas.text("epoch", x: (plotLeft + plotRight) / 2, y: plotBottom + 46, size: 13, anchor: "middle")
        canvas.text(yTitle, x: left + 20, y: (plotTop + plotBottom) / 2, size: 13, anchor: "middle", rotated: true)

        for (s, points) in zip(series, lines) {
            let screen = points.map { (x: px($0.x), y: py($0.y)) }
            // A line needs two points; a lone one (the first epoch) is shown as a marker.
            if screen.count == 1 {
                canvas.circle(screen[0].x, screen[0].y, radius: 4, color: s.color)
            } else if screen.count > 1 {
                canvas.polyline(screen, color: s.color, dash: s.dashed ? Style.dashPattern : nil)
            }
        }
        if lines.allSatisfy(\.isEmpty) {
            canvas.text("no finite values", x: (plotLeft + plotRight) / 2, y: (plotTop + plotBottom) / 2,
                        size: 13, anchor: "middle", color: Style.mutedText)
        }
    }
}

/// An axis range that starts and ends on ticks spaced 1, 2 or 5 x 10^k apart, about five of them.
private struct NiceAxis {
    let step: Double
    /// The first and last ticks as multiples of `step`; integers, so ticks do not drift by rounding.
    let firstTick: Int, lastTick: Int
    /// Digits after the decimal point that show every tick exactly.
    let decimals: Int

    init(covering values: [Double], integerSteps: Bool) {
        // With nothing to show, 0...1 still gives a readable empty frame.
        var low = values.min() ?? 0, high = values.max() ?? 1
        if low == high {
            // A single value needs a range around it to be placed in the middle.
            let pad = low == 0 ? 1 : abs(low) * 0.1
            low -= pad
            high += pad
        }
        let raw = (high - low) / 5
        var exponent = Int(log10(raw).rounded(.down))
        let magnitude = pow(10, Double(exponent))
        // The tolerance keeps a raw step of exactly 2 x 10^k from becoming 5 x 10^k through rounding.
        let multiple = [1.0, 2, 5, 10].first { $0 * magnitude >= raw * (1 - 1e-9) } ?? 10
        var step = multiple * magnitude
        if multiple == 10 { exponent += 1 }
        // Epochs are whole numbers; a fractional tick would label an epoch that does not exist.
        if integerSteps && step < 1 {
            step = 1
            exponent = 0
        }
        self.step = step
        firstTick = Int((low / step).rounded(.down))
        lastTick = Int((high / step).rounded(.up))
        decimals = max(0, -exponent)
    }

    var ticks: [Double] { (firstTick...lastTick).map { Double($0) * step } }

    /// Where `value` lies along the axis, 0 at the first tick and 1 at the last.
    func fraction(_ value: Double) -> Double {
        (value - Double(firstTick) * step) / (Double(lastTick - firstTick) * step)
    }

    func label(_ value: Double) -> String { String(format: "%.\(decimals)f", value) }
}

/// Collects SVG elements and writes the document. Every number goes through `coordinate`, and
/// every text through `escaped`, so the output stays well-formed whatever the data and title.
private struct Canvas {
    let width: Double, height: Double
    private var elements: [String] = []

    init(width: Double, height: Double) {
        self.width = width
        self.height = height
    }

    /// `dash`: an SVG stroke-dasharray ("6 4": 6 pixels drawn, 4 left out); nil for a solid line.
    mutating func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, color: String, width: Double,
                       dash: String? = nil) {
        elements.append("<line x1=\"\(coordinate(x1))\" y1=\"\(coordinate(y1))\" x2=\"\(coordinate(x2))\" "
            + "y2=\"\(coordinate(y2))\" stroke=\"\(color)\" stroke-width=\"\(coordinate(width))\"\(dashAttribute(dash))/>")
    }

    mutating func polyline(_ points: [(x: Double, y: Double)], color: String, dash: String? = nil) {
        let list = points.map { "\(coordinate($0.x)),\(coordinate($0.y))" }.joined(separator: " ")
        elements.append("<polyline points=\"\(list)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" "
            + "stroke-linejoin=\"round\" stroke-linecap=\"round\"\(dashAttribute(dash))/>")
    }

    private func dashAttribute(_ dash: String?) -> String { dash.map { " stroke-dasharray=\"\($0)\"" } ?? "" }

    mutating func circle(_ x: Double, _ y: Double, radius: Double, color: String) {
        elements.append("<circle cx=\"\(coordinate(x))\" cy=\"\(coordinate(y))\" r=\"\(coordinate(radius))\" "
            + "fill=\"\(color)\"/>")
    }

    mutating func text(_ content: String, x: Double, y: Double, size: Int, anchor: String = "start",
                       bold: Bool = false, color: String = "#222222", rotated: Bool = false) {
        var attributes = "x=\"\(coordinate(x))\" y=\"\(coordinate(y))\" font-size=\"\(size)\" "
            + "text-anchor=\"\(anchor)\" fill=\"\(color)\""
        if bold { attributes += " font-weight=\"bold\"" }
        // Rotated about its own anchor, so (x, y) stays the label's centre.
        if rotated { attributes += " transform=\"rotate(-90 \(coordinate(x)) \(coordinate(y)))\"" }
        elements.append("<text \(attributes)>\(escaped(content))</text>")
    }

    func document() -> String {
        let size = "width=\"\(coordinate(width))\" height=\"\(coordinate(height))\""
        let header = "<svg xmlns=\"http://www.w3.org/2000/svg\" \(size) "
            + "viewBox=\"0 0 \(coordinate(width)) \(coordinate(height))\" font-family=\"sans-serif\">"
        // An explicit background: viewers that default to a dark or transparent one stay readable.
        let background = "<rect \(size) fill=\"#ffffff\"/>"
        return ([header, background] + elements.map { "  " + $0 } + ["</svg>"]).joined(separator: "\n") + "\n"
    }

    /// One decimal is finer than a pixel; String(format:) always writes a "." decimal point.
    private func coordinate(_ value: Double) -> String { String(format: "%.1f", value) }

    private func escaped(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default: out.append(character)
            }
        }
        return out
    }
}
