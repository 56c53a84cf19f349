import Foundation

// The request bodies of /v1/completions and /v1/chat/completions, as OpenAI defines them.
// Decoded with `.convertFromSnakeCase`: `max_tokens` is `maxTokens`. Fields Baton does not use
// (user, logit_bias, presence_penalty, ...) are accepted and ignored, as other OpenAI-compatible
// servers do; `n` > 1, `logprobs`, `best_of` > 1 and `echo` are refused (400), never ignored.

/// `stop`: one string or a list of them.
public struct StopStrings: Decodable, Sendable {
    public var values: [String]

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            values = []
        } else if let one = try? container.decode(String.self) {
            values = [one]
        } else {
            values = try container.decode([String].self)
        }
    }
}

/// `stream_options`.
public struct StreamOptions: Decodable, Sendable {
    public var includeUsage: Bool?
}

/// Baton's own field, `"baton": {"method": "spava", "ignore_eos": true}`: which attention method
/// runs this request, and whether to generate past end-of-sequence tokens (fixed-length runs for
/// benchmarks, as vLLM's `ignore_eos`).
public struct BatonFields: Decodable, Sendable {
    public var method: String?
    public var ignoreEos: Bool?
}

/// What both endpoints share: the model, sampling, stop strings, streaming and Baton's field.
public struct GenerationRequestFields: Decodable, Sendable {
    public var model: String
    public var temperature: Double?
    public var topP: Double?
    public var seed: Int64?
    public var stop: StopStrings?
    public var n: Int?
    public var stream: Bool?
    public var streamOptions: StreamOptions?
    public var baton: BatonFields?
}

/// The fields only one endpoint has (its prompt, its limits, what it refuses).
public protocol EndpointFields: Decodable, Sendable {
    /// The most new tokens the request asks for; nil leaves the endpoint's default.
    var requestedMaxTokens: Int? { get }
}

/// A request body: the shared fields and the endpoint's own sit side by side in one JSON object,
/// so both parts decode from that same object (the shared ones first: a missing `model` is named
/// before anything else).
public struct GenerationRequest<Own: EndpointFields>: Decodable, Sendable {
    public var shared: GenerationRequestFields
    public var own: Own

    public init(from decoder: any Decoder) throws {
        shared = try GenerationRequestFields(from: decoder)
        own = try Own(from: decoder)
    }
}

/// `prompt`: a string, a list holding one string, or one list of token ids.
public enum PromptInput: Decodable, Sendable {
    case text(String)
    case tokenIds([Int32])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) {
            self = .text(text)
        } else if let ids = try? container.decode([Int32].self) {
            self = .tokenIds(ids)
        } else if let texts = try? container.decode([String].self) {
            guard texts.count == 1 else {
                throw DecodingError.dataCorruptedError(
                    in: container,
                    debugDescription: "one prompt per request (got \(texts.count)); Baton does not batch prompts")
            }
            self = .text(texts[0])
        } else {
            throw DecodingError.typeMismatch(
                String.self,
                .init(
                    codingPath: container.codingPath,
                    debugDescription: "expected a string, a list of one string, or a list of token ids"))
        }
    }
}

/// POST /v1/completions.
public typealias CompletionRequest = GenerationRequest<CompletionFields>

public struct CompletionFields: EndpointFields {
    public var prompt: PromptInput
    public var maxTokens: Int?
    public var logprobs: Int?
    public var echo: Bool?
    public var bestOf: Int?

    public var requestedMaxTokens: Int? { maxTokens }
}

/// One part of a message's `content` list.
public struct ContentPart: Decodable, Sendable {
    /// `image_url` / `video_url`: where the file is (a path on the server, `file://` or `data:`),
    /// and optionally how to sample and size it, named as generate's flags (`fps` and
    /// `max_frames` are for videos; nil keeps Qwen2.5-VL's defaults).
    public struct MediaURL: Decodable, Sendable {
        public var url: String
        public var fps: Double?
        public var maxFrames: Int?
        public var minPixels: Int?
        public var maxPixels: Int?
    }

    public var type: String
    public var text: String?
    public var imageUrl: MediaURL?
    public var videoUrl: MediaURL?
}

/// A message's `content`: a string, a list of parts, or null (an assistant turn with tool calls).
public enum MessageContent: Decodable, Sendable {
    case text(String)
    case parts([ContentPart])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .text("")
        } else if let text = try? container.decode(String.self) {
            self = .text(text)
        } else {
            self = .parts(try container.decode([ContentPart].self))
        }
    }
}

/// One chat message.
public struct ChatMessageInput: Decodable, Sendable {
    public var role: String
    public var content: MessageContent?
}

/// POST /v1/chat/completions.
public typealias ChatCompletionRequest = GenerationRequest<ChatCompletionFields>

public struct ChatCompletionFields: EndpointFields {
    public var messages: [ChatMessageInput]
    public var maxTokens: Int?
    public var maxCompletionTokens: Int?
    public var logprobs: Bool?

    /// `max_completion_tokens` replaces the older `max_tokens`; either is read.
    public var requestedMaxTokens: Int? { maxCompletionTokens ?? maxTokens }
}
