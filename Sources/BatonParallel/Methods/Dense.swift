import BatonTensor

/// Single-rank exact attention: every token attends causally to everything before it.
/// Prefill and decode are the same call: the new rows are appended to the cache, then the
/// new queries attend to the whole cache with the bottom-right causal mask.
public final class Dense: AttentionStrategy {
    public let scale: Float

    /// `headDim` sets the softmax scale `1/sqrt(headDim)`.
    public init(headDim: Int) {
        self.scale = 1 / Float(headDim).squareRoot()
    }

    public func attend(_ input: AttentionInput, cache: KVCache, backend: any Backend) throws -> Tensor {
        try cache.append(layer: input.layer, key: input.key, value: input.value)
        let (key, value) = try cache.keysAndValues(layer: input.layer)
        return try backend.attention(query: input.query, key: key, value: value, mask: .causal, scale: scale).out
    }
}
