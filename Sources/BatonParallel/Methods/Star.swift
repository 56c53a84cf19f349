import BatonTensor

/// Star Attention: contiguous context blocks; ranks `> 0` prepend the anchor (the first `A`
/// context tokens, by default the whole first block) and attend causally over
/// `[anchor ; block]` with no communication. The anchor's KV is dropped afterwards. The query
/// pass and decoding are exact (`DistributedDecode`); the last rank owns them.
public final class Star: ParallelStrategy {
    public var phase: Phase = .prefill
    public var plan: Plan { context.plan }
    public var rank: Int { context.rank }
    let context: RankContext

    init(_ context: RankContext) { self.context = context }

    public func attend(_ input: AttentionInput, cache: KVCache, backend: any Backend) throws -> Tensor {
        guard phase == .prefill else { return try context.decode.attend(input, cache: cache, backend: backend) }
        try context.requirePrefillRows(input)
        try context.cacheKeptRows(input, cache: cache)
        return try backend.attention(query: input.query, key: input.key, value: input.value,
                                     mask: .causal, scale: context.scale).out
    }
}
