/// Decodes generated ids one at a time. Each call returns only newly completed text: a token
/// that ends inside a UTF-8 sequence (byte-level tokens split characters such as emoji) is
/// held back until the sequence completes. The text of all calls plus `finish()` equals
/// `decode` of all ids.
///
/// Each step decodes a short window (the ids since the last emitted text, plus the one
/// before them for context, so that decoders which treat the first token specially, such as
/// Metaspace and Strip, see the same text mid-stream as in a full decode).
public struct StreamingDecoder: Sendable {
    private let tokenizer: Tokenizer
    private let skipSpecialTokens: Bool
    private var window: [Int32] = []
    /// Bytes of the window's text already returned.
    private var emitted: [UInt8] = []
    /// Ids at the start of `window` kept only as context.
    private var contextCount = 0

    public init(tokenizer: Tokenizer, skipSpecialTokens: Bool = false) {
        self.tokenizer = tokenizer
        self.skipSpecialTokens = skipSpecialTokens
    }

    /// Adds one id; returns the text it completes, or "" while a character is incomplete.
    public mutating func next(_ id: Int32) -> String {
        window.append(id)
        let text = Array(tokenizer.decode(window, skipSpecialTokens: skipSpecialTokens).utf8)
        // U+FFFD at the end means the last bytes do not form a character yet.
        guard text.count > emitted.count, !text.ends(with: [0xEF, 0xBF, 0xBD]) else { return "" }
        let fresh = newText(text)
        let keep = window.count - contextCount
        window.removeFirst(contextCount)
        contextCount = keep
        emitted = Array(tokenizer.decode(window, skipSpecialTokens: skipSpecialTokens).utf8)
        return fresh
    }

    /// Returns whatever is still held back (incomplete characters as U+FFFD) and starts over.
    public mutating func finish() -> String {
        let text = Array(tokenizer.decode(window, skipSpecialTokens: skipSpecialTokens).utf8)
        let rest = text.count > emitted.count ? newText(text) : ""
        window = []
        emitted = []
        contextCount = 0
        return rest
    }

    /// The part of `text` after what was already returned; if a decoder rewrote earlier text
    /// (it should not), the part after the common prefix.
    private func newText(_ text: [UInt8]) -> String {
        var common = 0
        while common < emitted.count && common < text.count && text[common] == emitted[common] { common += 1 }
        return String(decoding: text[common...], as: UTF8.self)
    }
}

extension Array where Element == UInt8 {
    fileprivate func ends(with suffix: [UInt8]) -> Bool {
        count >= suffix.count && self[(count - suffix.count)...].elementsEqual(suffix)
    }
}
