/// Runs every backend op on two backends from the same seeded random inputs and compares the
/// outputs element by element: the `check` command's table and the tests' cross-check are this
/// one piece of code. Inputs are never all zeros, and the shapes are chosen to break work-group
/// and vector-width assumptions (1x1, 7x33, 500x784, ...).
public struct OpCheck {
    public struct Case: Sendable {
        public let op: Op
        /// Input shapes, in the op's argument order.
        public let shapes: [Shape]
        /// For matmul: transpose flags of a and b.
        public let transposeA: Bool
        public let transposeB: Bool
        /// For the ops that read example bytes: the fraction of pixels that are 0 (MNIST: 0.81).
        public let zeroPixels: Double
        /// For linear and inputLinear: the activation after the affine part.
        public let activation: Activation
        /// For softmaxCrossEntropy and layersAfterFirst: also compute the gradients.
        public let gradient: Bool
        /// The case's place in its list, which seeds its inputs: a case run alone (`check
        /// --ops`) gets the inputs it had in the whole list.
        public internal(set) var index = 0

        public init(_ op: Op, _ shapes: [Shape], transposeA: Bool = false, transposeB: Bool = false,
                    zeroPixels: Double = 0, activation: Activation = .identity, gradient: Bool = false) {
            self.op = op
            self.shapes = shapes
            self.transposeA = transposeA
            self.transposeB = transposeB
            self.zeroPixels = zeroPixels
            self.activation = activation
            self.gradient = gradient
        }

        public var shapeDescription: String {
            let zeros = "\(Int(zeroPixels * 100))% zero pixels"
            switch op {
            case .matmul:
                return "\(transposeA ? "aᵀ" : "a")\(shapes[0]) · \(transposeB ? "bᵀ" : "b")\(shapes[1])"
            case .inputLinear:
                return "x\(shapes[0]) · wᵀ\(shapes[1]) + b\(activation == .identity ? "" : ", \(activation)"), \(zeros)"
            case .inputLinearGradient:
                return "dzᵀ\(shapes[0]) · x\(shapes[1]) + λw, Σdz, \(zeros)"
            case .linear:
                return "x\(shapes[0]) · wᵀ\(shapes[1]) + b\(activation == .identity ? "" : ", \(activation)")"
            case .linearGradient:
                return "dzᵀ\(shapes[0]) · x\(shapes[1]) + λw, Σdz"
            case .backpropagate:
                return "dz\(shapes[0]) · w\(shapes[1])\(activation == .relu ? " ⊙ 1[a > 0]" : "")"
            case .softmaxCrossEntropy:
                return "\(shapes[0])\(gradient ? " with gradient" : "")"
            case .layersAfterFirst:
                return "a\(shapes[0]) then w\(shapes.dropFirst().map(\.description).joined(separator: ", w"))\(gradient ? " with gradients" : "")"
            default:
                return shapes.map(\.description).joined(separator: " ")
            }
        }
    }

    public enum Op: String, CaseIterable, Sendable {
        case gatherBatch, gatherRows, inputLinear, inputLinearGradient, linear, linearGradient, backpropagate, softmaxCrossEntropy
        case layersAfterFirst
        case matmul, add, relu, reluBackward, softmaxRows, softmaxCrossEntropyBackward
        case crossEntropyStats, sumOfSquares, columnSums, scaledAdd, momentumStep, adamStep
    }

    public struct Row: Sendable {
        public let op: Op
        public let shapes: String
        /// The tested backend's output against the reference's.
        public let closeness: Closeness
        public var passed: Bool { closeness.passed }
    }

    public var seed: UInt64 = 42
    /// An element passes when |tested - reference| <= atol + rtol · |reference|; atol grows
    /// with the number of terms summed into the element (float32 rounding accumulates).
    public var rtol = 1e-4
    public var atolPerTerm = 2e-6

    public init() {}

    /// The shapes a case list is made of (see `cases(_:)`).
    public struct Shapes: Sendable {
        /// Batches gathered from example bytes: [m, features].
        var batches: [Shape]
        /// (m, features, n) for the first layer's products from example bytes.
        var firstLayer: [(Int, Int, Int)]
        /// (m, k, n) for the fused layer ops: x [m, k], w [n, k], dz [m, n].
        var layers: [(Int, Int, Int)]
        /// (m, k, n) for c [m, n] = op(a) [m, k] · op(b) [k, n].
        var products: [(Int, Int, Int)]
        /// The elementwise ops' and reductions' shapes.
        var elementwise: [Shape]
        /// Logits and probabilities [rows, classes].
        var softmax: [Shape]
        /// (m, widths) for layersAfterFirst: a[0] [m, widths[0]], then w[l] [widths[l], widths[l-1]].
        var networks: [(Int, [Int])]
        /// The bias-add pairs of `add`: every broadcast case.
        var broadcasts: [(Shape, Shape)]
    }

    /// Shapes up to the reference workload's (500 x 784), as training uses them.
    public static let standardShapes = Shapes(
        batches: [Shape(1, 1), Shape(7, 33), Shape(500, 784)],
        firstLayer: [(1, 1, 1), (7, 33, 5), (33, 7, 1), (500, 784, 32), (17, 65, 48), (5, 100, 33)],
        layers: [(1, 1, 1), (7, 33, 5), (33, 7, 1), (500, 32, 32), (500, 32, 10), (17, 65, 129), (200, 300, 260)],
        // The last two reach the large-product kernels (the CPU's packed gemm: more than one pass
        // over k; the GPU family's matmul_blocked), ragged against their blocks.
        products: [(1, 1, 1), (7, 33, 5), (33, 7, 1), (500, 784, 32), (500, 32, 784),
                   (32, 500, 784), (784, 32, 10), (10, 500, 32), (17, 65, 129), (130, 1100, 129), (260, 600, 300)],
        elementwise: [Shape(1, 1), Shape(7, 33), Shape(500, 784), Shape(500, 32)],
        softmax: [Shape(1, 1), Shape(1, 10), Shape(7, 33), Shape(500, 10), Shape(33, 1000)],
        networks: [(1, [1, 1, 1]), (7, [33, 5, 3]), (500, [32, 32, 10]), (33, [17, 65, 1, 12]), (5, [300, 10])],
        broadcasts: broadcastPairs(rows: 7, cols: 33) + [(Shape(500, 32), Shape(1, 32)), (Shape(1, 784), Shape(500, 784))])

    /// Shapes small enough for a simulator (Oclgrind runs every work-item in turn) that still
    /// reach every kernel and every path in it: one row, one column, partial tiles and
    /// work-groups, widths that are not multiples of 4, 16 or 32 (50 = 32 + 16 + 2 takes the
    /// 32-wide, 16-wide and scalar paths of input_product), more rows than a reduction's
    /// work-group (300 > 256), more units than layers_after_first's group (65 > 64), more
    /// elements than a sum_of_squares group reads as vectors in one step (4,500 > 256 · 16),
    /// products and layers larger than a blocked matmul group's 64 x 64 (32 x 32 on a small
    /// device) with ragged edges.
    public static let smallShapes = Shapes(
        batches: [Shape(1, 1), Shape(7, 33)],
        firstLayer: [(1, 1, 1), (7, 33, 5), (3, 7, 50), (9, 40, 33)],
        layers: [(1, 1, 1), (7, 33, 5), (5, 7, 1), (6, 17, 19), (9, 6, 10), (70, 17, 65)],
        products: [(1, 1, 1), (7, 33, 5), (33, 7, 1), (5, 17, 35), (18, 9, 10), (65, 20, 66)],
        elementwise: [Shape(1, 1), Shape(7, 33), Shape(9, 500)],
        softmax: [Shape(1, 1), Shape(1, 10), Shape(7, 33), Shape(300, 10)],
        networks: [(1, [1, 1, 1]), (7, [33, 5, 3]), (3, [17, 65, 1, 12]), (2, [70, 10])],
        broadcasts: broadcastPairs(rows: 7, cols: 33))

    /// Every broadcast case of `add` on an [rows, cols] output, and (1,1) + (1,1).
    private static func broadcastPairs(rows n: Int, cols m: Int) -> [(Shape, Shape)] {
        [(Shape(n, m), Shape(n, m)), (Shape(n, m), Shape(1, 1)), (Shape(n, m), Shape(n, 1)),
         (Shape(n, m), Shape(1, m)), (Shape(1, 1), Shape(n, m)), (Shape(n, 1), Shape(n, m)),
         (Shape(1, m), Shape(n, m)), (Shape(1, 1), Shape(1, 1))]
    }

    /// The cases `check` runs.
    public static let standardCases = cases(standardShapes)

    /// The cases `check --small` runs.
    public static let smallCases = cases(smallShapes)

    /// One case per op and shape of `shapes`: every op, both transposes, ReLU on and off, the
    /// gradient on and off.
    public static func cases(_ shapes: Shapes) -> [Case] {
        var cases: [Case] = shapes.batches.flatMap { [Case(.gatherBatch, [$0]), Case(.gatherRows, [$0])] }
        // The first layer from example bytes, with pixels mostly zero like digits (the CPU
        // backend's sparse path) and none zero (its dense path).
        for (m, features, n) in shapes.firstLayer {
            for zeros in m * features == 1 ? [0.0] : [0.8, 0.0] {
                cases.append(Case(.inputLinear, [Shape(m, features), Shape(n, features)], zeroPixels: zeros,
                                  activation: zeros > 0 ? .relu : .identity))
                cases.append(Case(.inputLinearGradient, [Shape(m, n), Shape(m, features)], zeroPixels: zeros))
            }
        }
        for (m, k, n) in shapes.layers {
            for activation in Activation.allCases {
                cases.append(Case(.linear, [Shape(m, k), Shape(n, k)], activation: activation))
            }
            cases.append(Case(.linearGradient, [Shape(m, n), Shape(m, k), Shape(n, k)]))
            for activation in Activation.allCases {
                cases.append(Case(.backpropagate, [Shape(m, n), Shape(n, k), Shape(m, k)], activation: activation))
            }
        }
        for (m, k, n) in shapes.products {
            for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
                cases.append(Case(.matmul, [ta ? Shape(k, m) : Shape(m, k), tb ? Shape(n, k) : Shape(k, n)],
                                  transposeA: ta, transposeB: tb))
            }
        }
        for (a, b) in shapes.broadcasts { cases.append(Case(.add, [a, b])) }
        for shape in shapes.elementwise {
            cases.append(Case(.relu, [shape]))
            cases.append(Case(.reluBackward, [shape, shape]))
            cases.append(Case(.sumOfSquares, [shape]))
            cases.append(Case(.columnSums, [shape]))
            cases.append(Case(.scaledAdd, [shape, shape]))
            cases.append(Case(.momentumStep, [shape, shape, shape]))
            cases.append(Case(.adamStep, [shape, shape, shape, shape]))
        }
        for shape in shapes.softmax {
            cases.append(Case(.softmaxRows, [shape]))
            cases.append(Case(.softmaxCrossEntropyBackward, [shape, shape]))
            cases.append(Case(.crossEntropyStats, [shape, shape]))
            for gradient in [true, false] {
                cases.append(Case(.softmaxCrossEntropy, [shape, shape], gradient: gradient))
            }
        }
        // The first layer's output a[0] [m, n1], then the later layers' weights: [n(l+1), n(l)].
        for (m, widths) in shapes.networks {
            let layerShapes = [Shape(m, widths[0])] + (1..<widths.count).map { Shape(widths[$0], widths[$0 - 1]) }
            for gradient in [true, false] { cases.append(Case(.layersAfterFirst, layerShapes, gradient: gradient)) }
        }
        for i in cases.indices { cases[i].index = i }
        return cases
    }

    /// Runs `cases` on `tested` and on `reference` and compares.
    public func run<X: Backend, R: Backend>(_ tested: X, against reference: R,
                                            cases: [Case] = OpCheck.standardCases) throws -> [Row] {
        try cases.map { c in
            let inputs = makeInputs(c, seed: seed &+ UInt64(c.index))
            let got = try evaluate(c, inputs, on: tested)
            let want = try evaluate(c, inputs, on: reference)
            return compare(c, got, want)
        }
    }

    // MARK: Inputs

    struct Inputs {
        var tensors: [[Double]]
        /// The tensors' shapes, when not the case's.
        var shapes: [Shape]? = nil
        /// For the ops that read example bytes: pixels, labels, order and the batch start.
        var pixels: [UInt8] = [], labels: [UInt8] = [], order: [Int32] = []
        var start = 0
        var alpha = 0.0
    }

    private func makeInputs(_ c: Case, seed: UInt64) -> Inputs {
        var g = SeededGenerator(seed: seed)
        func uniform(_ shape: Shape, _ low: Double = -1, _ high: Double = 1) -> [Double] {
            (0..<shape.count).map { _ in g.uniform(low, high) }
        }
        func probabilities(_ shape: Shape) -> [Double] {
            var p = uniform(shape, 0.01, 1)
            for i in 0..<shape.rows {
                let row = (i * shape.cols)..<((i + 1) * shape.cols)
                let sum = p[row].reduce(0, +)
                for j in row { p[j] /= sum }
            }
            return p
        }
        func oneHot(_ shape: Shape) -> [Double] {
            var y = [Double](repeating: 0, count: shape.count)
            for i in 0..<shape.rows { y[i * shape.cols + g.below(shape.cols)] = 1 }
            return y
        }
        switch c.op {
        case .gatherBatch, .inputLinear, .inputLinearGradient:
            // The batch's shape: gatherBatch's x, inputLinear's x, inputLinearGradient's second.
            let batch = c.op == .inputLinearGradient ? c.shapes[1] : c.shapes[0], examples = batch.rows * 2 + 3, classes = 10
            // The tensors: inputLinear's w and b; inputLinearGradient's dz and w.
            let n = c.op == .inputLinear ? c.shapes[1].rows : c.shapes[0].cols
            let shapes = c.op == .gatherBatch ? [] : c.op == .inputLinear ? [c.shapes[1], Shape(1, n)] : [c.shapes[0], Shape(n, batch.cols)]
            var inputs = Inputs(tensors: shapes.map { uniform($0) }, shapes: shapes)
            inputs.alpha = g.uniform(0, 0.1)
            inputs.pixels = (0..<(examples * batch.cols)).map { _ in
                g.uniform(0, 1) < c.zeroPixels ? 0 : UInt8(1 + g.below(255))
            }
            inputs.labels = (0..<examples).map { _ in UInt8(g.below(classes)) }
            var order = (0..<Int32(examples)).map { $0 }
            g.shuffle(&order)
            inputs.order = order
            inputs.start = g.below(examples - batch.rows + 1)
            return inputs
        case .gatherRows:
            // A table of 2m + 3 rows, m of them gathered from a shuffled order.
            let batch = c.shapes[0], rows = batch.rows * 2 + 3
            let table = Shape(rows, batch.cols)
            var inputs = Inputs(tensors: [uniform(table)], shapes: [table])
            var order = (0..<Int32(rows)).map { $0 }
            g.shuffle(&order)
            inputs.order = order
            inputs.start = g.below(rows - batch.rows + 1)
            return inputs
        case .softmaxRows:
            // Logits up to ±40: exp overflows Float without the max subtraction.
            return Inputs(tensors: [uniform(c.shapes[0], -40, 40)])
        case .softmaxCrossEntropyBackward, .crossEntropyStats:
            return Inputs(tensors: [probabilities(c.shapes[0]), oneHot(c.shapes[1])])
        case .softmaxCrossEntropy:
            return Inputs(tensors: [uniform(c.shapes[0], -40, 40), oneHot(c.shapes[1])])
        case .layersAfterFirst:
            // a[0], each later layer's w and b, and the one-hot targets.
            let m = c.shapes[0].rows
            let layerShapes = c.shapes.dropFirst().flatMap { [$0, Shape(1, $0.rows)] }
            let shapes = [c.shapes[0]] + layerShapes + [Shape(m, c.shapes.last!.rows)]
            return Inputs(tensors: shapes.dropLast().map { uniform($0) } + [oneHot(shapes.last!)], shapes: shapes)
        case .linear:
            // x, w and the bias b [1, n].
            let shapes = c.shapes + [Shape(1, c.shapes[1].rows)]
            return Inputs(tensors: shapes.map { uniform($0) }, shapes: shapes)
        case .linearGradient:
            var inputs = Inputs(tensors: c.shapes.map { uniform($0) })
            inputs.alpha = g.uniform(0, 0.1)
            return inputs
        case .scaledAdd, .momentumStep:
            var inputs = Inputs(tensors: c.shapes.map { uniform($0) })
            inputs.alpha = g.uniform(-2, 2)
            return inputs
        case .adamStep:
            // w, g, m uniform; the second moment v is positive, as Adam keeps it.
            return Inputs(tensors: [uniform(c.shapes[0]), uniform(c.shapes[1]), uniform(c.shapes[2]),
                                    uniform(c.shapes[3], 0.01, 1)])
        default:
            return Inputs(tensors: c.shapes.map { uniform($0) })
        }
    }

    // MARK: Running one case

    private func outputShape(_ c: Case) -> Shape {
        let s = c.shapes
        switch c.op {
        case .gatherBatch, .gatherRows: return s[0]
        case .inputLinear, .linear: return Shape(s[0].rows, s[1].rows)
        case .inputLinearGradient, .linearGradient: return Shape(s[0].cols, s[1].cols)
        case .backpropagate: return s[2]
        case .layersAfterFirst: return Shape(s[0].rows, s.last!.rows)
        case .crossEntropyStats: return Shape(2, 2)
        case .matmul:
            return Shape(c.transposeA ? s[0].cols : s[0].rows, c.transposeB ? s[1].rows : s[1].cols)
        case .add: return Shape(max(s[0].rows, s[1].rows), max(s[0].cols, s[1].cols))
        case .sumOfSquares: return Shape(1, 3)
        case .columnSums: return Shape(1, s[0].cols)
        default: return s[0]
        }
    }

    private func evaluate<X: Backend>(_ c: Case, _ inputs: Inputs, on be: X) throws -> [Double] {
        let tensors = try zip(inputs.shapes ?? c.shapes, inputs.tensors).map { shape, values in
            try be.makeTensor(shape, values: values.map { X.Element($0) })
        }
        let out = try be.makeTensor(outputShape(c))
        func examples(features: Int) throws -> (ExampleSet<X>, IndexList<X>) {
            (try be.makeExampleSet(pixels: inputs.pixels, labels: inputs.labels, features: features, classes: 10),
             try be.makeIndexList(inputs.order))
        }
        switch c.op {
        case .gatherBatch:
            let (set, order) = try examples(features: c.shapes[0].cols)
            let y = try be.makeTensor(Shape(c.shapes[0].rows, 10))
            try be.gatherBatch(set, order: order, start: inputs.start, x: out, y: y)
            return try (be.download(out) + be.download(y)).map(Double.init)
        case .gatherRows:
            try be.gatherRows(tensors[0], order: be.makeIndexList(inputs.order), start: inputs.start, into: out)
            return try be.download(out).map(Double.init)
        case .inputLinear:
            let (set, order) = try examples(features: c.shapes[0].cols)
            let targets = try be.makeTensor(Shape(c.shapes[0].rows, 10))
            try be.inputLinear(set, order: order, start: inputs.start, tensors[0], tensors[1], activation: c.activation, into: out,
                               targets: targets)
            return try (be.download(out) + be.download(targets)).map(Double.init)
        case .inputLinearGradient:
            let (set, order) = try examples(features: c.shapes[1].cols)
            let db = try be.makeTensor(Shape(1, c.shapes[0].cols))
            try be.inputLinearGradient(tensors[0], set, order: order, start: inputs.start, tensors[1],
                                       decay: X.Element(inputs.alpha), weightGradient: out, biasGradient: db)
            return try (be.download(out) + be.download(db)).map(Double.init)
        case .linear:
            try be.linear(tensors[0], tensors[1], tensors[2], activation: c.activation, into: out)
        case .linearGradient:
            let db = try be.makeTensor(Shape(1, c.shapes[0].cols))
            try be.linearGradient(tensors[0], tensors[1], tensors[2], decay: X.Element(inputs.alpha),
                                  weightGradient: out, biasGradient: db)
            return try (be.download(out) + be.download(db)).map(Double.init)
        case .backpropagate:
            try be.backpropagate(tensors[0], tensors[1], activation: c.activation, output: tensors[2], into: out)
        case .layersAfterFirst:
            return try evaluateLayersAfterFirst(c, inputs.tensors, targets: tensors.last!, on: be).map(Double.init)
        case .softmaxCrossEntropy:
            // Stats at elements 1 and 2 of a (2, 2) table, as a training run's table rows.
            let stats = try be.makeTensor(Shape(2, 2))
            let dz = c.gradient ? try be.makeTensor(c.shapes[0]) : nil
            try be.softmaxCrossEntropy(tensors[0], tensors[1], probabilities: out, gradient: dz, stats: stats, at: 1)
            return try (be.download(out) + be.download(stats) + (dz.map(be.download) ?? [])).map(Double.init)
        case .matmul:
            try be.matmul(tensors[0], transposeA: c.transposeA, tensors[1], transposeB: c.transposeB, into: out)
        case .add: try be.add(tensors[0], tensors[1], into: out)
        case .relu: try be.relu(tensors[0], into: out)
        case .reluBackward: try be.reluBackward(tensors[0], tensors[1], into: out)
        case .softmaxRows: try be.softmaxRows(tensors[0], into: out)
        case .softmaxCrossEntropyBackward: try be.softmaxCrossEntropyBackward(tensors[0], tensors[1], into: out)
        case .crossEntropyStats: try be.crossEntropyStats(tensors[0], tensors[1], into: out, at: 1)
        case .sumOfSquares: try be.sumOfSquares(tensors[0], into: out, at: 1)
        case .columnSums: try be.columnSums(tensors[0], into: out)
        case .scaledAdd:
            try be.upload(inputs.tensors[1].map { X.Element($0) }, into: out)
            try be.scaledAdd(X.Element(inputs.alpha), tensors[0], into: out)
        case .momentumStep:
            // Updates w (tensors[0]) and the velocity (tensors[2]) in place; both are compared.
            try be.momentumStep(tensors[0], gradient: tensors[1], velocity: tensors[2],
                                learningRate: X.Element(0.1), momentum: X.Element(abs(inputs.alpha) / 2))
            return try (be.download(tensors[0]) + be.download(tensors[2])).map(Double.init)
        case .adamStep:
            // Step 3 of Adam with its usual β's: w, m and v are compared.
            let (b1, b2) = (0.9, 0.999)
            try be.adamStep(tensors[0], gradient: tensors[1], m: tensors[2], v: tensors[3],
                            learningRate: X.Element(0.01), beta1: X.Element(b1), beta2: X.Element(b2),
                            epsilon: X.Element(1e-8), correction1: X.Element(1 / (1 - b1 * b1 * b1)),
                            correction2: X.Element(1 / (1 - b2 * b2 * b2)))
            return try (be.download(tensors[0]) + be.download(tensors[2]) + be.download(tensors[3])).map(Double.init)
        }
        return try be.download(out).map(Double.init)
    }

    /// Runs a layersAfterFirst case (groups filled from the case's input values: a[0], then each
    /// later layer's w and b) and returns every output: the activations, logits, probabilities,
    /// stats and, with gradients, the dz's.
    private func evaluateLayersAfterFirst<X: Backend>(_ c: Case, _ values: [[Double]], targets: Tensor<X>,
                                                      on be: X) throws -> [X.Element] {
        /// Each group written whole: `given` for its first parts, zeros for the rest.
        func upload(_ given: [[Double]], into group: TensorGroup<X>) throws {
            try be.upload(group.parts.enumerated().map { i, part in
                i < given.count ? given[i].map { X.Element($0) } : [X.Element](repeating: 0, count: part.count)
            }, into: group)
        }
        let m = c.shapes[0].rows, later = c.shapes.count - 1
        // w[0] only has to exist: its shape [n1, 1] is never read.
        let weightShapes = [Shape(c.shapes[0].cols, 1)] + c.shapes.dropFirst()
        let weights = try be.makeTensorGroup(weightShapes), biases = try be.makeTensorGroup(weightShapes.map { Shape(1, $0.rows) })
        try upload([[Double](repeating: 0, count: weightShapes[0].count)] + (1...later).map { values[2 * $0 - 1] }, into: weights)
        try upload([[Double](repeating: 0, count: weightShapes[0].rows)] + (1...later).map { values[2 * $0] }, into: biases)
        let outputs = weightShapes.map { Shape(m, $0.rows) }
        let activations = try be.makeTensorGroup(Array(outputs.dropLast()))
        try upload([values[0]], into: activations)
        let logits = try be.makeTensor(outputs.last!), p = try be.makeTensor(outputs.last!)
        let stats = try be.makeTensor(Shape(2, 3))
        let dz = c.gradient ? try be.makeTensorGroup(outputs) : nil
        try be.layersAfterFirst(weights: weights, biases: biases, activations: activations, logits: logits,
                                targets: targets, probabilities: p, gradients: dz, stats: stats, at: 1, weightNorms: true)
        var result = try activations.parts.flatMap(be.download) + be.download(logits) + be.download(p) + be.download(stats)
        if let dz { result += try dz.parts.flatMap(be.download) }
        return result
    }

    /// How many input terms are summed into one output element.
    private func terms(_ c: Case) -> Int {
        switch c.op {
        case .matmul: return c.transposeA ? c.shapes[0].rows : c.shapes[0].cols
        case .inputLinear, .linear: return c.shapes[0].cols + 1
        case .inputLinearGradient, .linearGradient: return c.shapes[0].rows + 1
        case .backpropagate: return c.shapes[0].cols
        case .layersAfterFirst: return c.shapes.map(\.cols).max()! + 1
        case .sumOfSquares: return c.shapes[0].count
        case .columnSums: return c.shapes[0].rows
        case .softmaxRows, .softmaxCrossEntropy: return c.shapes[0].cols
        case .crossEntropyStats: return c.shapes[0].rows * 10
        default: return 1
        }
    }

    private func compare(_ c: Case, _ got: [Double], _ want: [Double]) -> Row {
        let result = Closeness(got, want, atol: atolPerTerm * Double(terms(c)), rtol: rtol)
        return Row(op: c.op, shapes: c.shapeDescription, closeness: result)
    }
}
