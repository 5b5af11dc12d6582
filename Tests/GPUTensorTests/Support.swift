import GPUTensor
import Testing

/// Shapes first, then every element within |actual - expected| <= atol + rtol·|expected|; on
/// failure, the largest difference and the first mismatches with their index.
func expectClose(_ actual: [Double], _ expected: [Double], atol: Double = 1e-6, rtol: Double = 1e-5,
                 _ label: String = "", sourceLocation: SourceLocation = #_sourceLocation) {
    guard actual.count == expected.count else {
        Issue.record("\(label): \(actual.count) values, expected \(expected.count)", sourceLocation: sourceLocation)
        return
    }
    var bad: [String] = []
    var worst = 0.0
    for (i, (a, e)) in zip(actual, expected).enumerated() {
        let diff = abs(a - e)
        worst = max(worst, diff.isNaN ? .infinity : diff)
        if !(diff <= atol + rtol * abs(e)) && bad.count < 5 { bad.append("[\(i)] \(a) vs \(e)") }
    }
    if !bad.isEmpty {
        Issue.record("\(label): max |diff| \(worst); first mismatches \(bad.joined(separator: ", "))",
                     sourceLocation: sourceLocation)
    }
}

/// Seeded values in [-1, 1), never all zero.
func randomValues(_ count: Int, seed: UInt64) -> [Double] {
    var g = SeededGenerator(seed: seed)
    return (0..<count).map { _ in g.uniform(-1, 1) }
}
