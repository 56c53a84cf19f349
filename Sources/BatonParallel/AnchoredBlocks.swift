import BatonTensor

/// The layout Star and APB share: contiguous context blocks, ranks `> 0` prepending an anchor
/// of `A` rows at positions `0..<A`, only the own block cached; the query runs as a separate
/// exact pass and the last rank owns it.
enum AnchoredBlocks {
    /// `anchor`: the anchor's token ids (length `A`) and where each comes from in the prompt
    /// (`RankLayout.promptIndices`), given the context blocks.
    static func layout(
        _ request: PlanRequest, method: Method,
        anchor: ([Range<Int>]) -> (ids: [Int32], promptIndices: [Int32])
    ) throws -> MethodLayout {
        let blocks = balancedSplit(request.contextLength, parts: request.worldSize)
        try requireNonEmpty(blocks, what: "context block", method: method)
        let (anchorIDs, anchorIndices) = anchor(blocks)
        let ranks = blocks.enumerated().map { r, range in
            let block = request.rows(range)
            var layout = RankLayout(rank: r)
            let anchorRows = r > 0 ? 0..<anchorIDs.count : 0..<0
            layout.tokenIDs = (r > 0 ? anchorIDs : []) + block.ids
            layout.positions = (r > 0 ? (0..<anchorIDs.count).map { Int32($0) } : []) + block.positions
            layout.promptIndices = (r > 0 ? anchorIndices : []) + block.positions
            layout.anchorRows = anchorRows
            let own = anchorRows.count..<anchorRows.count + range.count
            layout.blockRows = [own]
            layout.cacheRows = [own]
            return layout
        }
        var result = MethodLayout(ranks: ranks, owner: request.worldSize - 1)
        result.anchorLength = anchorIDs.count
        result.needsQueryPass = true
        return result
    }
}
