/// The shape and dtype rules of the vision-language ops (Qwen2.5-VL), shared by every backend.
extension OpShapes {
    /// x `[T, heads, d]` float, positions `[R, T]` i32, inverseFrequencies `[d/2]` float, sections R
    /// non-negative counts summing to d/2.
    public static func sectionedRotary(
        _ x: Tensor, positions: Tensor, inverseFrequencies: Tensor,
        sections: [Int]
    ) throws -> (tokens: Int, heads: Int, headDim: Int) {
        let op = "sectionedRotary"
        try requireFloat(x, op, "x")
        try requireInt32(positions, op, "positions")
        try requireFloat(inverseFrequencies, op, "inverseFrequencies")
        try requireRank(x, 3, op, "x", "[T, heads, d]")
        try requireRank(positions, 2, op, "positions", "[R, T]")
        let (tokens, heads, headDim) = (x.shape[0], x.shape[1], x.shape[2])
        try require(headDim % 2 == 0, "sectionedRotary: head dim must be even, found \(headDim)")
        try require(
            !sections.isEmpty && sections.allSatisfy { $0 >= 0 } && sections.reduce(0, +) == headDim / 2,
            "sectionedRotary: sections \(sections) must be non-negative and sum to d/2 = \(headDim / 2)")
        try require(
            positions.shape == Shape([sections.count, tokens]),
            "sectionedRotary: positions must be [\(sections.count), \(tokens)] (one row per section), "
                + "found \(positions.shape)")
        try require(
            inverseFrequencies.shape == Shape([headDim / 2]),
            "sectionedRotary: inverseFrequencies must be [\(headDim / 2)] for head dim \(headDim), "
                + "found \(inverseFrequencies.shape)")
        return (tokens, heads, headDim)
    }

    /// q, k, v `[N, H, d]` float of one shape, segments `[S + 1]` i32 with S >= 1 (the offsets'
    /// values are the backend's to check: they may live on a device).
    public static func attentionSegments(
        query: Tensor, key: Tensor, value: Tensor,
        segments: Tensor
    ) throws -> (rows: Int, heads: Int, headDim: Int) {
        let op = "attentionSegments"
        for (tensor, name) in [(query, "query"), (key, "key"), (value, "value")] {
            try requireFloat(tensor, op, name)
            try requireRank(tensor, 3, op, name, "[N, H, d]")
        }
        try require(
            key.shape == query.shape && value.shape == query.shape,
            "attentionSegments: query, key and value must share one shape [N, H, d], found \(query.shape), "
                + "\(key.shape), \(value.shape)")
        try requireInt32(segments, op, "segments")
        try requireRank(segments, 1, op, "segments", "[S + 1]")
        try require(segments.elementCount >= 2, "attentionSegments: segments must hold at least 2 offsets, found 1")
        return (query.shape[0], query.shape[1], query.shape[2])
    }
}
