import CZlib
import Deriv8
import Foundation
import Testing

// Seeded, corpus-driven fuzzing of every parser that reads untrusted bytes: IDX images and
// labels (raw and gzipped), safetensors, checkpoints and PGM. Each test mutates small valid
// seeds 1 to 8 times per input, 10,000 inputs per parser, and requires every input to end in a
// result that satisfies the parser's own invariants or in a DataFileError naming the input:
// never a trap, an overflow or an out-of-bounds read. The same seed gives the same inputs on
// every machine, so a failure reproduces; `make fuzz` runs the coverage-guided libFuzzer
// harnesses in Fuzz/ for a bounded time on top of this.

// MARK: - Random numbers and mutations

/// xorshift64*: small, fast and the same on every platform.
private struct FuzzRandom {
    private var state: UInt64

    init(seed: UInt64) { state = seed == 0 ? 0x9E37_79B9_7F4A_7C15 : seed }

    mutating func next() -> UInt64 {
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        return state &* 0x2545_F491_4F6C_DD1D
    }

    /// In 0..<bound; 0 when bound <= 0.
    mutating func below(_ bound: Int) -> Int { bound <= 0 ? 0 : Int(next() % UInt64(bound)) }

    mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }

    mutating func oneIn(_ n: Int) -> Bool { below(n) == 0 }
}

/// Byte-level mutations in the style of libFuzzer's: bit flips, interesting values, inserts,
/// deletes, truncation, duplicated chunks, header fields overwritten or spliced in from another
/// field or another seed.
private enum ByteMutator {
    static let interestingBytes: [UInt8] = [0x00, 0xFF, 0x7F, 0x80, 0x01, 0xFE, 0x20, 0x0A, 0x22, 0x2C,
                                            0x30, 0x39, 0x2D, 0x23, 0x5B, 0x7B, 0x1F, 0x8B, 0x08]
    static let interestingWords: [UInt32] = [0, 1, 2, 3, 4, 8, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF,
                                             0x1_0000, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFE, 0xFFFF_FFFF,
                                             28, 784, 2049, 2051, 60_000]
    static let interestingLengths: [UInt64] = [0, 1, 2, 7, 8, 9, 0x7FFF_FFFF, 0xFFFF_FFFF, 1 << 24, (1 << 24) + 1,
                                               1 << 32, 1 << 63, UInt64.max, UInt64.max - 7]

    /// `input` mutated 1 to 8 times; `pool` supplies bytes to splice in.
    static func mutate(_ input: [UInt8], pool: [[UInt8]], _ random: inout FuzzRandom) -> [UInt8] {
        var bytes = input
        for _ in 0...random.below(8) { mutateOnce(&bytes, pool: pool, &random) }
        return bytes
    }

    /// A position in 0..<count (0 when empty), in the first 32 bytes half of the time: the
    /// headers are where the decisions are.
    private static func position(_ count: Int, _ random: inout FuzzRandom) -> Int {
        random.oneIn(2) ? random.below(min(count, 32)) : random.below(count)
    }

    private static func bigEndian(_ word: UInt32) -> [UInt8] {
        [UInt8(word >> 24), UInt8((word >> 16) & 0xFF), UInt8((word >> 8) & 0xFF), UInt8(word & 0xFF)]
    }

    /// Writes `field` over `bytes` at `offset`, growing the array if it runs past the end.
    private static func overwrite(_ bytes: inout [UInt8], at offset: Int, with field: [UInt8]) {
        for (k, byte) in field.enumerated() {
            if offset + k < bytes.count { bytes[offset + k] = byte } else { bytes.append(byte) }
        }
    }

    private static func mutateOnce(_ bytes: inout [UInt8], pool: [[UInt8]], _ random: inout FuzzRandom) {
        switch random.below(12) {
        case 0 where !bytes.isEmpty:  // flip one bit
            bytes[position(bytes.count, &random)] ^= UInt8(1) << UInt8(random.below(8))
        case 1 where !bytes.isEmpty:  // an interesting byte
            bytes[position(bytes.count, &random)] = random.pick(interestingBytes)
        case 2 where !bytes.isEmpty:  // a random byte
            bytes[position(bytes.count, &random)] = UInt8(truncatingIfNeeded: random.next())
        case 3:  // insert 1 to 4 bytes
            let inserted = (0...random.below(4)).map { _ in
                random.oneIn(2) ? random.pick(interestingBytes) : UInt8(truncatingIfNeeded: random.next())
            }
            bytes.insert(contentsOf: inserted, at: position(bytes.count + 1, &random))
        case 4 where !bytes.isEmpty:  // delete 1 to 16 bytes
            let start = position(bytes.count, &random)
            bytes.removeSubrange(start..<min(bytes.count, start + 1 + random.below(16)))
        case 5:  // truncate
            bytes.removeLast(random.oneIn(2) ? random.below(min(bytes.count, 8) + 1) : random.below(bytes.count + 1))
        case 6 where !bytes.isEmpty:  // duplicate a chunk somewhere else
            let start = random.below(bytes.count)
            let chunk = Array(bytes[start..<min(bytes.count, start + 1 + random.below(32))])
            bytes.insert(contentsOf: chunk, at: random.below(bytes.count + 1))
        case 7:  // a 4-byte header field overwritten by an interesting value or another field
            let field = 4 * random.below(max(1, min(bytes.count, 32) / 4))
            let source = random.oneIn(3) ? random.pick(pool) : bytes
            if random.oneIn(2), source.count >= 4 {
                let from = 4 * random.below(min(source.count, 32) / 4)
                overwrite(&bytes, at: field, with: Array(source[from..<(from + 4)]))
            } else {
                let word = random.pick(interestingWords)
                overwrite(&bytes, at: field, with: random.oneIn(2) ? bigEndian(word) : bigEndian(word).reversed())
            }
        case 8:  // splice: the start of this input, the rest of a seed
            let other = random.pick(pool)
            let cut = random.below(bytes.count + 1)
            bytes = Array(bytes[..<cut]) + Array(other[min(other.count, random.below(other.count + 1))...])
        case 9:  // an interesting 64-bit little-endian value (a safetensors header length)
            let value = random.oneIn(3) ? UInt64(bytes.count) &- UInt64(random.below(16)) : random.pick(interestingLengths)
            let offset = random.oneIn(2) ? 0 : position(bytes.count, &random)
            overwrite(&bytes, at: offset, with: withUnsafeBytes(of: value.littleEndian) { Array($0) })
        case 10:  // add or remove a byte at the end
            if random.oneIn(2) || bytes.isEmpty { bytes.append(UInt8(truncatingIfNeeded: random.next())) } else { bytes.removeLast() }
        default:  // append random bytes
            bytes += (0...random.below(16)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        }
    }
}

/// Edits of a safetensors file's JSON header as text (numbers, dtypes, keys, whole values), with
/// the 8-byte length fixed up afterwards, so most inputs get past the JSON parser and into the
/// validation of dtypes, shapes, offsets and (for checkpoints) metadata.
private enum HeaderMutator {
    static let numbers = ["-1", "-0", "0", "1", "2", "1.5", "0.5", "-0.5", "1e300", "-1e300", "1e-300", "1e19",
                          "9223372036854775807", "9223372036854775808", "-9223372036854775808",
                          "-9223372036854775809", "18446744073709551615", "18446744073709551616",
                          "4294967295", "4294967296", "2147483647", "2147483648", "65536", "65537",
                          "9007199254740993", "\"1\"", "null", "true", "[]", "{}"]
    static let dtypes = ["\"F32\"", "\"I32\"", "\"F16\"", "\"BF16\"", "\"F64\"", "\"I64\"", "\"U8\"", "\"BOOL\"",
                         "\"f32\"", "\"\"", "\"F32 \"", "\"F3\"", "\"\\u0046\\u0033\\u0032\"", "32", "null", "[\"F32\"]"]
    static let values = ["[]", "[0]", "[1]", "[0,0]", "[1,2,3]", "[-1]", "[1.5]", "[\"3\"]", "[null]", "[[1]]", "{}",
                         "null", "3", "\"\"", "[2,2,2,2,2,2,2,2]", "[4294967296,4294967296]",
                         "[9223372036854775807,2]", "[0,9223372036854775807]", "[4,0]", "[0,4]",
                         "{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}"]
    static let keys = ["\"w1\"", "\"b1\"", "\"w2\"", "\"b2\"", "\"w3\"", "\"w0\"", "\"wx\"", "\"train_order\"",
                       "\"momentum.w1\"", "\"adam.m.b2\"", "\"__metadata__\"", "\"\"", "\"x\\ny\"", "\"\\u0000\"",
                       "\"dtype\"", "\"shape\"", "\"data_offsets\"", "\"format\"", "\"architecture\"", "\"config\"",
                       "\"epoch\"", "\"batch\"", "\"optimizer_step\"", "\"rng_state\"", "\"dataset\""]
    static let strings = ["\"\"", "\"0\"", "\"-1\"", "\"1-2\"", "\"4-3-2\"", "\"4-3\"", "\"4-3-2-1\"", "\"0-0\"",
                          "\"1--2\"", "\"65537-1\"", "\"-4-3-2\"", "\"4-3-2-\"", "\"a,b,c,d\"", "\"0,0,0,0\"",
                          "\"1,2,3\"", "\"1,2,3,4\"", "\"ffffffffffffffff,1,1,1\"", "\"10000000000000000,1,1,1\"",
                          "\"9223372036854775807\"", "\"99999999999999999999\"", "\"{}\"", "\"null\"",
                          "\"deriv8-gpu checkpoint 1\"", "\"deriv8-gpu checkpoint 2\"", "\"line\\nbreak\"", "3", "null",
                          "{}", "[\"a\"]", "{\"a\":1}"]

    /// A member of a JSON object found in the text: the key with its quotes, and its value.
    struct Member {
        let key: Range<Int>
        let value: Range<Int>
    }

    /// `bytes` (a safetensors file) with 1 to 3 header edits, re-padded, its length fixed up.
    static func mutate(_ bytes: [UInt8], _ random: inout FuzzRandom) -> [UInt8] {
        guard bytes.count >= 8 else { return bytes }
        let length = Int((0..<8).reduce(UInt64(0)) { $0 | UInt64(bytes[$1]) << (8 * UInt64($1)) })
        guard length <= bytes.count - 8 else { return bytes }
        var header = Array(bytes[8..<(8 + length)])
        var data = Array(bytes[(8 + length)...])
        while header.last == 0x20 { header.removeLast() }
        for _ in 0...random.below(3) { edit(&header, &data, &random) }
        // Pad to a multiple of 8 as writers do; now and then with other whitespace or not at all.
        if !random.oneIn(8) {
            let pad: UInt8 = random.oneIn(8) ? random.pick([0x0A, 0x09, 0x0D, 0x00]) : 0x20
            while (8 + header.count) % 8 != 0 { header.append(pad) }
        }
        var declared = UInt64(header.count)
        if random.oneIn(32) { declared = declared &+ UInt64(bitPattern: Int64(random.pick([-8, -1, 1, 8]))) }
        return withUnsafeBytes(of: declared.littleEndian) { Array($0) } + header + data
    }

    private static func edit(_ header: inout [UInt8], _ data: inout [UInt8], _ random: inout FuzzRandom) {
        let found = members(header)
        switch random.below(10) {
        case 0, 1:  // a number (also inside strings: the architecture, the config, the counts)
            let runs = numberRuns(header)
            guard !runs.isEmpty else { return }
            let run = random.pick(runs)
            let text = String(decoding: header[run], as: UTF8.self)
            // Equal spellings should still be accepted; the rest probe range and type checks.
            let equal = [text + ".0", text + "e0", text + ".000", text + "E+0"]
            let near = Int(text).map { ["\($0 &+ 1)", "\($0 &- 1)", "\($0 &* 2)", "\($0 / 2)", "\(0 &- $0)"] } ?? []
            let replacement = random.oneIn(3) ? random.pick(equal) : random.oneIn(2) && !near.isEmpty ? random.pick(near) : random.pick(numbers)
            header.replaceSubrange(run, with: Array(replacement.utf8))
        case 2:  // a dtype
            let dtypes = found.filter { header[$0.key].elementsEqual("\"dtype\"".utf8) }
            guard !dtypes.isEmpty else { return }
            header.replaceSubrange(random.pick(dtypes).value, with: Array(random.pick(Self.dtypes).utf8))
        case 3:  // drop a member (a key of a tensor, a tensor, a metadata entry, the metadata)
            guard !found.isEmpty else { return }
            remove(random.pick(found), from: &header)
        case 4:  // replace a whole array or object value (now and then the whole header)
            guard !found.isEmpty, !random.oneIn(16) else { header = Array(random.pick(values).utf8); return }
            let candidates = found.filter {
                header[safe: $0.value.lowerBound] == UInt8(ascii: "[") || header[safe: $0.value.lowerBound] == UInt8(ascii: "{")
            }
            let member = candidates.isEmpty ? random.pick(found) : random.pick(candidates)
            header.replaceSubrange(member.value, with: Array(random.pick(values).utf8))
        case 5:  // rename a key
            guard !found.isEmpty else { return }
            let member = random.pick(found)
            let name = random.oneIn(3) ? Array(header[random.pick(found).key]) : Array(random.pick(keys).utf8)
            header.replaceSubrange(member.key, with: name)
        case 6:  // replace a string value (the metadata: format, architecture, rng_state, config...)
            let stringValues = found.filter { header[safe: $0.value.lowerBound] == UInt8(ascii: "\"") }
            guard !stringValues.isEmpty else { return }
            header.replaceSubrange(random.pick(stringValues).value, with: Array(random.pick(strings).utf8))
        case 7:  // a new empty tensor first in the object, or a member duplicated (a duplicate key)
            if random.oneIn(2), let open = header.firstIndex(of: UInt8(ascii: "{")) {
                let member = "\(random.pick(keys)):{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]},"
                header.insert(contentsOf: Array(member.utf8), at: open + 1)
                return
            }
            guard !found.isEmpty else { return }
            let member = random.pick(found)
            let copy = Array(header[member.key.lowerBound..<member.value.upperBound])
            header.insert(contentsOf: [UInt8(ascii: ",")] + copy, at: member.value.upperBound)
        case 8:  // whitespace between tokens: still the same JSON
            guard !header.isEmpty else { return }
            let at = random.below(header.count + 1)
            if at == header.count || [UInt8(ascii: ","), UInt8(ascii: ":"), UInt8(ascii: "{"), UInt8(ascii: "[")].contains(header[at]) {
                header.insert(random.pick([0x20, 0x0A, 0x09, 0x0D]), at: at)
            }
        default:  // the data: a few bytes more or fewer
            if random.oneIn(2) {
                data += [UInt8](repeating: 0, count: random.pick([1, 4, 8]))
            } else {
                data.removeLast(min(data.count, random.pick([1, 4, 8])))
            }
        }
    }

    /// Every `"key": value` in the text, nested ones included. Robust to broken JSON: the ranges
    /// are always inside the text.
    static func members(_ text: [UInt8]) -> [Member] {
        var result: [Member] = []
        var i = 0
        while i < text.count {
            guard text[i] == UInt8(ascii: "\"") else { i += 1; continue }
            let keyEnd = stringEnd(text, from: i)
            var j = skipSpace(text, from: keyEnd)
            if j < text.count, text[j] == UInt8(ascii: ":") {
                j = skipSpace(text, from: j + 1)
                result.append(Member(key: i..<keyEnd, value: j..<valueEnd(text, from: j)))
            }
            i = keyEnd
        }
        return result
    }

    /// Runs of decimal digits, with a leading minus sign when there is one.
    static func numberRuns(_ text: [UInt8]) -> [Range<Int>] {
        var runs: [Range<Int>] = []
        var i = 0
        while i < text.count {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(text[i]) else { i += 1; continue }
            let start = i > 0 && text[i - 1] == UInt8(ascii: "-") ? i - 1 : i
            while i < text.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(text[i]) { i += 1 }
            runs.append(start..<i)
        }
        return runs
    }

    private static func skipSpace(_ text: [UInt8], from start: Int) -> Int {
        var i = start
        while i < text.count, [0x20, 0x0A, 0x09, 0x0D].contains(text[i]) { i += 1 }
        return i
    }

    /// The index after the string that opens at `start` (or the end of the text).
    private static func stringEnd(_ text: [UInt8], from start: Int) -> Int {
        var i = start + 1
        while i < text.count {
            if text[i] == UInt8(ascii: "\\") { i += 2; continue }
            if text[i] == UInt8(ascii: "\"") { return i + 1 }
            i += 1
        }
        return text.count
    }

    /// The index after the JSON value that starts at `start` (or the end of the text).
    private static func valueEnd(_ text: [UInt8], from start: Int) -> Int {
        guard start < text.count else { return text.count }
        switch text[start] {
        case UInt8(ascii: "\""):
            return stringEnd(text, from: start)
        case UInt8(ascii: "["), UInt8(ascii: "{"):
            var depth = 0
            var i = start
            while i < text.count {
                switch text[i] {
                case UInt8(ascii: "\""): i = stringEnd(text, from: i); continue
                case UInt8(ascii: "["), UInt8(ascii: "{"): depth += 1
                case UInt8(ascii: "]"), UInt8(ascii: "}"):
                    depth -= 1
                    if depth == 0 { return i + 1 }
                default: break
                }
                i += 1
            }
            return text.count
        default:
            var i = start
            while i < text.count, ![UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]"), 0x20, 0x0A, 0x09, 0x0D].contains(text[i]) { i += 1 }
            return i
        }
    }

    /// Removes the member and the comma that separates it from its neighbour.
    private static func remove(_ member: Member, from text: inout [UInt8]) {
        var lower = member.key.lowerBound, upper = member.value.upperBound
        let after = skipSpace(text, from: upper)
        if after < text.count, text[after] == UInt8(ascii: ",") {
            upper = after + 1
        } else {
            var before = lower - 1
            while before >= 0, [0x20, 0x0A, 0x09, 0x0D].contains(text[before]) { before -= 1 }
            if before >= 0, text[before] == UInt8(ascii: ",") { lower = before }
        }
        text.removeSubrange(lower..<upper)
    }
}

private extension Array where Element == UInt8 {
    subscript(safe index: Int) -> UInt8? { indices.contains(index) ? self[index] : nil }
}

// MARK: - Seeds

private enum Seeds {
    static func bigEndian(_ v: UInt32) -> [UInt8] {
        [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)]
    }

    static func idx(magic: UInt32, dims: [UInt32], payload: [UInt8]) -> [UInt8] {
        bigEndian(magic) + dims.flatMap(bigEndian) + payload
    }

    static let images: [[UInt8]] = [
        idx(magic: IDX.imagesMagic, dims: [5, 4, 4], payload: (0..<80).map { UInt8(($0 * 37) % 256) }),
        idx(magic: IDX.imagesMagic, dims: [1, 1, 1], payload: [255]),
        idx(magic: IDX.imagesMagic, dims: [2, 3, 2], payload: Array(0..<12)),
    ]

    static let labels: [[UInt8]] = [
        idx(magic: IDX.labelsMagic, dims: [6], payload: [7, 0, 9, 3, 1, 5]),
        idx(magic: IDX.labelsMagic, dims: [1], payload: [9]),
        idx(magic: IDX.labelsMagic, dims: [12], payload: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]),
    ]

    /// gzip of `bytes` through zlib's own writer (through a temporary file, as the reader reads).
    static func gzipped(_ bytes: [UInt8], scratch path: String) -> [UInt8] {
        guard let file = gzopen(path, "wb") else { return [] }
        _ = bytes.withUnsafeBytes { gzwrite(file, $0.baseAddress, UInt32($0.count)) }
        gzclose(file)
        return (try? [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))) ?? []
    }

    static func floats(_ count: Int, _ scale: Float) -> [Float] { (0..<count).map { Float($0) * scale - 1 } }

    static let safeTensors: [[UInt8]] = {
        let sets: [([(name: String, tensor: SafeTensors.Tensor)], [String: String])] = [
            ([("a", SafeTensors.Tensor(floats(6, 0.25), shape: [2, 3])), ("b", SafeTensors.Tensor([1, -2, 3, 4] as [Int32], shape: [4]))],
             ["k": "v"]),
            ([("scalar", SafeTensors.Tensor([2.5] as [Float], shape: [])), ("empty", SafeTensors.Tensor([Float](), shape: [0, 3])),
              ("c", SafeTensors.Tensor(floats(2, 1), shape: [1, 2]))], [:]),
            ([], ["only": "metadata"]),
        ]
        return sets.map { try! SafeTensors.encode($0.0, metadata: $0.1) }
    }()

    /// A checkpoint of a 4-3-2 network as `Checkpoint.encoded()` writes it (built here through
    /// SafeTensors, as Checkpoint's memberwise initialiser is internal).
    static func checkpoint(_ kind: OptimizerKind) -> [UInt8] {
        var config = TrainingConfig()
        config.hidden = [3]
        config.optimizer.kind = kind
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        let shapes: [(String, [Int])] = [("w1", [3, 4]), ("b1", [3]), ("w2", [2, 3]), ("b2", [2])]
        var tensors: [(name: String, tensor: SafeTensors.Tensor)] = shapes.map { name, shape in
            (name, SafeTensors.Tensor(floats(shape.reduce(1, *), 0.125), shape: shape))
        }
        let prefixes = kind == .adam ? ["adam.m.", "adam.v."] : kind == .momentum ? ["momentum."] : []
        for (name, shape) in shapes {
            for prefix in prefixes { tensors.append((prefix + name, SafeTensors.Tensor(floats(shape.reduce(1, *), 0.01), shape: shape))) }
        }
        tensors.append(("train_order", SafeTensors.Tensor([2, 0, 1, 3] as [Int32], shape: [4])))
        let metadata = [
            "format": Checkpoint.format, "architecture": "4-3-2",
            "config": String(decoding: try! encoder.encode(config), as: UTF8.self),
            "dataset": "mnist", "epoch": "2", "batch": "1", "optimizer_step": "7",
            "rng_state": "1,2,3,deadbeef",
        ]
        return try! SafeTensors.encode(tensors, metadata: metadata)
    }

    static let checkpoints: [[UInt8]] = [checkpoint(.sgd), checkpoint(.momentum), checkpoint(.adam)]

    static let pgms: [[UInt8]] = [
        Array("P5\n# fuzz\n4 3\n255\n".utf8) + (0..<12).map { UInt8($0 * 21) },
        Array("P5 2 3 1000\n".utf8) + [0x00, 0x00, 0x00, 0x02, 0x01, 0x2C, 0x01, 0xF4, 0x03, 0xE7, 0x03, 0xE8],
        Array("P2\n# plain\n3 2\n15\n0 1 7\n8 14 15\n".utf8),
        Array("P2 1 1 1 1".utf8),
    ]
}

// MARK: - The harness

/// Counts of the outcomes of one fuzz run, and the first input that broke an invariant.
private struct Outcome: CustomStringConvertible {
    var valid = 0
    var rejected = 0
    var broken = 0
    /// Rejections whose message spans several lines (a name or value from the file with a
    /// newline in it): reported, not failed.
    var multiline = 0
    var firstBroken: String?
    /// Every distinct error message, to check which validation paths the inputs reached.
    var problems: Set<String> = []

    var total: Int { valid + rejected }
    var description: String { "\(valid) valid, \(rejected) rejected, \(broken) broken invariants, \(multiline) multi-line messages" }

    static func + (a: Outcome, b: Outcome) -> Outcome {
        Outcome(valid: a.valid + b.valid, rejected: a.rejected + b.rejected, broken: a.broken + b.broken,
                multiline: a.multiline + b.multiline, firstBroken: a.firstBroken ?? b.firstBroken,
                problems: a.problems.union(b.problems))
    }

    mutating func accept(_ ok: Bool, _ input: [UInt8], _ what: @autoclosure () -> String) {
        valid += 1
        if !ok {
            broken += 1
            if firstBroken == nil { firstBroken = "\(what()) for input \(hex(input))" }
        }
    }

    mutating func reject(_ error: DataFileError, path: String, _ input: [UInt8]) {
        rejected += 1
        problems.insert(error.problem)
        if error.description.contains("\n") { multiline += 1 }
        if error.path != path || error.problem.isEmpty {
            broken += 1
            if firstBroken == nil { firstBroken = "error \(error) for input \(hex(input))" }
        }
    }
}

private func hex(_ bytes: [UInt8]) -> String {
    bytes.prefix(256).map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined() + (bytes.count > 256 ? "..." : "")
}

/// Writes `bytes` as a new file at `path` (plain, or through zlib's gzip writer). The old file
/// is unlinked first, not truncated: on ext4 truncating a just-written file to zero makes its
/// close wait for the disk (auto_da_alloc), which made these tests 20 times slower.
private func store(_ bytes: [UInt8], at path: String, gzip: Bool) {
    unlink(path)
    if gzip {
        guard let file = gzopen(path, "wb") else { Issue.record("gzopen \(path) failed"); return }
        _ = bytes.withUnsafeBytes { gzwrite(file, $0.baseAddress, UInt32($0.count)) }
        gzclose(file)
    } else {
        guard let file = fopen(path, "wb") else { Issue.record("fopen \(path) failed"); return }
        _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
        fclose(file)
    }
}

private func fuzzFolder() throws -> String {
    let path = NSTemporaryDirectory() + "deriv8-fuzz-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

private enum Check {
    static func images(_ path: String, input: [UInt8], into outcome: inout Outcome) {
        do throws(DataFileError) {
            let (count, rows, cols, pixels) = try IDX.readImages(path)
            outcome.accept(count > 0 && rows > 0 && cols > 0 && pixels.count == count * rows * cols, input,
                           "\(count)x\(rows)x\(cols) with \(pixels.count) pixels")
        } catch {
            outcome.reject(error, path: path, input)
        }
    }

    static func labels(_ path: String, input: [UInt8], into outcome: inout Outcome) {
        do throws(DataFileError) {
            let labels = try IDX.readLabels(path)
            outcome.accept(!labels.isEmpty, input, "labels \(labels)")
        } catch {
            outcome.reject(error, path: path, input)
        }
    }

    static func safeTensors(_ bytes: [UInt8], path: String, into outcome: inout Outcome) {
        do throws(DataFileError) {
            let (tensors, _) = try SafeTensors.decode(bytes, path: path)
            let consistent = tensors.values.allSatisfy { tensor in
                tensor.bytes.count == tensor.shape.reduce(1, *) * 4
                    && (tensor.dtype == .f32 ? tensor.floats?.count : tensor.int32s?.count) == tensor.shape.reduce(1, *)
            }
            outcome.accept(consistent, bytes, "tensors \(tensors.mapValues(\.shape))")
        } catch {
            outcome.reject(error, path: path, bytes)
        }
    }

    static func checkpoint(_ bytes: [UInt8], path: String, into outcome: inout Outcome) {
        do throws(DataFileError) {
            let c = try Checkpoint.decode(bytes, path: path)
            let names = Checkpoint.parameterNames(layers: c.sizes.count - 1)
            let consistent = c.sizes.count >= 2 && c.parameters.map(\.name) == names
                && c.parameters.allSatisfy { $0.values.count == Checkpoint.shape(of: $0.name, sizes: c.sizes)!.reduce(1, *) }
                && c.generatorState.count == 4 && c.epoch >= 0 && c.batch >= 0 && c.optimizerStep >= 0
            outcome.accept(consistent, bytes, "checkpoint \(c.architecture)")
        } catch {
            outcome.reject(error, path: path, bytes)
        }
    }

    static func pgm(_ bytes: [UInt8], path: String, into outcome: inout Outcome) {
        do throws(DataFileError) {
            let image = try PGM.parse(bytes, path: path)
            outcome.accept((1...PGM.maximumSide).contains(image.width) && (1...PGM.maximumSide).contains(image.height)
                           && image.pixels.count == image.width * image.height, bytes, "image \(image.width)x\(image.height)")
        } catch {
            outcome.reject(error, path: path, bytes)
        }
    }
}

/// `count` mutations of the seeds (taken in turn), each checked by `check`.
private func fuzz(seeds: [[UInt8]], count: Int, seed: UInt64, structured: Bool = false,
                  check: ([UInt8], inout Outcome) -> Void) -> Outcome {
    var random = FuzzRandom(seed: seed)
    var outcome = Outcome()
    for i in 0..<count {
        let original = seeds[i % seeds.count]
        var input = structured ? HeaderMutator.mutate(original, &random) : ByteMutator.mutate(original, pool: seeds, &random)
        // Now and then a byte-level mutation on top of a structured one.
        if structured, random.oneIn(8) { input = ByteMutator.mutate(input, pool: seeds, &random) }
        check(input, &outcome)
    }
    return outcome
}

private func expectSound(_ outcome: Outcome, count: Int, _ name: String, expectValid: Bool = true,
                         sourceLocation: SourceLocation = #_sourceLocation) {
    print("fuzz \(name): \(count) inputs: \(outcome)")
    #expect(outcome.total == count, "\(name): \(outcome)", sourceLocation: sourceLocation)
    #expect(outcome.broken == 0, "\(name): \(outcome.firstBroken ?? "")", sourceLocation: sourceLocation)
    // Every error is one line, whatever text the hostile file carried into it.
    #expect(outcome.multiline == 0, "\(name): \(outcome)", sourceLocation: sourceLocation)
    // Both outcomes occur: the mutations really reach the parser's accepting and refusing paths.
    #expect(outcome.rejected > 0, "\(name): \(outcome)", sourceLocation: sourceLocation)
    if expectValid { #expect(outcome.valid > 0, "\(name): \(outcome)", sourceLocation: sourceLocation) }
}

/// Each phrase must occur in some error message: the inputs reached that check.
private func expectReached(_ outcome: Outcome, _ phrases: [String], sourceLocation: SourceLocation = #_sourceLocation) {
    for phrase in phrases {
        #expect(outcome.problems.contains { $0.contains(phrase) }, "no input reached \"\(phrase)\"", sourceLocation: sourceLocation)
    }
}

// MARK: - Tests

@Suite("Fuzzing every parser")
struct FuzzTests {
    static let inputs = 10_000

    @Test("the seeds are valid: each parser accepts every unmutated seed")
    func seedsAreValid() throws {
        let folder = try fuzzFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/seed"
        for gzip in [false, true] {
            for seed in Seeds.images {
                store(seed, at: path, gzip: gzip)
                #expect(throws: Never.self) { try IDX.readImages(path) }
            }
            for seed in Seeds.labels {
                store(seed, at: path, gzip: gzip)
                #expect(throws: Never.self) { try IDX.readLabels(path) }
            }
        }
        for seed in Seeds.safeTensors { #expect(throws: Never.self) { try SafeTensors.decode(seed, path: "seed") } }
        for seed in Seeds.checkpoints { #expect(throws: Never.self) { try Checkpoint.decode(seed, path: "seed") } }
        for seed in Seeds.pgms { #expect(throws: Never.self) { try PGM.parse(seed, path: "seed") } }
        // The header mutator finds the members it edits.
        let header = HeaderMutator.members(Array(Seeds.checkpoints[2][8...]))
        #expect(header.count > 20)
    }

    // MARK: Regressions: inputs the fuzzing found

    @Test("regression: an empty tensor at the offset where another begins is not an overlap")
    func emptyTensorSharingAnOffset() throws {
        // SafeTensors.encode puts a zero-size tensor at the offset where the next one begins:
        // "z" [0..<0] and "a" [0..<8]. decode sorted the ranges by begin only, so "a" came
        // first and "z" (begin 0 < a's end 8) was reported as overlapping it, and a file this
        // library had just written could not be read back.
        let bytes = try SafeTensors.encode([("z", SafeTensors.Tensor([Float](), shape: [0])),
                                            ("a", SafeTensors.Tensor([1, 2] as [Float], shape: [2]))], metadata: [:])
        let (tensors, _) = try SafeTensors.decode(bytes, path: "empty")
        #expect(tensors["z"]?.shape == [0] && tensors["a"]?.floats == [1, 2])
        // Tensors that really share bytes are still refused.
        let json = Array(#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"z":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#.utf8)
        let overlapping = withUnsafeBytes(of: UInt64(json.count).littleEndian) { Array($0) } + json + [UInt8](repeating: 0, count: 8)
        let error = #expect(throws: DataFileError.self) { try SafeTensors.decode(overlapping, path: "overlap") }
        #expect(error?.problem == "tensors a and z overlap in the data")
    }

    @Test("10,000 mutated IDX image files (raw, gzipped, gzip streams mutated) each load or throw DataFileError")
    func idxImages() throws {
        try fuzzIDX("images", seeds: Seeds.images, seed: 0xF022_1D81_0000_0000, check: Check.images)
    }

    @Test("10,000 mutated IDX label files (raw, gzipped, gzip streams mutated) each load or throw DataFileError")
    func idxLabels() throws {
        try fuzzIDX("labels", seeds: Seeds.labels, seed: 0xF022_1AB3_0000_0000, check: Check.labels)
    }

    /// 4,000 mutated raw files, 3,000 mutated then gzipped (the header checks behind zlib), and
    /// 3,000 mutations of the gzip streams themselves (zlib's own checks and our trailer peek),
    /// each written to a file and read by `check`; the three runs use seeds seed + 1, 2 and 3.
    private func fuzzIDX(_ kind: String, seeds: [[UInt8]], seed: UInt64,
                         check: (String, [UInt8], inout Outcome) -> Void) throws {
        let folder = try fuzzFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/" + kind
        let gzipSeeds = seeds.map { Seeds.gzipped($0, scratch: path) }
        func run(_ seeds: [[UInt8]], count: Int, _ run: UInt64, gzip: Bool) -> Outcome {
            fuzz(seeds: seeds, count: count, seed: seed + run) { input, outcome in
                store(input, at: path, gzip: gzip)
                check(path, input, &outcome)
            }
        }
        let raw = run(seeds, count: 4_000, 1, gzip: false)
        let gzipped = run(seeds, count: 3_000, 2, gzip: true)
        let stream = run(gzipSeeds, count: 3_000, 3, gzip: false)
        expectSound(raw, count: 4_000, "IDX \(kind), raw")
        expectSound(gzipped, count: 3_000, "IDX \(kind), gzipped")
        expectSound(stream, count: 3_000, "IDX \(kind), gzip stream", expectValid: false)
        expectSound(raw + gzipped + stream, count: Self.inputs, "IDX \(kind)")
    }

    @Test("10,000 byte-level mutations of safetensors files each decode or throw DataFileError")
    func safeTensorsBytes() {
        let outcome = fuzz(seeds: Seeds.safeTensors, count: Self.inputs, seed: 0xF022_5AFE_0000_0001) { input, outcome in
            Check.safeTensors(input, path: "safetensors", into: &outcome)
        }
        expectSound(outcome, count: Self.inputs, "safetensors, bytes")
    }

    @Test("10,000 edits of safetensors JSON headers (numbers, dtypes, keys, values) each decode or throw DataFileError")
    func safeTensorsHeaders() {
        let outcome = fuzz(seeds: Seeds.safeTensors, count: Self.inputs, seed: 0xF022_5AFE_0000_0002, structured: true) { input, outcome in
            Check.safeTensors(input, path: "safetensors", into: &outcome)
        }
        expectSound(outcome, count: Self.inputs, "safetensors, JSON header")
        expectReached(outcome, ["does not fit", "not valid JSON", "not a JSON object", "__metadata__ is not a map",
                                "entry is not an object", "no dtype", "unsupported dtype", "shape is not a list",
                                "data_offsets is not [begin, end]", "bytes of data", "is larger than the file",
                                "data_offsets give", "overlap in the data"])
    }

    @Test("10,000 byte-level mutations of checkpoints each decode or throw DataFileError")
    func checkpointBytes() {
        let outcome = fuzz(seeds: Seeds.checkpoints, count: Self.inputs, seed: 0xF022_C4EC_0000_0001) { input, outcome in
            Check.checkpoint(input, path: "checkpoint", into: &outcome)
        }
        expectSound(outcome, count: Self.inputs, "checkpoint, bytes")
    }

    @Test("10,000 edits of checkpoint headers and metadata each decode or throw DataFileError")
    func checkpointHeaders() {
        let outcome = fuzz(seeds: Seeds.checkpoints, count: Self.inputs, seed: 0xF022_C4EC_0000_0002, structured: true) { input, outcome in
            Check.checkpoint(input, path: "checkpoint", into: &outcome)
        }
        expectSound(outcome, count: Self.inputs, "checkpoint, JSON header")
        expectReached(outcome, ["unsupported dtype", "data_offsets give", "not a deriv8-gpu checkpoint",
                                "metadata has no architecture", "is not a list of layer widths", "config is missing",
                                "epoch is missing", "batch is missing", "optimizer_step is missing", "rng_state",
                                "is missing", "has shape", "expected F32", "train_order is missing", "unexpected tensor"])
    }

    @Test("10,000 mutated PGM files (P5 8-bit, P5 16-bit, P2) each parse or throw DataFileError")
    func pgm() {
        let outcome = fuzz(seeds: Seeds.pgms, count: Self.inputs, seed: 0xF022_9A30_0000_0001) { input, outcome in
            Check.pgm(input, path: "pgm", into: &outcome)
        }
        expectSound(outcome, count: Self.inputs, "PGM")
        expectReached(outcome, ["bad magic", "width", "height", "maxval", "truncated", "trailing", "above maxval",
                                "not a decimal number"])
    }
}

// MARK: - NPZ

/// Edits of a .npz archive's arrays before the archive is written around them (with the right
/// sizes and CRCs, so the zip layer lets them through): byte-level mutations of one .npy entry,
/// or edits of its header as text (the dtype, a number in the shape, the order, a character),
/// the header length fixed up; or one array swapped for another valid one (the checks across
/// arrays: counts, kinds, shapes); now and then an entry dropped or the zip laid out differently.
private enum NPYMutator {
    static let descrs = ["'|u1'", "'<f4'", "'<f8'", "'>f4'", "'|O'", "'<i8'", "'<i4'", "'|i1'", "'<u8'", "'<c8'", "'|b1'",
                         "'=u1'", "'<u2'", "'|f4'", "''", "'<'", "[('a', '|u1')]", "1", "None", "'u1'"]
    static let numbers = ["0", "1", "-1", "2", "3", "4", "6", "12", "255", "256", "65536", "2147483648",
                          "9223372036854775807", "99999999999999999999", "-9223372036854775808", "3,", "(3,)", "()", "[3]"]
    static let names = ["x_train", "y_train", "x_test", "y_test"]

    /// The seed's arrays (.npy files, in the order of `names`) mutated and zipped.
    static func mutate(_ arrays: [[UInt8]], deflate: Bool, _ random: inout FuzzRandom) -> [UInt8] {
        var arrays = arrays
        let k = random.below(arrays.count)
        if random.oneIn(4) {
            arrays[k] = random.pick(Seeds.npzBytes + Seeds.npzFloats + Seeds.npzSpares)
        } else {
            for _ in 0...random.below(2) {
                arrays[k] = random.oneIn(2) ? ByteMutator.mutate(arrays[k], pool: arrays, &random) : editHeader(arrays[k], &random)
            }
        }
        var entries = zip(names, arrays).map { TestEntry($0 + ".npy", $1, deflate: deflate) }
        if random.oneIn(16) { entries.remove(at: random.below(entries.count)) }
        if random.oneIn(16) { entries.append(random.pick(entries)) }
        let layouts = [ZipLayout(), ZipLayout(zip64Directory: true), ZipLayout(zip64End: true), ZipLayout(dataDescriptors: true)]
        return zipArchive(entries, random.oneIn(4) ? random.pick(layouts) : layouts[0])
    }

    /// A version 1.0 .npy with one edit of its header text; anything else is left as it is.
    private static func editHeader(_ array: [UInt8], _ random: inout FuzzRandom) -> [UInt8] {
        guard array.count >= 10, array[6] == 1 else { return array }
        let length = Int(array[8]) | Int(array[9]) << 8
        guard 10 + length <= array.count else { return array }
        var text = String(decoding: array[10..<(10 + length)], as: UTF8.self)
        let data = Array(array[(10 + length)...])
        /// The value of `key` (a string or a name, without commas) replaced.
        func replaceValue(after key: String, with value: String) {
            guard let keyRange = text.range(of: key + ": ") else { return }
            let valueEnd = text[keyRange.upperBound...].range(of: ",")?.lowerBound ?? text.endIndex
            text.replaceSubrange(keyRange.upperBound..<valueEnd, with: value)
        }
        switch random.below(5) {
        case 0: replaceValue(after: "'descr'", with: random.pick(descrs))
        case 1:  // a number in the shape
            let bytes = Array(text.utf8)
            let runs = HeaderMutator.numberRuns(bytes).filter { $0.lowerBound > (bytes.firstIndex(of: UInt8(ascii: "(")) ?? bytes.count) }
            guard !runs.isEmpty else { return array }
            let run = random.pick(runs)
            text = String(decoding: bytes[..<run.lowerBound] + Array(random.pick(numbers).utf8) + bytes[run.upperBound...], as: UTF8.self)
        case 2: replaceValue(after: "'fortran_order'", with: random.pick(["True", "False", "0", "'False'", "None"]))
        case 3:  // a character removed (a quote, a brace, a comma, a colon...)
            guard !text.isEmpty else { return array }
            text.remove(at: text.index(text.startIndex, offsetBy: random.below(text.count)))
        default:  // a whole field removed
            for key in [random.pick(["'descr': ", "'fortran_order': ", "'shape': "])] {
                guard let start = text.range(of: key)?.lowerBound, let end = text[start...].range(of: ", '")?.lowerBound
                    ?? text[start...].range(of: ", }")?.lowerBound else { continue }
                text.removeSubrange(start..<text.index(end, offsetBy: 2))
            }
        }
        return npy("", [], data, header: text.trimmingCharacters(in: .whitespacesAndNewlines))
    }
}

private extension Seeds {
    /// The arrays of the two NPZ seeds: byte images [3, 2, 2] with int64 labels, and float32
    /// features [2, 3] with int32 labels (the second mutated into NaNs and huge values easily).
    static let npzBytes: [[UInt8]] = [
        npy("|u1", [3, 2, 2], (0..<12).map { UInt8($0 * 20) }), npy("<i8", [3], littleEndian([2, 0, 1] as [Int64])),
        npy("|u1", [1, 2, 2], [9, 8, 7, 6]), npy("<i8", [1], littleEndian([1] as [Int64])),
    ]
    static let npzFloats: [[UInt8]] = [
        npy("<f4", [2, 3], littleEndian([0.5, -1, 2, 3e38, 0, 1] as [Float])), npy("<i4", [2], littleEndian([1, 0] as [Int32])),
        npy("<f4", [1, 3], littleEndian([1, 2, 3] as [Float])), npy("<i4", [1], littleEndian([1] as [Int32])),
    ]

    /// Arrays that fit neither seed: a byte example of another shape, float64 with a NaN,
    /// labels out of range.
    static let npzSpares: [[UInt8]] = [
        npy("|u1", [1, 4], Array(0..<4)), npy("<f8", [1, 3], littleEndian([1, .nan, 2] as [Double])),
        npy("<i8", [3], littleEndian([0, 300, 1] as [Int64])), npy("<i2", [1], littleEndian([-5] as [Int16])),
    ]

    static func npz(_ arrays: [[UInt8]], deflate: Bool, _ layout: ZipLayout = ZipLayout()) -> [UInt8] {
        zipArchive(zip(NPYMutator.names, arrays).map { TestEntry($0 + ".npy", $1, deflate: deflate) }, layout)
    }
}

private extension Check {
    static func npz(_ bytes: [UInt8], path: String, into outcome: inout Outcome) {
        do throws(DataFileError) {
            let data = try NPZ.decodeDataSet(bytes, path: path)
            let features = data.exampleShape.reduce(1, *)
            let consistent = (1...2).contains(data.exampleShape.count) && data.exampleShape.allSatisfy { $0 > 0 }
                && data.features == features && (2...256).contains(data.classes)
                && [data.train, data.test].allSatisfy { set in
                    set.count > 0 && set.features == features && set.inputs.count == set.count * features
                        && set.labels.allSatisfy { Int($0) < data.classes } && set.inputs.asFloats.allSatisfy(\.isFinite)
                }
                && (data.train.inputs.asFloats.count, data.test.inputs.asFloats.count) == (data.train.inputs.count, data.test.inputs.count)
            outcome.accept(consistent, bytes, "data set \(data.exampleShape), \(data.classes) classes")
        } catch {
            outcome.reject(error, path: path, bytes)
        }
    }
}

extension FuzzTests {
    @Test("the NPZ seeds are valid data sets, stored and deflated")
    func npzSeedsAreValid() {
        for arrays in [Seeds.npzBytes, Seeds.npzFloats] {
            for deflate in [false, true] {
                #expect(throws: Never.self) { try NPZ.decodeDataSet(Seeds.npz(arrays, deflate: deflate), path: "seed") }
            }
        }
    }

    @Test("10,000 mutated stored .npz files (zip bytes, .npy bytes and headers) each load or throw DataFileError")
    func npzStored() {
        fuzzNPZ(deflate: false, seed: 0xF022_2B20_0000_0000)
    }

    @Test("10,000 mutated deflated .npz files (zip and deflate bytes, .npy bytes and headers) each load or throw DataFileError")
    func npzDeflated() {
        fuzzNPZ(deflate: true, seed: 0xF022_2B28_0000_0000)
    }

    /// 4,000 byte-level mutations of the whole archives (the zip structure, ZIP64's fields, the
    /// deflate streams; CRCs catch most changes to the data) and 6,000 archives written around mutated
    /// arrays (the .npy parser and the checks of a data set), with seeds seed + 1 and + 2.
    private func fuzzNPZ(deflate: Bool, seed: UInt64) {
        let arrays = [Seeds.npzBytes, Seeds.npzFloats]
        let kind = deflate ? "deflated" : "stored"
        let zip64 = ZipLayout(zip64Directory: true, zip64End: true, dataDescriptors: true)
        let seeds = arrays.flatMap { [Seeds.npz($0, deflate: deflate), Seeds.npz($0, deflate: deflate, zip64)] }
        let archives = fuzz(seeds: seeds, count: 4_000, seed: seed + 1) { input, outcome in
            Check.npz(input, path: "npz", into: &outcome)
        }
        var random = FuzzRandom(seed: seed + 2)
        var npy = Outcome()
        for i in 0..<6_000 {
            Check.npz(NPYMutator.mutate(arrays[i % arrays.count], deflate: deflate, &random), path: "npz", into: &npy)
        }
        expectSound(archives, count: 4_000, "NPZ \(kind), archive bytes")
        expectSound(npy, count: 6_000, "NPZ \(kind), arrays")
        expectSound(archives + npy, count: Self.inputs, "NPZ \(kind)")
        expectReached(archives, ["not a zip archive", "fails its CRC-32 check", "central directory entry", "does not fit in the file",
                                 "has no local header", "names another entry", "is truncated", "array (no ", "ZIP64"]
                      + (deflate ? ["corrupt deflate data", "inflates to"] : ["is stored, but"]))
        expectReached(npy, ["has no", "is not a .npy array", "not a Python dictionary", "unsupported dtype", "is big-endian",
                            "Python objects", "Fortran order", "bytes of data", "has shape", "examples, but", "labels must be in 0...255",
                            "is NaN", "must be bytes (uint8) or both floats", "a dimension of size 0", "examples have shape",
                            "has two"])
    }
}
