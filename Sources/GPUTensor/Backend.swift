/// What a device must provide: memory, and the primitive ops that define the maths of training
/// a multilayer perceptron, forward and backward. Each primitive is one formula, written as a
/// plain loop in the CPU backend (the reference every other implementation is checked against).
/// A new backend implements these 27 requirements and nothing else to train correctly; the fused
/// ops of `Backend` then run as their compositions.
///
/// Conventions: tensors are row-major, one example per row. Every op writes into an output the
/// caller allocated (`into:`); an op may be queued and finish later, so results are only
/// guaranteed visible after `download` or `synchronize`. Outputs may alias an input only where
/// an op says so. Shape problems throw `ShapeError`; device problems throw the backend's error.
public protocol PrimitiveBackend: AnyObject {
    associatedtype Element: TensorElement
    /// Where a tensor's elements live.
    associatedtype Storage
    /// Where an `ExampleSet`'s bytes live.
    associatedtype ExampleStorage
    /// Where an `IndexList` lives.
    associatedtype IndexStorage

    /// Short name: "cpu" or "opencl".
    var name: String { get }
    /// What it runs on, for headers and logs: "cpu (16 cores, avx512, float)", "opencl: NVIDIA H200 (OpenCL 3.0)".
    var deviceDescription: String { get }

    // MARK: Memory

    /// A new tensor filled with zeros.
    func makeTensor(_ shape: Shape) throws -> Tensor<Self>
    /// Tensors of `shapes` sharing the memory of one tensor (see `TensorGroup`), all zeros.
    func makeTensorGroup(_ shapes: [Shape]) throws -> TensorGroup<Self>
    /// Copies `values` (row-major, `t.count` of them) into `t`.
    func upload(_ values: [Element], into t: Tensor<Self>) throws
    /// Copies `t` back to the host, row-major; waits for queued work that writes `t`.
    func download(_ t: Tensor<Self>) throws -> [Element]
    /// Keeps a labelled data set on the backend as bytes (`pixels.count == count * features`).
    func makeExampleSet(pixels: [UInt8], labels: [UInt8], features: Int, classes: Int) throws -> ExampleSet<Self>
    /// Keeps a visiting order on the backend; every index must be below the example count it is used with.
    func makeIndexList(_ indices: [Int32]) throws -> IndexList<Self>
    /// Waits until all queued work has finished (for timing).
    func synchronize() throws

    // MARK: Primitive ops

    /// x[r, :] = pixels[order[start + r], :] / 255 and y[r, :] = one-hot(labels[order[start + r]])
    /// for r in 0..<y.rows.   x [m, features] (only y is written when x is nil), y [m, classes]
    func gatherBatch(_ examples: ExampleSet<Self>, order: IndexList<Self>, start: Int,
                     x: Tensor<Self>?, y: Tensor<Self>) throws

    /// rows[r, :] = table[order[start + r], :] for r in 0..<rows.rows: a batch from a data set
    /// kept as a tensor (float inputs, or their one-hot targets).   table [count, n], rows [m, n]
    func gatherRows(_ table: Tensor<Self>, order: IndexList<Self>, start: Int, into rows: Tensor<Self>) throws

    /// c = op(a) · op(b), where op transposes when asked.   op(a) [m, k], op(b) [k, n], c [m, n]
    func matmul(_ a: Tensor<Self>, transposeA: Bool, _ b: Tensor<Self>, transposeB: Bool,
                into c: Tensor<Self>) throws

    /// c = a + b, where either operand may be (1,1), (n,1) or (1,m) and stretches to c's shape
    /// (n,m). c may alias a or b.
    func add(_ a: Tensor<Self>, _ b: Tensor<Self>, into c: Tensor<Self>) throws

    /// y = max(0, x). y may alias x.
    func relu(_ x: Tensor<Self>, into y: Tensor<Self>) throws

    /// dx = dy ⊙ 1[x > 0], the gradient through `relu` whose input was x. dx may alias dy.
    func reluBackward(_ dy: Tensor<Self>, _ x: Tensor<Self>, into dx: Tensor<Self>) throws

    /// p[i, :] = exp(z[i, :] - max z[i, :]) / Σ_j exp(z[i, j] - max z[i, :]), numerically stable.
    func softmaxRows(_ z: Tensor<Self>, into p: Tensor<Self>) throws

    /// dz = (p - y) / m: the gradient of the mean cross-entropy of softmax outputs p against
    /// one-hot targets y with respect to the logits (the softmax Jacobian is never formed).   [m, c]
    func softmaxCrossEntropyBackward(_ p: Tensor<Self>, _ y: Tensor<Self>, into dz: Tensor<Self>) throws

    /// stats[index] = Σ_i -log p[i, label_i] and stats[index + 1] = #{i : argmax p[i, :] == label_i},
    /// the label being argmax y[i, :] (first index on ties); stats indexed row-major as one array.
    /// Other elements of stats are left alone.   p, y [m, c]
    func crossEntropyStats(_ p: Tensor<Self>, _ y: Tensor<Self>, into stats: Tensor<Self>, at index: Int) throws

    /// out[index] = Σ x² (out indexed row-major as one array), the L2 penalty's sum. Other
    /// elements of out are left alone.
    func sumOfSquares(_ x: Tensor<Self>, into out: Tensor<Self>, at index: Int) throws

    /// s[0, j] = Σ_i x[i, j].   x [m, n] -> s [1, n]
    func columnSums(_ x: Tensor<Self>, into s: Tensor<Self>) throws

    /// y += alpha · x, the parameter update's building block (plain SGD).   x, y same shape
    func scaledAdd(_ alpha: Element, _ x: Tensor<Self>, into y: Tensor<Self>) throws

    /// Momentum SGD: v = momentum · v + g, then w -= learningRate · v.   w, g, v same shape
    func momentumStep(_ w: Tensor<Self>, gradient g: Tensor<Self>, velocity v: Tensor<Self>,
                      learningRate: Element, momentum: Element) throws

    /// Adam: m = β1·m + (1 − β1)·g; v = β2·v + (1 − β2)·g²;
    /// w -= learningRate · (m · c1) / (sqrt(v · c2) + ε), with the bias corrections
    /// c1 = 1 / (1 − β1ᵗ) and c2 = 1 / (1 − β2ᵗ) computed by the caller for step t.   all same shape
    func adamStep(_ w: Tensor<Self>, gradient g: Tensor<Self>, m: Tensor<Self>, v: Tensor<Self>,
                  learningRate: Element, beta1: Element, beta2: Element, epsilon: Element,
                  correction1: Element, correction2: Element) throws
}

/// The contract the model and training loop are written against: the primitives, and the fused
/// ops, each a composition of primitives that a backend may run in fewer passes or launches.
/// Every fused op is optional: its default (the extension below) is the composition its comment
/// gives, and that default is the reference a backend's own version is checked against (OpCheck).
public protocol Backend: PrimitiveBackend {
    /// The first layer from the example bytes: `gatherBatch` then `linear`, y = f(x · wᵀ + b),
    /// f the `activation`, x[r, :] = pixels[order[start + r], :] / 255; and when `targets` is
    /// given, the batch's one-hot labels into it. Fused, the batch's inputs are never written
    /// out as floats and the labels take no pass of their own.
    /// w [n, features], b [1, n], y [m, n], targets [m, classes]
    func inputLinear(_ examples: ExampleSet<Self>, order: IndexList<Self>, start: Int, _ w: Tensor<Self>,
                     _ b: Tensor<Self>, activation: Activation, into y: Tensor<Self>, targets: Tensor<Self>?) throws

    /// The first layer's parameter gradients from the example bytes: `gatherBatch` then
    /// `linearGradient`, dw = dzᵀ · x + decay · w (decay = λ/m: the L2 term) and db = Σ_rows dz,
    /// x as in `inputLinear`.
    /// dz [m, n], w and dw [n, features], db [1, n]
    func inputLinearGradient(_ dz: Tensor<Self>, _ examples: ExampleSet<Self>, order: IndexList<Self>, start: Int,
                             _ w: Tensor<Self>, decay: Element, weightGradient dw: Tensor<Self>,
                             biasGradient db: Tensor<Self>) throws

    /// A layer: y = f(x · wᵀ + b), f the `activation`.   x [m, k], w [n, k], b [1, n], y [m, n]
    func linear(_ x: Tensor<Self>, _ w: Tensor<Self>, _ b: Tensor<Self>, activation: Activation, into y: Tensor<Self>) throws

    /// A layer's parameter gradients: dw = dzᵀ · x + decay · w and db = Σ_rows dz.
    /// dz [m, n], x [m, k], w and dw [n, k], db [1, n]
    func linearGradient(_ dz: Tensor<Self>, _ x: Tensor<Self>, _ w: Tensor<Self>, decay: Element,
                        weightGradient dw: Tensor<Self>, biasGradient db: Tensor<Self>) throws

    /// The gradient one layer down, through the activation f of the layer below, whose output
    /// was a: dx = (dz · w) ⊙ f'(a) (for ReLU, 1[a > 0]).   dz [m, n], w [n, k], a and dx [m, k]
    func backpropagate(_ dz: Tensor<Self>, _ w: Tensor<Self>, activation: Activation, output a: Tensor<Self>,
                       into dx: Tensor<Self>) throws

    /// The output layer's tail: p = softmax(z) row by row, the cross-entropy stats of p against y
    /// at stats[index] and stats[index + 1] (as `crossEntropyStats`), and, when dz is given, the
    /// loss gradient dz = (p - y) / m (as `softmaxCrossEntropyBackward`).   z, y, p, dz [m, c]
    func softmaxCrossEntropy(_ z: Tensor<Self>, _ y: Tensor<Self>, probabilities p: Tensor<Self>,
                             gradient dz: Tensor<Self>?, stats: Tensor<Self>, at index: Int) throws

    /// Every layer after the first, one batch row at a time (a row's later layers read no other
    /// row), for L = weights.parts.count >= 2 layers with the first layer's output a[0] given:
    ///   a[l] = max(0, a[l-1] · w[l]ᵀ + b[l]) for 0 < l < L-1, logits = a[L-2] · w[L-1]ᵀ + b[L-1],
    ///   then `softmaxCrossEntropy(logits, y, p, dz[L-1], stats, index)`,
    ///   and, when dz is given, dz[l-1] = (dz[l] · w[l]) ⊙ 1[a[l-1] > 0] for l = L-1 down to 1;
    ///   with `weightNorms`, also stats[index + 2] = Σ weights.whole² (the L2 penalty's sum).
    /// weights, biases: the model's groups (w[l] [n(l+1), n(l)], b[l] [1, n(l+1)]);
    /// activations: a[l] [m, n(l+1)] for l < L-1; logits, y, p [m, classes]; dz: [m, n(l+1)] for l < L.
    func layersAfterFirst(weights: TensorGroup<Self>, biases: TensorGroup<Self>, activations: TensorGroup<Self>,
                          logits: Tensor<Self>, targets y: Tensor<Self>, probabilities p: Tensor<Self>,
                          gradients dz: TensorGroup<Self>?, stats: Tensor<Self>, at index: Int, weightNorms: Bool) throws
}

/// A layer's activation function f, applied after its affine part: y = f(x · wᵀ + b).
public enum Activation: String, CaseIterable, Sendable {
    /// f(z) = z: the output layer, whose logits go to softmax.
    case identity
    /// f(z) = max(0, z), whose derivative, from the output a, is 1[a > 0].
    case relu
}

/// A batch's statistics as the forward pass leaves them, one row of `width` numbers per batch:
/// [Σ_i -log p[i, label_i], correct predictions, Σ_l ‖w_l‖²] (see `Backend.layersAfterFirst`).
public enum BatchStatistics {
    public static let width = 3
}

/// The fused ops as the compositions of primitives they stand for: what a backend without its
/// own version runs, and the reference the faster versions are checked against.
extension Backend {
    public func inputLinear(_ examples: ExampleSet<Self>, order: IndexList<Self>, start: Int, _ w: Tensor<Self>,
                            _ b: Tensor<Self>, activation: Activation, into y: Tensor<Self>, targets: Tensor<Self>?) throws {
        try inputLinearByOps(examples, order: order, start: start, w, b, activation: activation, into: y, targets: targets)
    }

    /// `inputLinear` as `gatherBatch` into a batch of floats, then `linear`. The reference, not a
    /// training path: it allocates its batch on every call.
    public func inputLinearByOps(_ examples: ExampleSet<Self>, order: IndexList<Self>, start: Int, _ w: Tensor<Self>,
                                 _ b: Tensor<Self>, activation: Activation, into y: Tensor<Self>,
                                 targets: Tensor<Self>?) throws {
        try ShapeChecks.inputLinear(examples, order, start, w.shape, b.shape, y.shape, targets: targets?.shape)
        let x = try makeTensor(Shape(y.rows, examples.features))                     // [m, features]
        let labels = try targets ?? makeTensor(Shape(y.rows, examples.classes))     // [m, classes]
        try gatherBatch(examples, order: order, start: start, x: x, y: labels)
        try linear(x, w, b, activation: activation, into: y)
    }

    public func inputLinearGradient(_ dz: Tensor<Self>, _ examples: ExampleSet<Self>, order: IndexList<Self>, start: Int,
                                    _ w: Tensor<Self>, decay: Element, weightGradient dw: Tensor<Self>,
                                    biasGradient db: Tensor<Self>) throws {
        try inputLinearGradientByOps(dz, examples, order: order, start: start, w, decay: decay,
                                     weightGradient: dw, biasGradient: db)
    }

    /// `inputLinearGradient` as `gatherBatch` into a batch of floats, then `linearGradient`. The
    /// reference, not a training path: it allocates its batch (and the labels `gatherBatch`
    /// writes beside it) on every call.
    public func inputLinearGradientByOps(_ dz: Tensor<Self>, _ examples: ExampleSet<Self>, order: IndexList<Self>,
                                         start: Int, _ w: Tensor<Self>, decay: Element, weightGradient dw: Tensor<Self>,
                                         biasGradient db: Tensor<Self>) throws {
        try ShapeChecks.inputGradient(dz.shape, examples, order, start, dw.shape)
        let x = try makeTensor(Shape(dz.rows, examples.features))                   // [m, features]
        let labels = try makeTensor(Shape(dz.rows, examples.classes))               // [m, classes], unused
        try gatherBatch(examples, order: order, start: start, x: x, y: labels)
        try linearGradient(dz, x, w, decay: decay, weightGradient: dw, biasGradient: db)
    }

    public func linear(_ x: Tensor<Self>, _ w: Tensor<Self>, _ b: Tensor<Self>, activation: Activation,
                       into y: Tensor<Self>) throws {
        try ShapeChecks.linear(x.shape, w.shape, b.shape, y.shape)
        try matmul(x, transposeA: false, w, transposeB: true, into: y)   // y = x·wᵀ   [m, n]
        try add(y, b, into: y)                                           // y += b
        try activate(activation, y)                                      // y = f(y)
    }

    /// y = f(y) in place, f the activation.
    public func activate(_ activation: Activation, _ y: Tensor<Self>) throws {
        switch activation {
        case .identity: break
        case .relu: try relu(y, into: y)
        }
    }

    public func linearGradient(_ dz: Tensor<Self>, _ x: Tensor<Self>, _ w: Tensor<Self>, decay: Element,
                               weightGradient dw: Tensor<Self>, biasGradient db: Tensor<Self>) throws {
        try matmul(dz, transposeA: true, x, transposeB: false, into: dw)   // dw = dzᵀ·x   [n, k]
        try scaledAdd(decay, w, into: dw)                                  // dw += decay·w
        try columnSums(dz, into: db)                                       // db = Σ_rows dz   [1, n]
    }

    public func backpropagate(_ dz: Tensor<Self>, _ w: Tensor<Self>, activation: Activation, output a: Tensor<Self>,
                              into dx: Tensor<Self>) throws {
        try ShapeChecks.backpropagate(dz.shape, w.shape, a.shape, dx.shape)
        try matmul(dz, transposeA: false, w, transposeB: false, into: dx)   // dx = dz·w   [m, k]
        switch activation {
        case .identity: break
        case .relu: try reluBackward(dx, a, into: dx)                       // dx ⊙= 1[a > 0]
        }
    }

    public func softmaxCrossEntropy(_ z: Tensor<Self>, _ y: Tensor<Self>, probabilities p: Tensor<Self>,
                                    gradient dz: Tensor<Self>?, stats: Tensor<Self>, at index: Int) throws {
        try softmaxRows(z, into: p)
        try crossEntropyStats(p, y, into: stats, at: index)
        if let dz { try softmaxCrossEntropyBackward(p, y, into: dz) }
    }

    public func layersAfterFirst(weights: TensorGroup<Self>, biases: TensorGroup<Self>, activations: TensorGroup<Self>,
                                 logits: Tensor<Self>, targets y: Tensor<Self>, probabilities p: Tensor<Self>,
                                 gradients dz: TensorGroup<Self>?, stats: Tensor<Self>, at index: Int, weightNorms: Bool) throws {
        try layersAfterFirstByOps(weights: weights, biases: biases, activations: activations, logits: logits,
                                  targets: y, probabilities: p, gradients: dz, stats: stats, at: index, weightNorms: weightNorms)
    }

    /// `layersAfterFirst` as the layer ops it stands for, one after another.
    public func layersAfterFirstByOps(weights: TensorGroup<Self>, biases: TensorGroup<Self>, activations: TensorGroup<Self>,
                                      logits: Tensor<Self>, targets y: Tensor<Self>, probabilities p: Tensor<Self>,
                                      gradients dz: TensorGroup<Self>?, stats: Tensor<Self>, at index: Int,
                                      weightNorms: Bool) throws {
        if weightNorms { try sumOfSquares(weights.whole, into: stats, at: index + 2) }   // Σ_l ‖w_l‖², one pass
        let (w, b, a) = (weights.parts, biases.parts, activations.parts)
        let last = w.count - 1
        for l in 1...last {
            try linear(a[l - 1], w[l], b[l], activation: l < last ? .relu : .identity,
                       into: l < last ? a[l] : logits)                                  // a[l] = max(0, a[l-1]·wᵀ + b)
        }
        try softmaxCrossEntropy(logits, y, probabilities: p, gradient: dz?.parts[last], stats: stats, at: index)
        guard let dz else { return }
        for l in stride(from: last, through: 1, by: -1) {
            try backpropagate(dz.parts[l], w[l], activation: .relu, output: a[l - 1],
                              into: dz.parts[l - 1])                                    // dz[l-1] = (dz[l]·w) ⊙ 1[a > 0]
        }
    }

    /// Writes `values[i]` into `group.parts[i]` for every part, as one transfer of the whole
    /// (the gaps between parts stay zero). Rather than a write per part at its offset: fewer
    /// transfers, and Oclgrind's uninitialized-value checker mistracks host writes at an offset
    /// (docs/PORTABILITY.md), which would bury real reports under false ones.
    public func upload(_ values: [[Element]], into group: TensorGroup<Self>) throws {
        guard values.count == group.parts.count else {
            throw ShapeError("upload", "\(values.count) arrays for a group of \(group.parts.count) tensors")
        }
        var whole = [Element](repeating: 0, count: group.whole.count)
        for (part, (offset, partValues)) in zip(group.parts, zip(group.offsets, values)) {
            guard partValues.count == part.count else {
                throw ShapeError("upload", "\(partValues.count) values for a tensor of shape \(part.shape)")
            }
            whole.replaceSubrange(offset..<(offset + partValues.count), with: partValues)
        }
        try upload(whole, into: group.whole)
    }

    /// A new tensor holding `values` (row-major).
    public func makeTensor(_ shape: Shape, values: [Element]) throws -> Tensor<Self> {
        let t = try makeTensor(shape)
        try upload(values, into: t)
        return t
    }
}
