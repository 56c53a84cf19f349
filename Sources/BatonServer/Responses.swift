import Foundation

// The response bodies and stream chunks, as OpenAI's clients parse them. Encoded with
// `.convertToSnakeCase`. `finish_reason` and `logprobs` are written as explicit nulls where
// OpenAI writes them.

/// `usage`. `baton` is Baton's own, present on requests with images or videos.
public struct Usage: Codable, Sendable, Equatable {
    public var promptTokens: Int
    public var completionTokens: Int
    public var totalTokens: Int
    public var baton: VisualUsage?

    public init(promptTokens: Int, completionTokens: Int, baton: VisualUsage? = nil) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.totalTokens = promptTokens + completionTokens
        self.baton = baton
    }
}

/// `usage.baton`: the prompt's visual tokens (its image and video pad tokens, counted in
/// `prompt_tokens` too) and how many of them came from the encoder cache, whose images and videos
/// were neither decoded nor run through the vision tower. Not OpenAI's
/// `prompt_tokens_details.cached_tokens`: that counts prompt tokens whose prefill was reused,
/// and these still go through the language model's prefill.
public struct VisualUsage: Codable, Sendable, Equatable {
    public var visualTokens: Int
    public var cachedVisualTokens: Int

    public init(visualTokens: Int, cachedVisualTokens: Int) {
        self.visualTokens = visualTokens
        self.cachedVisualTokens = cachedVisualTokens
    }
}

/// Why a choice ended: an end-of-sequence token or a stop string ("stop"), or max tokens ("length").
public enum FinishReason: String, Codable, Sendable {
    case stop
    case length
}

/// GET /v1/models.
struct ModelList: Encodable {
    struct Model: Encodable {
        var id: String
        var object = "model"
        var created: Int
        var ownedBy = "baton"
    }

    var object = "list"
    var data: [Model]
}

/// One choice of a completion or of one of its chunks: `text` (completions) or `message` /
/// `delta` (chat), with `finish_reason` null until the last chunk.
struct Choice: Encodable {
    struct Message: Encodable {
        var role: String?
        var content: String?
    }

    var index = 0
    var text: String?
    var message: Message?
    var delta: Message?
    var finishReason: FinishReason?

    enum CodingKeys: String, CodingKey { case index, text, message, delta, logprobs, finishReason }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(index, forKey: .index)
        try container.encodeIfPresent(text, forKey: .text)
        try container.encodeIfPresent(message, forKey: .message)
        try container.encodeIfPresent(delta, forKey: .delta)
        try container.encodeNil(forKey: .logprobs)
        try container.encode(finishReason, forKey: .finishReason)
    }
}

/// A whole response (`text_completion`, `chat.completion`) or one stream chunk
/// (`text_completion`, `chat.completion.chunk`).
struct CompletionBody: Encodable {
    var id: String
    var object: String
    var created: Int
    var model: String
    var choices: [Choice]
    /// Present on whole responses; in a stream, null on every chunk but the last when
    /// `stream_options.include_usage` is set, absent otherwise. The synthesized encoding does
    /// exactly that: it leaves the outer nil out and writes the inner nil as null.
    var usage: Usage??
}

/// The JSON encoder for every body: snake_case keys, no escaped slashes.
let responseEncoder: JSONEncoder = {
    let encoder = JSONEncoder()
    encoder.keyEncodingStrategy = .convertToSnakeCase
    encoder.outputFormatting = [.withoutEscapingSlashes]
    return encoder
}()

/// The JSON decoder for request bodies: snake_case keys.
let requestDecoder: JSONDecoder = {
    let decoder = JSONDecoder()
    decoder.keyDecodingStrategy = .convertFromSnakeCase
    return decoder
}()
