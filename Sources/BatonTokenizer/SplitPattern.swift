import BatonTensor
import Foundation

/// The pattern of a `Split` pre-tokenizer (or of ByteLevel's `use_regex`), able to list its
/// matches in a run of Unicode scalars.
///
/// The split regexes of GPT-2, Llama-3 and Qwen2 are recognised by their text and matched by
/// hand, alternative by alternative, exactly as Oniguruma (the engine behind Hugging Face
/// tokenizers) matches them: leftmost-first alternation, greedy runs with backtracking only
/// where the pattern forces it (`\s*[\r\n]+`, `\s+(?!\S)`). This is both exact and fast.
/// Any other regex goes through `NSRegularExpression` (ICU), whose syntax covers the patterns
/// seen in tokenizer.json files.
enum SplitPattern: Sendable {
    /// Llama-3 (`\p{N}{1,3}`, maxDigits 3) and Qwen2 (`\p{N}`, maxDigits 1).
    case llama3Family(maxDigits: Int)
    case gpt2
    case literal([Unicode.Scalar])
    case regex(RegexBox)

    static let llama3Source =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Source =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let gpt2Source = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#

    /// A pattern from its regex text; `field` names where it came from for errors.
    init(regex source: String, field: String) throws {
        switch source {
        case Self.llama3Source: self = .llama3Family(maxDigits: 3)
        case Self.qwen2Source: self = .llama3Family(maxDigits: 1)
        case Self.gpt2Source: self = .gpt2
        default:
            do {
                self = .regex(RegexBox(try NSRegularExpression(pattern: source)))
            } catch {
                throw BatonError.unsupported("\(field): regex \(source) does not compile (\(error))")
            }
        }
    }

    /// The matches of the pattern in `s`, as ranges of indices of `s`, in order, not overlapping.
    func matches(in s: ArraySlice<Unicode.Scalar>) -> [Range<Int>] {
        if s.isEmpty { return [] }
        switch self {
        case .llama3Family(let maxDigits):
            return Self.scan(s) { classes, i in Self.llama3End(s, classes, i, maxDigits: maxDigits) }
        case .gpt2:
            return Self.scan(s) { classes, i in Self.gpt2End(s, classes, i) }
        case .literal(let needle):
            return Self.literalMatches(of: needle, in: s)
        case .regex(let box):
            return box.matches(in: s)
        }
    }

    /// Runs a hand matcher from every position; these patterns match at every position, so the
    /// matches tile the input.
    private static func scan(
        _ s: ArraySlice<Unicode.Scalar>, _ end: ([ScalarClass], Int) -> Int
    ) -> [Range<Int>] {
        let classes = ScalarClass.classify(s)
        var ranges = [Range<Int>]()
        var i = 0
        while i < classes.count {
            let e = end(classes, i)
            ranges.append((s.startIndex + i)..<(s.startIndex + e))
            i = e
        }
        return ranges
    }

    /// End (exclusive, offset into `classes`) of the Llama-3/Qwen2 match starting at `i`.
    static func llama3End(
        _ s: ArraySlice<Unicode.Scalar>, _ c: [ScalarClass], _ i: Int, maxDigits: Int
    ) -> Int {
        let n = c.count
        let base = s.startIndex
        func at(_ k: Int) -> Unicode.Scalar { s[base + k] }
        func run(_ cls: ScalarClass, from k: Int) -> Int {
            var e = k
            while e < n && c[e] == cls { e += 1 }
            return e
        }
        // (?i:'s|'t|'re|'ve|'m|'ll|'d)
        if at(i) == "'", let e = contractionEnd(s, i + 1, count: n, caseInsensitive: true) { return e }
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if c[i] == .letter { return run(.letter, from: i) }
        if c[i] != .number && !at(i).isLineBreak && i + 1 < n && c[i + 1] == .letter {
            return run(.letter, from: i + 1)
        }
        // \p{N}{1,maxDigits}
        if c[i] == .number {
            var e = i + 1
            while e < n && e - i < maxDigits && c[e] == .number { e += 1 }
            return e
        }
        // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
        let j = (at(i) == " " && i + 1 < n && c[i + 1] == .other) ? i + 1 : i
        if c[j] == .other {
            var e = run(.other, from: j)
            while e < n && at(e).isLineBreak { e += 1 }
            return e
        }
        // Here s[i] is whitespace.
        let runEnd = run(.whitespace, from: i)
        // \s*[\r\n]+ : greedy \s* backs off to the last line break of the run.
        var k = runEnd - 1
        while k >= i {
            if at(k).isLineBreak { return k + 1 }
            k -= 1
        }
        return whitespaceEnd(i, runEnd: runEnd, count: n)
    }

    /// End of the GPT-2 match starting at `i`.
    static func gpt2End(_ s: ArraySlice<Unicode.Scalar>, _ c: [ScalarClass], _ i: Int) -> Int {
        let n = c.count
        let base = s.startIndex
        func run(_ cls: ScalarClass, from k: Int) -> Int {
            var e = k
            while e < n && c[e] == cls { e += 1 }
            return e
        }
        if s[base + i] == "'", let e = contractionEnd(s, i + 1, count: n, caseInsensitive: false) { return e }
        // ' ?\p{L}+' | ' ?\p{N}+' | ' ?[^\s\p{L}\p{N}]+'
        let j = (s[base + i] == " " && i + 1 < n && c[i + 1] != .whitespace) ? i + 1 : i
        if c[j] != .whitespace { return run(c[j], from: j) }
        return whitespaceEnd(i, runEnd: run(.whitespace, from: i), count: n)
    }

    /// `\s+(?!\S)|\s+` for a whitespace run `[i, runEnd)`: the run less its last character when
    /// a non-space follows (that character then leads the next piece), else the whole run.
    private static func whitespaceEnd(_ i: Int, runEnd: Int, count n: Int) -> Int {
        if runEnd == n { return n }
        return runEnd - i >= 2 ? runEnd - 1 : runEnd
    }

    /// After an apostrophe at `k - 1`: the end of `s|t|re|ve|m|ll|d` starting at `k`, if any.
    /// Case-insensitive matching follows Unicode simple case folding, under which `ſ`
    /// (U+017F) is also an `s`.
    private static func contractionEnd(
        _ s: ArraySlice<Unicode.Scalar>, _ k: Int, count n: Int, caseInsensitive: Bool
    ) -> Int? {
        func letter(_ offset: Int) -> UInt32? {
            guard offset < n else { return nil }
            let v = s[s.startIndex + offset].value
            guard caseInsensitive else { return v }
            if v == 0x17F { return 0x73 }
            return (0x41...0x5A).contains(v) ? v + 0x20 : v
        }
        switch letter(k) {
        case 0x73, 0x74, 0x6D, 0x64: return k + 1  // s t m d
        case 0x72, 0x76: return letter(k + 1) == 0x65 ? k + 2 : nil  // re ve
        case 0x6C: return letter(k + 1) == 0x6C ? k + 2 : nil  // ll
        default: return nil
        }
    }

    private static func literalMatches(
        of needle: [Unicode.Scalar], in s: ArraySlice<Unicode.Scalar>
    ) -> [Range<Int>] {
        guard !needle.isEmpty else { return [] }
        var ranges = [Range<Int>]()
        var i = s.startIndex
        while i + needle.count <= s.endIndex {
            if s[i] == needle[0] && s[i..<(i + needle.count)].elementsEqual(needle) {
                ranges.append(i..<(i + needle.count))
                i += needle.count
            } else {
                i += 1
            }
        }
        return ranges
    }
}

/// An `NSRegularExpression`, immutable after creation and so safe to share across threads.
final class RegexBox: @unchecked Sendable {
    let regex: NSRegularExpression

    init(_ regex: NSRegularExpression) { self.regex = regex }

    /// Matches in `s`, converted from UTF-16 offsets back to scalar indices; empty matches
    /// are dropped (they split nothing).
    func matches(in s: ArraySlice<Unicode.Scalar>) -> [Range<Int>] {
        var text = String.UnicodeScalarView()
        text.append(contentsOf: s)
        let string = String(text)
        // scalarIndex[u] = index of the scalar starting at UTF-16 offset u.
        var scalarIndex = [Int]()
        scalarIndex.reserveCapacity(s.count * 2 + 1)
        for (k, scalar) in s.enumerated() {
            for _ in 0..<UTF16.width(scalar) { scalarIndex.append(s.startIndex + k) }
        }
        scalarIndex.append(s.endIndex)
        let all = NSRange(location: 0, length: scalarIndex.count - 1)
        return regex.matches(in: string, range: all).compactMap { m in
            guard m.range.length > 0 else { return nil }
            return scalarIndex[m.range.location]..<scalarIndex[m.range.location + m.range.length]
        }
    }
}
