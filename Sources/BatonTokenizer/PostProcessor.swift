import BatonTensor

/// tokenizer.json's `post_processor`, for a single sequence: which special ids go around the
/// encoded text when `addSpecialTokens` is true.
indirect enum PostProcessor: Sendable {
    /// TemplateProcessing's `single`: each item either special ids or the text ($A).
    case template([TemplateItem])
    /// BertProcessing / RobertaProcessing: cls, text, sep.
    case surround(cls: Int32, sep: Int32)
    /// ByteLevel (offsets only) and other processors that leave ids alone.
    case identity
    case sequence([PostProcessor])

    enum TemplateItem: Sendable {
        case special([Int32])
        case sequence
    }

    static func parse(_ field: JSONField) throws -> PostProcessor? {
        if field.isNull { return nil }
        let type = try field["type"].string()
        switch type {
        case "TemplateProcessing":
            let specials = field["special_tokens"]
            return .template(
                try field["single"].array().map { item in
                    if !item["Sequence"].isNull { return .sequence }
                    let name = try item["SpecialToken"]["id"].string()
                    let entry = specials[name]
                    if entry.isNull {
                        throw BatonError.invalidModel(
                            "\(field.file): `\(item.path)` names special token \"\(name)\" missing from `\(specials.path)`"
                        )
                    }
                    return .special(
                        try entry["ids"].array().map { field in
                            guard let id = Int32(exactly: try field.int()) else {
                                throw field.failure(expected: "a token id")
                            }
                            return id
                        })
                })
        case "BertProcessing", "RobertaProcessing":
            func id(_ key: String) throws -> Int32 {
                let pair = try field[key].array()
                guard pair.count == 2, let id = Int32(exactly: try pair[1].int()) else {
                    throw field[key].failure(expected: "[token, id]")
                }
                return id
            }
            return .surround(cls: try id("cls"), sep: try id("sep"))
        case "ByteLevel": return .identity
        case "Sequence":
            return .sequence(try field["processors"].array().compactMap { try parse($0) })
        default:
            throw field.unsupportedType(
                type, of: "post_processor",
                supported: "TemplateProcessing, BertProcessing, RobertaProcessing, ByteLevel, Sequence")
        }
    }

    func process(_ ids: [Int32]) -> [Int32] {
        switch self {
        case .identity: return ids
        case .surround(let cls, let sep): return [cls] + ids + [sep]
        case .template(let items):
            return items.flatMap { item -> [Int32] in
                switch item {
                case .special(let special): return special
                case .sequence: return ids
                }
            }
        case .sequence(let steps): return steps.reduce(ids) { $1.process($0) }
        }
    }
}
