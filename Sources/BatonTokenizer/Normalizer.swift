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
            return .strip(left: try field["strip_left"].bool(default: true),
                          right: try field["strip_right"].bool(default: true))
        case "Sequence":
            return .sequence(try field["normalizers"].array().compactMap { try parse($0) })
        default:
            throw BatonError.unsupported(
                "\(field.file): normalizer type \"\(type)\" at `\(field.path).type` is not supported "
                    + "(supported: NFC, NFD, NFKC, NFKD, Lowercase, Replace, Prepend, Strip, Sequence)")
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
        case .nfc:
            // Scalars below U+0300 are NFC-stable and never combine with what precedes them.
            if s.allSatisfy({ $0.value < 0x300 }) { return s }
            return Self.foundation(s) { $0.precomposedStringWithCanonicalMapping }
        case .nfd:
            if s.allSatisfy({ $0.value < 0xC0 }) { return s }
            return Self.foundation(s) { $0.decomposedStringWithCanonicalMapping }
        case .nfkc:
            if s.allSatisfy({ $0.value < 0xA0 }) { return s }
            return Self.foundation(s) { $0.precomposedStringWithCompatibilityMapping }
        case .nfkd:
            if s.allSatisfy({ $0.value < 0xA0 }) { return s }
            return Self.foundation(s) { $0.decomposedStringWithCompatibilityMapping }
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

    private static func foundation(_ s: [Unicode.Scalar], _ f: (NSString) -> String) -> [Unicode.Scalar] {
        Array(f(string(s) as NSString).unicodeScalars)
    }
}
