import BatonTensor

/// Star Attention: contiguous context blocks; ranks `> 0` prepend the anchor (the first `A`
/// context tokens, by default the whole first block) and attend causally over
/// `[anchor ; block]` with no communication. The anchor's KV is dropped afterwards. The query
/// pass and decoding are exact (`DistributedDecode`); the last rank owns them.
public final class Star: SequenceParallelMethod, ParallelMethod {

    public static func layout(_ request: PlanRequest) throws -> MethodLayout {
        try AnchoredBlocks.layout(request, method: .star) { blocks in
            let length = min(request.options.anchorLength ?? blocks[0].count, request.contextLength)
            let anchor = request.rows(0..<length)
            return (anchor.ids, anchor.positions)
        }
    }

    public static func strategy(_ context: RankContext, scorer: (any PassingScorer)?) -> any ParallelStrategy {
        Star(context)
    }

    override func prefill(_ input: AttentionInput, cache: KVCache, backend: any Backend) throws -> PrefillAttention {
        PrefillAttention(
            try input.timed(.attentionCompute) {
                try backend.attention(
                    query: input.query, key: input.key, value: input.value, mask: .causal, scale: context.scale)
            })
    }
}
