import BatonTensor

/// The sequence-parallel methods Baton runs.
public enum Method: String, Sendable, CaseIterable {
    case dense, ring, zigzag, star, apb, spava

    /// Whether the method reproduces single-GPU attention exactly (up to rounding).
    public var isExact: Bool { self == .dense || self == .ring || self == .zigzag }

    /// The method called `name` (`dense`, `ring`, `zigzag`, `star`, `apb`, `spava`, any case), or an
    /// error naming `option` and listing them.
    public static func named(_ name: String, option: String = "--method") throws -> Method {
        guard let method = Method(rawValue: name.lowercased()) else {
            throw BatonError.invalidArgument("\(option) must be one of \(Method.allCases.map(\.rawValue).joined(separator: ", ")), got '\(name)'")
        }
        return method
    }
}

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
    /// Global position of every local row (RoPE), `[T]`.
    public var positions: [Int32] = []
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
}

/// Sizes that differ by at most one, larger first, covering `0..<count` in order.
func balancedSplit(_ count: Int, parts: Int) -> [Range<Int>] {
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
