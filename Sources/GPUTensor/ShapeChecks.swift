/// Shape validation shared by every backend, so that both throw the same `ShapeError` for the
/// same mistake before touching any memory.
enum ShapeChecks {
    /// Returns (m, k, n) for c = op(a) · op(b).
    static func matmul(_ a: Shape, _ transposeA: Bool, _ b: Shape, _ transposeB: Bool,
                       _ c: Shape) throws(ShapeError) -> (m: Int, k: Int, n: Int) {
        let opA = transposeA ? a.transposed : a
        let opB = transposeB ? b.transposed : b
        let describe = "\(transposeA ? "aᵀ" : "a") \(opA) · \(transposeB ? "bᵀ" : "b") \(opB)"
        guard opA.cols == opB.rows else {
            throw ShapeError("matmul", "inner dimensions differ: \(describe)")
        }
        guard c == Shape(opA.rows, opB.cols) else {
            throw ShapeError("matmul", "\(describe) gives \(Shape(opA.rows, opB.cols)), output is \(c)")
        }
        return (opA.rows, opA.cols, opB.cols)
    }

    static func add(_ a: Shape, _ b: Shape, _ c: Shape) throws(ShapeError) -> (Broadcast, Broadcast) {
        let result = try Broadcast.resultShape(a, b)
        try requireShape("add", "output", c, result)
        return (try Broadcast(a, to: c), try Broadcast(b, to: c))
    }

    static func same(_ op: String, _ shapes: [(String, Shape)]) throws(ShapeError) {
        let (_, first) = shapes[0]
        for (name, shape) in shapes.dropFirst() where shape != first {
            throw ShapeError(op, "\(name) has shape \(shape), expected \(first) like \(shapes[0].0)")
        }
    }

    static func stats(_ p: Shape, _ y: Shape, _ stats: Shape) throws(ShapeError) {
        try same("crossEntropyStats", [("p", p), ("y", y)])
        guard p.cols >= 1 else { throw ShapeError("crossEntropyStats", "p has no columns: \(p)") }
        guard stats.rows == 1, stats.cols >= 2 else {
            throw ShapeError("crossEntropyStats", "stats has shape \(stats), expected (1,k) with k >= 2")
        }
    }

    static func index(_ op: String, _ index: Int, in out: Shape) throws(ShapeError) {
        guard out.rows == 1, index >= 0, index < out.cols else {
            throw ShapeError(op, "index \(index) is outside output \(out), expected a (1,k) row with k > index")
        }
    }

    static func gather<B>(_ examples: ExampleSet<B>, _ order: IndexList<B>, _ start: Int,
                          _ x: Shape?, _ y: Shape) throws(ShapeError) {
        if let x { try requireShape("gatherBatch", "x", x, Shape(y.rows, examples.features)) }
        try requireShape("gatherBatch", "y", y, Shape(y.rows, examples.classes))
        try batch("gatherBatch", examples, order, start, rows: y.rows)
    }

    /// Checks z [m, n] = x · wᵀ for the batch of m examples at `start`.
    static func inputProduct<B>(_ examples: ExampleSet<B>, _ order: IndexList<B>, _ start: Int,
                                _ w: Shape, _ z: Shape) throws(ShapeError) {
        try requireShape("inputProduct", "w", w, Shape(w.rows, examples.features))
        try requireShape("inputProduct", "z", z, Shape(z.rows, w.rows))
        try batch("inputProduct", examples, order, start, rows: z.rows)
    }

    /// Checks dw [n, features] = dzᵀ · x for dz [m, n] and the batch of m examples at `start`.
    static func inputGradient<B>(_ dz: Shape, _ examples: ExampleSet<B>, _ order: IndexList<B>, _ start: Int,
                                 _ dw: Shape) throws(ShapeError) {
        try requireShape("inputGradient", "dw", dw, Shape(dz.cols, examples.features))
        try batch("inputGradient", examples, order, start, rows: dz.rows)
    }

    /// Rows start..<start+rows of `order` exist and index examples of the set.
    private static func batch<B>(_ op: String, _ examples: ExampleSet<B>, _ order: IndexList<B>, _ start: Int,
                                 rows: Int) throws(ShapeError) {
        guard start >= 0, start + rows <= order.count else {
            throw ShapeError(op, "batch \(start)..<\(start + rows) is outside the order's \(order.count) indices")
        }
        guard order.minimum >= 0, order.bound <= examples.count else {
            throw ShapeError(op, "the order holds indices \(order.minimum)..<\(order.bound), outside the \(examples.count) examples")
        }
    }
}
