import Foundation

/// An SVG chart of a run: train and test loss per epoch, and train and test accuracy per epoch.
///
/// Two panels side by side, each scaled to its own data so that late-epoch changes stay visible.
/// Non-finite values (a diverged run's NaN or infinite loss) are left out of the lines rather than
/// written as coordinates, which would make the SVG unrenderable.
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
        drawPanel(on: &canvas, left: 0, title: "loss", yTitle: "loss", epochs: epochs,
                  series: [Series(name: "train", color: Style.trainColor, values: results.map(\.trainLoss)),
                           Series(name: "test", color: Style.testColor, values: results.map(\.testLoss))])
        drawPanel(on: &canvas, left: Layout.panelWidth, title: "accuracy (%)", yTitle: "accuracy %", epochs: epochs,
                  series: [Series(name: "train", color: Style.trainColor, values: results.map { $0.trainAccuracy * 100 }),
                           Series(name: "test", color: Style.testColor, values: results.map { $0.testAccuracy * 100 })])
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
        /// The horizontal room one legend entry takes: a line sample and a short name.
        static let legendEntryWidth = 70.0
    }

    private enum Style {
        static let trainColor = "#1f77b4"
        static let testColor = "#ff7f0e"
        static let axisColor = "#333333"
        static let gridColor = "#e6e6e6"
        static let mutedText = "#666666"
    }

    private struct Series {
        let name: String
        let color: String
        let values: [Double]

        /// The (epoch, value) pairs that can be drawn.
        func points(epochs: [Double]) -> [(x: Double, y: Double)] {
            zip(epochs, values).filter { $0.1.isFinite }.map { (x: $0.0, y: $0.1) }
        }
    }

    private static func drawPanel(on canvas: inout Canvas, left: Double, title: String, yTitle: String,
                                  epochs: [Double], series: [Series]) {
        let plotLeft = left + Layout.plotLeft
        let plotRight = left + Layout.panelWidth - Layout.plotRight
        let (plotTop, plotBottom) = (Layout.plotTop, Layout.plotBottom)
        let lines = series.map { $0.points(epochs: epochs) }
        // Both panels share the x axis, so it comes from the epochs, not from the drawable points.
        let xAxis = NiceAxis(covering: epochs, integerSteps: true)
        let yAxis = NiceAxis(covering: lines.flatMap { $0.map(\.y) }, integerSteps: false)
        func px(_ x: Double) -> Double { plotLeft + xAxis.fraction(x) * (plotRight - plotLeft) }
        func py(_ y: Double) -> Double { plotBottom - yAxis.fraction(y) * (plotBottom - plotTop) }

        canvas.text(title, x: plotLeft, y: Layout.panelTitleBaseline, size: 14, bold: true)
        if series.count > 1 {
            // In the title row, not over the plot, where it could hide the lines.
            var x = plotRight - Layout.legendEntryWidth * Double(series.count)
            for s in series {
                canvas.line(x, Layout.panelTitleBaseline - 4, x + 18, Layout.panelTitleBaseline - 4,
                            color: s.color, width: 2.5)
                canvas.text(s.name, x: x + 24, y: Layout.panelTitleBaseline, size: 12)
                x += Layout.legendEntryWidth
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
                canvas.polyline(screen, color: s.color)
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

    mutating func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, color: String, width: Double) {
        elements.append("<line x1=\"\(coordinate(x1))\" y1=\"\(coordinate(y1))\" x2=\"\(coordinate(x2))\" "
            + "y2=\"\(coordinate(y2))\" stroke=\"\(color)\" stroke-width=\"\(coordinate(width))\"/>")
    }

    mutating func polyline(_ points: [(x: Double, y: Double)], color: String) {
        let list = points.map { "\(coordinate($0.x)),\(coordinate($0.y))" }.joined(separator: " ")
        elements.append("<polyline points=\"\(list)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" "
            + "stroke-linejoin=\"round\" stroke-linecap=\"round\"/>")
    }

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
