import BatonComm
import BatonModels
import BatonParallel
import BatonTensor

/// One rank's contiguous share of a prompt's temporal units (Spava's frame parallelism, METHODS
/// 3.3): the units of every image and video in prompt order (a video's unit is 2 frames, an image
/// is one unit) split into balanced contiguous shares. No vision attention crosses a temporal unit
/// (windows lie inside one, and each full-attention segment is one unit), so the tower over a
/// share gives, to rounding, the rows the tower over everything gives there.
public struct VisualShare: Sendable, Equatable {
    /// Temporal units `units` of item `item`; the tower sees them as an item of grid `grid`
    /// (t = `units.count`).
    public struct Piece: Sendable, Equatable {
        public let item: Int
        public let units: Range<Int>
        public let grid: VisionGrid
    }

    public let pieces: [Piece]
    /// Rows of the tower's output over the whole prompt (row k: the k-th pad token) that this
    /// share's output holds, in order.
    public let rows: Range<Int>

    /// The temporal units of `items` split over `parts` ranks: unit counts differ by at most one,
    /// the first `units mod parts` shares one larger, as Spava splits frames. With fewer units
    /// than ranks, the last ranks encode nothing.
    public static func split(_ items: [VisualItem], parts: Int, mergeUnit: Int) -> [VisualShare] {
        let units = items.reduce(0) { $0 + $1.grid.t }
        var item = 0, firstUnit = 0, row = 0
        return balancedSplit(units, parts: parts).map { share in
            var pieces: [Piece] = [], remaining = share.count
            let firstRow = row
            while remaining > 0 {
                let grid = items[item].grid
                let taken = min(remaining, grid.t - firstUnit)
                if taken > 0 {
                    pieces.append(
                        Piece(
                            item: item, units: firstUnit..<firstUnit + taken,
                            grid: VisionGrid(t: taken, h: grid.h, w: grid.w)))
                    row += taken * grid.h * grid.w / mergeUnit
                }
                remaining -= taken
                firstUnit += taken
                if firstUnit == grid.t { (item, firstUnit) = (item + 1, 0) }
            }
            return VisualShare(pieces: pieces, rows: firstRow..<row)
        }
    }
}

/// Frame-parallel encoding on one rank: the vision tower over this rank's `VisualShare` only, then
/// a `RowExchange` that leaves the rank the visual rows `needs[rank]` (sorted row numbers of the
/// tower's output over the whole prompt) -> `[needs[rank].count, D]` act, in that order.
///
/// What crosses the wire: from each rank to each other rank, the embeddings (D values each, act
/// dtype) of the visual tokens the receiver's rows read that the sender encoded; nothing else (no
/// pixels, no tower activations). One rank exchanges nothing.
///
/// `stages`, when given, records the rank's preprocessing, tower and exchange (`bench video`).
public func encodeFrameParallel(
    _ visuals: VisualPrefill, needs: [[Int]], model: VisionLanguageModel,
    communicator: any Communicator, stages: VisualStageTimes? = nil
) throws -> Tensor {
    let backend = model.backend, rank = communicator.rank
    let shares = VisualShare.split(
        visuals.items, parts: communicator.worldSize,
        mergeUnit: model.config.mergeUnit)
    let share = shares[rank]
    let width = model.config.text.hiddenSize, dtype = backend.activationDType
    let local =
        share.pieces.isEmpty
        ? try backend.empty(Shape([0, width]), dtype: dtype)
        : try visuals.embeddings(of: share, model: model) { stage, body in
            try timedStage(stages, stage, rank: rank, backend: backend, body)
        }
    let exchange = try RowExchange(owned: shares.map(\.rows), needs: needs)
    return try timedStage(stages, .exchange, rank: rank, backend: backend) {
        try exchange.run(local: local, width: width, dtype: dtype, communicator: communicator, backend: backend)
    }
}

/// A visual request as one rank runs it: the prompt's images and videos, the whole prompt
/// `[context ; query]` (M-RoPE and the numbering of pad tokens are the whole prompt's) and this
/// rank's Qwen2.5-VL model, whose language model the rank runs.
struct RankVisualRequest {
    let visuals: VisualPrefill
    let prompt: [Int32]
    let model: VisionLanguageModel
}

/// What one rank's passes of a visual request read: the M-RoPE positions of the whole prompt, and
/// the visual embeddings of the pad tokens among its rows (its prefill input, and the query pass
/// where the plan has one), which frame-parallel encoding brought to it.
final class RankVisualInput {
    let model: VisionLanguageModel
    /// M-RoPE rows t, h, w of the whole prompt; decoding adds `ropeDelta` to the token index.
    let positionTable: [[Int32]]
    let ropeDelta: Int
    /// Visual row of each prompt token (the k-th pad token: k), `-1` for text.
    let visualRowOfPromptToken: [Int32]
    /// This rank's visual rows `[needed.count, D]` act and where each visual row sits in it.
    let visualRows: Tensor
    let localRow: [Int32: Int32]

    /// Encodes this rank's share of the temporal units and exchanges embeddings with the others
    /// (every rank of `plan` calls this at the start of its prefill); `stages` records how long.
    init(
        _ request: RankVisualRequest, plan: Plan, communicator: any Communicator, stages: VisualStageTimes? = nil
    ) throws {
        model = request.model
        try require(
            request.prompt.count == plan.contextLength + plan.queryLength,
            "visual request: the prompt has \(request.prompt.count) tokens, the plan \(plan.contextLength) + "
                + "\(plan.queryLength)")
        (positionTable, ropeDelta) = try model.config.ropePositions(
            tokens: request.prompt,
            items: request.visuals.items)
        let visualRowOfPromptToken = model.visualRowNumbers(request.prompt)
        self.visualRowOfPromptToken = visualRowOfPromptToken
        let needs = plan.ranks.map { layout in
            Self.visualRowsRead(
                layout.promptIndices + (plan.needsQueryPass ? plan.queryPositions : []),
                visualRowOfPromptToken: visualRowOfPromptToken)
        }
        let needed = needs[communicator.rank]
        localRow = Dictionary(uniqueKeysWithValues: needed.enumerated().map { (Int32($0.element), Int32($0.offset)) })
        visualRows = try encodeFrameParallel(
            request.visuals, needs: needs, model: model, communicator: communicator, stages: stages)
    }

    /// The visual rows (sorted, distinct) that rows from `promptIndices` read.
    static func visualRowsRead(_ promptIndices: [Int32], visualRowOfPromptToken: [Int32]) -> [Int] {
        Set(
            promptIndices.compactMap { index in
                let row = index >= 0 ? visualRowOfPromptToken[Int(index)] : -1
                return row >= 0 ? Int(row) : nil
            }
        ).sorted()
    }

    /// Rows at prompt positions `positions` (`RankLayout.positions`) -> M-RoPE positions `[3, T]`.
    func positions(_ positions: [Int32]) throws -> Tensor {
        try model.positions(positionTable.map { row in positions.map { row[Int($0)] } })
    }

    /// Input embeddings `[T, D]` act of rows holding `tokens` from prompt tokens `promptIndices`
    /// (`RankLayout.promptIndices`): token embeddings, visual rows at the pad tokens.
    func embeddings(tokens: [Int32], promptIndices: [Int32]) throws -> Tensor {
        let visualRowOfToken = try zip(tokens, promptIndices).map { token, index -> Int32 in
            let visual = index >= 0 ? visualRowOfPromptToken[Int(index)] : -1
            try require(
                (visual >= 0) == model.isPad(token),
                "visual request: a row holds token \(token) from prompt token \(index), which is "
                    + (visual >= 0 ? "an image/video pad token" : "not one"))
            return visual >= 0 ? localRow[visual]! : -1
        }
        return try model.embeddings(tokens: tokens, visualRows: visualRows, visualRowOfToken: visualRowOfToken)
    }
}
