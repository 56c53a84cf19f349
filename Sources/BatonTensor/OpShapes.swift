/// The shape and dtype rules of the `Backend` ops, one set for every backend: each backend's op
/// calls its rule first, then checks only where its tensors live (host or device) and computes.
/// A rule throws `BatonError.shapeMismatch` naming the op, the operand and what was expected, and
/// returns the sizes the op needs.
public enum OpShapes {
    /// Throws unless `x` is bf16, f16 or f32.
    public static func requireFloat(_ x: Tensor, _ op: String, _ name: String) throws {
        try require(x.dtype.isFloatingPoint, "\(op): \(name) must be bf16, f16 or f32, found \(x.dtype)")
    }

    /// Throws unless `x` is i32.
    public static func requireInt32(_ x: Tensor, _ op: String, _ name: String) throws {
        try require(x.dtype == .i32, "\(op): \(name) must be i32, found \(x.dtype)")
    }

    /// Throws unless `x` has `rank` dimensions; `layout` names them for the message (`[Sq, H, d]`).
    public static func requireRank(_ x: Tensor, _ rank: Int, _ op: String, _ name: String, _ layout: String) throws {
        try require(x.shape.rank == rank, "\(op): \(name) must be \(layout), found shape \(x.shape)")
    }

    /// table `[V, D]` float, ids `[T]` i32.
    public static func embedding(table: Tensor, ids: Tensor) throws -> (vocabulary: Int, width: Int, count: Int) {
        let op = "embedding"
        try requireFloat(table, op, "table")
        try requireInt32(ids, op, "ids")
        try requireRank(table, 2, op, "table", "[V, D]")
        try requireRank(ids, 1, op, "ids", "[T]")
        return (table.shape[0], table.shape[1], ids.shape[0])
    }

    /// x `[M, K]`, weight `[N, K]`, bias `[N]`, residual `[M, N]`, all float.
    public static func matmul(
        _ x: Tensor, weight: Tensor, bias: Tensor?,
        residual: Tensor? = nil
    ) throws -> (m: Int, k: Int, n: Int) {
        let op = "matmul"
        try requireFloat(x, op, "x")
        try requireFloat(weight, op, "weight")
        try requireRank(x, 2, op, "x", "[M, K]")
        try requireRank(weight, 2, op, "weight", "[N, K]")
        let (m, k, n) = (x.shape[0], x.shape[1], weight.shape[0])
        try require(
            weight.shape[1] == k, "matmul: weight must be [N, \(k)] to match x \(x.shape), found \(weight.shape)")
        if let bias {
            try requireFloat(bias, op, "bias")
            try require(bias.shape == Shape([n]), "matmul: bias must be [\(n)], found \(bias.shape)")
        }
        if let residual {
            try requireFloat(residual, op, "residual")
            try require(
                residual.shape == Shape([m, n]), "matmulAdd: residual must be [\(m), \(n)], found \(residual.shape)")
        }
        return (m, k, n)
    }

    /// x `[..., D]` float (rank 2 `[M, D]` in the op set), weight `[D]` float.
    public static func rmsNorm(_ x: Tensor, weight: Tensor) throws -> (rows: Int, width: Int) {
        let op = "rmsNorm"
        try requireFloat(x, op, "x")
        try requireFloat(weight, op, "weight")
        try require(x.shape.rank >= 1, "rmsNorm: x must be [M, D], found a scalar")
        let width = x.shape.dimensions.last!
        try require(
            weight.shape == Shape([width]),
            "rmsNorm: weight must be [\(width)] to match x \(x.shape), found \(weight.shape)")
        return (width == 0 ? 0 : x.elementCount / width, width)
    }

    /// x `[N, C]` float, weight and bias `[C]` float.
    public static func layerNorm(_ x: Tensor, weight: Tensor, bias: Tensor) throws -> (rows: Int, width: Int) {
        let op = "layerNorm"
        try requireFloat(x, op, "x")
        try requireFloat(weight, op, "weight")
        try requireFloat(bias, op, "bias")
        try requireRank(x, 2, op, "x", "[N, C]")
        let (rows, width) = (x.shape[0], x.shape[1])
        for (name, parameter) in [("weight", weight), ("bias", bias)] {
            try require(
                parameter.shape == Shape([width]),
                "layerNorm: \(name) must be [\(width)] to match x \(x.shape), found \(parameter.shape)")
        }
        return (rows, width)
    }

    /// positions `[T]` i32 and inverseFrequencies `[d/2]` float for `T` tokens of head dim `d`.
    public static func rotaryPositions(
        _ op: String, positions: Tensor, inverseFrequencies: Tensor,
        tokens: Int, headDim: Int
    ) throws {
        try requireInt32(positions, op, "positions")
        try requireFloat(inverseFrequencies, op, "inverseFrequencies")
        try require(headDim % 2 == 0, "\(op): head dim must be even, found \(headDim)")
        try require(
            positions.shape == Shape([tokens]), "\(op): positions must be [\(tokens)], found \(positions.shape)")
        try require(
            inverseFrequencies.shape == Shape([headDim / 2]),
            "\(op): inverseFrequencies must be [\(headDim / 2)] for head dim \(headDim), found \(inverseFrequencies.shape)"
        )
    }

    /// x `[T, heads, d]` float, positions `[T]` i32, inverseFrequencies `[d/2]` float.
    public static func rotary(
        _ x: Tensor, positions: Tensor,
        inverseFrequencies: Tensor
    ) throws -> (tokens: Int, heads: Int, headDim: Int) {
        try requireFloat(x, "rotary", "x")
        try requireRank(x, 3, "rotary", "x", "[T, heads, d]")
        let (tokens, heads, headDim) = (x.shape[0], x.shape[1], x.shape[2])
        try rotaryPositions(
            "rotary", positions: positions, inverseFrequencies: inverseFrequencies, tokens: tokens,
            headDim: headDim)
        return (tokens, heads, headDim)
    }

    /// qkv `[T, (heads + 2 kvHeads) d]` float, positions `[T]` i32, inverseFrequencies `[d/2]` float.
    public static func rotaryQKV(
        _ qkv: Tensor, heads: Int, kvHeads: Int, positions: Tensor,
        inverseFrequencies: Tensor
    ) throws -> (tokens: Int, headDim: Int) {
        let op = "rotaryQKV"
        try requireFloat(qkv, op, "qkv")
        try requireRank(qkv, 2, op, "qkv", "[T, (heads + 2 kvHeads) d]")
        try require(
            heads > 0 && kvHeads > 0 && qkv.shape[1] % (heads + 2 * kvHeads) == 0,
            "rotaryQKV: qkv \(qkv.shape) does not split into \(heads) query and 2 x \(kvHeads) key/value heads")
        let (tokens, headDim) = (qkv.shape[0], qkv.shape[1] / (heads + 2 * kvHeads))
        try rotaryPositions(
            op, positions: positions, inverseFrequencies: inverseFrequencies, tokens: tokens, headDim: headDim)
        return (tokens, headDim)
    }

    /// One or two same-shaped float operands of an element-wise op named `op`.
    public static func elementwise(_ op: String, _ a: Tensor, _ b: Tensor?, names: (String, String)) throws {
        try requireFloat(a, op, names.0)
        if let b {
            try requireFloat(b, op, names.1)
            try require(
                a.shape == b.shape, "\(op): \(names.0) \(a.shape) and \(names.1) \(b.shape) must have the same shape")
        }
    }

    /// x `[M, 2F]` float.
    public static func siluMultiplyHalves(_ x: Tensor) throws -> (rows: Int, half: Int) {
        let op = "siluMultiplyHalves"
        try requireFloat(x, op, "x")
        try requireRank(x, 2, op, "x", "[M, 2F]")
        try require(x.shape[1] % 2 == 0, "siluMultiplyHalves: x must have an even number of columns, found \(x.shape)")
        return (x.shape[0], x.shape[1] / 2)
    }

    /// Parts `[n_i, ...]` of one dtype and the same trailing dimensions -> the concatenation's shape.
    public static func concatRows(_ parts: [Tensor]) throws -> Shape {
        try require(!parts.isEmpty, "concatRows: needs at least one part, found none")
        let first = parts[0]
        try require(first.shape.rank >= 1, "concatRows: parts must have at least one dimension, found a scalar")
        for (i, part) in parts.enumerated() {
            try require(part.dtype == first.dtype, "concatRows: part \(i) is \(part.dtype), part 0 is \(first.dtype)")
            try require(
                part.shape.rank == first.shape.rank && part.shape.withRows(0) == first.shape.withRows(0),
                "concatRows: part \(i) has shape \(part.shape), expected [n, \(first.shape.dimensions.dropFirst().map(String.init).joined(separator: ", "))] like part 0"
            )
        }
        return first.shape.withRows(parts.reduce(0) { $0 + $1.shape[0] })
    }

    /// Parts `[T, n_i]` of one dtype -> `[T, sum n_i]`.
    public static func concatColumns(_ parts: [Tensor]) throws -> Shape {
        try require(!parts.isEmpty, "concatColumns: needs at least one part, found none")
        let rowCount = parts[0].shape.rank == 2 ? parts[0].shape[0] : 0
        for (i, part) in parts.enumerated() {
            try requireRank(part, 2, "concatColumns", "part \(i)", "[T, n]")
            try require(
                part.shape[0] == rowCount, "concatColumns: part \(i) has \(part.shape[0]) rows, part 0 has \(rowCount)")
            try require(
                part.dtype == parts[0].dtype, "concatColumns: part \(i) is \(part.dtype), part 0 is \(parts[0].dtype)")
        }
        return Shape([rowCount, parts.reduce(0) { $0 + $1.shape[1] }])
    }

    /// q `[Sq, H, d]`, k/v `[Sk, Hkv, d]` float with `H` a multiple of `Hkv`, and a valid mask.
    public static func attention(
        query: Tensor, key: Tensor, value: Tensor,
        mask: AttentionMask
    ) throws -> (queryCount: Int, keyCount: Int, heads: Int, kvHeads: Int, headDim: Int) {
        let sizes = try groupedHeads(
            "attention", query: query, key: key, value: value,
            layouts: ("[Sq, H, d]", "[Sk, Hkv, d]"))
        try require(sizes.headDim > 0, "attention: head dim must be positive, found \(sizes.headDim)")
        if case .anchor(let anchorLength, let passingLength) = mask {
            try require(
                anchorLength >= 0 && passingLength >= 0,
                "attention: anchor mask lengths must be non-negative, found anchor \(anchorLength), passing \(passingLength)"
            )
        }
        return sizes
    }

    /// Parts with out `[Sq, H, d]` and lse `[H, Sq]`, all float and of one shape.
    public static func mergeAttention(_ parts: [AttentionOutput]) throws -> (queryCount: Int, heads: Int, headDim: Int)
    {
        let op = "mergeAttention"
        try require(!parts.isEmpty, "mergeAttention: needs at least one part, found none")
        let shape = parts[0].out.shape
        try requireRank(parts[0].out, 3, op, "part 0 out", "[Sq, H, d]")
        let (queryCount, heads, headDim) = (shape[0], shape[1], shape[2])
        for (i, part) in parts.enumerated() {
            try requireFloat(part.out, op, "part \(i) out")
            try requireFloat(part.logSumExp, op, "part \(i) lse")
            try require(
                part.out.shape == shape, "mergeAttention: part \(i) out is \(part.out.shape), part 0 out is \(shape)")
            try require(
                part.logSumExp.shape == Shape([heads, queryCount]),
                "mergeAttention: part \(i) lse must be [\(heads), \(queryCount)], found \(part.logSumExp.shape)")
        }
        return (queryCount, heads, headDim)
    }

    /// q `[Q, H, d]` (at least one row), k `[S, Hkv, d]` float with `H` a multiple of `Hkv`.
    public static func queryAwareScores(query: Tensor, key: Tensor) throws -> (
        queryCount: Int, keyCount: Int, heads: Int, kvHeads: Int, headDim: Int
    ) {
        let sizes = try groupedHeads("queryAwareScores", query: query, key: key, layouts: ("[Q, H, d]", "[S, Hkv, d]"))
        try require(sizes.queryCount > 0, "queryAwareScores: query needs at least one row, found \(query.shape)")
        return sizes
    }

    /// What attention and query-aware scoring both need: q `[Sq, H, d]`, k (and v, when given)
    /// `[Sk, Hkv, d]` float, with k's head dim q's and `H` a multiple of `Hkv` (grouped-query
    /// attention). `layouts` name q's and k's dimensions as the op's messages spell them.
    static func groupedHeads(_ op: String, query: Tensor, key: Tensor, value: Tensor? = nil, layouts: (String, String))
        throws -> (queryCount: Int, keyCount: Int, heads: Int, kvHeads: Int, headDim: Int)
    {
        try requireFloat(query, op, "query")
        try requireFloat(key, op, "key")
        if let value { try requireFloat(value, op, "value") }
        try requireRank(query, 3, op, "query", layouts.0)
        try requireRank(key, 3, op, "key", layouts.1)
        if let value {
            try require(
                value.shape == key.shape, "\(op): value must have key's shape \(key.shape), found \(value.shape)")
        }
        let (queryCount, heads, headDim) = (query.shape[0], query.shape[1], query.shape[2])
        let (keyCount, kvHeads) = (key.shape[0], key.shape[1])
        try require(key.shape[2] == headDim, "\(op): key head dim must be \(headDim) (query's), found \(key.shape[2])")
        try require(
            kvHeads > 0 && heads % kvHeads == 0,
            "\(op): query heads (\(heads)) must be a multiple of KV heads (\(kvHeads))")
        return (queryCount, keyCount, heads, kvHeads, headDim)
    }

    /// scores `[S, C]` float and a positive odd window.
    public static func maxPool1D(_ scores: Tensor, window: Int) throws -> (rows: Int, columns: Int) {
        try requireFloat(scores, "maxPool1D", "scores")
        try requireRank(scores, 2, "maxPool1D", "scores", "[S, C]")
        try require(window > 0 && window % 2 == 1, "maxPool1D: window must be a positive odd number, found \(window)")
        return (scores.shape[0], scores.shape[1])
    }

    /// scores `[S, C]` float, `rows` within `0..<S`, `0 <= k <= rows.count`.
    public static func topKPerHead(_ scores: Tensor, k: Int, rows: Range<Int>) throws -> (rows: Int, columns: Int) {
        let op = "topKPerHead"
        try requireFloat(scores, op, "scores")
        try requireRank(scores, 2, op, "scores", "[S, C]")
        let (rowCount, columns) = (scores.shape[0], scores.shape[1])
        try require(
            rows.lowerBound >= 0 && rows.upperBound <= rowCount,
            "topKPerHead: rows \(rows) must lie within 0..<\(rowCount)")
        try require(k >= 0 && k <= rows.count, "topKPerHead: k must be in 0...\(rows.count) (rows \(rows)), found \(k)")
        return (rowCount, columns)
    }

    /// x `[S, C, d]` any dtype, indices `[C, k]` i32.
    public static func gatherRowsPerHead(_ x: Tensor, indices: Tensor) throws -> (
        rows: Int, columns: Int, width: Int, k: Int
    ) {
        let op = "gatherRowsPerHead"
        try requireInt32(indices, op, "indices")
        try requireRank(x, 3, op, "x", "[S, C, d]")
        try requireRank(indices, 2, op, "indices", "[C, k]")
        let (rowCount, columns, width) = (x.shape[0], x.shape[1], x.shape[2])
        try require(
            indices.shape[0] == columns,
            "gatherRowsPerHead: indices must be [\(columns), k] for x \(x.shape), found \(indices.shape)")
        return (rowCount, columns, width, indices.shape[1])
    }

    /// logits `[R, V]` float with at least one column.
    public static func argmax(_ logits: Tensor) throws -> (rows: Int, vocabulary: Int) {
        try requireFloat(logits, "argmax", "logits")
        try requireRank(logits, 2, "argmax", "logits", "[R, V]")
        try require(logits.shape[1] > 0, "argmax: logits need at least one column, found \(logits.shape)")
        return (logits.shape[0], logits.shape[1])
    }
}
