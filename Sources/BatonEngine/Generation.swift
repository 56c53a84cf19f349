import BatonTensor

/// What to generate and when to stop.
public struct GenerationOptions: Sendable {
    public var maxTokens: Int
    public var sampling: SamplingOptions
    /// Ids that end generation (the model's EOS ids are added by the engine).
    public var stopIds: Set<Int32>
    /// Asked at every step on the rank that samples (the owner) and broadcast with its token, so
    /// that every rank stops at the same step: true ends generation before that token is handed to
    /// `onToken` (`StopReason.cancelled`). A server sets it when its client disconnects or a stop
    /// string matched; the step already computed is the only work spent after that.
    public var isCancelled: (@Sendable () -> Bool)?

    public init(
        maxTokens: Int = 128, sampling: SamplingOptions = .greedy, stopIds: Set<Int32> = [],
        isCancelled: (@Sendable () -> Bool)? = nil
    ) {
        self.maxTokens = maxTokens
        self.sampling = sampling
        self.stopIds = stopIds
        self.isCancelled = isCancelled
    }

    /// Why generation ends once `token` was kept as the `count`-th generated token: a stop id, then
    /// the limit; nil to go on. The one stop rule of a request decoding alone or in a batch.
    func stopReason(after token: Int32, count: Int) -> StopReason? {
        if stopIds.contains(token) { return .stopToken }
        return count >= maxTokens ? .maxTokens : nil
    }
}

/// Why generation ended.
public enum StopReason: String, Sendable {
    case stopToken = "stop token"
    case maxTokens = "max tokens"
    case cancelled = "cancelled"
}

/// One request's output and timings (wall clock, device synchronised).
public struct GenerationResult: Sendable {
    public var promptTokens: Int
    public var tokens: [Int32]
    public var stopReason: StopReason
    /// Seconds from the start of prefill to the first token's logits.
    public var prefillSeconds: Double
    /// Seconds for the remaining tokens.
    public var decodeSeconds: Double

    public var prefillTokensPerSecond: Double { Double(promptTokens) / max(prefillSeconds, 1e-9) }
    /// Decode rate over the tokens after the first (the first comes out of prefill).
    public var decodeTokensPerSecond: Double {
        tokens.count > 1 ? Double(tokens.count - 1) / max(decodeSeconds, 1e-9) : 0
    }
}
