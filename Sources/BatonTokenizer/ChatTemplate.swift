import Foundation

/// One turn of a conversation.
public struct ChatMessage: Sendable, Equatable {
    /// "system", "user", "assistant" or "tool".
    public var role: String
    public var content: String

    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }

    public static func system(_ content: String) -> ChatMessage { .init(role: "system", content: content) }
    public static func user(_ content: String) -> ChatMessage { .init(role: "user", content: content) }
    public static func assistant(_ content: String) -> ChatMessage { .init(role: "assistant", content: content) }
}

/// The chat templates of the model families Baton serves, rendered in Swift to exactly the
/// text their Jinja templates (tokenizer_config.json `chat_template`) produce for plain
/// conversations (no tool definitions).
///
/// The rendered text holds special tokens (including BOS for Llama-3) as text; encode it with
/// `addSpecialTokens: false`, as `apply_chat_template` does.
public struct ChatTemplate: Sendable, Equatable {
    public enum Family: Sendable, Equatable {
        /// `<|start_header_id|>role<|end_header_id|>\n\n content <|eot_id|>`.
        case llama3
        /// `<|im_start|>role\n content <|im_end|>\n`.
        case chatML
    }

    public var family: Family
    /// Llama-3: emitted before the first message (Llama 3.0) or always (3.1 and later).
    public var bosToken: String
    /// Llama 3.1+: the system turn always opens with "Cutting Knowledge Date: ...\nToday Date:
    /// ...\n\n", and a system message, if any, follows it. Nil for Llama 3.0.
    public var knowledgeCutoff: String?
    /// Llama 3.1+: the "Today Date" (the templates' default `date_string`).
    public var dateString: String
    /// ChatML: the system turn rendered when the conversation does not start with one.
    public var defaultSystemPrompt: String?
    /// ChatML: Qwen2.5 renders the default system turn even for an empty conversation and
    /// wraps tool results as `<tool_response>` in a user turn; Qwen2 does neither.
    public var qwen25Style: Bool

    public init(
        family: Family, bosToken: String = "", knowledgeCutoff: String? = nil,
        dateString: String = "26 Jul 2024", defaultSystemPrompt: String? = nil, qwen25Style: Bool = false
    ) {
        self.family = family
        self.bosToken = bosToken
        self.knowledgeCutoff = knowledgeCutoff
        self.dateString = dateString
        self.defaultSystemPrompt = defaultSystemPrompt
        self.qwen25Style = qwen25Style
    }

    /// Llama 3.0.
    public static let llama3 = ChatTemplate(family: .llama3, bosToken: "<|begin_of_text|>")
    /// Llama 3.1 / 3.3 (and 3.2 when rendered on 26 Jul 2024).
    public static let llama31 = ChatTemplate(
        family: .llama3, bosToken: "<|begin_of_text|>", knowledgeCutoff: "December 2023")
    /// ChatML without a default system prompt.
    public static let chatML = ChatTemplate(family: .chatML)
    public static let qwen2 = ChatTemplate(family: .chatML, defaultSystemPrompt: "You are a helpful assistant.")
    public static let qwen25 = ChatTemplate(
        family: .chatML, defaultSystemPrompt: "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.",
        qwen25Style: true)

    /// Recognises the family of a Jinja chat template by its markers and reads its constants
    /// (default system prompt, knowledge cutoff, default date); nil for other templates.
    /// `now` is the date templates that call `strftime_now` (Llama 3.2) render.
    public init?(detectingFrom template: String, bosToken: String, now: Date = Date()) {
        if template.contains("<|start_header_id|>") {
            self.init(family: .llama3, bosToken: bosToken)
            knowledgeCutoff = Self.literal(after: "Cutting Knowledge Date: ", in: template)
            if let date = Self.literal(after: "set date_string = \"", in: template) { dateString = date }
            if template.contains("strftime_now") {
                let format = DateFormatter()
                format.locale = Locale(identifier: "en_US_POSIX")
                format.dateFormat = "dd MMM yyyy"
                dateString = format.string(from: now)
            }
        } else if template.contains("<|im_start|>") {
            self.init(family: .chatML)
            defaultSystemPrompt = Self.defaultChatMLSystemPrompt(in: template)
            qwen25Style = template.contains("<tool_response>")
        } else {
            return nil
        }
    }

    /// The prompt text for `messages`; with `addGenerationPrompt`, the opening of the
    /// assistant's turn follows.
    public func render(messages: [ChatMessage], addGenerationPrompt: Bool) -> String {
        switch family {
        case .llama3: return renderLlama3(messages, addGenerationPrompt)
        case .chatML: return renderChatML(messages, addGenerationPrompt)
        }
    }

    private func renderLlama3(_ messages: [ChatMessage], _ addGenerationPrompt: Bool) -> String {
        func header(_ role: String) -> String { "<|start_header_id|>\(role)<|end_header_id|>\n\n" }
        var out = ""
        var rest = messages[...]
        if let cutoff = knowledgeCutoff {
            var system = ""
            if let first = rest.first, first.role == "system" {
                system = Self.jinjaTrim(first.content)
                rest = rest.dropFirst()
            }
            out +=
                bosToken + header("system") + "Cutting Knowledge Date: \(cutoff)\nToday Date: \(dateString)\n\n"
                + system + "<|eot_id|>"
            for m in rest {
                if m.role == "tool" || m.role == "ipython" {
                    // The template tests `content is iterable`, which a string is, so tool
                    // output goes through `tojson`: quoted and escaped.
                    out += header("ipython") + Self.jsonString(m.content) + "<|eot_id|>"
                } else {
                    out += header(m.role) + Self.jinjaTrim(m.content) + "<|eot_id|>"
                }
            }
        } else {
            for (k, m) in rest.enumerated() {
                out += (k == 0 ? bosToken : "") + header(m.role) + Self.jinjaTrim(m.content) + "<|eot_id|>"
            }
        }
        if addGenerationPrompt { out += header("assistant") }
        return out
    }

    private func renderChatML(_ messages: [ChatMessage], _ addGenerationPrompt: Bool) -> String {
        func turn(_ role: String, _ content: String) -> String { "<|im_start|>\(role)\n\(content)<|im_end|>\n" }
        var out = ""
        if let prompt = defaultSystemPrompt, messages.first?.role != "system",
            qwen25Style || !messages.isEmpty
        {
            out += turn("system", prompt)
        }
        for (k, m) in messages.enumerated() {
            if qwen25Style && m.role == "tool" {
                if k == 0 || messages[k - 1].role != "tool" { out += "<|im_start|>user" }
                out += "\n<tool_response>\n" + m.content + "\n</tool_response>"
                if k == messages.count - 1 || messages[k + 1].role != "tool" { out += "<|im_end|>\n" }
            } else {
                out += turn(m.role, m.content)
            }
        }
        if addGenerationPrompt { out += "<|im_start|>assistant\n" }
        return out
    }

    /// Jinja's `trim` filter: Python's `str.strip()`, whose whitespace is Unicode White_Space
    /// plus the separators U+001C...U+001F.
    static func jinjaTrim(_ s: String) -> String {
        func isSpace(_ c: Unicode.Scalar) -> Bool { c.properties.isWhitespace || (0x1C...0x1F).contains(c.value) }
        let scalars = Array(s.unicodeScalars)
        var lo = 0, hi = scalars.count
        while lo < hi && isSpace(scalars[lo]) { lo += 1 }
        while hi > lo && isSpace(scalars[hi - 1]) { hi -= 1 }
        return Normalizer.string(scalars[lo..<hi])
    }

    /// `json.dumps(s, ensure_ascii=False)`, transformers' `tojson` for a string.
    static func jsonString(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    /// The literal text after `marker` up to the end of the Jinja string or line (an escaped
    /// `\n`, a newline or a quote).
    private static func literal(after marker: String, in template: String) -> String? {
        guard let start = template.range(of: marker)?.upperBound else { return nil }
        var text = ""
        var i = start
        while i < template.endIndex {
            let c = template[i]
            if c == "\"" || c == "'" || c == "\n" || c == "\\" { break }
            text.append(c)
            i = template.index(after: i)
        }
        return text.isEmpty ? nil : text
    }

    /// The ChatML system prompt written as a literal, e.g.
    /// `'<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n'`; the template may hold
    /// the newline as a real newline or as Jinja's `\n` escape.
    private static func defaultChatMLSystemPrompt(in template: String) -> String? {
        var search = template.startIndex..<template.endIndex
        while let open = template.range(of: "<|im_start|>system", range: search) {
            search = open.upperBound..<template.endIndex
            var rest = template[open.upperBound...]
            if rest.hasPrefix("\\n") {
                rest = rest.dropFirst(2)
            } else if rest.hasPrefix("\n") {
                rest = rest.dropFirst()
            } else {
                continue
            }
            guard let close = rest.range(of: "<|im_end|>") else { continue }
            let body = rest[..<close.lowerBound]
            // A literal prompt, not an expression such as `' + messages[0]['content'] + '`.
            if body.isEmpty || body.contains("'") || body.contains("\"") || body.contains("{") { continue }
            return body.replacingOccurrences(of: "\\n", with: "\n")
        }
        return nil
    }
}
