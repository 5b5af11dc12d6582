import GPUTensor
import Testing

@Suite("Seeded generator")
struct RandomTests {
    @Test("same seed, same stream; the stream is pinned so it is the same on every machine")
    func deterministic() {
        var a = SeededGenerator(seed: 7), b = SeededGenerator(seed: 7), c = SeededGenerator(seed: 8)
        let first = (0..<5).map { _ in a.next() }
        #expect(first == (0..<5).map { _ in b.next() })
        #expect(first != (0..<5).map { _ in c.next() })
        // xoshiro256** seeded by SplitMix64(0), computed independently in Python: pinned so a change
        // of algorithm cannot go unnoticed.
        var zero = SeededGenerator(seed: 0)
        #expect(zero.next() == 11091344671253066420)
    }

    @Test("uniform stays in range and below is unbiased enough to cover every value")
    func ranges() {
        var g = SeededGenerator(seed: 1)
        var seen = Set<Int>()
        for _ in 0..<10_000 {
            let u = g.uniform(-0.5, 0.5)
            #expect(u >= -0.5 && u < 0.5)
            seen.insert(g.below(10))
        }
        #expect(seen == Set(0..<10))
    }

    @Test("shuffle is a permutation")
    func shuffle() {
        var g = SeededGenerator(seed: 3)
        var values = Array(0..<1000)
        g.shuffle(&values)
        #expect(values != Array(0..<1000))
        #expect(values.sorted() == Array(0..<1000))
    }
}
