import BatonEngine
import BatonTokenizer
import BatonVision

/// A chat request's prompt: its token ids and, when it has images or videos, what the engine's
/// job needs of them.
struct ChatPrompt: Sendable {
    var ids: [Int32]
    var visual: VisualRequest?
}

extension OpenAIServer {
    /// The prompt of a chat request: its messages through the model's chat template, with a
    /// generation prompt for the assistant's turn.
    ///
    /// Content parts: `text` parts are joined with newlines on a text-only model and written one
    /// after the other on a vision-language model, as Qwen2.5-VL's template writes them.
    /// `image_url` and `video_url` parts need a vision tower (a Qwen2.5-VL model); each stands
    /// where it sits in its message (`visualChatPrompt`). Text-only models refuse them.
    func chatPrompt(_ input: [ChatMessageInput]) async throws -> ChatPrompt {
        guard !input.isEmpty else {
            throw APIError.invalidRequest("messages must hold at least one message", param: "messages")
        }
        var messages: [ChatMessage] = [], media: [MediaPart] = []
        for (index, message) in input.enumerated() {
            let role: String
            switch message.role {
            case "system", "user", "assistant": role = message.role
            case "developer": role = "system"  // OpenAI's newer name for the system turn
            default:
                throw APIError.invalidRequest(
                    "messages.\(index).role must be system, developer, user or assistant, got '\(message.role)'",
                    param: "messages.\(index).role")
            }
            let content = try text(of: message.content, at: "messages.\(index).content", media: &media)
            messages.append(ChatMessage(role: role, content: content))
        }
        if !media.isEmpty { return try await visualChatPrompt(messages, media: media) }
        guard let template = engine.chatTemplate else {
            throw APIError.invalidRequest(
                "this model's tokenizer_config.json has no chat template Baton knows (Llama-3 or ChatML); use /v1/completions",
                param: "messages")
        }
        let rendered = template.render(messages: messages, addGenerationPrompt: true)
        return ChatPrompt(ids: try tokenizer().encode(rendered, addSpecialTokens: false), visual: nil)
    }

    /// A message's text, with each image or video part's placeholder block (appended to `media`).
    private func text(of content: MessageContent?, at param: String, media: inout [MediaPart]) throws -> String {
        switch content {
        case .none: return ""
        case .text(let text): return text
        case .parts(let parts):
            var texts: [String] = []
            for (index, part) in parts.enumerated() {
                let where_ = "\(param).\(index)"
                switch part.type {
                case "text":
                    guard let text = part.text else {
                        throw APIError.invalidRequest("a text part needs 'text'", param: "\(where_).text")
                    }
                    // U+FFFC marks where an image or video sits in the text the chat template sees.
                    guard !text.contains(VisualPromptEncoding.marker) else {
                        throw APIError.invalidRequest(
                            "text parts may not hold U+FFFC (object replacement character)", param: "\(where_).text")
                    }
                    texts.append(text)
                case "image_url", "video_url":
                    let visual = try visualPart(part, at: where_)
                    media.append(visual)
                    texts.append(VisualPromptEncoding.marker)
                default:
                    throw APIError.invalidRequest(
                        "content part type must be text, image_url or video_url, got '\(part.type)'",
                        param: "\(where_).type")
                }
            }
            return texts.joined(separator: engine.visionLanguage == nil ? "\n" : "")
        }
    }

    /// An image or video part, refused (naming the model) unless the model has a vision tower.
    private func visualPart(_ part: ContentPart, at param: String) throws -> MediaPart {
        let kind: BatonVision.VisualInput.Kind = part.type == "video_url" ? .video : .image
        guard engine.visionLanguage != nil else {
            throw APIError.invalidRequest(
                "the model '\(options.modelName)' is text-only (\(engine.config.architecture.rawValue)): "
                    + "'\(part.type)' parts need a vision-language model (Qwen2.5-VL)",
                param: param, code: "unsupported_content")
        }
        guard let media = kind == .video ? part.videoUrl : part.imageUrl else {
            throw APIError.invalidRequest(
                "a \(part.type) part needs '\(part.type)': {\"url\": ...}", param: "\(param).\(part.type)",
                code: "missing_required_parameter")
        }
        return MediaPart(kind: kind, media: media, param: param)
    }
}
