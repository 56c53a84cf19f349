import BatonComm
import BatonTensor

/// RingAttention: contiguous blocks of `[context ; query]`; every rank's KV block travels
/// around the ring (`KVRotation`). Rank `r` attends causally to its own block, fully to blocks
/// of ranks `< r`, and skips later ones; partial results are merged by log-sum-exp. Exact. The
/// last rank holds the end of the query and owns decoding. With one rank this is dense attention.
public final class Ring: SequenceParallelMethod, ParallelMethod {
    public static var isExact: Bool { true }

    public static func layout(_ request: PlanRequest) throws -> MethodLayout {
        let blocks = balancedSplit(request.contextLength + request.queryLength, parts: request.worldSize)
        try requireNonEmpty(blocks, what: "context+query block", method: .ring)
        let ranks = blocks.enumerated().map { contiguousBlock($0.element, rank: $0.offset, request: request) }
        return MethodLayout(ranks: ranks, owner: request.worldSize - 1)
    }

    public static func strategy(_ context: RankContext, scorer: (any PassingScorer)?) -> any ParallelStrategy {
        Ring(context)
    }

    override func prefill(_ input: AttentionInput, cache: KVCache, backend: any Backend) throws -> PrefillAttention {
        var parts: [AttentionOutput] = []
        try KVRotation.forEachBlock(input, context: context, backend: backend) { source, key, value in
            guard source <= rank else { return }  // later blocks are in the future
            parts.append(
                try backend.attention(
                    query: input.query, key: key, value: value,
                    mask: source == rank ? .causal : .full, scale: context.scale))
        }
        return PrefillAttention(try input.timed(.attentionCompute) { try LSEMerge.merge(parts, backend: backend) })
    }
}
