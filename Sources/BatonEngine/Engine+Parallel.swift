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
        guard backend.device == .cpu else {
            throw BatonError(.notAvailable, "--method \(method.rawValue) on \(backend.device): GPU ranks need the NCCL communicator, which this build does not have yet; use --device cpu --ranks N")
        }
        let (context, query) = try splitContextAndQuery(promptIds, queryLength: queryLength)
        var generation = options
        if !ignoringModelStopIds { generation.stopIds = stopIds(options) }
        let request = ParallelRequest(context: context, query: query, method: method, ranks: ranks, plan: plan, generation: generation)
        let model = self.model
        return try BatonEngine.generateParallel(request, model: { _ in model }, onToken: onToken)
    }
}

/// A prompt without a separate question: its last `queryLength` tokens (default 32, at most
/// half the prompt) serve as the query that APB puts into the anchor and Spava scores against.
public func splitContextAndQuery(_ promptIds: [Int32], queryLength: Int? = nil) throws -> (context: [Int32], query: [Int32]) {
    let q = min(queryLength ?? 32, promptIds.count / 2)
    guard q >= 0 else { throw BatonError.invalidArgument("query length must be >= 0, got \(q)") }
    return (Array(promptIds.dropLast(q)), Array(promptIds.suffix(q)))
}
