import BatonTensor
import Foundation

/// tokenizer.json's `normalizer`: rewrites each piece of input text (between added tokens)
/// before pre-tokenization.
indirect enum Normalizer: Sendable {
    case nfc, nfd, nfkc, nfkd, lowercase
    case replace(pattern: SplitPattern, content: [Unicode.Scalar])
    case prepend([Unicode.Scalar])
    case strip(left: Bool, right: Bool)
    case sequence([Normalizer])

    /// Parses a normalizer object; nil for JSON `null`.
    static func parse(_ field: JSONField) throws -> Normalizer? {
        if field.isNull { return nil }
        let type = try field["type"].string()
        switch type {
        case "NFC": return .nfc
        case "NFD": return .nfd
        case "NFKC": return .nfkc
        case "NFKD": return .nfkd
        case "Lowercase": return .lowercase
        case "Replace":
            return .replace(
                pattern: try parsePattern(field["pattern"]),
                content: Array(try field["content"].string().unicodeScalars))
        case "Prepend": return .prepend(Array(try field["prepend"].string().unicodeScalars))
        case "Strip":
            return .strip(
                left: try field["strip_left"].bool(default: true),
                right: try field["strip_right"].bool(default: true))
        case "Sequence":
            return .sequence(try field["normalizers"].array().compactMap { try parse($0) })
        default:
            throw field.unsupportedType(
                type, of: "normalizer",
                supported: "NFC, NFD, NFKC, NFKD, Lowercase, Replace, Prepend, Strip, Sequence")
        }
    }

    /// A `{"String": ...}` or `{"Regex": ...}` pattern, as used by Replace and Split.
    static func parsePattern(_ field: JSONField) throws -> SplitPattern {
        if !field["String"].isNull { return .literal(Array(try field["String"].string().unicodeScalars)) }
        if !field["Regex"].isNull { return try SplitPattern(regex: field["Regex"].string(), field: field.path) }
        throw field.failure(expected: "{\"String\": ...} or {\"Regex\": ...}")
    }

    func normalize(_ s: [Unicode.Scalar]) -> [Unicode.Scalar] {
        switch self {
        // Scalars below U+0300 are NFC-stable and never combine with what precedes them; NFD
        // leaves those below U+00C0 alone, the compatibility forms those below U+00A0.
        case .nfc: return Self.foundation(s, unchangedBelow: 0x300) { $0.precomposedStringWithCanonicalMapping }
        case .nfd: return Self.foundation(s, unchangedBelow: 0xC0) { $0.decomposedStringWithCanonicalMapping }
        case .nfkc: return Self.foundation(s, unchangedBelow: 0xA0) { $0.precomposedStringWithCompatibilityMapping }
        case .nfkd: return Self.foundation(s, unchangedBelow: 0xA0) { $0.decomposedStringWithCompatibilityMapping }
        case .lowercase:
            return Array(Self.string(s).lowercased().unicodeScalars)
        case .replace(let pattern, let content):
            var out = [Unicode.Scalar]()
            out.reserveCapacity(s.count)
            var last = 0
            for m in pattern.matches(in: s[...]) {
                out.append(contentsOf: s[last..<m.lowerBound])
                out.append(contentsOf: content)
                last = m.upperBound
            }
            out.append(contentsOf: s[last...])
            return out
        case .prepend(let prefix):
            return s.isEmpty ? s : prefix + s
        case .strip(let left, let right):
            var lo = 0, hi = s.count
            if left { while lo < hi && s[lo].properties.isWhitespace { lo += 1 } }
            if right { while hi > lo && s[hi - 1].properties.isWhitespace { hi -= 1 } }
            return Array(s[lo..<hi])
        case .sequence(let steps):
            return steps.reduce(s) { $1.normalize($0) }
        }
    }

    static func string<C: Sequence>(_ s: C) -> String where C.Element == Unicode.Scalar {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: s)
        return String(view)
    }

    /// `s` through Foundation's normalization `f`, or `s` itself when every scalar is below `limit`,
    /// which the form leaves unchanged: plain text skips the round trip through NSString.
    /// `f` over the parts of `s` it can change. A scalar below `limit` is a starter that `f` leaves
    /// alone and that nothing before it can change, so only windows around the runs of scalars at or
    /// above `limit` go through Foundation: each from the scalar before the run (which a combining
    /// mark may compose with) to the next scalar below `limit`. A long prompt with a few curly
    /// quotes then costs a few short conversions instead of one of the whole text.
    static func foundation(
        _ s: [Unicode.Scalar], unchangedBelow limit: UInt32,
        _ f: (NSString) -> String
    ) -> [Unicode.Scalar] {
        guard var run = s.firstIndex(where: { $0.value >= limit }) else { return s }
        var out = [Unicode.Scalar]()
        out.reserveCapacity(s.count + 16)
        var copied = 0
        while run < s.count {
            let start = max(copied, run - 1)
            let end = s[run...].firstIndex { $0.value < limit } ?? s.count
            out += s[copied..<start]
            out += f(string(s[start..<end]) as NSString).unicodeScalars
            copied = end
            run = s[end...].firstIndex { $0.value >= limit } ?? s.count
        }
        out += s[copied...]
        return out
    }
}
