import BatonTensor

/// Choices a caller may override; `nil` means the METHODS.md default for the input length.
/// Explicit values are used as given (no rounding to multiples of 128), so short test inputs work.
public struct PlanOptions: Sendable {
    /// `A`. Defaults: APB `min(N/32, 8192)`, Spava `N/64`, both rounded up to 128 (and capped at
    /// `N`); Star the first block's length.
    public var anchorLength: Int?
    /// `k` per host (APB, default `N/64`) or `P` per virtual host (Spava, default `N/128`),
    /// rounded up to 128.
    public var passingLength: Int?
    /// APB: the query is inserted into the anchor after this many system-prefix tokens
    /// (16 for Llama-3 templates, 24 for Qwen-2.5); `nil` keeps the anchor a plain copy of the
    /// context start.
    public var anchorQueryPrefix: Int? = 16
    /// APB: the query tokens to insert into the anchor (the reference cuts the query at its first
    /// end-of-turn token); `nil` inserts the whole query.
    public var anchorQueryTokenIDs: [Int32]?
    /// APB: rows that carry no inserted query (host 0, or every host without insertion) get the
    /// query appended as probe rows, so query-aware scoring has query vectors. Turn off when a
    /// retaining-head scorer is used.
    public var appendQueryProbe = true

    public init(anchorLength: Int? = nil, passingLength: Int? = nil) {
        self.anchorLength = anchorLength
        self.passingLength = passingLength
    }
}

extension Plan {
    /// Splits `context` (+ `query`) over `worldSize` ranks for `method`.
    ///
    /// Blocks and chunks are balanced (sizes differ by at most one token) instead of padding to
    /// a multiple of `W` as the reference does; every method stays exact where it should, since
    /// each rank knows every other rank's sizes from the plan.
    public static func make(method: Method, context: [Int32], query: [Int32], worldSize: Int,
                            options: PlanOptions = PlanOptions()) throws -> Plan {
        let n = context.count, q = query.count
        guard worldSize >= 1 else { throw BatonError.invalidArgument("plan: worldSize must be >= 1, got \(worldSize)") }
        guard n >= 1 else { throw BatonError.invalidArgument("plan: the context is empty") }
        for (name, value) in [("anchorLength", options.anchorLength), ("passingLength", options.passingLength),
                              ("anchorQueryPrefix", options.anchorQueryPrefix)] {
            if let value, value < 0 { throw BatonError.invalidArgument("plan: \(name) must be >= 0, got \(value)") }
        }
        if method == .dense && worldSize != 1 {
            throw BatonError.invalidArgument("plan: dense runs on one rank, got worldSize \(worldSize)")
        }
        let all = context + query
        let positions = (0..<(n + q)).map { Int32($0) }
        func rows(_ range: Range<Int>) -> (ids: [Int32], positions: [Int32]) {
            (Array(all[range]), Array(positions[range]))
        }
        var anchorLength = 0, passingLength = 0, owner = worldSize - 1, needsQueryPass = false
        var layouts = (0..<worldSize).map { RankLayout(rank: $0) }

        switch method {
        case .dense, .ring:
            let blocks = balancedSplit(n + q, parts: worldSize)
            try requireNonEmpty(blocks, what: "context+query block", method: method)
            for r in 0..<worldSize {
                let block = blocks[r]
                (layouts[r].tokenIDs, layouts[r].positions) = rows(block)
                layouts[r].blockRows = [0..<block.count]
                layouts[r].cacheRows = [0..<block.count]
                let queryPart = block.clamped(to: n..<(n + q))
                layouts[r].queryRows = queryPart.isEmpty ? 0..<0 : (queryPart.lowerBound - block.lowerBound)..<(queryPart.upperBound - block.lowerBound)
            }

        case .zigzag:
            let chunks = balancedSplit(n + q, parts: 2 * worldSize)
            try requireNonEmpty(chunks, what: "zigzag chunk", method: method)
            for r in 0..<worldSize {
                let first = chunks[r], second = chunks[2 * worldSize - 1 - r]
                let a = rows(first), b = rows(second)
                layouts[r].tokenIDs = a.ids + b.ids
                layouts[r].positions = a.positions + b.positions
                layouts[r].blockRows = [0..<first.count, first.count..<first.count + second.count]
                layouts[r].cacheRows = [0..<layouts[r].rowCount]
            }
            // The query's tail lies in the last chunk, which rank 0 holds second.
            let lastChunk = chunks[2 * worldSize - 1], tail = lastChunk.clamped(to: n..<(n + q))
            let shift = chunks[0].count - lastChunk.lowerBound
            layouts[0].queryRows = tail.isEmpty ? 0..<0 : (tail.lowerBound + shift)..<(tail.upperBound + shift)
            owner = 0

        case .star, .apb:
            let blocks = balancedSplit(n, parts: worldSize)
            try requireNonEmpty(blocks, what: "context block", method: method)
            needsQueryPass = true
            if method == .star {
                anchorLength = min(options.anchorLength ?? blocks[0].count, n)
            } else {
                anchorLength = min(options.anchorLength ?? roundUpTo128(min(n / 32, 8192)), n)
                passingLength = options.passingLength ?? roundUpTo128(n / 64)
            }
            let anchor = method == .apb ? apbAnchor(context: context, query: query, length: anchorLength, options: options)
                : (ids: Array(context[0..<anchorLength]), insertedQuery: 0..<0)
            for r in 0..<worldSize {
                let block = rows(blocks[r])
                let anchorRows = r > 0 ? 0..<anchorLength : 0..<0
                layouts[r].tokenIDs = (r > 0 ? anchor.ids : []) + block.ids
                layouts[r].positions = (r > 0 ? (0..<anchorLength).map { Int32($0) } : []) + block.positions
                layouts[r].anchorRows = anchorRows
                let own = anchorRows.count..<anchorRows.count + blocks[r].count
                layouts[r].blockRows = [own]
                layouts[r].cacheRows = [own]
                if method == .apb && q > 0 && options.appendQueryProbe {
                    if r > 0 && !anchor.insertedQuery.isEmpty {
                        layouts[r].queryRows = anchor.insertedQuery
                    } else {
                        let probe = own.upperBound..<own.upperBound + q
                        layouts[r].tokenIDs += query
                        layouts[r].positions += (n..<(n + q)).map { Int32($0) }
                        layouts[r].queryRows = probe
                        layouts[r].probeOnlyRows = probe
                    }
                }
            }

        case .spava:
            guard q >= 1 else { throw BatonError.invalidArgument("plan: spava needs a query (query-aware selection), got an empty one") }
            anchorLength = min(options.anchorLength ?? roundUpTo128(n / 64), n)
            passingLength = options.passingLength ?? roundUpTo128(n / 128)
            let chunks = balancedSplit(n - anchorLength, parts: 2 * worldSize).map {
                ($0.lowerBound + anchorLength)..<($0.upperBound + anchorLength)
            }
            try requireNonEmpty(chunks, what: "zigzag chunk (context minus anchor)", method: method)
            let shard = (anchorLength + worldSize - 1) / worldSize
            for r in 0..<worldSize {
                let b1 = chunks[r], b2 = chunks[2 * worldSize - 1 - r]
                let parts = [rows(0..<anchorLength), rows(b1), rows(b2), rows(n..<(n + q))]
                layouts[r].tokenIDs = parts.flatMap(\.ids)
                layouts[r].positions = parts.flatMap(\.positions)
                let a = anchorLength
                layouts[r].anchorRows = 0..<a
                let b1Rows = a..<a + b1.count, b2Rows = b1Rows.upperBound..<b1Rows.upperBound + b2.count
                layouts[r].blockRows = [b1Rows, b2Rows]
                layouts[r].queryRows = b2Rows.upperBound..<b2Rows.upperBound + q
                let anchorShard = min(r * shard, a)..<min((r + 1) * shard, a)
                layouts[r].cacheRows = [anchorShard, b1Rows, b2Rows] + (r == 0 ? [layouts[r].queryRows] : [])
            }
            owner = 0
        }
        return Plan(method: method, worldSize: worldSize, contextLength: n, queryLength: q,
                    anchorLength: anchorLength, passingLength: passingLength, ranks: layouts, owner: owner,
                    needsQueryPass: needsQueryPass, queryTokenIDs: query)
    }

    /// APB's anchor: the first `s` context tokens, the query, then context tokens from `s` on,
    /// `length` tokens in all (positions `0..<length`). Returns the ids and the query's rows.
    private static func apbAnchor(context: [Int32], query: [Int32], length: Int,
                                  options: PlanOptions) -> (ids: [Int32], insertedQuery: Range<Int>) {
        guard let prefix = options.anchorQueryPrefix else { return (Array(context[0..<length]), 0..<0) }
        let s = min(prefix, length)
        let inserted = Array((options.anchorQueryTokenIDs ?? query).prefix(length - s))
        let rest = context[s..<(length - inserted.count)]
        return (Array(context[0..<s]) + inserted + rest, s..<s + inserted.count)
    }

    private static func requireNonEmpty(_ parts: [Range<Int>], what: String, method: Method) throws {
        if let empty = parts.firstIndex(where: \.isEmpty) {
            throw BatonError.invalidArgument("plan: \(method.rawValue) over \(parts.count) parts leaves \(what) \(empty) empty; use a longer input or fewer ranks")
        }
    }
}
