import BatonTensor
import CCUDA

/// The vision-language ops (Kernels/vision.cu); CPU references in CPUBackend+Vision.
extension CUDABackend {
    /// Head dims `attention_segments_d*` is instantiated for.
    public static let segmentAttentionHeadDims = [16, 32, 64, 80, 128]

    public func sectionedRotary(_ x: Tensor, positions: Tensor, inverseFrequencies: Tensor,
                                sections: [Int]) throws -> Tensor {
        try checkOnDevice(x, "sectionedRotary"); try checkOnDevice(positions, "sectionedRotary positions")
        try checkOnDevice(inverseFrequencies, "sectionedRotary inverseFrequencies")
        try checkFloat(x, "sectionedRotary")
        try require(x.shape.rank == 3 && x.shape[2] % 2 == 0,
                    "sectionedRotary: expected x [T, heads, d] with d even, got \(x.shape)")
        let (T, heads, d) = (x.shape[0], x.shape[1], x.shape[2])
        try require(!sections.isEmpty && sections.count <= 4 && sections.allSatisfy { $0 >= 0 }
                    && sections.reduce(0, +) == d / 2,
                    "sectionedRotary: sections \(sections) must be 1 to 4 non-negative counts summing to "
                    + "d/2 = \(d / 2)")
        try require(positions.shape == Shape([sections.count, T]) && positions.dtype == .i32
                    && inverseFrequencies.shape == Shape([d / 2]) && inverseFrequencies.dtype == .f32,
                    "sectionedRotary: expected positions [\(sections.count), \(T)] i32 and inverseFrequencies "
                    + "[\(d / 2)] f32; got \(positions.shape) \(positions.dtype), \(inverseFrequencies.shape) "
                    + "\(inverseFrequencies.dtype)")
        // Cumulative section ends; the kernel reads three (the fourth is d/2).
        var ends = sections.reduce(into: [Int]()) { $0.append(($0.last ?? 0) + $1) }
        while ends.count < 4 { ends.append(d / 2) }
        let out = try empty(x.shape, dtype: activationDType)
        try launchElementwise("vision.cu", "sectioned_rotary", count: T * d / 2,
                              [.tensor(x), .int(x.dtype.kernelCode), .tensor(positions), .tensor(inverseFrequencies),
                               .tensor(out), .int(activationDType.kernelCode), .int64(T), .int(heads), .int(d),
                               .int(ends[0]), .int(ends[1]), .int(ends[2])])
        return out
    }

    /// One launch of `attention_segments_d{d}` whatever the number of segments. The offsets are
    /// read on the device and trusted (rising from 0 to N; the CPU reference checks them).
    public func attentionSegments(query: Tensor, key: Tensor, value: Tensor, segments: Tensor,
                                  scale: Float) throws -> Tensor {
        for t in [query, key, value, segments] { try checkOnDevice(t, "attentionSegments") }
        try require(query.shape.rank == 3 && key.shape == query.shape && value.shape == query.shape,
                    "attentionSegments: expected q, k, v of one shape [N, H, d]; got \(query.shape), \(key.shape), "
                    + "\(value.shape)")
        try require(segments.shape.rank == 1 && segments.elementCount >= 2 && segments.dtype == .i32,
                    "attentionSegments: expected segments [S + 1] i32 with S >= 1, got \(segments.shape) "
                    + "\(segments.dtype)")
        let (N, H, d) = (query.shape[0], query.shape[1], query.shape[2])
        guard Self.segmentAttentionHeadDims.contains(d) else {
            throw BatonError.unsupported("attentionSegments: head dim \(d) has no kernel; supported: "
                                         + Self.segmentAttentionHeadDims.map(String.init).joined(separator: ", "))
        }
        let q = try asActivation(query, "attentionSegments q"), k = try asActivation(key, "attentionSegments k")
        let v = try asActivation(value, "attentionSegments v")
        let out = try empty(query.shape, dtype: .bf16)
        if N == 0 || H == 0 { return out }
        let rowsPerBlock = 64  // SEGMENT_ROWS in vision.cu
        try launch("vision.cu", "attention_segments_d\(d)", grid: ((N + rowsPerBlock - 1) / rowsPerBlock, H, 1),
                   block: rowsPerBlock,
                   [.tensor(q), .tensor(k), .tensor(v), .tensor(out), .tensor(segments),
                    .int(segments.elementCount - 1), .int(N), .int(H), .float(scale)])
        return out
    }

    public func gelu(_ x: Tensor) throws -> Tensor {
        try checkOnDevice(x, "gelu"); try checkFloat(x, "gelu")
        let out = try empty(x.shape, dtype: activationDType)
        try launchElementwise("vision.cu", "gelu_values", count: x.elementCount,
                              [.tensor(x), .int(x.dtype.kernelCode), .tensor(out), .int(activationDType.kernelCode),
                               .int64(x.elementCount)])
        return out
    }
}
