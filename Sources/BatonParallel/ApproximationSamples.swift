/// Which prefill rows the approximation report measures, and which rank holds the exact keys of
/// every position: all derived from the plan, so every rank knows every rank's samples without
/// asking.
struct ApproximationSamples {
    /// Sampled local rows of each rank: its context rows (positions `< N`) of its blocks, spread
    /// evenly from the first to the last.
    let rows: [[Int]]
    /// The global position of each sampled row, per rank.
    let positions: [[Int]]
    /// Most samples of one rank: each rank's gathered queries are padded to this many rows.
    let capacity: Int
    /// All samples by increasing position: (rank, index into `rows[rank]`).
    let order: [(rank: Int, index: Int)]
    /// `positions` in `order`.
    let sortedPositions: [Int]
    /// Where each position's exact keys live: local row ranges of consecutive positions, per rank.
    /// Every position of `[context ; query]` that a rank's blocks hold is owned once; the anchor
    /// rows (a copy on ranks > 0) are owned by rank 0 where no block holds them (Spava).
    let keyRuns: [[(rows: Range<Int>, firstPosition: Int)]]

    init(plan: Plan, rowsPerRank: Int) {
        rows = plan.ranks.map { layout in
            let context = layout.blockRows.flatMap { $0 }.filter { Int(layout.positions[$0]) < plan.contextLength }
            return Self.spread(rowsPerRank, over: context)
        }
        positions = zip(plan.ranks, rows).map { layout, rows in rows.map { Int(layout.positions[$0]) } }
        capacity = rows.map(\.count).max() ?? 0
        let positions = positions
        order = positions.indices.flatMap { r in positions[r].indices.map { (rank: r, index: $0) } }
            .sorted { positions[$0.rank][$0.index] < positions[$1.rank][$1.index] }
        sortedPositions = order.map { positions[$0.rank][$0.index] }
        keyRuns = plan.ranks.map { layout in
            let owned = layout.blockRows + (layout.rank == 0 ? [layout.anchorRows] : [])
            return owned.filter { !$0.isEmpty }.map { ($0, Int(layout.positions[$0.lowerBound])) }
        }
    }

    /// `count` of `rows`, evenly spread and including the first and the last (all when there are
    /// no more than `count`).
    static func spread(_ count: Int, over rows: [Int]) -> [Int] {
        guard rows.count > count else { return rows }
        guard count > 1 else { return count == 1 ? [rows[rows.count - 1]] : [] }
        let last = rows.count - 1
        return (0..<count).map { rows[($0 * last + (count - 1) / 2) / (count - 1)] }
    }

    /// The index of rank `rank`'s sample `index` in `order`.
    func sortedIndex(rank: Int) -> [Int] {
        var result = [Int](repeating: 0, count: rows[rank].count)
        for (i, sample) in order.enumerated() where sample.rank == rank { result[sample.index] = i }
        return result
    }
}
