import BatonTensor
import CCUDA

/// Model, selection and sampling ops: one kernel each from Kernels/ops.cu, GEMMs through cuBLASLt.
extension CUDABackend {
    public func embedding(table: Tensor, ids: Tensor) throws -> Tensor {
        try checkOnDevice(table, "embedding"); try checkOnDevice(ids, "embedding")
        try require(table.shape.rank == 2 && ids.dtype == .i32,
                    "embedding: expected table [V, D] and ids [T] i32, got \(table.shape) \(table.dtype) and \(ids.shape) \(ids.dtype)")
        let (V, D, T) = (table.shape[0], table.shape[1], ids.elementCount)
        let out = try empty(Shape([T, D]), dtype: activationDType)
        try launchElementwise("ops.cu", "embedding_rows", count: T * D,
                              [.tensor(table), .int(table.dtype.kernelCode), .tensor(ids), .tensor(out),
                               .int(activationDType.kernelCode), .int64(T), .int64(D), .int64(V)])
        return out
    }

    public func matmul(_ x: Tensor, weight: Tensor, bias: Tensor?) throws -> Tensor {
        try matmul(x, weight: weight, bias: bias, residual: nil, into: nil)
    }

    /// residual + x W^T + bias, the residual added in the GEMM (cuBLASLt's C, beta 1), so in fp32
    /// before the output's one rounding.
    public func matmulAdd(_ x: Tensor, weight: Tensor, bias: Tensor?, residual: Tensor) throws -> Tensor {
        try matmul(x, weight: weight, bias: bias, residual: residual, into: nil)
    }

    /// The same with the accumulator as C and D (cuBLASLt computes in place when both have one layout).
    public func matmulAccumulate(_ x: Tensor, weight: Tensor, bias: Tensor?, into accumulator: Tensor) throws {
        try checkOnDevice(accumulator, "matmulAccumulate accumulator")
        try require(accumulator.dtype == activationDType,
                    "matmulAccumulate: the accumulator must be \(activationDType), found \(accumulator.dtype)")
        _ = try matmul(x, weight: weight, bias: bias, residual: accumulator, into: accumulator)
    }

    /// y = residual + x W^T + bias into `destination` (a new tensor if nil; it may be the residual).
    private func matmul(_ x: Tensor, weight: Tensor, bias: Tensor?, residual: Tensor?, into destination: Tensor?) throws -> Tensor {
        try require(x.shape.rank == 2 && weight.shape.rank == 2 && x.shape[1] == weight.shape[1],
                    "matmul: expected x [M, K] and weight [N, K], got \(x.shape) and \(weight.shape)")
        let (M, K, N) = (x.shape[0], x.shape[1], weight.shape[0])
        if let bias { try require(bias.elementCount == N, "matmul: bias has \(bias.elementCount) elements, expected \(N)") }
        if let residual {
            try require(residual.shape.rank == 2 && residual.shape[0] == M && residual.shape[1] == N,
                        "matmulAdd: residual must be [\(M), \(N)], got \(residual.shape)")
        }
        let xb = try asActivation(x, "matmul x"), wb = try asActivation(weight, "matmul weight")
        let rb = try residual.map { try asActivation($0, "matmulAdd residual") }
        if M == 0 || N == 0 { return try destination ?? empty(Shape([M, N]), dtype: activationDType) }
        let y = try destination ?? empty(Shape([M, N]), dtype: activationDType)
        if K == 0 {  // x W^T is zero: y is the residual (or zeros), plus the bias below
            let source = try rb ?? zeros(Shape([M, N]), dtype: activationDType)
            if source.address != y.address { try copy(source, into: y) }
        } else {
            try gemm.get().run(x: xb, weight: wb, into: y, residual: rb, M: M, N: N, K: K)
        }
        if synchronizeAfterLaunch { try synchronize() }
        if let bias {
            try checkOnDevice(bias, "matmul bias")
            try launchElementwise("ops.cu", "add_bias_rows", count: M * N,
                                  [.tensor(y), .int(y.dtype.kernelCode), .tensor(bias), .int(bias.dtype.kernelCode),
                                   .int64(M), .int64(N)])
        }
        return y
    }

    public func rmsNorm(_ x: Tensor, weight: Tensor, epsilon: Float) throws -> Tensor {
        try checkOnDevice(x, "rmsNorm"); try checkOnDevice(weight, "rmsNorm weight")
        try require(x.shape.rank == 2 && weight.elementCount == x.shape[1],
                    "rmsNorm: expected x [M, D] and weight [D], got \(x.shape) and \(weight.shape)")
        let out = try empty(x.shape, dtype: activationDType)
        if x.elementCount == 0 { return out }
        try launch("ops.cu", "rms_norm_rows", grid: (x.shape[0], 1, 1), block: 256,
                   [.tensor(x), .int(x.dtype.kernelCode), .tensor(weight), .int(weight.dtype.kernelCode), .tensor(out),
                    .int(activationDType.kernelCode), .int64(x.shape[1]), .float(epsilon)])
        return out
    }

    public func rotary(_ x: Tensor, positions: Tensor, inverseFrequencies: Tensor) throws -> Tensor {
        try checkOnDevice(x, "rotary"); try checkOnDevice(positions, "rotary positions")
        try checkOnDevice(inverseFrequencies, "rotary inverseFrequencies")
        try require(x.shape.rank == 3 && positions.elementCount == x.shape[0] && positions.dtype == .i32
                    && inverseFrequencies.elementCount * 2 == x.shape[2] && inverseFrequencies.dtype == .f32,
                    "rotary: expected x [T, heads, d], positions [T] i32, inverseFrequencies [d/2] f32; got \(x.shape), "
                    + "\(positions.shape) \(positions.dtype), \(inverseFrequencies.shape) \(inverseFrequencies.dtype)")
        let (T, heads, d) = (x.shape[0], x.shape[1], x.shape[2])
        let out = try empty(x.shape, dtype: activationDType)
        // rotary_qkv with no key or value heads: sine and cosine once per (token, pair) for all heads.
        try launchElementwise("ops.cu", "rotary_qkv", count: T * d / 2,
                              [.tensor(x), .int(x.dtype.kernelCode), .tensor(positions), .tensor(inverseFrequencies),
                               .tensor(out), .tensor(out), .tensor(out), .int(activationDType.kernelCode),
                               .int64(T), .int(heads), .int(0), .int(d)])
        return out
    }

    public func rotaryQKV(_ qkv: Tensor, heads: Int, kvHeads: Int, positions: Tensor,
                          inverseFrequencies: Tensor) throws -> (query: Tensor, key: Tensor, value: Tensor) {
        try checkOnDevice(qkv, "rotaryQKV"); try checkOnDevice(positions, "rotaryQKV positions")
        try checkOnDevice(inverseFrequencies, "rotaryQKV inverseFrequencies")
        try require(qkv.shape.rank == 2 && heads > 0 && kvHeads > 0 && qkv.shape[1] % (heads + 2 * kvHeads) == 0,
                    "rotaryQKV: expected qkv [T, (\(heads) + 2 x \(kvHeads)) d], got \(qkv.shape)")
        let (T, d) = (qkv.shape[0], qkv.shape[1] / (heads + 2 * kvHeads))
        try require(positions.elementCount == T && positions.dtype == .i32 && inverseFrequencies.elementCount * 2 == d
                    && inverseFrequencies.dtype == .f32,
                    "rotaryQKV: expected positions [\(T)] i32 and inverseFrequencies [\(d / 2)] f32; got "
                    + "\(positions.shape) \(positions.dtype), \(inverseFrequencies.shape) \(inverseFrequencies.dtype)")
        let query = try empty(Shape([T, heads, d]), dtype: activationDType)
        let key = try empty(Shape([T, kvHeads, d]), dtype: activationDType)
        let value = try empty(Shape([T, kvHeads, d]), dtype: activationDType)
        try launchElementwise("ops.cu", "rotary_qkv", count: T * d / 2,
                              [.tensor(qkv), .int(qkv.dtype.kernelCode), .tensor(positions), .tensor(inverseFrequencies),
                               .tensor(query), .tensor(key), .tensor(value), .int(activationDType.kernelCode),
                               .int64(T), .int(heads), .int(kvHeads), .int(d)])
        return (query, key, value)
    }

    public func siluMultiply(gate: Tensor, up: Tensor) throws -> Tensor {
        try checkOnDevice(gate, "siluMultiply"); try checkOnDevice(up, "siluMultiply")
        try require(gate.shape == up.shape, "siluMultiply: gate \(gate.shape) and up \(up.shape) differ")
        let out = try empty(gate.shape, dtype: activationDType)
        try launchElementwise("ops.cu", "silu_multiply", count: gate.elementCount,
                              [.tensor(gate), .int(gate.dtype.kernelCode), .tensor(up), .int(up.dtype.kernelCode),
                               .tensor(out), .int(activationDType.kernelCode), .int64(gate.elementCount)])
        return out
    }

    public func siluMultiplyHalves(_ x: Tensor) throws -> Tensor {
        try checkOnDevice(x, "siluMultiplyHalves")
        try require(x.shape.rank == 2 && x.shape[1] % 2 == 0,
                    "siluMultiplyHalves: expected x [M, 2F], got \(x.shape)")
        let (M, F) = (x.shape[0], x.shape[1] / 2)
        let out = try empty(Shape([M, F]), dtype: activationDType)
        if x.dtype == .bf16 && activationDType == .bf16 && F % 8 == 0 && x.address % 16 == 0 && out.address % 16 == 0 {
            try launchElementwise("ops.cu", "silu_multiply_halves_bf16x8", count: M * F / 8,
                                  [.tensor(x), .tensor(out), .int64(M), .int64(F / 8)])
        } else {
            try launchElementwise("ops.cu", "silu_multiply_halves", count: M * F,
                                  [.tensor(x), .int(x.dtype.kernelCode), .tensor(out), .int(activationDType.kernelCode),
                                   .int64(M), .int64(F)])
        }
        return out
    }

    public func silu(_ x: Tensor) throws -> Tensor {
        try checkOnDevice(x, "silu")
        let out = try empty(x.shape, dtype: activationDType)
        try launchElementwise("ops.cu", "silu_values", count: x.elementCount,
                              [.tensor(x), .int(x.dtype.kernelCode), .tensor(out), .int(activationDType.kernelCode),
                               .int64(x.elementCount)])
        return out
    }

    public func add(_ a: Tensor, _ b: Tensor) throws -> Tensor {
        try checkOnDevice(a, "add"); try checkOnDevice(b, "add")
        try require(a.shape == b.shape, "add: shapes \(a.shape) and \(b.shape) differ")
        let out = try empty(a.shape, dtype: activationDType)
        try launchElementwise("ops.cu", "add_values", count: a.elementCount,
                              [.tensor(a), .int(a.dtype.kernelCode), .tensor(b), .int(b.dtype.kernelCode), .tensor(out),
                               .int(activationDType.kernelCode), .int64(a.elementCount)])
        return out
    }

    public func concatRows(_ parts: [Tensor]) throws -> Tensor {
        guard let first = parts.first else { throw BatonError.invalidArgument("concatRows: no parts") }
        for part in parts {
            try checkOnDevice(part, "concatRows")
            try require(part.shape.rowSize == first.shape.rowSize && part.shape.rank == first.shape.rank && part.dtype == first.dtype,
                        "concatRows: part \(part.shape) \(part.dtype) does not match \(first.shape) \(first.dtype)")
        }
        let out = try empty(first.shape.withRows(parts.reduce(0) { $0 + $1.shape.rows }), dtype: first.dtype)
        var row = 0
        for part in parts {
            try copy(part, into: out.rows(row..<row + part.shape.rows))
            row += part.shape.rows
        }
        return out
    }

    public func concatColumns(_ parts: [Tensor]) throws -> Tensor {
        guard let first = parts.first else { throw BatonError.invalidArgument("concatColumns: no parts") }
        for part in parts {
            try checkOnDevice(part, "concatColumns")
            try require(part.shape.rank == 2 && part.shape[0] == first.shape[0] && part.dtype == first.dtype,
                        "concatColumns: expected [\(first.shape[0]), n] \(first.dtype) parts, got \(part.shape) \(part.dtype)")
        }
        let T = first.shape[0], total = parts.reduce(0) { $0 + $1.shape[1] }
        let out = try empty(Shape([T, total]), dtype: first.dtype)
        let size = first.dtype.byteSize
        var column = 0
        for part in parts {
            try launchElementwise("ops.cu", "copy_columns", count: part.byteCount,
                                  [.tensor(part), .tensor(out), .int64(T), .int64(part.shape[1] * size),
                                   .int64(total * size), .int64(column * size)])
            column += part.shape[1]
        }
        return out
    }

    // MARK: selection

    public func queryAwareScores(query: Tensor, key: Tensor) throws -> Tensor {
        try checkOnDevice(query, "queryAwareScores"); try checkOnDevice(key, "queryAwareScores")
        try require(query.shape.rank == 3 && key.shape.rank == 3 && query.shape[2] == key.shape[2]
                    && key.shape[1] > 0 && query.shape[1] % key.shape[1] == 0,
                    "queryAwareScores: expected q [Q, H, d], k [S, Hkv, d] with H % Hkv == 0, got \(query.shape), \(key.shape)")
        let (Q, H, d) = (query.shape[0], query.shape[1], query.shape[2])
        let (S, Hkv) = (key.shape[0], key.shape[1])
        let meanQuery = try empty(Shape([Hkv, d]), dtype: .f32)
        try launchElementwise("ops.cu", "mean_query_per_group", count: Hkv * d,
                              [.tensor(query), .int(query.dtype.kernelCode), .tensor(meanQuery), .int64(Q), .int64(H),
                               .int64(Hkv), .int64(d)])
        let scores = try empty(Shape([S, Hkv]), dtype: .f32)
        try launchElementwise("ops.cu", "query_aware_scores", count: S * Hkv,
                              [.tensor(meanQuery), .tensor(key), .int(key.dtype.kernelCode), .tensor(scores), .int64(S),
                               .int64(Hkv), .int64(d)])
        return scores
    }

    public func maxPool1D(_ scores: Tensor, window: Int) throws -> Tensor {
        try checkOnDevice(scores, "maxPool1D")
        try require(scores.shape.rank == 2 && scores.dtype == .f32 && window > 0 && window % 2 == 1,
                    "maxPool1D: expected [S, C] f32 and an odd window, got \(scores.shape) \(scores.dtype), window \(window)")
        let out = try empty(scores.shape, dtype: .f32)
        try launchElementwise("ops.cu", "max_pool_rows", count: scores.elementCount,
                              [.tensor(scores), .tensor(out), .int64(scores.shape[0]), .int64(scores.shape[1]), .int(window)])
        return out
    }

    /// Kernels/selection.cu: a radix select per column, one block each, so the indices stay on the
    /// device for the gather that follows.
    public func topKPerHead(_ scores: Tensor, k: Int, rows: Range<Int>) throws -> Tensor {
        try checkOnDevice(scores, "topKPerHead")
        try require(scores.shape.rank == 2 && scores.dtype == .f32 && rows.lowerBound >= 0
                    && rows.upperBound <= scores.shape[0] && k >= 0 && k <= rows.count,
                    "topKPerHead: expected [S, C] f32, rows within S, k <= rows; got \(scores.shape), rows \(rows), k \(k)")
        let (S, C) = (scores.shape[0], scores.shape[1])
        let out = try empty(Shape([C, k]), dtype: .i32)
        if k == 0 || C == 0 { return out }
        try launch("selection.cu", "top_k_per_head", grid: (C, 1, 1), block: 1024,
                   [.tensor(scores), .tensor(out), .int64(S), .int(C), .int64(rows.lowerBound), .int64(rows.upperBound),
                    .int(k)])
        return out
    }

    public func gatherRowsPerHead(_ x: Tensor, indices: Tensor) throws -> Tensor {
        try checkOnDevice(x, "gatherRowsPerHead"); try checkOnDevice(indices, "gatherRowsPerHead")
        try require(x.shape.rank == 3 && indices.shape.rank == 2 && indices.dtype == .i32 && indices.shape[0] == x.shape[1],
                    "gatherRowsPerHead: expected x [S, C, d] and indices [C, k] i32, got \(x.shape) and \(indices.shape) \(indices.dtype)")
        let (S, C, d) = (x.shape[0], x.shape[1], x.shape[2])
        let k = indices.shape[1]
        let out = try empty(Shape([k, C, d]), dtype: x.dtype)
        try launchElementwise("ops.cu", "gather_rows_per_head", count: out.byteCount,
                              [.tensor(x), .tensor(indices), .tensor(out), .int64(S), .int64(C), .int64(k),
                               .int64(d * x.dtype.byteSize)])
        return out
    }

    // MARK: sampling

    public func argmax(_ logits: Tensor) throws -> [Int32] {
        try checkOnDevice(logits, "argmax"); try checkFloat(logits, "argmax")
        try require(logits.shape.rank == 2 && logits.shape[1] > 0, "argmax: expected [R, V] with V > 0, got \(logits.shape)")
        let out = try empty(Shape([logits.shape[0]]), dtype: .i32)
        if logits.shape[0] == 0 { return [] }
        try launch("ops.cu", "argmax_rows", grid: (logits.shape[0], 1, 1), block: 1024,
                   [.tensor(logits), .int(logits.dtype.kernelCode), .int64(logits.shape[1]), .tensor(out)])
        return try download(out).int32s()
    }
}
