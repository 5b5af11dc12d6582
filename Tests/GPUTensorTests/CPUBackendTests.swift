import GPUTensor
import Testing

// The CPU backend against plain loops written here, against its own naive kernels (OpCheck), and
// on hand-computed values. Shapes are awkward on purpose: 1, 7, 33, 500, 784.

/// c = op(a)·op(b) by the definition, in Double.
func referenceMatmul(_ a: [Double], _ sa: Shape, _ ta: Bool, _ b: [Double], _ sb: Shape, _ tb: Bool) -> [Double] {
    let m = ta ? sa.cols : sa.rows, k = ta ? sa.rows : sa.cols, n = tb ? sb.rows : sb.cols
    var c = [Double](repeating: 0, count: m * n)
    for i in 0..<m {
        for j in 0..<n {
            for p in 0..<k {
                c[i * n + j] += (ta ? a[p * sa.cols + i] : a[i * sa.cols + p]) * (tb ? b[j * sb.cols + p] : b[p * sb.cols + j])
            }
        }
    }
    return c
}

@Suite("CPU backend")
struct CPUBackendTests {
    let be = CPUBackend<Float>()

    func tensor(_ shape: Shape, _ values: [Double]) throws -> Tensor<CPUBackend<Float>> {
        try be.makeTensor(shape, values: values.map(Float.init))
    }

    func read(_ t: Tensor<CPUBackend<Float>>) throws -> [Double] { try be.download(t).map(Double.init) }

    @Test("matmul matches the definition", arguments: [(1, 1, 1), (7, 33, 1), (1, 784, 33), (500, 784, 32), (33, 7, 500)])
    func matmul(mkn: (Int, Int, Int)) throws {
        let (m, k, n) = mkn
        for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
            let sa = ta ? Shape(k, m) : Shape(m, k), sb = tb ? Shape(n, k) : Shape(k, n)
            let a = randomValues(sa.count, seed: 1), b = randomValues(sb.count, seed: 2)
            let c = try be.makeTensor(Shape(m, n))
            try be.matmul(try tensor(sa, a), transposeA: ta, try tensor(sb, b), transposeB: tb, into: c)
            expectClose(try read(c), referenceMatmul(a, sa, ta, b, sb, tb), atol: 2e-6 * Double(k), rtol: 1e-4,
                        "matmul \(m)x\(k)x\(n) ta=\(ta) tb=\(tb)")
        }
    }

    /// The tuned kernel builds this CPU can run: portable always, AVX2 + FMA and AVX-512 where present.
    static let tunedKernels = CPUBackend<Float>.Kernels.available

    @Test("every tuned op agrees with the plain Double loops (the check command's cases)", arguments: tunedKernels)
    func opCheck(kernels: CPUBackend<Float>.Kernels) throws {
        let rows = try OpCheck().run(CPUBackend<Float>(kernels: kernels), against: CPUBackend<Double>(kernels: .naive))
        #expect(rows.count == OpCheck.standardCases.count)
        for row in rows where !row.passed {
            Issue.record("\(kernels) \(row.op) \(row.shapes): \(row.closeness.summary)")
        }
    }

    @Test("the plain Float loops agree with the plain Double loops")
    func naiveFloat() throws {
        let rows = try OpCheck().run(CPUBackend<Float>(kernels: .naive), against: CPUBackend<Double>(kernels: .naive))
        for row in rows where !row.passed { Issue.record("\(row.op) \(row.shapes): \(row.closeness.summary)") }
    }

    @Test("the tuned kernels are what runs: the widest build the CPU supports")
    func kernelChoice() throws {
        // What this CPU supports, read here from /proc/cpuinfo independently of CPUFeatures.
        #if arch(x86_64) && os(Linux)
        let info = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        let flags = Set(info.split(separator: "\n").first { $0.hasPrefix("flags") }?.split(separator: " ").map(String.init) ?? [])
        let avx2 = flags.isSuperset(of: ["avx2", "fma"])
        let avx512 = avx2 && flags.isSuperset(of: ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"])
        let expected: CPUBackend<Float>.Kernels = avx512 ? .avx512 : avx2 ? .avx2 : .portable
        #else
        let expected = CPUBackend<Float>.Kernels.portable
        #endif
        #expect(CPUBackend<Float>().kernels == expected)
        #expect(CPUBackend<Float>().deviceDescription.contains(CPUBackend<Float>.Kernels.best.rawValue))
        #expect(CPUBackend<Double>().deviceDescription.contains("plain loops"))
    }

    @Test("a check can fail: a wrong reference is reported")
    func checkCanFail() throws {
        // relu against reluBackward's cases would pass only by accident; compare Float against
        // Double with an impossible tolerance instead.
        var strict = OpCheck()
        strict.rtol = 0
        strict.atolPerTerm = 0
        let rows = try strict.run(be, against: CPUBackend<Double>(kernels: .naive),
                                  cases: [OpCheck.Case(.matmul, [Shape(7, 33), Shape(33, 5)])])
        #expect(rows.allSatisfy { !$0.passed })
    }

    @Test("broadcast add follows the reference's rules")
    func broadcastAdd() throws {
        let a = try tensor(Shape(2, 3), [1, 2, 3, 4, 5, 6])
        let out = try be.makeTensor(Shape(2, 3))
        try be.add(a, try tensor(Shape(1, 1), [10]), into: out)
        #expect(try read(out) == [11, 12, 13, 14, 15, 16])
        try be.add(a, try tensor(Shape(2, 1), [10, 20]), into: out)
        #expect(try read(out) == [11, 12, 13, 24, 25, 26])
        try be.add(try tensor(Shape(1, 3), [10, 20, 30]), a, into: out)
        #expect(try read(out) == [11, 22, 33, 14, 25, 36])
        try be.add(a, a, into: a)   // in place
        #expect(try read(a) == [2, 4, 6, 8, 10, 12])
    }

    @Test("shape errors name both shapes")
    func shapeErrors() throws {
        let a = try be.makeTensor(Shape(3, 4))
        #expect(throws: ShapeError("add", "shapes (3,4) and (3,5) do not broadcast")) {
            try be.add(a, try be.makeTensor(Shape(3, 5)), into: a)
        }
        #expect(throws: ShapeError("add", "shapes (3,4) and (4,1) do not broadcast")) {
            try be.add(a, try be.makeTensor(Shape(4, 1)), into: a)
        }
        let error = #expect(throws: ShapeError.self) {
            try be.matmul(a, transposeA: false, a, transposeB: false, into: try be.makeTensor(Shape(3, 4)))
        }
        #expect(error?.description.contains("inner dimensions differ") == true)
        #expect(throws: ShapeError.self) {
            try be.matmul(a, transposeA: false, a, transposeB: true, into: try be.makeTensor(Shape(4, 4)))
        }
        #expect(throws: ShapeError.self) { try be.relu(a, into: try be.makeTensor(Shape(4, 3))) }
        #expect(throws: ShapeError.self) { try be.columnSums(a, into: try be.makeTensor(Shape(1, 3))) }
        #expect(throws: ShapeError.self) { try be.upload([1, 2], into: a) }
    }

    @Test("softmax of a known row, stable for large logits")
    func softmaxKnown() throws {
        let z = try tensor(Shape(2, 3), [1, 2, 3, 1001, 1002, 1003])
        let p = try be.makeTensor(Shape(2, 3))
        try be.softmaxRows(z, into: p)
        let e = [1.0, 2.718281828459045, 7.38905609893065], s = e.reduce(0, +)
        let expected = e.map { $0 / s }
        expectClose(try read(p), expected + expected, atol: 1e-7, rtol: 1e-6, "softmax")
    }

    @Test("cross-entropy statistics and gradient on hand-computed values")
    func crossEntropyKnown() throws {
        let p = try tensor(Shape(2, 3), [0.2, 0.5, 0.3, 0.6, 0.3, 0.1])
        let y = try tensor(Shape(2, 3), [0, 1, 0, 0, 0, 1])
        let stats = try be.makeTensor(Shape(2, 2))
        try be.crossEntropyStats(p, y, into: stats, at: 1)
        let s = try read(stats)
        expectClose([s[1]], [-_log(0.5) - _log(0.1)], atol: 1e-6, "loss sum")
        #expect(s[2] == 1)              // row 0 right (argmax 1), row 1 wrong (argmax 0 vs 2)
        #expect(s[0] == 0 && s[3] == 0) // untouched
        let dz = try be.makeTensor(Shape(2, 3))
        try be.softmaxCrossEntropyBackward(p, y, into: dz)
        expectClose(try read(dz), [0.1, -0.25, 0.15, 0.3, 0.15, -0.45], atol: 1e-7, "dz = (p - y)/m")
    }

    @Test("reductions and updates on hand-computed values")
    func reductions() throws {
        let x = try tensor(Shape(2, 3), [1, -2, 3, -4, 5, -6])
        let cols = try be.makeTensor(Shape(1, 3))
        try be.columnSums(x, into: cols)
        #expect(try read(cols) == [-3, 3, -3])
        let out = try be.makeTensor(Shape(1, 2))
        try be.sumOfSquares(x, into: out, at: 1)
        #expect(try read(out) == [0, 91])
        let y = try tensor(Shape(2, 3), [1, 1, 1, 1, 1, 1])
        try be.scaledAdd(-0.5, x, into: y)
        #expect(try read(y) == [0.5, 2, -0.5, 3, -1.5, 4])
        let r = try be.makeTensor(Shape(2, 3))
        try be.relu(x, into: r)
        #expect(try read(r) == [1, 0, 3, 0, 5, 0])
        try be.reluBackward(y, x, into: r)
        #expect(try read(r) == [0.5, 0, -0.5, 0, -1.5, 0])
    }

    @Test("gatherBatch scales pixels and one-hot encodes labels in the given order")
    func gather() throws {
        let examples = try be.makeExampleSet(pixels: [0, 255, 51, 102, 204, 153], labels: [2, 0, 1],
                                             features: 2, classes: 3)
        let order = try be.makeIndexList([2, 0, 1])
        let x = try be.makeTensor(Shape(2, 2)), y = try be.makeTensor(Shape(2, 3))
        try be.gatherBatch(examples, order: order, start: 1, x: x, y: y)
        expectClose(try read(x), [0, 1, 0.2, 0.4], atol: 1e-7, "pixels / 255 of examples 0 and 1")
        #expect(try read(y) == [0, 0, 1, 1, 0, 0])   // labels 2 and 0
        #expect(throws: ShapeError.self) { try be.gatherBatch(examples, order: order, start: 2, x: x, y: y) }
    }
}

private func _log(_ x: Double) -> Double { Double.log(x) }
