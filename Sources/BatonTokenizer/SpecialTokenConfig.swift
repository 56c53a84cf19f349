import BatonTensor
import Foundation

/// What tokenizer_config.json, generation_config.json and config.json say about special
/// tokens and the chat template.
struct SpecialTokenConfig {
    var bosToken: String?
    var eosToken: String?
    var bosTokenIds: [Int] = []
    var eosTokenIds: [Int] = []
    var chatTemplate: String?

    init(tokenizerConfig: Data?, generationConfig: Data?, modelConfig: Data?) throws {
        if let tokenizerConfig {
            let root = try JSONField.parse(tokenizerConfig, file: "tokenizer_config.json")
            bosToken = try root["bos_token"].tokenContent()
            eosToken = try root["eos_token"].tokenContent()
            chatTemplate = try Self.template(root["chat_template"])
        }
        // generation_config.json is what generation uses; config.json is the older place.
        for (data, file) in [(generationConfig, "generation_config.json"), (modelConfig, "config.json")] {
            guard let data else { continue }
            let root = try JSONField.parse(data, file: file)
            if bosTokenIds.isEmpty { bosTokenIds = try root["bos_token_id"].intList() }
            eosTokenIds += try root["eos_token_id"].intList()
        }
    }

    /// `chat_template` is a string, or a list of `{"name", "template"}` of which "default" is
    /// the chat template.
    private static func template(_ field: JSONField) throws -> String? {
        if field.isNull { return nil }
        if field.value is String { return try field.string() }
        for entry in try field.array() where try entry["name"].optionalString() == "default" {
            return try entry["template"].string()
        }
        return nil
    }
}
