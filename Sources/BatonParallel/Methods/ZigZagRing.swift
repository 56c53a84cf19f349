import BatonComm
import BatonTensor

/// ZigZag RingAttention: `[context ; query]` in `2W` chunks, rank `r` holding chunks `r` and
/// `2W-1-r` (balanced causal work). KV blocks rotate as in `Ring`. Against the block of rank
/// `s < r` both local chunks see the block's first chunk; against `s > r` only the local second
/// chunk sees (all of) the block; the own block is causal. Exact. Rank 0 holds the last chunk
/// and owns decoding.
public final class ZigZagRing: SequenceParallelMethod, ParallelMethod {
    public static var isExact: Bool { true }

    public static func layout(_ request: PlanRequest) throws -> MethodLayout {
        let w = request.worldSize, n = request.contextLength, q = request.queryLength
        let chunks = balancedSplit(n + q, parts: 2 * w)
        try requireNonEmpty(chunks, what: "zigzag chunk", method: .zigzag)
        var ranks = (0..<w).map { r in
            let first = chunks[r], second = chunks[2 * w - 1 - r]
            let a = request.rows(first), b = request.rows(second)
            var layout = RankLayout(rank: r)
            layout.tokenIDs = a.ids + b.ids
            layout.positions = a.positions + b.positions
            layout.blockRows = [0..<first.count, first.count..<first.count + second.count]
            layout.cacheRows = [0..<layout.rowCount]
            return layout
        }
        // The query's tail lies in the last chunk, which rank 0 holds second.
        let lastChunk = chunks[2 * w - 1], tail = lastChunk.clamped(to: n..<(n + q))
        let shift = chunks[0].count - lastChunk.lowerBound
        ranks[0].queryRows = tail.isEmpty ? 0..<0 : (tail.lowerBound + shift)..<(tail.upperBound + shift)
        return MethodLayout(ranks: ranks, owner: 0)
    }

    public static func strategy(_ context: RankContext, scorer: (any PassingScorer)?) -> any ParallelStrategy {
        ZigZagRing(context)
    }

    override func prefill(_ input: AttentionInput, cache: KVCache, backend: any Backend) throws -> PrefillAttention {
        let chunks = context.layout.blockRows
        let firstQuery = input.query.rows(chunks[0]), secondQuery = input.query.rows(chunks[1])
        // Partial results per local chunk: an lse `[H, Sq]` cannot be split by rows, so the two
        // chunks are attended separately.
        var firstParts: [AttentionOutput] = [], secondParts: [AttentionOutput] = []
        func attend(_ query: Tensor, _ key: Tensor, _ value: Tensor, _ mask: AttentionMask) throws -> AttentionOutput {
            try backend.attention(query: query, key: key, value: value, mask: mask, scale: context.scale)
        }
        try KVRotation.forEachBlock(input, context: context, backend: backend) { source, key, value in
            if source == rank {
                firstParts.append(try attend(firstQuery, key.rows(chunks[0]), value.rows(chunks[0]), .causal))
                secondParts.append(try attend(secondQuery, key, value, .causal))
            } else if source < rank {
                let earlier = plan.ranks[source].blockRows[0]
                firstParts.append(try attend(firstQuery, key.rows(earlier), value.rows(earlier), .full))
                secondParts.append(try attend(secondQuery, key.rows(earlier), value.rows(earlier), .full))
            } else {
                secondParts.append(try attend(secondQuery, key, value, .full))
            }
        }
        let merged = try input.timed(.attentionCompute) {
            [try LSEMerge.merge(firstParts, backend: backend), try LSEMerge.merge(secondParts, backend: backend)]
        }
        return PrefillAttention(out: try backend.concatRows(merged.map(\.out)), logSumExpParts: merged.map(\.logSumExp))
    }
}
