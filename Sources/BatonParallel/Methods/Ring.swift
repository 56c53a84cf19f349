import BatonComm
import BatonTensor

/// RingAttention: contiguous blocks of `[context ; query]`; every rank's KV block travels
/// around the ring (`KVRotation`). Rank `r` attends causally to its own block, fully to blocks
/// of ranks `< r`, and skips later ones; partial results are merged by log-sum-exp. Exact. The
/// last rank holds the end of the query and owns decoding. With one rank this is dense attention.
public final class Ring: ParallelStrategy {
    public var phase: Phase = .prefill
    public var plan: Plan { context.plan }
    public var rank: Int { context.rank }
    let context: RankContext

    init(_ context: RankContext) { self.context = context }

    public func attend(_ input: AttentionInput, cache: KVCache, backend: any Backend) throws -> Tensor {
        guard phase == .prefill else { return try context.decode.attend(input, cache: cache, backend: backend) }
        try context.requirePrefillRows(input)
        try context.cacheKeptRows(input, cache: cache)
        var parts: [AttentionOutput] = []
        try KVRotation.forEachBlock(input, context: context, backend: backend) { source, key, value in
            guard source <= rank else { return }  // later blocks are in the future
            parts.append(try backend.attention(query: input.query, key: key, value: value,
                                               mask: source == rank ? .causal : .full, scale: context.scale))
        }
        return try LSEMerge.merge(parts, backend: backend).out
    }
}
