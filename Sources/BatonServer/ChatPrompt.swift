import BatonTokenizer

extension OpenAIServer {
    /// The prompt ids of a chat request: its messages through the model's chat template, with a
    /// generation prompt for the assistant's turn.
    ///
    /// Content parts: `text` parts are joined with newlines. `image_url` and `video_url` parts
    /// need a vision tower; this engine serves text-only models, so they are refused here. The
    /// seam for a vision-language engine is `visualPart`: it would turn the part into the model's
    /// placeholder tokens and the pixels for its encoder (BatonVision), nothing fetched from the network.
    func chatPromptIds(_ input: [ChatMessageInput]) throws -> [Int32] {
        guard !input.isEmpty else {
            throw APIError.invalidRequest("messages must hold at least one message", param: "messages")
        }
        guard let template = engine.chatTemplate else {
            throw APIError.invalidRequest(
                "this model's tokenizer_config.json has no chat template Baton knows (Llama-3 or ChatML); use /v1/completions",
                param: "messages")
        }
        var messages: [ChatMessage] = []
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
            messages.append(
                ChatMessage(role: role, content: try text(of: message.content, at: "messages.\(index).content")))
        }
        let rendered = template.render(messages: messages, addGenerationPrompt: true)
        return try tokenizer().encode(rendered, addSpecialTokens: false)
    }

    private func text(of content: MessageContent?, at param: String) throws -> String {
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
                    texts.append(text)
                case "image_url", "video_url":
                    try visualPart(part, at: where_)
                default:
                    throw APIError.invalidRequest(
                        "content part type must be text, image_url or video_url, got '\(part.type)'",
                        param: "\(where_).type")
                }
            }
            return texts.joined(separator: "\n")
        }
    }

    /// Where a vision-language engine takes images and videos in; text-only models refuse them.
    private func visualPart(_ part: ContentPart, at param: String) throws {
        throw APIError.invalidRequest(
            "this model has no vision tower: '\(part.type)' parts need a vision-language model",
            param: param, code: "unsupported_content")
    }
}
