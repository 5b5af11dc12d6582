import GPUTensor
import Testing

/// Records an issue unless every element of actual is within atol + rtol·|expected| (shapes
/// first), naming the largest difference and the first mismatches.
func expectClose(_ actual: [Double], _ expected: [Double], atol: Double = 1e-6, rtol: Double = 1e-5,
                 _ label: String = "", sourceLocation: SourceLocation = #_sourceLocation) {
    let result = Closeness(actual, expected, atol: atol, rtol: rtol)
    if !result.passed { Issue.record("\(label): \(result.summary)", sourceLocation: sourceLocation) }
}

/// Seeded values in [-1, 1), never all zero.
func randomValues(_ count: Int, seed: UInt64) -> [Double] {
    var g = SeededGenerator(seed: seed)
    return (0..<count).map { _ in g.uniform(-1, 1) }
}
