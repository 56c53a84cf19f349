import BatonEngine
import Foundation
import HTTPTypes
import Hummingbird

/// How `baton serve` listens and whom it serves.
public struct ServerOptions: Sendable {
    public var host: String
    /// 0 picks a free port (tests); `onServerRunning` learns which.
    public var port: Int
    /// The `model` name requests must give, and the id /v1/models lists.
    public var modelName: String
    /// When set, /v1 routes need `Authorization: Bearer <apiKey>`.
    public var apiKey: String?
    /// Requests that may wait behind the running ones before new ones get 503.
    public var maxQueue: Int
    /// Dense requests that decode together in one forward pass per step at most.
    public var maxBatch: Int
    /// The server's method; a request may name another in `"baton": {"method": ...}`.
    public var method: MethodChoice
    /// What `auto` runs from which prompt length (`--auto-plan`).
    public var autoPlan: [MethodPlanner.Step]
    /// Ranks for parallel methods (--gpus N, or --ranks N on one device) and where they run.
    public var ranks: Int
    public var placement: RankPlacement
    /// The largest request body read (a long prompt is a few MiB of text, an image in a `data:`
    /// URL a few more).
    public var maxBodyBytes: Int
    /// Bytes of vision-tower output kept for follow-up questions on the same images and videos.
    public var visualCacheBytes: Int
    /// Under torchrun (rank 0): the other processes, which join every parallel request.
    public var torchrun: TorchrunRanks?
    /// `--visual-cache-mb`'s default: 1 GiB holds about 150K visual tokens of a 7B model (3584
    /// bf16 values each), some ten long videos, in host memory.
    public static let defaultVisualCacheMB = 1024

    public init(
        host: String = "127.0.0.1", port: Int = 8000, modelName: String, apiKey: String? = nil,
        maxQueue: Int = 64, maxBatch: Int = 16, method: MethodChoice = .auto, ranks: Int = 1,
        placement: RankPlacement = .sharedDevice, maxBodyBytes: Int = 64 << 20,
        visualCacheBytes: Int = ServerOptions.defaultVisualCacheMB << 20, torchrun: TorchrunRanks? = nil,
        autoPlan: [MethodPlanner.Step] = MethodPlanner.measuredSteps
    ) {
        self.host = host
        self.port = port
        self.modelName = modelName
        self.apiKey = apiKey
        self.maxQueue = maxQueue
        self.maxBatch = maxBatch
        self.method = method
        self.ranks = ranks
        self.placement = placement
        self.maxBodyBytes = maxBodyBytes
        self.visualCacheBytes = visualCacheBytes
        self.torchrun = torchrun
        self.autoPlan = autoPlan
    }
}

/// The OpenAI-compatible HTTP API over one engine: /v1/models, /v1/completions,
/// /v1/chat/completions, /health, /metrics.
///
/// Dense text requests decode together, up to `maxBatch` per forward pass; parallel-method and
/// visual requests run one at a time between the batch's steps (see `GenerationWorker`).
public final class OpenAIServer: Sendable {
    let engine: Engine
    public let options: ServerOptions
    let worker: GenerationWorker
    public let planner: MethodPlanner
    public let metrics: ServerMetrics
    /// The vision tower's output of recent images and videos, by content and options.
    let visualCache: VisualEmbeddingCache
    /// When the server started (the `created` of /v1/models).
    let started = Int(Date().timeIntervalSince1970)

    public init(engine: Engine, options: ServerOptions) {
        self.engine = engine
        self.options = options
        let metrics = ServerMetrics()
        self.metrics = metrics
        self.visualCache = VisualEmbeddingCache(capacityBytes: options.visualCacheBytes)
        self.worker = GenerationWorker(
            engine: engine, ranks: options.ranks, placement: options.placement,
            maxQueue: options.maxQueue, metrics: metrics, maxBatch: options.maxBatch, torchrun: options.torchrun)
        // `auto` spreads long prompts over GPUs only (--gpus N, threads or torchrun processes); ranks
        // sharing one device (CPU ranks, or the one-GPU correctness mode) are never faster than
        // dense, so there it is dense.
        let separateGPUs = options.placement == .onePerGPU || options.torchrun != nil
        self.planner = MethodPlanner(
            ranks: separateGPUs ? options.torchrun?.worldSize ?? options.ranks : 1, steps: options.autoPlan)
    }

    /// The routes with the API-key check and request counting.
    public func router() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: RequestCounter(metrics: metrics))
        router.get("health") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: "{\"status\":\"ok\"}")))
        }
        router.get("metrics") { [metrics] _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: metrics.exposition())))
        }
        let v1 = router.group("v1").add(middleware: APIKeyCheck(key: options.apiKey))
        v1.get("models") { [self] _, _ in
            try json(ModelList(data: [.init(id: options.modelName, created: started)]))
        }
        v1.post("completions") { [self] request, context in await completions(request, context: context) }
        v1.post("chat/completions") { [self] request, context in await chatCompletions(request, context: context) }
        return router
    }

    /// The application on `options.host`:`options.port`; `run()` serves until SIGTERM or SIGINT,
    /// then stops accepting, lets running requests finish, and returns.
    public func application(onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in })
        -> some ApplicationProtocol
    {
        Application(
            router: router(),
            configuration: .init(address: .hostname(options.host, port: options.port), serverName: "baton"),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? 0) })
    }

    /// A JSON response with status 200.
    func json(_ value: some Encodable, headers: HTTPFields = [:]) throws -> Response {
        var headers = headers
        headers[.contentType] = "application/json"
        return Response(
            status: .ok, headers: headers,
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: try responseEncoder.encode(value))))
    }
}

/// 401 on /v1 routes unless `Authorization: Bearer <key>` matches (when a key is set).
struct APIKeyCheck<Context: RequestContext>: RouterMiddleware {
    let key: String?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        if let key, request.headers[.authorization] != "Bearer \(key)" { return APIError.unauthorized.response }
        return try await next(request, context)
    }
}

/// Counts every answered request by endpoint and status (`baton_requests_total`).
struct RequestCounter<Context: RequestContext>: RouterMiddleware {
    let metrics: ServerMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        let endpoint =
            ["/health", "/metrics", "/v1/models", "/v1/completions", "/v1/chat/completions"]
            .first { $0 == request.uri.path } ?? "other"
        do {
            let response = try await next(request, context)
            metrics.countRequest(endpoint: endpoint, status: response.status.code)
            return response
        } catch let error as any HTTPResponseError {
            metrics.countRequest(endpoint: endpoint, status: error.status.code)
            throw error
        }
    }
}
