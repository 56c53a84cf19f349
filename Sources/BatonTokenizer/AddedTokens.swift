import BatonTensor

/// One entry of tokenizer.json's `added_tokens`.
struct AddedToken: Sendable {
    let id: Int32
    let content: String
    let special: Bool
    let singleWord: Bool
    let leftStrip: Bool
    let rightStrip: Bool
    /// Matched in normalized text (true) or in the raw input (false).
    let normalized: Bool

    init(_ field: JSONField) throws {
        let id = try field["id"].int()
        guard let id32 = Int32(exactly: id), id32 >= 0 else { throw field["id"].failure(expected: "a token id >= 0") }
        self.id = id32
        content = try field["content"].string()
        special = try field["special"].bool(default: false)
        singleWord = try field["single_word"].bool(default: false)
        leftStrip = try field["lstrip"].bool(default: false)
        rightStrip = try field["rstrip"].bool(default: false)
        normalized = try field["normalized"].bool(default: !special)
    }
}

/// A piece of input: an added token's id, or text still to normalize and tokenize.
enum Segment {
    case token(Int32)
    case text(ArraySlice<Unicode.Scalar>, atOrigin: Bool)
}

/// Finds added tokens in text: at the leftmost position where any token starts, the longest
/// one (Hugging Face's leftmost-longest Aho-Corasick), honouring `single_word`, `lstrip` and
/// `rstrip` as tokenizers does.
struct AddedTokenMatcher: Sendable {
    private let tokens: [AddedToken]
    /// Trie over the tokens' scalars: children of each node, and the token ending at a node.
    private var children: [[UInt32: Int32]] = [[:]]
    private var terminal: [Int32] = [-1]

    /// `contents[k]` is what to look for for `tokens[k]` (normalized contents for the
    /// normalized set).
    init(_ tokens: [AddedToken], contents: [[Unicode.Scalar]]) {
        self.tokens = tokens
        for (k, content) in contents.enumerated() where !content.isEmpty {
            var node = 0
            for scalar in content {
                if let child = children[node][scalar.value] {
                    node = Int(child)
                } else {
                    children.append([:])
                    terminal.append(-1)
                    children[node][scalar.value] = Int32(children.count - 1)
                    node = children.count - 1
                }
            }
            if terminal[node] < 0 { terminal[node] = Int32(k) }
        }
    }

    var isEmpty: Bool { tokens.isEmpty }

    /// Cuts `text` into added tokens and the text between them.
    func split(_ text: ArraySlice<Unicode.Scalar>, atOrigin: Bool) -> [Segment] {
        if tokens.isEmpty || text.isEmpty { return [.text(text, atOrigin: atOrigin)] }
        var segments = [Segment]()
        var textStart = text.startIndex
        var i = text.startIndex
        while i < text.endIndex {
            guard let (k, end) = longestMatch(in: text, at: i) else { i += 1; continue }
            let token = tokens[k]
            if token.singleWord {
                let wordBefore = i > text.startIndex && Self.isWordCharacter(text[i - 1])
                let wordAfter = end < text.endIndex && Self.isWordCharacter(text[end])
                if wordBefore || wordAfter { i += 1; continue }
            }
            var start = i, stop = end
            if token.leftStrip {
                while start > textStart && text[start - 1].properties.isWhitespace { start -= 1 }
            }
            if token.rightStrip {
                while stop < text.endIndex && text[stop].properties.isWhitespace { stop += 1 }
            }
            if textStart < start {
                segments.append(.text(text[textStart..<start], atOrigin: atOrigin && textStart == text.startIndex))
            }
            segments.append(.token(token.id))
            textStart = stop
            i = stop
        }
        if textStart < text.endIndex {
            segments.append(.text(text[textStart...], atOrigin: atOrigin && textStart == text.startIndex))
        }
        return segments
    }

    private func longestMatch(in text: ArraySlice<Unicode.Scalar>, at i: Int) -> (Int, Int)? {
        var node = 0
        var best: (Int, Int)? = nil
        var j = i
        while j < text.endIndex, let child = children[node][text[j].value] {
            node = Int(child)
            j += 1
            if terminal[node] >= 0 { best = (Int(terminal[node]), j) }
        }
        return best
    }

    /// Rust's `char::is_alphanumeric`, which `single_word` uses for word boundaries.
    private static func isWordCharacter(_ s: Unicode.Scalar) -> Bool {
        s.properties.isAlphabetic || ScalarClass(s) == .number
    }
}
