import BatonEngine
import BatonParallel
import BatonTensor
import BatonTokenizer
import Foundation
import HTTPTypes
import Hummingbird

extension HTTPField.Name {
    /// The method that ran the request (`dense`, `apb`, ...), after `auto` chose.
    static let batonMethod = HTTPField.Name("X-Baton-Method")!
}

/// Which endpoint a response is for: the names of its objects and where its text goes.
enum Endpoint {
    case completion, chat

    var idPrefix: String { self == .chat ? "chatcmpl-" : "cmpl-" }
    var object: String { self == .chat ? "chat.completion" : "text_completion" }
    var chunkObject: String { self == .chat ? "chat.completion.chunk" : "text_completion" }
    /// The field that holds the prompt (in errors' `param`).
    var promptField: String { self == .chat ? "messages" : "prompt" }
}

extension OpenAIServer {
    /// POST /v1/completions.
    func completions(_ request: Request, context: BasicRequestContext) async -> Response {
        await answering {
            let body = try await decode(CompletionRequest.self, from: request, context: context)
            try check(body)
            let fields = body.own
            if fields.logprobs != nil { throw APIError.invalidRequest("logprobs are not supported", param: "logprobs") }
            if fields.echo == true { throw APIError.invalidRequest("echo is not supported", param: "echo") }
            if let bestOf = fields.bestOf, bestOf != 1 {
                throw APIError.invalidRequest("best_of must be 1", param: "best_of")
            }
            let ids: [Int32]
            switch fields.prompt {
            case .text(let text):
                ids = try tokenizer().encode(text, addSpecialTokens: true)
            case .tokenIds(let given):
                let vocabulary = engine.config.vocabSize
                if let bad = given.first(where: { $0 < 0 || Int($0) >= vocabulary }) {
                    throw APIError.invalidRequest(
                        "token id \(bad) is outside the vocabulary (0..<\(vocabulary))", param: "prompt")
                }
                ids = given
            }
            // OpenAI's default for completions is 16 new tokens.
            return try await generate(ids, body, endpoint: .completion, defaultMaxTokens: 16)
        }
    }

    /// POST /v1/chat/completions.
    func chatCompletions(_ request: Request, context: BasicRequestContext) async -> Response {
        await answering {
            let body = try await decode(ChatCompletionRequest.self, from: request, context: context)
            try check(body)
            if body.own.logprobs == true {
                throw APIError.invalidRequest("logprobs are not supported", param: "logprobs")
            }
            let prompt = try await chatPrompt(body.own.messages)
            // Chat's default is as many tokens as the context leaves.
            return try await generate(prompt.ids, body, endpoint: .chat, defaultMaxTokens: nil, visual: prompt.visual)
        }
    }

    /// Runs `body`, answering any `APIError` (or other error, as 500) as OpenAI does.
    private func answering(_ body: () async throws -> Response) async -> Response {
        do {
            return try await body()
        } catch let error as APIError {
            return error.response
        } catch {
            return APIError.engineFailure(error).response
        }
    }

    private func decode<T: Decodable>(_ type: T.Type, from request: Request, context: BasicRequestContext) async throws
        -> T
    {
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: options.maxBodyBytes)
        } catch {
            throw APIError.invalidRequest(
                "the request body is larger than \(options.maxBodyBytes) bytes or could not be read")
        }
        do {
            return try requestDecoder.decode(T.self, from: Data(buffer.readableBytesView))
        } catch {
            throw APIError.decoding(error)
        }
    }

    func tokenizer() throws -> Tokenizer {
        guard let tokenizer = engine.tokenizer else { throw APIError.invalidRequest("this model has no tokenizer") }
        return tokenizer
    }

    /// The checks both endpoints share, before anything is tokenized.
    private func check(_ request: GenerationRequest<some EndpointFields>) throws {
        let body = request.shared
        guard body.model == options.modelName else {
            throw APIError.modelNotFound(body.model, served: options.modelName)
        }
        if let n = body.n, n != 1 {
            throw APIError.invalidRequest("n must be 1 (got \(n)): Baton generates one choice per request", param: "n")
        }
        if let t = body.temperature, !(0...2).contains(t) {
            throw APIError.invalidRequest("temperature must be between 0 and 2, got \(t)", param: "temperature")
        }
        if let p = body.topP, !(p > 0 && p <= 1) {
            throw APIError.invalidRequest("top_p must be in (0, 1], got \(p)", param: "top_p")
        }
        if let m = request.own.requestedMaxTokens, m < 1 {
            throw APIError.invalidRequest("max_tokens must be at least 1, got \(m)", param: "max_tokens")
        }
    }

    /// Checks the length, picks the method, queues the job and answers whole or as a stream.
    /// `visual`: the prompt's images and videos (a chat request on a vision-language model).
    private func generate(
        _ ids: [Int32], _ request: GenerationRequest<some EndpointFields>, endpoint: Endpoint,
        defaultMaxTokens: Int?, visual: VisualRequest? = nil
    ) async throws -> Response {
        let body = request.shared
        let arrival = ContinuousClock.now
        // A visual prompt's M-RoPE model has no rope scaling: its context length is max_position_embeddings.
        let limit = engine.config.contextLength
        let positions = visual?.promptPositions ?? ids.count
        let maxTokens = request.own.requestedMaxTokens ?? defaultMaxTokens ?? max(1, limit - positions + 1)
        do {
            if let visual {
                try visual.checkContext(ids, maxTokens: maxTokens, modelName: options.modelName)
            } else {
                try engine.checkContext(promptTokens: ids.count, maxTokens: maxTokens)
            }
        } catch let error as BatonError {
            throw APIError.invalidRequest(
                "This model's maximum context length is \(limit) tokens: \(error.message)",
                param: endpoint.promptField, code: ids.isEmpty ? nil : "context_length_exceeded")
        }
        let choice: MethodChoice
        do {
            choice = try body.baton?.method.map { try MethodChoice.named($0, option: "baton.method") } ?? options.method
        } catch let error as BatonError {
            throw APIError.invalidRequest(error.message, param: "baton.method")
        }
        var method = planner.method(for: choice, promptTokens: ids.count)
        // Under torchrun only token ids travel to the other processes, not images and videos.
        if visual != nil, options.torchrun != nil, method != .dense {
            guard choice == .auto else {
                throw APIError.invalidRequest(
                    "images and videos run dense on rank 0 under torchrun; \(method.rawValue) is not available for them",
                    param: "baton.method")
            }
            method = .dense
        }
        // OpenAI samples at temperature 1 when none is given; without a seed, each request draws its own.
        let sampling = SamplingOptions(
            temperature: Float(body.temperature ?? 1), topP: Float(body.topP ?? 1),
            seed: body.seed.map { UInt64(bitPattern: $0) } ?? UInt64.random(in: 0...UInt64.max))
        let job = GenerationJob(
            promptIds: ids, maxTokens: maxTokens, sampling: sampling,
            stopStrings: body.stop?.values ?? [], ignoreEOS: body.baton?.ignoreEos == true,
            method: method, arrival: arrival, visual: visual)
        let handle = try worker.submit(job)
        let reply = Reply(
            endpoint: endpoint,
            id: endpoint.idPrefix + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""),
            created: Int(Date().timeIntervalSince1970), model: options.modelName)
        let headers: HTTPFields = [.batonMethod: method.rawValue]
        if body.stream == true {
            return streamResponse(
                handle, reply: reply, includeUsage: body.streamOptions?.includeUsage == true, headers: headers)
        }
        return try await wholeResponse(handle, reply: reply, headers: headers)
    }
}
