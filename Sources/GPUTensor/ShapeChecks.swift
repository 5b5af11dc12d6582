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

    static func stats(_ p: Shape, _ y: Shape, _ stats: Shape, at index: Int) throws(ShapeError) {
        try same("crossEntropyStats", [("p", p), ("y", y)])
        guard p.cols >= 1 else { throw ShapeError("crossEntropyStats", "p has no columns: \(p)") }
        guard index >= 0, index + 1 < stats.count else {
            throw ShapeError("crossEntropyStats", "elements \(index) and \(index + 1) are outside stats \(stats)")
        }
    }

    static func index(_ op: String, _ index: Int, in out: Shape) throws(ShapeError) {
        guard index >= 0, index < out.count else {
            throw ShapeError(op, "element \(index) is outside output \(out)")
        }
    }

    static func gather<B>(_ examples: ExampleSet<B>, _ order: IndexList<B>, _ start: Int,
                          _ x: Shape?, _ y: Shape) throws(ShapeError) {
        if let x { try requireShape("gatherBatch", "x", x, Shape(y.rows, examples.features)) }
        try requireShape("gatherBatch", "y", y, Shape(y.rows, examples.classes))
        try batch("gatherBatch", examples, order, start, rows: y.rows)
    }

    static func gatherRows<B>(_ table: Shape, _ order: IndexList<B>, _ start: Int, _ rows: Shape) throws(ShapeError) {
        try requireShape("gatherRows", "rows", rows, Shape(rows.rows, table.cols))
        try batch("gatherRows", count: table.rows, order, start, rows: rows.rows)
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

    /// Checks y [m, n] = x · wᵀ + b for the batch of m examples at `start`, with the bias b
    /// [1, n] and the one-hot targets [m, classes] when given (the same rule as `linear`'s).
    static func inputLinear<B>(_ examples: ExampleSet<B>, _ order: IndexList<B>, _ start: Int, _ w: Shape, _ b: Shape,
                               _ y: Shape, targets: Shape?) throws(ShapeError) {
        try inputProduct(examples, order, start, w, y)
        try requireShape("inputLinear", "b", b, Shape(1, w.rows))
        if let targets { try requireShape("inputLinear", "targets", targets, Shape(y.rows, examples.classes)) }
    }

    /// Checks y [m, n] = x · wᵀ + b: the bias is one row [1, n], on every backend (no other
    /// broadcast, though `add` would take one).
    static func linear(_ x: Shape, _ w: Shape, _ b: Shape, _ y: Shape) throws(ShapeError) {
        try requireShape("linear", "w", w, Shape(w.rows, x.cols))
        try requireShape("linear", "b", b, Shape(1, w.rows))
        try requireShape("linear", "y", y, Shape(x.rows, w.rows))
    }

    /// Checks dw = dzᵀ · x + decay · w and db = Σ_rows dz for dz [m, n], x [m, k].
    static func linearGradient(_ dz: Shape, _ x: Shape, _ w: Shape, _ dw: Shape, _ db: Shape) throws(ShapeError) {
        try requireShape("linearGradient", "x", x, Shape(dz.rows, x.cols))
        try requireShape("linearGradient", "w", w, Shape(dz.cols, x.cols))
        try requireShape("linearGradient", "dw", dw, w)
        try requireShape("linearGradient", "db", db, Shape(1, dz.cols))
    }

    /// Checks dx = (dz · w) ⊙ 1[a > 0] for dz [m, n], w [n, k], a and dx [m, k].
    static func backpropagate(_ dz: Shape, _ w: Shape, _ a: Shape, _ dx: Shape) throws(ShapeError) {
        try requireShape("backpropagate", "w", w, Shape(dz.cols, w.cols))
        try requireShape("backpropagate", "a", a, Shape(dz.rows, w.cols))
        try requireShape("backpropagate", "dx", dx, a)
    }

    /// Checks the tensors of `layersAfterFirst` (see Backend) against each other.
    static func layersAfterFirst<B>(_ w: [Tensor<B>], _ b: [Tensor<B>], _ a: [Tensor<B>], _ logits: Shape, _ y: Shape,
                                    _ p: Shape, _ dz: [Tensor<B>]?, _ stats: Shape, at index: Int,
                                    weightNorms: Bool) throws(ShapeError) {
        guard w.count >= 2, b.count == w.count, a.count == w.count - 1 else {
            throw ShapeError("layersAfterFirst", "\(w.count) weights, \(b.count) biases and \(a.count) activations: expected L >= 2, L and L-1")
        }
        let outputs = a.map(\.shape) + [logits]
        for l in 1..<w.count { try linear(outputs[l - 1], w[l].shape, b[l].shape, outputs[l]) }
        try same("layersAfterFirst", [("logits", logits), ("y", y), ("p", p)])
        try ShapeChecks.stats(p, y, stats, at: index)
        if weightNorms { try ShapeChecks.index("layersAfterFirst", index + 2, in: stats) }
        if let dz {
            guard dz.count == w.count else { throw ShapeError("layersAfterFirst", "\(dz.count) gradients for \(w.count) layers") }
            for (l, gradient) in dz.enumerated() { try requireShape("layersAfterFirst", "dz[\(l)]", gradient.shape, outputs[l]) }
        }
    }

    /// Rows start..<start+rows of `order` exist and index examples of the set.
    private static func batch<B>(_ op: String, _ examples: ExampleSet<B>, _ order: IndexList<B>, _ start: Int,
                                 rows: Int) throws(ShapeError) {
        try batch(op, count: examples.count, order, start, rows: rows)
    }

    /// Checks that positions start..<start+rows of `order` exist and index `count` examples.
    private static func batch<B>(_ op: String, count: Int, _ order: IndexList<B>, _ start: Int,
                                 rows: Int) throws(ShapeError) {
        guard start >= 0, start + rows <= order.count else {
            throw ShapeError(op, "batch \(start)..<\(start + rows) is outside the order's \(order.count) indices")
        }
        guard order.minimum >= 0, order.bound <= count else {
            throw ShapeError(op, "the order holds indices \(order.minimum)..<\(order.bound), outside the \(count) examples")
        }
    }
}
