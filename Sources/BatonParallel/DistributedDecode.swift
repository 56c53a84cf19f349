import BatonComm
import BatonTensor

/// Exact attention of new tokens (the query pass or a decode step) over KV spread across ranks:
/// each rank attends over its own cache, the partial `(out, lse)` are all-gathered and merged in
/// rank order, so every rank gets the same output and runs the rest of the layer redundantly.
/// Only the owner appends the new keys and values (before attending, with the bottom-right causal
/// mask); the other ranks use full attention, since every key they hold precedes every new token.
/// (The reference's causal flag there hides keys from multi-token queries; this fixes it.)
public struct DistributedDecode {
    public let rank: Int
    public let owner: Int
    public let communicator: any Communicator
    public let scale: Float

    /// input: the new rows' q `[Q, H, d]`, k/v `[Q, Hkv, d]` -> out `[Q, H, d]`.
    public func attend(_ input: AttentionInput, cache: KVCache, backend: any Backend) throws -> Tensor {
        let part = try partial(input, cache: cache, backend: backend)
        let gather = try input.timed(.communication) { try LSEMerge.gatherAsync(part, communicator: communicator) }
        return try gather.merged(timing: input, backend: backend).out
    }

    /// This rank's share: the owner appends the new KV, then attends over its cache.
    public func partial(_ input: AttentionInput, cache: KVCache, backend: any Backend) throws -> AttentionOutput {
        if rank == owner {
            try cache.append(layer: input.layer, key: input.key, value: input.value)
        }
        let (key, value) = try cache.keysAndValues(layer: input.layer)
        return try input.timed(.attentionCompute) {
            try backend.attention(
                query: input.query, key: key, value: value, mask: rank == owner ? .causal : .full, scale: scale)
        }
    }
}
