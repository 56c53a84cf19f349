import BatonTensor
import CCUDA

/// Launch of Kernels/attention_hopper.cu (wgmma + TMA, sm_90a, head dim 64 or 128). The kernel reads
/// q, k and v through TMA tensor maps made here, one per tensor: 3-D {d, heads, tokens} so a box of
/// {64 columns, 1 head, 128 tokens} is one 16 KB tile half, 128-byte swizzled as wgmma reads it.
/// Rows past Sq or Sk read as zeros (the kernel masks them), so no padding is needed.
extension CUDABackend {
    static let hopperQueryRows = 128
    /// Q tile + two stages of K and V tiles (128 rows x d bf16 each), the mbarriers and 1 KB of
    /// alignment slack: 161 KB at d 128, 81 KB at d 64.
    static func hopperSharedBytes(headDim d: Int) -> Int { 128 * d * 2 * (1 + 2 * 2) + 8 * (1 + 4 * 2) + 1024 }

    /// Whether `attention(..., kernel: .hopper)` can run here: an sm_90a device and a driver with
    /// cuTensorMapEncodeTiled.
    public var supportsHopperAttention: Bool {
        architecture == "sm_90a" && baton_cuda_tensor_map_encode_tiled() != nil
    }

    /// Whether the Hopper kernel takes these tensors: head dim 64 or 128 and addresses TMA accepts
    /// (16-byte aligned; every stride is a multiple of 128 bytes at these head dims).
    func hopperAttentionApplies(query: Tensor, key: Tensor, value: Tensor) -> Bool {
        supportsHopperAttention && query.shape.rank == 3 && (query.shape[2] == 64 || query.shape[2] == 128)
            && [query, key, value].allSatisfy { $0.address % 16 == 0 }
    }

    /// A tensor map over a bf16 [tokens, heads, 128] tensor with {64, 1, 128} boxes.
    func hopperTensorMap(_ t: Tensor) throws -> [UInt8] {
        guard let encode = baton_cuda_tensor_map_encode_tiled() else {
            throw BatonError(.notAvailable, "attention (hopper): the CUDA driver lacks cuTensorMapEncodeTiled")
        }
        let (tokens, heads, d) = (t.shape[0], t.shape[1], t.shape[2])
        let map = UnsafeMutableRawPointer.allocate(byteCount: 128, alignment: 64)
        defer { map.deallocate() }
        let dims: [UInt64] = [UInt64(d), UInt64(heads), UInt64(tokens)]
        let strides: [UInt64] = [UInt64(d * 2), UInt64(heads * d * 2)]  // bytes, of dims 1 and 2
        let box: [UInt32] = [64, 1, UInt32(Self.hopperQueryRows)]
        let elementStrides: [UInt32] = [1, 1, 1]
        let status = encode(
            map, Int32(BATON_CU_TENSOR_MAP_DATA_TYPE_BFLOAT16), 3,
            UnsafeMutableRawPointer(bitPattern: t.address), dims, strides, box, elementStrides,
            Int32(BATON_CU_TENSOR_MAP_INTERLEAVE_NONE), Int32(BATON_CU_TENSOR_MAP_SWIZZLE_128B),
            Int32(BATON_CU_TENSOR_MAP_L2_PROMOTION_L2_256B), Int32(BATON_CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE))
        try driver.check(status, "cuTensorMapEncodeTiled(\(t.shape))")
        return [UInt8](UnsafeRawBufferPointer(start: map, count: 128))
    }

    /// Queues hopper_attention_d{64,128}; q, k, v bf16 on this device, out/lse allocated by the caller.
    func launchHopperAttention(
        q: Tensor, k: Tensor, v: Tensor, out: Tensor, lse: Tensor, mask: AttentionMask,
        scale: Float
    ) throws {
        let (Sq, H, d) = (q.shape[0], q.shape[1], q.shape[2])
        let (Sk, Hkv) = (k.shape[0], k.shape[1])
        try require(
            hopperAttentionApplies(query: q, key: k, value: v),
            "attention (hopper): needs an sm_90a device, head dim 64 or 128 and 16-byte aligned tensors; got \(architecture), "
                + "d \(d)")
        let (maskKind, anchorLength, passingLength) = mask.kernelArguments
        let queryTiles = (Sq + Self.hopperQueryRows - 1) / Self.hopperQueryRows
        try launch(
            "attention_hopper.cu", "hopper_attention_d\(d)", grid: (queryTiles, H, 1), block: 384,
            sharedBytes: Self.hopperSharedBytes(headDim: d),
            [
                .bytes(try hopperTensorMap(q)), .bytes(try hopperTensorMap(k)), .bytes(try hopperTensorMap(v)),
                .tensor(out), .tensor(lse), .int(Sq), .int(Sk), .int(H), .int(Hkv), .int(maskKind),
                .int(anchorLength), .int(passingLength), .float(Self.log2Scale(scale))
            ])
    }
}
