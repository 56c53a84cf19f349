import BatonTensor

/// Single-GPU exact attention: every token attends causally to everything before it. One rank
/// holds `[context ; query]` and owns decoding. Prefill and decode are the same call: the new
/// rows are appended to the cache, then the new queries attend to the whole cache with the
/// bottom-right causal mask, whatever the phase. Dense refuses several ranks: exact attention
/// over several ranks is Ring or ZigZag-Ring.
public final class Dense: ParallelStrategy, ParallelMethod {
    public let scale: Float
    /// Ignored: every phase is the same causal attention over the cache.
    public var phase: Phase = .prefill

    /// `headDim` sets the softmax scale `1/sqrt(headDim)`.
    public init(headDim: Int) {
        self.scale = 1 / Float(headDim).squareRoot()
    }

    public static var isExact: Bool { true }

    public static func layout(_ request: PlanRequest) throws -> MethodLayout {
        guard request.worldSize == 1 else {
            throw BatonError.invalidArgument(
                "dense attention runs on one rank (got \(request.worldSize)); for exact attention over several ranks use ring or zigzag"
            )
        }
        let all = 0..<(request.contextLength + request.queryLength)
        return MethodLayout(ranks: [contiguousBlock(all, rank: 0, request: request)], owner: 0)
    }

    public static func strategy(_ context: RankContext, scorer: (any PassingScorer)?) -> any ParallelStrategy {
        Dense(scale: context.scale)
    }

    init(scale: Float) { self.scale = scale }

    public func attend(_ input: AttentionInput, cache: KVCache, backend: any Backend) throws -> Tensor {
        try cache.append(layer: input.layer, key: input.key, value: input.value)
        let (key, value) = try cache.keysAndValues(layer: input.layer)
        return try input.timed(.attentionCompute) {
            try backend.attention(query: input.query, key: key, value: value, mask: .causal, scale: scale).out
        }
    }
}
