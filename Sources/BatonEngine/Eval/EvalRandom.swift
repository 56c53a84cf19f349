import BatonTensor
/// Seeded draws built on `SplitMix64` with Baton's own algorithms (not the standard library's,
/// whose `random(in:using:)` may change between Swift versions), so a seed gives the same eval
/// set on every machine and toolchain.
struct EvalRandom {
    private var generator: SplitMix64

    init(seed: UInt64) { generator = SplitMix64(seed: seed) }

    /// A stream for one purpose of one sample: the same (seed, labels) always give the same stream.
    init(seed: UInt64, _ labels: String...) {
        var mixed = seed
        for label in labels { mixed = EvalRandom.mix(mixed, EvalRandom.fnv1a(label)) }
        generator = SplitMix64(seed: mixed)
    }

    mutating func next() -> UInt64 { generator.next() }

    /// Uniform in `0..<bound` (multiply-shift; the bias is below 2^-40 for bounds used here).
    mutating func below(_ bound: Int) -> Int {
        precondition(bound > 0)
        return Int((UInt64(bound).multipliedFullWidth(by: next())).high)
    }

    /// Uniform in `range` (inclusive).
    mutating func int(in range: ClosedRange<Int>) -> Int {
        range.lowerBound + below(range.upperBound - range.lowerBound + 1)
    }

    /// Uniform in [0, 1).
    mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }

    mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }

    /// Fisher-Yates.
    mutating func shuffle<T>(_ items: inout [T]) {
        guard items.count > 1 else { return }
        for i in stride(from: items.count - 1, to: 0, by: -1) {
            items.swapAt(i, below(i + 1))
        }
    }

    /// `count` distinct indices of `0..<population`, in draw order (partial Fisher-Yates over a
    /// sparse map, so sampling a few of millions costs O(count)).
    mutating func sample(_ count: Int, from population: Int) -> [Int] {
        precondition(count <= population)
        var swapped: [Int: Int] = [:]
        var result: [Int] = []
        for i in 0..<count {
            let j = i + below(population - i)
            let atJ = swapped[j] ?? j
            swapped[j] = swapped[i] ?? i
            result.append(atJ)
        }
        return result
    }

    /// A string of `length` letters from `alphabet`.
    mutating func letters(_ length: Int, from alphabet: [Character]) -> String {
        String((0..<length).map { _ in pick(alphabet) })
    }

    /// A random version-4 UUID in the usual lowercase 8-4-4-4-12 form.
    mutating func uuid() -> String {
        var bytes = (0..<2).flatMap { _ in withUnsafeBytes(of: next().bigEndian, Array.init) }
        bytes[6] = (bytes[6] & 0x0F) | 0x40
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        let hex = bytes.map { byte in
            let digits = Array("0123456789abcdef")
            return String([digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]])
        }
        return [hex[0..<4], hex[4..<6], hex[6..<8], hex[8..<10], hex[10..<16]]
            .map { $0.joined() }.joined(separator: "-")
    }

    /// A decimal number of exactly `digits` digits (no leading zero).
    mutating func number(digits: Int) -> String {
        var text = String(int(in: 1...9))
        for _ in 1..<max(digits, 1) { text.append(Character(String(below(10)))) }
        return text
    }

    static let uppercase = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    static let lowercase = Array("abcdefghijklmnopqrstuvwxyz")

    /// FNV-1a, a stable string hash (Swift's `hashValue` changes per process).
    static func fnv1a(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        return hash
    }

    static func mix(_ a: UInt64, _ b: UInt64) -> UInt64 {
        var generator = SplitMix64(seed: a ^ (b &* 0x9E37_79B9_7F4A_7C15))
        return generator.next()
    }
}
