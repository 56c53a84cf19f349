import BatonTensor

/// Where an attention strategy is in the request: the context prefill (method-specific), the
/// separate query pass of Star and APB, and decoding. Query and decode attention are the same
/// exact distributed attention (`DistributedDecode`).
public enum Phase: Sendable {
    case prefill, query, decode
}

/// One rank's local input in the prefill pass and what it keeps. Rows are local row indices
/// into `tokenIDs`; positions are global.
public struct RankLayout: Sendable, Equatable {
    public let rank: Int
    /// Token ids of the local prefill input, `[T]`.
    public var tokenIDs: [Int32] = []
    /// Global position of every local row (RoPE), `[T]`. Positions index the prompt: a model with
    /// several position rows (M-RoPE) looks each one up in its table of the whole prompt.
    public var positions: [Int32] = []
    /// Index into `[context ; query]` of every local row's token, `[T]`: where a row's input comes
    /// from (a vision-language model takes the visual embedding of that prompt token at a pad
    /// token). Equal to `positions` except where a layout gives a token another position than its
    /// own (APB's anchor with the query inserted); `-1` marks a token from outside the prompt
    /// (`PlanOptions.anchorQueryTokenIDs`).
    public var promptIndices: [Int32] {
        get { movedPromptIndices ?? positions }
        set { movedPromptIndices = newValue == positions ? nil : newValue }
    }
    /// `promptIndices` where they differ from `positions`.
    private var movedPromptIndices: [Int32]?
    /// Rows of the anchor block (Star, APB on ranks > 0; Spava on every rank), else empty.
    public var anchorRows: Range<Int> = 0..<0
    /// Rows of the rank's own context blocks: one contiguous block, or the two zigzag chunks /
    /// Spava virtual hosts `[B1, B2]` (chunk `r` first, chunk `2W-1-r` second).
    public var blockRows: [Range<Int>] = []
    /// Rows holding the query (question) in the prefill pass: the fused query of Ring, ZigZag and
    /// Spava, or APB's probe rows (the query inserted in the anchor, or appended for scoring).
    public var queryRows: Range<Int> = 0..<0
    /// Rows whose keys and values the KV cache keeps after prefill, in cache order.
    public var cacheRows: [Range<Int>] = []
    /// Rows that only serve query-aware scoring (APB ranks without an inserted query): never
    /// selected, never cached; their outputs are discarded.
    public var probeOnlyRows: Range<Int> = 0..<0

    public init(rank: Int) { self.rank = rank }

    public var rowCount: Int { tokenIDs.count }
}

/// Choices a caller may override; `nil` means the method's default for the input length (each
/// method file states its own). Explicit values are used as given (no rounding to multiples of
/// 128), so short test inputs work.
public struct PlanOptions: Sendable {
    /// `A`, the anchor length (Star, APB, Spava).
    public var anchorLength: Int?
    /// `k` per host (APB) or `P` per virtual host (Spava).
    public var passingLength: Int?
    /// APB: the query is inserted into the anchor after this many system-prefix tokens
    /// (16 for Llama-3 templates, 24 for Qwen-2.5); `nil` keeps the anchor a plain copy of the
    /// context start.
    public var anchorQueryPrefix: Int? = 16
    /// APB: the query tokens to insert into the anchor; `nil` inserts the query up to its first
    /// end-of-turn token, as the reference does (the assistant header after it is not part of
    /// the question), or the whole query when it has none.
    public var anchorQueryTokenIDs: [Int32]?
    /// The tokenizer's end-of-turn ids (the engine fills them in).
    public var endOfTurnTokenIDs: Set<Int32> = []
    /// APB: rows that carry no inserted query (host 0, or every host without insertion) get the
    /// query appended as probe rows, so query-aware scoring has query vectors. Turn off when a
    /// retaining-head scorer is used.
    public var appendQueryProbe = true

    public init(anchorLength: Int? = nil, passingLength: Int? = nil) {
        self.anchorLength = anchorLength
        self.passingLength = passingLength
    }
}

/// What a method's layout starts from: the request's context and query over `worldSize` ranks.
public struct PlanRequest: Sendable {
    public let context: [Int32]
    public let query: [Int32]
    public let worldSize: Int
    public let options: PlanOptions

    /// `N`, context tokens.
    public var contextLength: Int { context.count }
    /// `Q`, query tokens.
    public var queryLength: Int { query.count }

    /// Token ids and global positions of `range` of `[context ; query]` (a row's position is its
    /// index in the prompt).
    public func rows(_ range: Range<Int>) -> (ids: [Int32], positions: [Int32]) {
        let n = context.count
        let ids = range.map { $0 < n ? context[$0] : query[$0 - n] }
        return (ids, range.map { Int32($0) })
    }
}

/// A method's split of one request: what `ParallelMethod.layout` returns and `Plan` records.
public struct MethodLayout: Sendable {
    public var ranks: [RankLayout]
    /// `A` (0 for methods without an anchor).
    public var anchorLength = 0
    /// `k` or `P` (0 for methods that pass nothing).
    public var passingLength = 0
    /// The rank that appends query/decode KV and computes logits.
    public var owner: Int
    /// Whether the query runs as a separate exact pass after the context prefill.
    public var needsQueryPass = false

    public init(ranks: [RankLayout], owner: Int) {
        self.ranks = ranks
        self.owner = owner
    }
}

/// A request split over `worldSize` ranks for one method: every rank's layout, the budgets,
/// and which rank owns the query/decode KV and the LM head.
public struct Plan: Sendable, Equatable {
    public let method: Method
    public let worldSize: Int
    /// `N`, context tokens (the query is not counted).
    public let contextLength: Int
    /// `Q`, query tokens.
    public let queryLength: Int
    /// `A` (Star, APB, Spava; 0 otherwise).
    public let anchorLength: Int
    /// `k` per host (APB) or `P` per virtual host (Spava); 0 for the others.
    public let passingLength: Int
    public let ranks: [RankLayout]
    /// The rank that appends query/decode KV and computes logits.
    public let owner: Int
    /// Star and APB run the query as a separate exact pass after the context prefill; the other
    /// methods process it inside the prefill (their owner's last prefill row gives the first token).
    public let needsQueryPass: Bool
    /// The query tokens, for the query pass.
    public let queryTokenIDs: [Int32]

    /// Global positions of the query pass (`N ..< N+Q`).
    public var queryPositions: [Int32] { (0..<queryLength).map { Int32(contextLength + $0) } }
    /// Position of the first generated token.
    public var firstDecodePosition: Int { contextLength + queryLength }

    /// Splits `context` (+ `query`) over `worldSize` ranks as `method`'s layout says.
    ///
    /// Blocks and chunks are balanced (sizes differ by at most one token) instead of padding to
    /// a multiple of `W` as the reference does; every method stays exact where it should, since
    /// each rank knows every other rank's sizes from the plan.
    public static func make(
        method: Method, context: [Int32], query: [Int32], worldSize: Int,
        options: PlanOptions = PlanOptions()
    ) throws -> Plan {
        guard worldSize >= 1 else { throw BatonError.invalidArgument("plan: worldSize must be >= 1, got \(worldSize)") }
        guard !context.isEmpty else { throw BatonError.invalidArgument("plan: the context is empty") }
        for (name, value) in [
            ("anchorLength", options.anchorLength), ("passingLength", options.passingLength),
            ("anchorQueryPrefix", options.anchorQueryPrefix)
        ] {
            if let value, value < 0 { throw BatonError.invalidArgument("plan: \(name) must be >= 0, got \(value)") }
        }
        let request = PlanRequest(context: context, query: query, worldSize: worldSize, options: options)
        let layout = try method.definition.layout(request)
        return Plan(
            method: method, worldSize: worldSize, contextLength: context.count, queryLength: query.count,
            anchorLength: layout.anchorLength, passingLength: layout.passingLength, ranks: layout.ranks,
            owner: layout.owner, needsQueryPass: layout.needsQueryPass, queryTokenIDs: query)
    }
}

/// Sizes that differ by at most one, larger first, covering `0..<count` in order.
public func balancedSplit(_ count: Int, parts: Int) -> [Range<Int>] {
    let base = count / parts, extra = count % parts
    var start = 0
    return (0..<parts).map { part in
        let size = base + (part < extra ? 1 : 0)
        defer { start += size }
        return start..<start + size
    }
}

/// `x` rounded up to a multiple of 128 (the reference kernel's tile requirement).
func roundUpTo128(_ x: Int) -> Int { (x + 127) / 128 * 128 }

/// Throws when a split leaves a part empty (too short an input for this many ranks).
func requireNonEmpty(_ parts: [Range<Int>], what: String, method: Method) throws {
    if let empty = parts.firstIndex(where: \.isEmpty) {
        throw BatonError.invalidArgument(
            "plan: \(method.rawValue) over \(parts.count) parts leaves \(what) \(empty) empty; use a longer input or fewer ranks"
        )
    }
}

/// Rows `block` of `[context ; query]` laid out as one contiguous block that caches all its rows
/// and holds the part of the query that falls into it (Dense, Ring).
func contiguousBlock(_ block: Range<Int>, rank: Int, request: PlanRequest) -> RankLayout {
    var layout = RankLayout(rank: rank)
    (layout.tokenIDs, layout.positions) = request.rows(block)
    layout.blockRows = [0..<block.count]
    layout.cacheRows = [0..<block.count]
    let n = request.contextLength
    let queryPart = block.clamped(to: n..<(n + request.queryLength))
    layout.queryRows =
        queryPart.isEmpty
        ? 0..<0 : (queryPart.lowerBound - block.lowerBound)..<(queryPart.upperBound - block.lowerBound)
    return layout
}
