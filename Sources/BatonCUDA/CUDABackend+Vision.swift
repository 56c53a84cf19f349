import BatonTensor
import CCUDA

/// The vision-language ops (Kernels/vision.cu); CPU references in CPUBackend+Vision.
extension CUDABackend {
    /// Head dims `attention_segments_d*` is instantiated for (multiples of 16: the MMA's k).
    public static let segmentAttentionHeadDims = [16, 32, 64, 80, 128]

    public func sectionedRotary(
        _ x: Tensor, positions: Tensor, inverseFrequencies: Tensor,
        sections: [Int]
    ) throws -> Tensor {
        try checkOnDevice(x, "sectionedRotary"); try checkOnDevice(positions, "sectionedRotary positions")
        try checkOnDevice(inverseFrequencies, "sectionedRotary inverseFrequencies")
        let (T, heads, d) = try OpShapes.sectionedRotary(
            x, positions: positions, inverseFrequencies: inverseFrequencies,
            sections: sections)
        try require(
            sections.count <= 4 && inverseFrequencies.dtype == .f32,
            "sectionedRotary: the CUDA kernel takes at most 4 sections and f32 inverseFrequencies, got "
                + "\(sections.count) sections, \(inverseFrequencies.dtype)")
        // Cumulative section ends; the kernel reads three (the fourth is d/2).
        var ends = sections.reduce(into: [Int]()) { $0.append(($0.last ?? 0) + $1) }
        while ends.count < 4 { ends.append(d / 2) }
        let out = try empty(x.shape, dtype: activationDType)
        try launchElementwise(
            "vision.cu", "sectioned_rotary", count: T * d / 2,
            [
                .tensor(x), .int(x.dtype.kernelCode), .tensor(positions), .tensor(inverseFrequencies),
                .tensor(out), .int(activationDType.kernelCode), .int64(T), .int(heads), .int(d),
                .int(ends[0]), .int(ends[1]), .int(ends[2])
            ])
        return out
    }

    /// One launch of `attention_segments_d{d}_m{1,2}` (Kernels/attention_segments.cu) whatever the
    /// number of segments. The offsets are read on the device and trusted (rising from 0 to N; the
    /// CPU reference checks them). 64-row blocks for windows, 128-row blocks once the mean segment
    /// is long enough (whole frames) that a block rarely straddles two.
    public func attentionSegments(
        query: Tensor, key: Tensor, value: Tensor, segments: Tensor,
        scale: Float
    ) throws -> Tensor {
        for t in [query, key, value, segments] { try checkOnDevice(t, "attentionSegments") }
        let (N, H, d) = try OpShapes.attentionSegments(query: query, key: key, value: value, segments: segments)
        guard Self.segmentAttentionHeadDims.contains(d) else {
            throw BatonError.unsupported(
                "attentionSegments: head dim \(d) has no kernel; supported: "
                    + Self.segmentAttentionHeadDims.map(String.init).joined(separator: ", "))
        }
        let q = try asActivation(query, "attentionSegments q"), k = try asActivation(key, "attentionSegments k")
        let v = try asActivation(value, "attentionSegments v")
        let out = try empty(query.shape, dtype: .bf16)
        if N == 0 || H == 0 { return out }
        let segmentCount = segments.elementCount - 1
        let rowTiles = N / segmentCount >= 256 ? 2 : 1  // m16 tiles per warp (MT)
        let blockRows = 4 * 16 * rowTiles, tileKeys = 64  // SEGMENT_WARPS x 16 MT rows; SEGMENT_KEYS
        let sharedBytes = (blockRows + 4 * tileKeys) * (d + 8) * 2  // Q, two K and two V padded bf16 tiles
        try launch(
            "attention_segments.cu", "attention_segments_d\(d)_m\(rowTiles)",
            grid: ((N + blockRows - 1) / blockRows, H, 1), block: 128, sharedBytes: sharedBytes,
            [
                .tensor(q), .tensor(k), .tensor(v), .tensor(out), .tensor(segments), .int(segmentCount),
                .int(N), .int(H), .float(Self.log2Scale(scale))
            ])
        return out
    }

    public func gelu(_ x: Tensor) throws -> Tensor {
        try checkOnDevice(x, "gelu"); try checkFloat(x, "gelu")
        let out = try empty(x.shape, dtype: activationDType)
        try launchElementwise(
            "vision.cu", "gelu_values", count: x.elementCount,
            [
                .tensor(x), .int(x.dtype.kernelCode), .tensor(out), .int(activationDType.kernelCode),
                .int64(x.elementCount)
            ])
        return out
    }
}
