import BatonComm
import BatonTensor

/// Spava: every GPU holds the anchor, two zigzag chunks (virtual hosts `r` and `2W-1-r`) and the
/// query, fused into one prefill. Per layer (METHODS 3.6):
/// 1-2. query-aware scores (max-pooled over `[anchor, B1, B2]`), top-`P` per KV head of each
///      chunk; the two messages are all-gathered asynchronously;
/// 3.   query partial attention over the rows this GPU caches (an anchor shard, B1, B2, and the
///      query itself on GPU 0), its AllGather also in flight;
/// 4.   virtual host `r`: `[anchor ; B1]` vs `[P1 ; anchor ; B1]` under the anchor rule,
///      P1 = B1 messages of GPUs `0..r-1`;
/// 5.   virtual host `2W-1-r`: B2 vs `[P2 ; anchor ; B2]` causal, P2 = B1 messages of all GPUs,
///      then B2 messages of GPUs `W-1 ... r+1`: exactly the chunks before it;
/// 6.   the query output merged exactly in rank order.
/// The two virtual hosts' attention overlaps the messages and the query gather. GPU 0 owns
/// decoding.
public final class Spava: SequenceParallelMethod, ParallelMethod, PassingRecorder {
    let scorer = QueryAwareScorer()
    var recordsPassing = false
    var lastPassing: [Tensor] = []

    /// Defaults: `A = N/64` and `P = N/128` per virtual host, each rounded up to 128, with `A` at
    /// most `N/(2W+1)` so a short context still leaves every zigzag chunk at least as long as the
    /// anchor (the 128 rounding alone took the whole of a 130-token context). Every GPU holds
    /// `[anchor ; B1 ; B2 ; query]`; the KV cache keeps an anchor shard, both chunks and, on GPU 0,
    /// the query.
    public static func layout(_ request: PlanRequest) throws -> MethodLayout {
        let w = request.worldSize, n = request.contextLength, q = request.queryLength
        guard q >= 1 else {
            throw BatonError.invalidArgument("plan: spava needs a query (query-aware selection), got an empty one")
        }
        let a = min(request.options.anchorLength ?? min(roundUpTo128(n / 64), n / (2 * w + 1)), n)
        let chunks = balancedSplit(n - a, parts: 2 * w).map { ($0.lowerBound + a)..<($0.upperBound + a) }
        try requireNonEmpty(chunks, what: "zigzag chunk (context minus anchor)", method: .spava)
        let shard = (a + w - 1) / w
        let ranks = (0..<w).map { r in
            let b1 = chunks[r], b2 = chunks[2 * w - 1 - r]
            let parts = [request.rows(0..<a), request.rows(b1), request.rows(b2), request.rows(n..<(n + q))]
            var layout = RankLayout(rank: r)
            layout.tokenIDs = parts.flatMap(\.ids)
            layout.positions = parts.flatMap(\.positions)
            layout.anchorRows = 0..<a
            let b1Rows = a..<a + b1.count, b2Rows = b1Rows.upperBound..<b1Rows.upperBound + b2.count
            layout.blockRows = [b1Rows, b2Rows]
            layout.queryRows = b2Rows.upperBound..<b2Rows.upperBound + q
            let anchorShard = min(r * shard, a)..<min((r + 1) * shard, a)
            layout.cacheRows = [anchorShard, b1Rows, b2Rows] + (r == 0 ? [layout.queryRows] : [])
            return layout
        }
        var layout = MethodLayout(ranks: ranks, owner: 0)
        layout.anchorLength = a
        layout.passingLength = request.options.passingLength ?? roundUpTo128(n / 128)
        return layout
    }

    public static func strategy(_ context: RankContext, scorer: (any PassingScorer)?) -> any ParallelStrategy {
        Spava(context)
    }

    /// Entries virtual host chunk `index` (0: B1, 1: B2) of each GPU passes.
    func passingCounts(chunk index: Int) -> [Int] {
        plan.ranks.map { TopKSelection.count(budget: plan.passingLength, candidates: $0.blockRows[index].count) }
    }

    override func prefill(_ input: AttentionInput, cache: KVCache, backend: any Backend) throws -> PrefillAttention {
        let layout = context.layout, comm = context.communicator, scale = context.scale
        let anchor = layout.anchorRows, b1 = layout.blockRows[0], b2 = layout.blockRows[1]

        // 1-2. Score, select, send both messages.
        // Each message starts as soon as its selection is made, as the AllGather overlaps the rest.
        let scores = try input.timed(.selection) {
            try scorer.smoothedScores(input, keyRows: 0..<b2.upperBound, probeRows: layout.queryRows, backend: backend)
        }
        var messages: [PassingMessages] = []
        for (index, chunk) in [b1, b2].enumerated() {
            let selected = try input.timed(.selection) {
                try TopKSelection.select(
                    scores: scores, candidates: chunk, budget: plan.passingLength,
                    key: input.key, value: input.value, backend: backend)
            }
            messages.append(
                try input.timed(.communication) {
                    try PassingMessages(
                        key: selected.key, value: selected.value, counts: passingCounts(chunk: index),
                        communicator: comm, backend: backend)
                })
        }

        // 3. Query partial over the cached rows (anchor shard, B1, B2, + query on the owner).
        let (cachedKey, cachedValue) = try cache.keysAndValues(layer: input.layer)
        let queryPart = try input.timed(.attentionCompute) {
            try backend.attention(
                query: input.query.rows(layout.queryRows), key: cachedKey, value: cachedValue,
                mask: rank == plan.owner ? .causal : .full, scale: scale)
        }
        let queryGather = try input.timed(.communication) { try LSEMerge.gatherAsync(queryPart, communicator: comm) }

        // 4. Virtual host r.
        let firstPassing = try input.timed(.communication) { try messages[0].entries(of: Array(0..<rank)) }
        let p1 = try PassingBlock.assemble(firstPassing, like: input.key, backend: backend)
        let firstRows = anchor.lowerBound..<b1.upperBound
        let firstKey = try PassingBlock.keysBefore(p1.key, [input.key.rows(firstRows)], backend: backend)
        let firstValue = try PassingBlock.keysBefore(p1.value, [input.value.rows(firstRows)], backend: backend)
        let first = try input.timed(.attentionCompute) {
            try backend.attention(
                query: input.query.rows(firstRows), key: firstKey, value: firstValue,
                mask: .anchor(anchorLength: anchor.count, passingLength: p1.key.shape[0]), scale: scale)
        }

        // 5. Virtual host 2W-1-r.
        let laterB2 = Array((rank + 1)..<plan.worldSize).reversed()
        let secondPassing = try input.timed(.communication) {
            try messages[0].entries(of: Array(0..<plan.worldSize)) + messages[1].entries(of: Array(laterB2))
        }
        let p2 = try PassingBlock.assemble(secondPassing, like: input.key, backend: backend)
        let secondKey = try PassingBlock.keysBefore(
            p2.key, [input.key.rows(anchor), input.key.rows(b2)], backend: backend)
        let secondValue = try PassingBlock.keysBefore(
            p2.value, [input.value.rows(anchor), input.value.rows(b2)], backend: backend)
        let second = try input.timed(.attentionCompute) {
            try backend.attention(
                query: input.query.rows(b2), key: secondKey, value: secondValue, mask: .causal, scale: scale)
        }

        if recordsPassing { lastPassing = [p1.key, p2.key] }

        // 6. Query merge.
        let query = try queryGather.merged(timing: input, backend: backend)
        let parts = [first, second, query]
        return PrefillAttention(out: try backend.concatRows(parts.map(\.out)), logSumExpParts: parts.map(\.logSumExp))
    }
}
