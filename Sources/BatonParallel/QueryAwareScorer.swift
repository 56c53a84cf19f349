import BatonTensor

/// Scores the local keys a host may pass: larger means more worth sending. APB's retaining
/// heads (module BatonModels, adapted in BatonEngine) and Spava's query-aware score conform.
public protocol PassingScorer: AnyObject {
    /// Raw (unsmoothed) scores of local rows `keyRows` -> `[keyRows.count, Hkv]` f32.
    /// `probeRows`: the local rows holding the query (empty if none).
    func scores(
        _ input: AttentionInput, keyRows: Range<Int>, probeRows: Range<Int>,
        backend: any Backend
    ) throws -> Tensor
    /// Whether `scores` reads `input.preRotary` (the model then keeps those projections).
    var readsPreRotaryProjections: Bool { get }
}

extension PassingScorer {
    public var readsPreRotaryProjections: Bool { false }

    /// The scores max-pooled along the sequence (window 5, stride 1, padding 2), as both APB and
    /// Spava smooth them before top-k.
    func smoothedScores(
        _ input: AttentionInput, keyRows: Range<Int>, probeRows: Range<Int>,
        backend: any Backend
    ) throws -> Tensor {
        let raw = try scores(input, keyRows: keyRows, probeRows: probeRows, backend: backend)
        return try backend.maxPool1D(raw, window: 5)
    }
}

/// Spava's training-free score: the mean over query rows and the `G` query heads of each group
/// of the raw dot product with each key (post-RoPE, fp32, no scaling or softmax).
public final class QueryAwareScorer: PassingScorer {
    public init() {}

    public func scores(
        _ input: AttentionInput, keyRows: Range<Int>, probeRows: Range<Int>,
        backend: any Backend
    ) throws -> Tensor {
        guard !probeRows.isEmpty else {
            throw BatonError.invalidArgument(
                "query-aware scoring on layer \(input.layer): the local input holds no query rows (give the request a query, or use retaining heads)"
            )
        }
        return try backend.queryAwareScores(query: input.query.rows(probeRows), key: input.key.rows(keyRows))
    }
}
