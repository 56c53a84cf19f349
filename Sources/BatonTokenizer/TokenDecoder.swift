import BatonTensor

/// tokenizer.json's `decoder`: turns token strings back into text. Each step maps a list of
/// strings to a list of strings (tokenizers' `decode_chain`); the results are concatenated.
indirect enum TokenDecoder: Sendable {
    case byteLevel
    case replace(pattern: SplitPattern, content: String)
    case byteFallback
    case fuse
    case strip(content: Unicode.Scalar, start: Int, stop: Int)
    case metaspace(replacement: Unicode.Scalar, prependScheme: PrependScheme)
    case sequence([TokenDecoder])

    static func parse(_ field: JSONField) throws -> TokenDecoder? {
        if field.isNull { return nil }
        let type = try field["type"].string()
        switch type {
        case "ByteLevel": return .byteLevel
        case "Replace":
            return .replace(
                pattern: try Normalizer.parsePattern(field["pattern"]),
                content: try field["content"].string())
        case "ByteFallback": return .byteFallback
        case "Fuse": return .fuse
        case "Strip":
            let content = try field["content"].string()
            guard content.unicodeScalars.count == 1, let scalar = content.unicodeScalars.first else {
                throw field["content"].failure(expected: "one character")
            }
            return .strip(content: scalar, start: try field["start"].int(), stop: try field["stop"].int())
        case "Metaspace":
            let m = try PreTokenizer.metaspaceFields(field)
            return .metaspace(replacement: m.replacement, prependScheme: m.prependScheme)
        case "Sequence":
            return .sequence(try field["decoders"].array().compactMap { try parse($0) })
        default:
            throw field.unsupportedType(
                type, of: "decoder",
                supported: "ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace, Sequence")
        }
    }

    func decodeChain(_ tokens: [String]) -> [String] {
        switch self {
        case .sequence(let steps):
            return steps.reduce(tokens) { $1.decodeChain($0) }
        case .byteLevel:
            // Each token's characters back to bytes (a token with a character outside the
            // table contributes its own UTF-8), then one lossy UTF-8 decode of everything.
            var bytes = [UInt8]()
            for token in tokens {
                let start = bytes.count
                for scalar in token.unicodeScalars {
                    guard let b = ByteLevelAlphabet.byte(for: scalar) else {
                        bytes.removeSubrange(start...)
                        bytes.append(contentsOf: token.utf8)
                        break
                    }
                    bytes.append(b)
                }
            }
            return [String(decoding: bytes, as: UTF8.self)]
        case .replace(let pattern, let content):
            return tokens.map { token in
                let scalars = Array(token.unicodeScalars)
                var out = ""
                var last = 0
                for m in pattern.matches(in: scalars[...]) {
                    out += Normalizer.string(scalars[last..<m.lowerBound]) + content
                    last = m.upperBound
                }
                return out + Normalizer.string(scalars[last...])
            }
        case .byteFallback:
            var out = [String]()
            var pending = [UInt8]()
            func flush() {
                guard !pending.isEmpty else { return }
                // Valid UTF-8 survives a lossy decode unchanged (String(validating:) needs macOS 15).
                let text = String(decoding: pending, as: UTF8.self)
                if text.utf8.elementsEqual(pending) {
                    out.append(text)
                } else {
                    out.append(contentsOf: repeatElement("\u{FFFD}", count: pending.count))
                }
                pending.removeAll()
            }
            for token in tokens {
                if let byte = Self.fallbackByte(token) {
                    pending.append(byte)
                } else {
                    flush()
                    out.append(token)
                }
            }
            flush()
            return out
        case .fuse:
            return [tokens.joined()]
        case .strip(let content, let start, let stop):
            return tokens.map { token in
                var scalars = Array(token.unicodeScalars)
                var lo = 0
                while lo < start && lo < scalars.count && scalars[lo] == content { lo += 1 }
                var hi = scalars.count
                var removed = 0
                while removed < stop && hi > lo && scalars[hi - 1] == content { hi -= 1; removed += 1 }
                scalars = Array(scalars[lo..<hi])
                return Normalizer.string(scalars)
            }
        case .metaspace(let replacement, let scheme):
            // The first token loses its replacement characters (the prepended space); later
            // ones turn them into spaces.
            return tokens.enumerated().map { k, token in
                var view = String.UnicodeScalarView()
                for scalar in token.unicodeScalars {
                    if scalar != replacement {
                        view.append(scalar)
                    } else if k != 0 || scheme == .never {
                        view.append(" ")
                    }
                }
                return String(view)
            }
        }
    }

    /// The byte of a `<0xNN>` token.
    static func fallbackByte(_ token: String) -> UInt8? {
        let u = Array(token.utf8)
        guard u.count == 6, u[0] == 0x3C, u[1] == 0x30, u[2] == 0x78, u[5] == 0x3E else { return nil }
        return UInt8(String(decoding: u[3...4], as: UTF8.self), radix: 16)
    }
}
