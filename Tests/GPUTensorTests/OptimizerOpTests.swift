import GPUTensor
import Testing

// The optimiser ops against values worked out by hand (both backends also go through OpCheck).
@Suite("Optimiser ops")
struct OptimizerOpTests {
    @Test("momentum: v = μv + g; w -= lr·v")
    func momentum() throws {
        let be = CPUBackend<Double>()
        let w = try be.makeTensor(Shape(1, 2), values: [1, -2])
        let g = try be.makeTensor(Shape(1, 2), values: [0.5, 0.25])
        let v = try be.makeTensor(Shape(1, 2), values: [0.1, -0.2])
        try be.momentumStep(w, gradient: g, velocity: v, learningRate: 0.1, momentum: 0.9)
        // v = 0.9·0.1 + 0.5 = 0.59, 0.9·(−0.2) + 0.25 = 0.07; w = 1 − 0.059, −2 − 0.007
        expectClose(try be.download(v), [0.59, 0.07], atol: 1e-15)
        expectClose(try be.download(w), [0.941, -2.007], atol: 1e-15)
    }

    @Test("adam's first step moves each weight by about lr against its gradient's sign")
    func adam() throws {
        let be = CPUBackend<Double>()
        let w = try be.makeTensor(Shape(1, 3), values: [1, 1, 1])
        let g = try be.makeTensor(Shape(1, 3), values: [0.5, -3, 1e-3])
        let m = try be.makeTensor(Shape(1, 3)), v = try be.makeTensor(Shape(1, 3))
        try be.adamStep(w, gradient: g, m: m, v: v, learningRate: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-8,
                        correction1: 1 / (1 - 0.9), correction2: 1 / (1 - 0.999))
        // m = 0.1·g, v = 0.001·g²; corrected: m̂ = g, v̂ = g²; step = lr·g / (|g| + ε)
        expectClose(try be.download(m), [0.05, -0.3, 1e-4], atol: 1e-15)
        expectClose(try be.download(v), [0.00025, 0.009, 1e-9], atol: 1e-15)
        expectClose(try be.download(w), [1 - 0.01 * 0.5 / (0.5 + 1e-8), 1 + 0.01 * 3 / (3 + 1e-8),
                                         1 - 0.01 * 1e-3 / (1e-3 + 1e-8)], atol: 1e-14)
    }
}
