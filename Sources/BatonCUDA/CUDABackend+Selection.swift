import BatonTensor
import CCUDA

/// APB/Spava selection and sampling: kernels of Kernels/selection.cu and ops.cu (the CPU twins are
/// in CPUBackend+Selection).
extension CUDABackend {
    // MARK: selection

    public func queryAwareScores(query: Tensor, key: Tensor) throws -> Tensor {
        try checkOnDevice(query, "queryAwareScores"); try checkOnDevice(key, "queryAwareScores")
        let (Q, S, H, Hkv, d) = try OpShapes.queryAwareScores(query: query, key: key)
        let meanQuery = try empty(Shape([Hkv, d]), dtype: .f32)
        try launchElementwise(
            "ops.cu", "mean_query_per_group", count: Hkv * d,
            [
                .tensor(query), .int(query.dtype.kernelCode), .tensor(meanQuery), .int64(Q), .int64(H),
                .int64(Hkv), .int64(d)
            ])
        let scores = try empty(Shape([S, Hkv]), dtype: .f32)
        try launchElementwise(
            "ops.cu", "query_aware_scores", count: S * Hkv,
            [
                .tensor(meanQuery), .tensor(key), .int(key.dtype.kernelCode), .tensor(scores), .int64(S),
                .int64(Hkv), .int64(d)
            ])
        return scores
    }

    public func maxPool1D(_ scores: Tensor, window: Int) throws -> Tensor {
        try checkOnDevice(scores, "maxPool1D")
        let (S, C) = try OpShapes.maxPool1D(scores, window: window)
        try require(scores.dtype == .f32, "maxPool1D: the CUDA kernel takes f32 scores, got \(scores.dtype)")
        let out = try empty(scores.shape, dtype: .f32)
        try launchElementwise(
            "ops.cu", "max_pool_rows", count: scores.elementCount,
            [.tensor(scores), .tensor(out), .int64(S), .int64(C), .int(window)])
        return out
    }

    /// Kernels/selection.cu: a radix select per column, one block each, so the indices stay on the
    /// device for the gather that follows.
    public func topKPerHead(_ scores: Tensor, k: Int, rows: Range<Int>) throws -> Tensor {
        try checkOnDevice(scores, "topKPerHead")
        let (S, C) = try OpShapes.topKPerHead(scores, k: k, rows: rows)
        try require(scores.dtype == .f32, "topKPerHead: the CUDA kernel takes f32 scores, got \(scores.dtype)")
        let out = try empty(Shape([C, k]), dtype: .i32)
        if k == 0 || C == 0 { return out }
        try launch(
            "selection.cu", "top_k_per_head", grid: (C, 1, 1), block: 1024,
            [
                .tensor(scores), .tensor(out), .int64(S), .int(C), .int64(rows.lowerBound), .int64(rows.upperBound),
                .int(k)
            ])
        return out
    }

    public func gatherRowsPerHead(_ x: Tensor, indices: Tensor) throws -> Tensor {
        try checkOnDevice(x, "gatherRowsPerHead"); try checkOnDevice(indices, "gatherRowsPerHead")
        let (S, C, d, k) = try OpShapes.gatherRowsPerHead(x, indices: indices)
        let out = try empty(Shape([k, C, d]), dtype: x.dtype)
        try launchElementwise(
            "ops.cu", "gather_rows_per_head", count: out.byteCount,
            [
                .tensor(x), .tensor(indices), .tensor(out), .int64(S), .int64(C), .int64(k),
                .int64(d * x.dtype.byteSize)
            ])
        return out
    }

    // MARK: sampling

    public func argmax(_ logits: Tensor) throws -> [Int32] {
        try checkOnDevice(logits, "argmax")
        let (R, V) = try OpShapes.argmax(logits)
        let out = try empty(Shape([R]), dtype: .i32)
        if R == 0 { return [] }
        try launch(
            "ops.cu", "argmax_rows", grid: (R, 1, 1), block: 1024,
            [.tensor(logits), .int(logits.dtype.kernelCode), .int64(V), .tensor(out)])
        return try download(out).int32s()
    }
}
