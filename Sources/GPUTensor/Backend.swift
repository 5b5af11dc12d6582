/// The contract between the model and a device: exactly the operations a multilayer perceptron
/// needs to train, forward and backward. The CPU backend and the OpenCL backend both implement
/// it, and the model and training loop are written once, generic over `Backend`.
///
/// Conventions: tensors are row-major, one example per row. Every op writes into an output the
/// caller allocated (`into:`); an op may be queued and finish later, so results are only
/// guaranteed visible after `download` or `synchronize`. Outputs may alias an input only where
/// an op says so. Shape problems throw `ShapeError`; device problems throw the backend's error.
public protocol Backend: AnyObject {
    associatedtype Element: TensorElement
    /// Where a tensor's elements live.
    associatedtype Storage
    /// Where an `ExampleSet`'s bytes live.
    associatedtype ExampleStorage
    /// Where an `IndexList` lives.
    associatedtype IndexStorage

    /// Short name: "cpu" or "opencl".
    var name: String { get }
    /// What it runs on, for headers and logs: "cpu (2 threads, Float)", "opencl: NVIDIA H200 (OpenCL 3.0)".
    var deviceDescription: String { get }

    // MARK: Memory

    /// A new tensor filled with zeros.
    func makeTensor(_ shape: Shape) throws -> Tensor<Self>
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

    // MARK: Ops

    /// x[r, :] = pixels[order[start + r], :] / 255 and y[r, :] = one-hot(labels[order[start + r]])
    /// for r in 0..<y.rows.   x [m, features] (only y is written when x is nil), y [m, classes]
    func gatherBatch(_ examples: ExampleSet<Self>, order: IndexList<Self>, start: Int,
                     x: Tensor<Self>?, y: Tensor<Self>) throws
    /// The first layer's product read straight from the example bytes, so the batch's inputs are
    /// never written out as floats: z = x · wᵀ where x[r, :] = pixels[order[start + r], :] / 255.
    /// w [n, features], z [m, n]
    func inputProduct(_ examples: ExampleSet<Self>, order: IndexList<Self>, start: Int,
                      _ w: Tensor<Self>, into z: Tensor<Self>) throws
    /// The first layer's weight gradient from the example bytes: dw = dzᵀ · x, with x as in
    /// `inputProduct`.   dz [m, n], dw [n, features]
    func inputGradient(_ dz: Tensor<Self>, _ examples: ExampleSet<Self>, order: IndexList<Self>, start: Int,
                       into dw: Tensor<Self>) throws
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
    /// stats[0] = Σ_i -log p[i, label_i] and stats[1] = #{i : argmax p[i, :] == label_i}, the label
    /// being argmax y[i, :] (first index on ties). Other elements of stats are left alone.
    /// p, y [m, c], stats [1, k] with k >= 2.
    func crossEntropyStats(_ p: Tensor<Self>, _ y: Tensor<Self>, into stats: Tensor<Self>) throws
    /// out[0, index] = Σ x², the L2 penalty's sum. Other elements of out are left alone.
    func sumOfSquares(_ x: Tensor<Self>, into out: Tensor<Self>, at index: Int) throws
    /// s[0, j] = Σ_i x[i, j].   x [m, n] -> s [1, n]
    func columnSums(_ x: Tensor<Self>, into s: Tensor<Self>) throws
    /// s[i, 0] = Σ_j x[i, j].   x [m, n] -> s [m, 1]
    func rowSums(_ x: Tensor<Self>, into s: Tensor<Self>) throws
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

extension Backend {
    /// A new tensor holding `values` (row-major).
    public func makeTensor(_ shape: Shape, values: [Element]) throws -> Tensor<Self> {
        let t = try makeTensor(shape)
        try upload(values, into: t)
        return t
    }
}
