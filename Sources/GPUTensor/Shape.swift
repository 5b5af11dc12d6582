/// The shape of a 2-D tensor: `rows x cols`, stored row-major (one example per row).
/// A bias is `[1, n]`; a scalar result is `[1, 1]`.
public struct Shape: Hashable, Sendable, CustomStringConvertible {
    public let rows: Int
    public let cols: Int

    public init(_ rows: Int, _ cols: Int) {
        precondition(rows >= 0 && cols >= 0, "negative shape (\(rows),\(cols))")
        self.rows = rows
        self.cols = cols
    }

    public var count: Int { rows * cols }
    public var transposed: Shape { Shape(cols, rows) }
    public var description: String { "(\(rows),\(cols))" }
}

/// A shape problem the caller caused: the op's name and every shape involved, so the message
/// alone tells what went wrong ("add: (3,4) does not broadcast to (3,5)").
public struct ShapeError: Error, Equatable, CustomStringConvertible {
    public let op: String
    public let message: String

    public init(_ op: String, _ message: String) {
        self.op = op
        self.message = message
    }

    public var description: String { "\(op): \(message)" }
}

@inline(__always)
func requireShape(_ op: String, _ name: String, _ actual: Shape, _ expected: Shape) throws(ShapeError) {
    guard actual == expected else {
        throw ShapeError(op, "\(name) has shape \(actual), expected \(expected)")
    }
}

/// How an operand of `add` stretches to the output shape, following the reference's rules:
/// equal shapes, or a `(1,1)`, `(n,1)` or `(1,m)` operand stretched to `(n,m)`.
public enum Broadcast: Sendable, Equatable {
    case none       // same shape as the output
    case scalar     // (1,1)
    case column     // (n,1): one value per row
    case row        // (1,m): one value per column

    public init(_ operand: Shape, to output: Shape, op: String = "add") throws(ShapeError) {
        if operand == output { self = .none }
        else if operand == Shape(1, 1) { self = .scalar }
        else if operand == Shape(output.rows, 1) { self = .column }
        else if operand == Shape(1, output.cols) { self = .row }
        else { throw ShapeError(op, "\(operand) does not broadcast to \(output)") }
    }

    /// The shape `a + b` has under the reference's rules, or an error naming both shapes.
    public static func resultShape(_ a: Shape, _ b: Shape, op: String = "add") throws(ShapeError) -> Shape {
        let rows = a.rows == 1 ? b.rows : a.rows
        let cols = a.cols == 1 ? b.cols : a.cols
        let out = Shape(rows, cols)
        guard (try? Broadcast(a, to: out)) != nil, (try? Broadcast(b, to: out)) != nil else {
            throw ShapeError(op, "shapes \(a) and \(b) do not broadcast")
        }
        return out
    }

    /// Index into the operand for output element (i, j).
    @inline(__always)
    public func index(_ i: Int, _ j: Int, cols: Int) -> Int {
        switch self {
        case .none: return i * cols + j
        case .scalar: return 0
        case .column: return i
        case .row: return j
        }
    }
}
