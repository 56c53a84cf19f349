import Foundation
import HTTPTypes
import Hummingbird

/// The parts of a response every body and chunk repeat.
struct Reply: Sendable {
    let endpoint: Endpoint
    let id: String
    let created: Int
    let model: String

    func body(_ choices: [Choice], usage: Usage??, chunk: Bool) -> CompletionBody {
        CompletionBody(
            id: id, object: chunk ? endpoint.chunkObject : endpoint.object, created: created,
            model: model, choices: choices, usage: usage)
    }

    /// A choice carrying `text` (completions: `text`; chat: `message` or, in a chunk, `delta`).
    func choice(_ text: String?, finish: FinishReason?, chunk: Bool, role: String? = nil) -> Choice {
        switch (endpoint, chunk) {
        case (.completion, _):
            Choice(text: text ?? "", finishReason: finish)
        case (.chat, false):
            Choice(message: .init(role: "assistant", content: text ?? ""), finishReason: finish)
        case (.chat, true):
            Choice(delta: .init(role: role, content: text), finishReason: finish)
        }
    }
}

extension OpenAIServer {
    /// Waits for the whole text, then answers one JSON body.
    func wholeResponse(_ handle: GenerationHandle, reply: Reply, headers: HTTPFields) async throws -> Response {
        var text = ""
        return try await withTaskCancellationHandler {
            defer { handle.cancel() }
            for await event in handle.events {
                switch event {
                case .text(let piece):
                    text += piece
                case .finished(let reason, let usage):
                    return try json(
                        reply.body([reply.choice(text, finish: reason, chunk: false)], usage: usage, chunk: false),
                        headers: headers)
                case .failed(let error):
                    throw error
                case .cancelled:
                    break
                }
            }
            // The job was cancelled (the client left): nobody reads this.
            return Response(status: .init(code: 499, reasonPhrase: "Client Closed Request"))
        } onCancel: {
            handle.cancel()
        }
    }

    /// Answers server-sent events as OpenAI streams them: `data: {chunk}` per text piece, a last
    /// chunk with `finish_reason`, a usage chunk with no choices when `include_usage`, then
    /// `data: [DONE]`. A write that fails (the client left) cancels the job.
    func streamResponse(_ handle: GenerationHandle, reply: Reply, includeUsage: Bool, headers: HTTPFields) -> Response {
        var headers = headers
        headers[.contentType] = "text/event-stream"
        headers[.cacheControl] = "no-cache"
        let usageField: Usage?? = includeUsage ? .some(nil) : nil
        let metrics = self.metrics
        let body = ResponseBody { writer in
            func send(_ body: CompletionBody) async throws {
                var buffer = ByteBuffer(string: "data: ")
                buffer.writeBytes(try responseEncoder.encode(body))
                buffer.writeString("\n\n")
                try await writer.write(buffer)
            }
            do {
                if reply.endpoint == .chat {
                    try await send(
                        reply.body(
                            [reply.choice("", finish: nil, chunk: true, role: "assistant")], usage: usageField,
                            chunk: true))
                }
                for await event in handle.events {
                    switch event {
                    case .text(let piece):
                        try await send(
                            reply.body([reply.choice(piece, finish: nil, chunk: true)], usage: usageField, chunk: true))
                    case .finished(let reason, let usage):
                        try await send(
                            reply.body(
                                [reply.choice(reply.endpoint == .chat ? nil : "", finish: reason, chunk: true)],
                                usage: usageField, chunk: true))
                        if includeUsage { try await send(reply.body([], usage: .some(usage), chunk: true)) }
                    case .failed(let error):
                        // Headers are gone: the error travels as an event, as OpenAI's clients read it.
                        var buffer = ByteBuffer(string: "data: ")
                        buffer.writeImmutableBuffer(error.body)
                        buffer.writeString("\n\n")
                        try await writer.write(buffer)
                    case .cancelled:
                        break
                    }
                }
                try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                try await writer.finish(nil)
            } catch {
                handle.cancel()
                metrics.streamsAbandoned.increment()
                throw error
            }
        }
        return Response(status: .ok, headers: headers, body: body)
    }
}
