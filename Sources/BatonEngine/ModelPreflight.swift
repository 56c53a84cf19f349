import BatonModels
import BatonTokenizer
import BatonTensor
import Foundation

/// A model directory's `config.json` and tokenizer, read without the weights (milliseconds), so
/// that a request is encoded and checked against the model's context length before minutes of
/// loading. `Engine.load(_:tokenizer:)` reuses its tokenizer.
public struct ModelPreflight: Sendable {
    public let directory: URL
    /// The language model's configuration (of a vision-language model: its text half).
    public let config: ModelConfig
    /// The whole configuration of a vision-language directory; nil for a text-only model.
    public let visionLanguageConfig: VisionLanguageConfig?
    public let tokenizer: Tokenizer

    public init(directory: URL) throws {
        self.directory = directory
        visionLanguageConfig = try Self.visionLanguageConfig(directory: directory)
        config = try visionLanguageConfig?.text ?? ModelConfig.load(directory: directory)
        tokenizer = try Tokenizer(directory: directory)
    }

    /// `directory/config.json` as a vision-language configuration when it names such an
    /// architecture (or model_type), else nil (a missing file is left to the text model's loader).
    static func visionLanguageConfig(directory: URL) throws -> VisionLanguageConfig? {
        try VisionLanguageConfig.load(directory: directory)
    }

    /// Token ids for a prompt, as `Engine.encode(prompt:chat:)` gives them.
    public func encode(prompt: String, chat: Bool) throws -> [Int32] {
        try PromptEncoding.encode(prompt, chat: chat, tokenizer: tokenizer, chatTemplate: tokenizer.chatTemplate)
    }

    /// Throws, as `Engine.checkContext` does, when the request does not fit the model's positions.
    public func checkContext(promptTokens: Int, maxTokens: Int) throws {
        try PromptEncoding.checkContext(
            promptTokens: promptTokens, maxTokens: maxTokens, limit: config.contextLength,
            limitOrigin: config.contextLengthOrigin,
            source: "in " + directory.appendingPathComponent("config.json").path)
    }
}

/// Prompt encoding and the context-length rule, shared by the engine and the preflight.
enum PromptEncoding {
    /// Token ids for a prompt: the chat template applied when `chat` is set, special tokens added.
    static func encode(_ prompt: String, chat: Bool, tokenizer: Tokenizer, chatTemplate: ChatTemplate?) throws
        -> [Int32]
    {
        if chat {
            guard let chatTemplate else {
                throw BatonError.invalidArgument(
                    "--chat: the model's tokenizer_config.json has no chat template Baton knows (Llama-3 or ChatML)")
            }
            let text = chatTemplate.render(messages: [.user(prompt)], addGenerationPrompt: true)
            return tokenizer.encode(text, addSpecialTokens: false)
        }
        return tokenizer.encode(prompt, addSpecialTokens: true)
    }

    /// Rejects requests longer than `limit` positions (`ModelConfig.contextLength`), naming both numbers
    /// and where the limit comes from (`limitOrigin`, `ModelConfig.contextLengthOrigin`; `source`: "in
    /// DIR/config.json" or "of preset NAME"). The last new token is never fed back, so
    /// `prompt + maxTokens - 1` positions are used.
    static func checkContext(promptTokens: Int, maxTokens: Int, limit: Int, limitOrigin: String, source: String) throws
    {
        if promptTokens == 0 { throw BatonError.invalidArgument("the prompt is empty (0 tokens)") }
        if promptTokens + max(maxTokens, 1) - 1 > limit {
            throw BatonError.invalidArgument(
                "prompt of \(promptTokens) tokens + \(maxTokens) new tokens exceeds the model's \(limitOrigin) "
                    + source)
        }
    }
}
