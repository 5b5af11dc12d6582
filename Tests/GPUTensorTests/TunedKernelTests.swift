import GPUTensor
import Synchronization
import Testing
import WorkerPool

// The parts of the tuned CPU code that OpCheck's random inputs do not reach: the edges of the
// vectorised softmax, the first-layer products on real-looking digits, and the worker pool.

@Suite("Tuned CPU kernels")
struct TunedKernelTests {
    @Test("softmax edge cases match the plain loop: NaN rows stay NaN, far-below-max logits give 0",
          arguments: CPUBackend<Float>.Kernels.available)
    func softmaxEdges(kernels: CPUBackend<Float>.Kernels) throws {
        let rows: [[Float]] = [
            [1, .nan, 3, 4, 5, 6, 7, 8, 9, 10],                     // NaN anywhere: all NaN
            [-.infinity, 0, 1, 2, 3, 4, 5, 6, 7, 8],                // -inf: exactly 0
            [0, -86, -87.5, -88, -100, -1e30, 1, 2, 3, 4],          // below e^-87 relative: 0
            [50, 50, 50, 50, 50, 50, 50, 50, 50, 50],               // ties
            [.infinity, 0, 0, 0, 0, 0, 0, 0, 0, 0],                 // +inf: NaN (inf - inf), as the loop
            [3, 1, 4, 1, 5, 9, 2, 6, 5, 3],
            [1, 2, 3],
        ]
        for row in rows {
            let tuned = CPUBackend<Float>(kernels: kernels), plain = CPUBackend<Float>(kernels: .naive)
            func softmax(_ be: CPUBackend<Float>) throws -> [Float] {
                let z = try be.makeTensor(Shape(1, row.count), values: row), p = try be.makeTensor(Shape(1, row.count))
                try be.softmaxRows(z, into: p)
                return try be.download(p)
            }
            let got = try softmax(tuned), want = try softmax(plain)
            for (g, w) in zip(got, want) {
                if w.isNaN {
                    #expect(g.isNaN, "row \(row): got \(got), want \(want)")
                } else {
                    #expect(abs(g - w) <= 1e-6 + 1e-5 * abs(w), "row \(row): got \(got), want \(want)")
                    #expect((g == 0) == (w < Float.leastNormalMagnitude), "row \(row): got \(got), want \(want)")
                }
            }
        }
    }

    @Test("first-layer products on digit-like bytes agree with the plain loops on every kernel build",
          arguments: CPUBackend<Float>.Kernels.available)
    func firstLayerOnDigits(kernels: CPUBackend<Float>.Kernels) throws {
        // 28x28 images with a blob of ink in the middle (about 20% non-zero, like MNIST), so the
        // tuned backend takes its sparse path; n = 32 and 33 reach the 32-wide and ragged code,
        // 200 and 500 several column blocks (160 wide with a 1 MiB L2, 32 with 256 KiB) with a
        // ragged last one.
        let count = 64, features = 784
        var g = SeededGenerator(seed: 9)
        var pixels = [UInt8](repeating: 0, count: count * features)
        for e in 0..<count {
            for y in 9..<19 { for x in 8..<20 where g.uniform(0, 1) < 0.9 { pixels[e * features + y * 28 + x] = UInt8(1 + g.below(255)) } }
        }
        let labels = (0..<count).map { _ in UInt8(g.below(10)) }
        var order = (0..<Int32(count)).map { $0 }
        g.shuffle(&order)
        for n in [32, 33, 200, 500] {
            let w = randomValues(n * features, seed: 3).map(Float.init), dz = randomValues(50 * n, seed: 4).map(Float.init)
            let b = randomValues(n, seed: 5).map(Float.init)
            func run(_ be: CPUBackend<Float>) throws -> [Float] {
                let set = try be.makeExampleSet(pixels: pixels, labels: labels, features: features, classes: 10)
                let list = try be.makeIndexList(order)
                let weights = try be.makeTensor(Shape(n, features), values: w)
                let z = try be.makeTensor(Shape(50, n)), dw = try be.makeTensor(Shape(n, features)), db = try be.makeTensor(Shape(1, n))
                try be.inputLinear(set, order: list, start: 7, weights, try be.makeTensor(Shape(1, n), values: b), activation: .relu, into: z,
                                   targets: nil)
                try be.inputLinearGradient(try be.makeTensor(Shape(50, n), values: dz), set, order: list, start: 7, weights,
                                           decay: 0.01, weightGradient: dw, biasGradient: db)
                return try be.download(z) + be.download(dw) + be.download(db)
            }
            expectClose(try run(CPUBackend(kernels: kernels)).map(Double.init), try run(CPUBackend(kernels: .naive)).map(Double.init),
                        atol: 1e-4, rtol: 1e-4, "\(kernels) n=\(n)")
        }
    }

    @Test("large products (the packed gemm: several passes over k, ragged panels) agree with plain loops on every kernel build",
          arguments: CPUBackend<Float>.Kernels.available)
    func largeProducts(kernels: CPUBackend<Float>.Kernels) throws {
        // (m, k, n): every side ragged against the 6-row and 16/32-column blocks and the
        // 1024-deep passes; 1500 and 2049 reach two and three passes with a short last one; the
        // first three take the packed path, the last three (a side below 128) the small one.
        let shapes = [(500, 1500, 129), (129, 2049, 200), (1000, 130, 1023), (1, 2049, 7), (7, 33, 500), (33, 784, 1000)]
        let tuned = CPUBackend<Float>(kernels: kernels)
        for (index, (m, k, n)) in shapes.enumerated() {
            for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
                let a = randomValues(m * k, seed: UInt64(10 + index)), b = randomValues(k * n, seed: UInt64(20 + index))
                let c = try tuned.makeTensor(Shape(m, n))
                try tuned.matmul(try tuned.makeTensor(ta ? Shape(k, m) : Shape(m, k), values: a.map(Float.init)), transposeA: ta,
                                 try tuned.makeTensor(tb ? Shape(n, k) : Shape(k, n), values: b.map(Float.init)), transposeB: tb,
                                 into: c)
                // C(i, j) = Σ_p A(i, p) · B(p, j) in Double, reading the operands as stored.
                var want = [Double](repeating: 0, count: m * n)
                for i in 0..<m {
                    for p in 0..<k {
                        let x = ta ? a[p * m + i] : a[i * k + p]
                        for j in 0..<n { want[i * n + j] += x * (tb ? b[j * k + p] : b[p * n + j]) }
                    }
                }
                // Float rounding over k terms of magnitude ≤ 1.
                expectClose(try tuned.download(c).map(Double.init), want, atol: 1e-6 * Double(k), rtol: 1e-4,
                            "\(kernels) m=\(m) k=\(k) n=\(n) transposeA=\(ta) transposeB=\(tb)")
            }
        }
    }

    @Test("the worker pool runs every task exactly once, also with several callers at a time")
    func workerPool() async {
        let pool = WorkerPool.shared
        await withTaskGroup(of: Bool.self) { group in
            for caller in 0..<4 {
                group.addTask {
                    var ok = true
                    for round in 0..<200 {
                        let tasks = 1 + (caller * 7 + round) % 37
                        let tally = Tally()
                        pool.run(iterations: tasks) { i in
                            tally.bits.add(1 << i, ordering: .relaxed)
                            tally.runs.add(1, ordering: .relaxed)
                        }
                        ok = ok && tally.bits.load(ordering: .relaxed) == (1 << tasks) - 1
                            && tally.runs.load(ordering: .relaxed) == tasks
                    }
                    return ok
                }
            }
            for await ok in group { #expect(ok) }
        }
    }
}

/// Which tasks ran (bit i for task i) and how many runs there were.
private final class Tally: Sendable {
    let bits = Atomic<Int>(0)
    let runs = Atomic<Int>(0)
}
