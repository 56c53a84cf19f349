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
        let q = min(queryLength ?? 32, promptIds.count / 2)
        guard q >= 0 else { throw BatonError.invalidArgument("query length must be >= 0, got \(q)") }
        var generation = options
        if !ignoringModelStopIds { generation.stopIds = stopIds(options) }
        let request = ParallelRequest(context: Array(promptIds.dropLast(q)), query: Array(promptIds.suffix(q)),
                                      method: method, ranks: ranks, plan: plan, generation: generation)
        let model = self.model
        return try BatonEngine.generateParallel(request, model: { _ in model }, onToken: onToken)
    }
}
