/// Decodes generated ids one at a time. Each call returns only newly completed text: a token
/// that ends inside a UTF-8 sequence (byte-level tokens split characters such as emoji) is
/// held back until the sequence completes, and with a ByteFallback decoder a run of `<0xNN>`
/// tokens is held back until a token that is not a byte ends it, since the decoder turns a run
/// that is not valid UTF-8 as a whole into one U+FFFD per byte (a run `<0x4C> <0xE2>` is "��",
/// not "L�"). The text of all calls plus `finish()` equals `decode` of all ids.
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
        // U+FFFD at the end means the last bytes do not form a character yet; an open byte run
        // may still turn into U+FFFDs as a whole.
        guard text.count > emitted.count, !text.ends(with: [0xEF, 0xBF, 0xBD]),
            !tokenizer.endsInByteFallbackRun(window, skipSpecialTokens: skipSpecialTokens)
        else { return "" }
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

extension Tokenizer {
    /// Whether the last token that `decode(ids)` keeps is a `<0xNN>` byte token of a ByteFallback
    /// decoder, i.e. a byte run that a later byte token could still make invalid.
    func endsInByteFallbackRun(_ ids: [Int32], skipSpecialTokens: Bool) -> Bool {
        guard let decoder, decoder.containsByteFallback else { return false }
        for id in ids.reversed() {
            if let added = addedTokens[id] {
                if skipSpecialTokens && added.special { continue }
                return false
            }
            guard let token = model.token(for: id) else { continue }  // unknown ids decode to nothing
            return TokenDecoder.fallbackByte(token) != nil
        }
        return false
    }
}

extension TokenDecoder {
    /// Whether this decoder, or a step of it, is ByteFallback.
    var containsByteFallback: Bool {
        switch self {
        case .byteFallback: true
        case .sequence(let steps): steps.contains { $0.containsByteFallback }
        default: false
        }
    }
}
