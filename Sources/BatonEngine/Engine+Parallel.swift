import BatonComm
import BatonModels
import BatonParallel
import BatonTensor

extension Engine {
    /// Generates from `promptIds` with a sequence-parallel `method` over `ranks` CPU ranks
    /// (threads sharing this engine's model), streaming each new id to `onToken`.
    ///
    /// The prompt is split into the context (spread over the ranks) and the query, its last
    /// `queryLength` tokens (default 32, at most half the prompt): the question and the assistant
    /// prefix of a chat prompt, which APB inserts into its anchor and Spava scores against.
    /// `.dense` runs on one rank only and gives the same tokens as `generate(promptIds:...)`.
    public func generateParallel(promptIds: [Int32], method: Method, ranks: Int, queryLength: Int? = nil,
                                 plan: PlanOptions = PlanOptions(), options: GenerationOptions,
                                 ignoringModelStopIds: Bool = false,
                                 onToken: (@Sendable (Int32) -> Void)? = nil) throws -> GenerationResult {
        try checkContext(promptTokens: promptIds.count, maxTokens: options.maxTokens)
        guard ranks >= 1 else { throw BatonError.invalidArgument("--ranks must be at least 1, got \(ranks)") }
        let (context, query) = try splitContextAndQuery(promptIds, queryLength: queryLength)
        var generation = options
        if !ignoringModelStopIds { generation.stopIds = stopIds(options) }
        let request = ParallelRequest(context: context, query: query, method: method, ranks: ranks, plan: plan, generation: generation)
        return try run(request, onToken: onToken)
    }

    /// Runs a sequence-parallel request on this engine's device. CPU ranks are threads sharing this
    /// engine's model. On a GPU, each rank gets its own backend (stream, allocator) and its own copy
    /// of the weights on the same device, and ranks exchange tensors through host memory
    /// (`LocalCommunicator`). That mode checks GPU results against their CPU twins on a machine with
    /// one GPU; it is not a speed mode (the ranks share one GPU). Multi-GPU speed needs the NCCL
    /// communicator.
    public func run(_ request: ParallelRequest, onToken: (@Sendable (Int32) -> Void)? = nil) throws -> GenerationResult {
        var request = request
        // APB inserts the question into the anchor cut at its first end-of-turn token, as the
        // reference does (the assistant header after it is not part of the question).
        if request.method == .apb && request.plan.anchorQueryTokenIDs == nil {
            request.plan.anchorQueryTokenIDs = questionBeforeEndOfTurn(request.query, endOfTurn: tokenizer?.eosTokenIds ?? [])
        }
        if backend.device == .cpu {
            let model = self.model
            return try BatonEngine.generateParallel(request, model: { _ in model }, onToken: onToken)
        }
        let models = try rankModels(request.ranks)
        let communicators = try LocalCommunicator.group(worldSize: request.ranks, timeout: request.communicationTimeout,
                                                        backends: models.map(\.backend))
        return try BatonEngine.generateParallel(request, model: { models[$0] }, communicators: communicators, onToken: onToken)
    }

    /// This engine's model for rank 0 and a copy on a backend of its own for every other rank.
    func rankModels(_ count: Int) throws -> [LlamaModel] {
        rankModelLock.lock()
        defer { rankModelLock.unlock() }
        if rankModelCache.isEmpty { rankModelCache = [model] }
        while rankModelCache.count < count {
            let rankBackend = try makeBackend(options.device)
            if let directory = options.modelDirectory {
                rankModelCache.append(try LlamaModel.load(directory: directory, backend: rankBackend))
            } else {
                rankModelCache.append(try LlamaModel(config: config, weights: .random(seed: options.seed), backend: rankBackend))
            }
        }
        return Array(rankModelCache.prefix(count))
    }
}

/// A prompt without a separate question: its last `queryLength` tokens (default 32, at most
/// half the prompt) serve as the query that APB puts into the anchor and Spava scores against.
public func splitContextAndQuery(_ promptIds: [Int32], queryLength: Int? = nil) throws -> (context: [Int32], query: [Int32]) {
    let q = min(queryLength ?? 32, promptIds.count / 2)
    guard q >= 0 else { throw BatonError.invalidArgument("query length must be >= 0, got \(q)") }
    return (Array(promptIds.dropLast(q)), Array(promptIds.suffix(q)))
}

/// The query up to its first end-of-turn token (what APB inserts into the anchor), or nil when it
/// has none (then the whole query is inserted).
public func questionBeforeEndOfTurn(_ query: [Int32], endOfTurn: Set<Int32>) -> [Int32]? {
    query.firstIndex(where: endOfTurn.contains).map { Array(query[..<$0]) }
}
