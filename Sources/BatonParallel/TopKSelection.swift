import BatonTensor

/// APB/Spava block compression: per KV head, the `k` candidate rows with the largest smoothed
/// scores, and their post-RoPE keys and values (the passed entries keep their global positions
/// through RoPE, and their order inside a passing block does not matter: no mask applies to it).
enum TopKSelection {
    /// How many entries a sender with `candidates` rows passes under `budget`.
    static func count(budget: Int, candidates: Int) -> Int { max(0, min(budget, candidates)) }

    /// scores `[S, Hkv]` f32 (smoothed), key/value `[S, Hkv, d]` -> key/value `[k, Hkv, d]`
    /// with `k = count(budget, candidates.count)`.
    static func select(
        scores: Tensor, candidates: Range<Int>, budget: Int, key: Tensor, value: Tensor,
        backend: any Backend
    ) throws -> (key: Tensor, value: Tensor) {
        let k = count(budget: budget, candidates: candidates.count)
        if k == 0 {
            let empty = try backend.empty(key.shape.withRows(0), dtype: key.dtype)
            return (empty, empty)
        }
        let indices = try backend.topKPerHead(scores, k: k, rows: candidates)
        return (
            try backend.gatherRowsPerHead(key, indices: indices),
            try backend.gatherRowsPerHead(value, indices: indices)
        )
    }
}
