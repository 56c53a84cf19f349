import BatonComm
import BatonTensor

/// APB (ACL 2025): contiguous context blocks; ranks `> 0` prepend a small anchor (with the
/// query inserted after the system prefix). Per layer each host scores its block (retaining
/// heads, or query-aware scores), smooths the scores (max-pool 5), picks the top-`k` entries
/// per KV head (never the first `A` local rows, which are the anchor or, on host 0, its copy),
/// and all hosts AllGather the selections. Host `r` attends with keys
/// `[passing (hosts 0..r-1) ; anchor ; block]` under the anchor rule: anchor rows see only the
/// anchor (causal), block rows see the passing block, the anchor and their block causally.
/// The passing block lives for one layer; the cache keeps only the own block. The query pass
/// and decoding are exact (`DistributedDecode`); the last rank owns them.
public final class APB: SequenceParallelMethod, ParallelMethod, PassingRecorder {
    let scorer: any PassingScorer
    var recordsPassing = false
    var lastPassing: [Tensor] = []

    init(_ context: RankContext, scorer: any PassingScorer) {
        self.scorer = scorer
        super.init(context)
    }

    /// Defaults: `A = min(N/32, 8192)` and `k = N/64`, each rounded up to 128 (`A` capped at `N`).
    /// The anchor holds the query after the system prefix (`PlanOptions.anchorQueryPrefix`); ranks
    /// without an inserted query get it appended as probe rows for query-aware scoring.
    public static func layout(_ request: PlanRequest) throws -> MethodLayout {
        let n = request.contextLength, options = request.options
        let anchorLength = min(options.anchorLength ?? roundUpTo128(min(n / 32, 8192)), n)
        let anchor = anchorWithQuery(request, length: anchorLength)
        var layout = try AnchoredBlocks.layout(request, method: .apb) { _ in (anchor.ids, anchor.promptIndices) }
        layout.passingLength = options.passingLength ?? roundUpTo128(n / 64)
        guard request.queryLength > 0 && options.appendQueryProbe else { return layout }
        for r in 0..<request.worldSize {
            if r > 0 && !anchor.insertedQuery.isEmpty {
                layout.ranks[r].queryRows = anchor.insertedQuery
                continue
            }
            let end = layout.ranks[r].rowCount, probe = end..<end + request.queryLength
            let queryPositions = (n..<(n + request.queryLength)).map { Int32($0) }
            let promptIndices = layout.ranks[r].promptIndices
            layout.ranks[r].tokenIDs += request.query
            layout.ranks[r].positions += queryPositions
            layout.ranks[r].promptIndices = promptIndices + queryPositions
            layout.ranks[r].queryRows = probe
            layout.ranks[r].probeOnlyRows = probe
        }
        return layout
    }

    /// The anchor: the first `s` context tokens, the query, then context tokens from `s` on,
    /// `length` tokens in all (positions `0..<length`). Returns the ids, where each comes from in
    /// the prompt (the query's tokens from `[context ; query]` at `N...`, or `-1` when
    /// `PlanOptions.anchorQueryTokenIDs` gives them) and the query's rows.
    static func anchorWithQuery(_ request: PlanRequest, length: Int)
        -> (ids: [Int32], promptIndices: [Int32], insertedQuery: Range<Int>)
    {
        let context = request.context
        func indices(_ range: Range<Int>) -> [Int32] { range.map { Int32($0) } }
        guard let prefix = request.options.anchorQueryPrefix else {
            return (Array(context[0..<length]), indices(0..<length), 0..<0)
        }
        let s = min(prefix, length)
        let given = request.options.anchorQueryTokenIDs
        let question =
            given
            ?? questionBeforeEndOfTurn(request.query, endOfTurn: request.options.endOfTurnTokenIDs) ?? request.query
        let inserted = Array(question.prefix(length - s))
        let rest = s..<(length - inserted.count)
        let n = request.contextLength
        let insertedIndices =
            given == nil
            ? indices(n..<n + inserted.count) : Array(repeating: -1, count: inserted.count)
        return (
            Array(context[0..<s]) + inserted + context[rest], indices(0..<s) + insertedIndices + indices(rest),
            s..<s + inserted.count
        )
    }

    public static func strategy(_ context: RankContext, scorer: (any PassingScorer)?) -> any ParallelStrategy {
        APB(context, scorer: scorer ?? QueryAwareScorer())
    }

    public override var readsPreRotaryProjections: Bool { scorer.readsPreRotaryProjections }

    /// Rows host `rank` may select: its block minus the first `A` local rows.
    func candidates(of rank: Int) -> Range<Int> {
        let layout = plan.ranks[rank]
        let block = layout.blockRows[0]
        return min(max(block.lowerBound, plan.anchorLength), block.upperBound)..<block.upperBound
    }

    /// Entries each host passes.
    var passingCounts: [Int] {
        (0..<plan.worldSize).map {
            TopKSelection.count(budget: plan.passingLength, candidates: candidates(of: $0).count)
        }
    }

    override func prefill(_ input: AttentionInput, cache: KVCache, backend: any Backend) throws -> PrefillAttention {
        let layout = context.layout
        let keyRows = 0..<(layout.rowCount - layout.probeOnlyRows.count)

        // Select and exchange.
        let counts = passingCounts
        var selected = (key: input.key.rows(0..<0), value: input.value.rows(0..<0))
        if counts[rank] > 0 {
            selected = try input.timed(.selection) {
                let scores = try scorer.smoothedScores(
                    input, keyRows: keyRows, probeRows: layout.queryRows, backend: backend)
                return try TopKSelection.select(
                    scores: scores, candidates: candidates(of: rank), budget: plan.passingLength,
                    key: input.key, value: input.value, backend: backend)
            }
        }
        let entries = try input.timed(.communication) {
            try PassingMessages(
                key: selected.key, value: selected.value, counts: counts,
                communicator: context.communicator, backend: backend
            ).entries(of: Array(0..<rank))
        }
        let passing = try PassingBlock.assemble(entries, like: input.key, backend: backend)

        if recordsPassing { lastPassing = [passing.key] }

        // Attention with keys [passing ; anchor ; block (; probe)].
        let key = try PassingBlock.keysBefore(passing.key, [input.key], backend: backend)
        let value = try PassingBlock.keysBefore(passing.value, [input.value], backend: backend)
        let mask = AttentionMask.anchor(anchorLength: layout.anchorRows.count, passingLength: passing.key.shape[0])
        return PrefillAttention(
            try input.timed(.attentionCompute) {
                try backend.attention(query: input.query, key: key, value: value, mask: mask, scale: context.scale)
            })
    }
}

/// The query up to its first end-of-turn token (what APB inserts into the anchor), or nil when it
/// has none (then the whole query is inserted).
public func questionBeforeEndOfTurn(_ query: [Int32], endOfTurn: Set<Int32>) -> [Int32]? {
    query.firstIndex(where: endOfTurn.contains).map { Array(query[..<$0]) }
}
