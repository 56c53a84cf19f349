import BatonTensor

/// One piece of text on its way to the model, and whether it starts where the input text
/// starts (Metaspace's `prepend_scheme: "first"` prepends only there).
struct PreSplit {
    var scalars: ArraySlice<Unicode.Scalar>
    var atOrigin: Bool
}

/// How a Split keeps its delimiters (tokenizers' `SplitDelimiterBehavior`).
enum SplitBehavior: String, Sendable {
    case removed = "Removed", isolated = "Isolated", mergedWithPrevious = "MergedWithPrevious"
    case mergedWithNext = "MergedWithNext", contiguous = "Contiguous"
}

/// Metaspace's rule for prepending the replacement character.
enum PrependScheme: String, Sendable { case always, first, never }

/// tokenizer.json's `pre_tokenizer`: cuts normalized text into the words BPE works on.
///
/// ByteLevel's byte-to-character mapping is not applied here: the tokenizer maps each word's
/// UTF-8 bytes when it hands the word to the model, so ByteLevel must come last.
indirect enum PreTokenizer: Sendable {
    case split(SplitPattern, SplitBehavior, invert: Bool)
    case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
    case digits(individual: Bool)
    case metaspace(replacement: Unicode.Scalar, prependScheme: PrependScheme, split: Bool)
    case sequence([PreTokenizer])

    static func parse(_ field: JSONField) throws -> PreTokenizer? {
        if field.isNull { return nil }
        let type = try field["type"].string()
        switch type {
        case "Split":
            let name = try field["behavior"].string()
            guard let behavior = SplitBehavior(rawValue: name) else {
                throw field["behavior"].failure(
                    expected: "Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous")
            }
            return .split(
                try Normalizer.parsePattern(field["pattern"]), behavior,
                invert: try field["invert"].bool(default: false))
        case "ByteLevel":
            return .byteLevel(
                addPrefixSpace: try field["add_prefix_space"].bool(default: true),
                useRegex: try field["use_regex"].bool(default: true))
        case "Digits":
            return .digits(individual: try field["individual_digits"].bool(default: false))
        case "Metaspace":
            let m = try metaspaceFields(field)
            return .metaspace(replacement: m.replacement, prependScheme: m.prependScheme, split: m.split)
        case "Sequence":
            let steps = try field["pretokenizers"].array().compactMap { try parse($0) }
            for (k, step) in steps.enumerated() where step.containsByteLevel && k != steps.count - 1 {
                throw BatonError.unsupported(
                    "\(field.file): `\(field.path).pretokenizers[\(k)]` is ByteLevel but not last; "
                        + "Baton supports ByteLevel only as the final pre-tokenizer")
            }
            return .sequence(steps)
        default:
            throw field.unsupportedType(
                type, of: "pre_tokenizer",
                supported: "Split, ByteLevel, Digits, Metaspace, Sequence")
        }
    }

    /// Metaspace's fields, shared by the pre-tokenizer and the decoder. Old files say
    /// `add_prefix_space` instead of `prepend_scheme`.
    static func metaspaceFields(_ field: JSONField) throws
        -> (replacement: Unicode.Scalar, prependScheme: PrependScheme, split: Bool)
    {
        let text = try field["replacement"].optionalString() ?? "\u{2581}"
        guard text.unicodeScalars.count == 1, let replacement = text.unicodeScalars.first else {
            throw field["replacement"].failure(expected: "one character")
        }
        var scheme = PrependScheme.always
        if let name = try field["prepend_scheme"].optionalString() {
            guard let s = PrependScheme(rawValue: name) else {
                throw field["prepend_scheme"].failure(expected: "always, first or never")
            }
            scheme = s
        } else if !(try field["add_prefix_space"].bool(default: true)) {
            scheme = .never
        }
        return (replacement, scheme, try field["split"].bool(default: true))
    }

    var containsByteLevel: Bool {
        switch self {
        case .byteLevel: return true
        case .sequence(let steps): return steps.contains { $0.containsByteLevel }
        default: return false
        }
    }

    func apply(_ splits: [PreSplit]) -> [PreSplit] {
        switch self {
        case .sequence(let steps):
            return steps.reduce(splits) { $1.apply($0) }
        case .split(let pattern, let behavior, let invert):
            return splits.flatMap { s in
                Self.cut(s, pattern.matches(in: s.scalars), behavior, invert: invert)
            }
        case .byteLevel(let addPrefixSpace, let useRegex):
            return splits.flatMap { s -> [PreSplit] in
                var s = s
                if addPrefixSpace && s.scalars.first != " " { s.scalars = ([" "] + s.scalars)[...] }
                guard useRegex else { return [s] }
                return Self.cut(s, SplitPattern.gpt2.matches(in: s.scalars), .isolated, invert: false)
            }
        case .digits(let individual):
            return splits.flatMap { s in
                let digits = s.scalars.indices.filter { ScalarClass(s.scalars[$0]) == .number }
                return Self.cut(s, digits.map { $0..<($0 + 1) }, individual ? .isolated : .contiguous, invert: false)
            }
        case .metaspace(let replacement, let scheme, let split):
            return splits.flatMap { s -> [PreSplit] in
                var scalars = s.scalars.map { $0 == " " ? replacement : $0 }
                let prepend = scheme == .always || (scheme == .first && s.atOrigin)
                if prepend && scalars.first != replacement { scalars.insert(replacement, at: 0) }
                let out = PreSplit(scalars: scalars[...], atOrigin: s.atOrigin)
                guard split else { return [out] }
                let marks = scalars.indices.filter { scalars[$0] == replacement }
                return Self.cut(out, marks.map { $0..<($0 + 1) }, .mergedWithNext, invert: false)
            }
        }
    }

    /// Cuts one split at `matches` (ascending, non-overlapping indices of `split.scalars`)
    /// following tokenizers' delimiter behaviours; empty pieces are dropped.
    static func cut(
        _ split: PreSplit, _ matches: [Range<Int>], _ behavior: SplitBehavior, invert: Bool
    ) -> [PreSplit] {
        let s = split.scalars
        // Every part of the split, each flagged as a match or not.
        var parts = [(range: Range<Int>, isMatch: Bool)]()
        var last = s.startIndex
        for m in matches {
            if last < m.lowerBound { parts.append((last..<m.lowerBound, invert)) }
            parts.append((m, !invert))
            last = m.upperBound
        }
        if last < s.endIndex { parts.append((last..<s.endIndex, invert)) }

        var ranges = [Range<Int>]()
        switch behavior {
        case .removed:
            ranges = parts.filter { !$0.isMatch }.map(\.range)
        case .isolated:
            ranges = parts.map(\.range)
        case .mergedWithPrevious:
            var previousMatch = false
            for part in parts {
                if part.isMatch && !previousMatch, let prior = ranges.last {
                    ranges[ranges.count - 1] = prior.lowerBound..<part.range.upperBound
                } else {
                    ranges.append(part.range)
                }
                previousMatch = part.isMatch
            }
        case .mergedWithNext:
            var nextMatch = false
            for part in parts.reversed() {
                if part.isMatch && !nextMatch, let following = ranges.last {
                    ranges[ranges.count - 1] = part.range.lowerBound..<following.upperBound
                } else {
                    ranges.append(part.range)
                }
                nextMatch = part.isMatch
            }
            ranges.reverse()
        case .contiguous:
            var previousMatch = false
            for part in parts {
                if part.isMatch == previousMatch, let prior = ranges.last {
                    ranges[ranges.count - 1] = prior.lowerBound..<part.range.upperBound
                } else {
                    ranges.append(part.range)
                }
                previousMatch = part.isMatch
            }
        }
        return ranges.filter { !$0.isEmpty }.map {
            PreSplit(scalars: s[$0], atOrigin: split.atOrigin && $0.lowerBound == s.startIndex)
        }
    }
}
