/// The op set every model and method is written against. A backend owns one device; its
/// tensors live there. Shapes below use `T` tokens, `H` query heads, `Hkv` KV heads, `d` head
/// dim, `D` hidden size, `V` vocabulary. "act" is `activationDType` (f32 on CPU, bf16 on CUDA);
/// float ops accumulate in fp32 whatever the storage type. Ops never write their inputs,
/// except `copy(_:into:)`.
public protocol Backend: AnyObject, Sendable {
    var device: Device { get }
    /// Storage type of activations and of the KV cache.
    var activationDType: DType { get }

    // MARK: memory
    /// A tensor of this device with undefined contents.
    func empty(_ shape: Shape, dtype: DType) throws -> Tensor
    /// A zero-filled tensor of this device.
    func zeros(_ shape: Shape, dtype: DType) throws -> Tensor
    /// A host tensor copied to this device, same dtype (the tensor itself on CPU).
    func upload(_ host: Tensor) throws -> Tensor
    /// This device's tensor copied to the host, same dtype.
    func download(_ tensor: Tensor) throws -> Tensor
    /// Copies `source` into `destination` (same element count and dtype; either may be a view).
    func copy(_ source: Tensor, into destination: Tensor) throws
    /// Element-wise conversion to `dtype` (round to nearest even).
    func cast(_ x: Tensor, to dtype: DType) throws -> Tensor
    /// Waits for all queued work on this device.
    func synchronize() throws

    // MARK: model ops
    /// table `[V, D]` any float dtype, ids `[T]` i32 -> `[T, D]` act.
    func embedding(table: Tensor, ids: Tensor) throws -> Tensor
    /// x `[M, K]` act, weight `[N, K]` (Hugging Face layout, i.e. y = x W^T), bias `[N]` -> `[M, N]` act.
    func matmul(_ x: Tensor, weight: Tensor, bias: Tensor?) throws -> Tensor
    /// residual `[M, N]` + x W^T (+ bias): `matmul` and `add` in one (a GPU adds the residual in the
    /// GEMM's fp32 epilogue, before the one rounding).
    func matmulAdd(_ x: Tensor, weight: Tensor, bias: Tensor?, residual: Tensor) throws -> Tensor
    /// accumulator `[M, N]` act += x W^T (+ bias), in place: `matmulAdd` with the residual as its
    /// own output, so a residual-stream update needs no new tensor and no copy.
    func matmulAccumulate(_ x: Tensor, weight: Tensor, bias: Tensor?, into accumulator: Tensor) throws
    /// x `[M, D]` act, weight `[D]` -> x / rms(x) * weight, rms in fp32 (Llama order: normalise, cast, scale).
    func rmsNorm(_ x: Tensor, weight: Tensor, epsilon: Float) throws -> Tensor
    /// x `[N, C]` act or f32, weight and bias `[C]` any float -> `(x - mean) / sqrt(var + epsilon) * weight + bias`
    /// `[N, C]` in x's dtype: torch's `LayerNorm`, each row's mean and biased variance in fp32, one rounding
    /// at the end (InternViT and its projector).
    func layerNorm(_ x: Tensor, weight: Tensor, bias: Tensor, epsilon: Float) throws -> Tensor
    /// x `[T, heads, d]` act, positions `[T]` i32, inverseFrequencies `[d/2]` f32 ->
    /// rotary embedding in the Hugging Face (rotate-half, non-interleaved) convention.
    func rotary(_ x: Tensor, positions: Tensor, inverseFrequencies: Tensor) throws -> Tensor
    /// qkv `[T, (heads + 2 kvHeads) d]` (a fused q/k/v projection, columns `[q | k | v]`) ->
    /// `rotary(q)` `[T, heads, d]`, `rotary(k)` `[T, kvHeads, d]` and v `[T, kvHeads, d]`, act.
    func rotaryQKV(
        _ qkv: Tensor, heads: Int, kvHeads: Int, positions: Tensor,
        inverseFrequencies: Tensor
    ) throws -> (query: Tensor, key: Tensor, value: Tensor)
    /// silu(gate) * up, element-wise, same shapes.
    func siluMultiply(gate: Tensor, up: Tensor) throws -> Tensor
    /// x `[M, 2F]` (gate columns `0..<F`, up columns `F..<2F`) -> silu(gate) * up `[M, F]` act: the
    /// activation of a fused gate/up projection.
    func siluMultiplyHalves(_ x: Tensor) throws -> Tensor
    /// silu(x), element-wise.
    func silu(_ x: Tensor) throws -> Tensor
    /// a + b, element-wise, same shapes.
    func add(_ a: Tensor, _ b: Tensor) throws -> Tensor
    /// Concatenation along the first dimension (all other dimensions equal).
    func concatRows(_ parts: [Tensor]) throws -> Tensor
    /// Concatenation of 2-D `[T, n_i]` tensors along the last dimension -> `[T, sum n_i]`.
    func concatColumns(_ parts: [Tensor]) throws -> Tensor

    // MARK: attention
    /// q `[Sq, H, d]`, k/v `[Sk, Hkv, d]` (GQA: query head `h` uses KV head `h / (H/Hkv)`),
    /// scores scaled by `scale` -> out `[Sq, H, d]` act and lse `[H, Sq]` f32. See `AttentionMask`.
    func attention(query: Tensor, key: Tensor, value: Tensor, mask: AttentionMask, scale: Float) throws
        -> AttentionOutput
    /// Exact merge of partial results over disjoint key sets (same `[Sq, H, d]`), in fp32 with the
    /// stable form `out -= sigmoid(lse_b - lse) * (out - out_b)`, `lse -= logsigmoid(lse - lse_b)`,
    /// applied in array order.
    func mergeAttention(_ parts: [AttentionOutput]) throws -> AttentionOutput

    // MARK: vision-language (Qwen2.5-VL)
    /// x `[T, heads, d]` act, positions `[R, T]` i32 (one row of positions per section),
    /// inverseFrequencies `[d/2]` f32, sections: R counts summing to d/2 -> rotate-half rotary in
    /// which frequency `i` takes its position from the row of the section holding `i` (angle =
    /// positions[r(i), t] * inverseFrequencies[i], fp32). M-RoPE is rows (t, h, w) with sections
    /// [16, 24, 24]; the Qwen2.5-VL vision rotary is rows (h, w) with sections [d/4, d/4]. One
    /// row is `rotary`.
    func sectionedRotary(_ x: Tensor, positions: Tensor, inverseFrequencies: Tensor, sections: [Int]) throws -> Tensor
    /// q, k, v `[N, H, d]` act, segments `[S + 1]` i32 cumulative row offsets (0 = s_0 <= ... <= s_S = N)
    /// -> `[N, H, d]` act: non-causal attention of each row to the keys of its own segment
    /// `[s_i, s_i+1)`, scores scaled by `scale` (the vision tower's windows and frames).
    func attentionSegments(query: Tensor, key: Tensor, value: Tensor, segments: Tensor, scale: Float) throws -> Tensor
    /// x / 2 * (1 + erf(x / sqrt 2)), element-wise (the exact GELU, not the tanh approximation).
    func gelu(_ x: Tensor) throws -> Tensor

    // MARK: selection (APB / Spava)
    /// Spava's query-aware score: `scores[j, h] = mean over query rows t and the G query heads g of
    /// group h of <q[t, h*G+g], k[j, h]>` (raw dot products, fp32). q `[Q, H, d]`, k `[S, Hkv, d]` -> `[S, Hkv]` f32.
    func queryAwareScores(query: Tensor, key: Tensor) throws -> Tensor
    /// Max pooling along the first dimension of `[S, C]` f32, window `window` (odd), stride 1,
    /// padding `window / 2` with -inf -> `[S, C]` f32.
    func maxPool1D(_ scores: Tensor, window: Int) throws -> Tensor
    /// For each column `h` of scores `[S, C]` f32, the `k` rows in `rows` with the largest scores
    /// (ties to the lower index), returned sorted ascending as absolute row indices -> `[C, k]` i32.
    func topKPerHead(_ scores: Tensor, k: Int, rows: Range<Int>) throws -> Tensor
    /// x `[S, C, d]`, indices `[C, k]` i32 -> `[k, C, d]` with out[i, c] = x[indices[c, i], c].
    func gatherRowsPerHead(_ x: Tensor, indices: Tensor) throws -> Tensor

    // MARK: sampling
    /// Index of the largest value of each row of `[R, V]` (ties to the lower index) -> R ids.
    func argmax(_ logits: Tensor) throws -> [Int32]
}

extension Backend {
    /// A host i32 tensor uploaded to this device.
    public func int32Tensor(_ values: [Int32]) throws -> Tensor {
        try upload(Tensor(int32: values))
    }

    /// A host fp32 array uploaded as `dtype`.
    public func tensor(_ values: [Float], shape: Shape, dtype: DType) throws -> Tensor {
        try upload(Tensor(values, shape: shape, dtype: dtype))
    }

    /// The elements of a tensor of this device, as fp32 on the host.
    public func floats(_ tensor: Tensor) throws -> [Float] {
        try download(tensor).floats()
    }
}
