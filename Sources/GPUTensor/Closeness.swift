/// Element-wise comparison with |actual − expected| ≤ atol + rtol·|expected| (NaN never passes):
/// the one rule the `check` command and the tests use.
public struct Closeness: Sendable {
    public let maxAbsoluteDifference: Double
    public let maxRelativeDifference: Double
    /// The first five elements outside the tolerance, as (index, actual, expected).
    public let mismatches: [(index: Int, actual: Double, expected: Double)]
    public let countMismatch: Bool

    public var passed: Bool { mismatches.isEmpty && !countMismatch }

    public init(_ actual: [Double], _ expected: [Double], atol: Double, rtol: Double) {
        var maxAbs = 0.0, maxRel = 0.0
        var mismatches: [(Int, Double, Double)] = []
        for (i, (a, e)) in zip(actual, expected).enumerated() {
            let diff = abs(a - e)
            if !(diff <= atol + rtol * abs(e)) && mismatches.count < 5 { mismatches.append((i, a, e)) }
            maxAbs = max(maxAbs, diff.isNaN ? .infinity : diff)
            if e != 0 { maxRel = max(maxRel, diff.isNaN ? .infinity : diff / abs(e)) }
        }
        maxAbsoluteDifference = maxAbs
        maxRelativeDifference = maxRel
        self.mismatches = mismatches
        countMismatch = actual.count != expected.count
    }

    /// One line for a failure report.
    public var summary: String {
        if countMismatch { return "different element counts" }
        return "max |diff| \(maxAbsoluteDifference); first mismatches (index, actual, expected): "
            + mismatches.map { "(\($0.index), \($0.actual), \($0.expected))" }.joined(separator: " ")
    }
}
