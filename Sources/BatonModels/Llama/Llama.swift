import BatonTensor
import Foundation

// The Llama-family decoder (Llama 3.x, Yi, Mistral, Qwen2/2.5), in forward order:
// Linear, Attention, MLP, TransformerBlock, LlamaModel. Field names follow the checkpoint's.

/// `y = x W^T + b` with a Hugging Face `[out, in]` weight.
struct Linear {
    let weight: Tensor
    let bias: Tensor?

    func callAsFunction(_ x: Tensor, _ backend: any Backend) throws -> Tensor {
        try backend.matmul(x, weight: weight, bias: bias)
    }
}

/// Grouped-query self-attention. RoPE is applied here with the tokens' global positions; who
/// attends to what is the strategy's decision.
struct Attention {
    /// The q, k and v projections: separate, or one `[(H + 2 Hkv) d, D]` weight `[q; k; v]` (one
    /// GEMM, whose output `rotaryQKV` splits; see `ProjectionFusion`).
    enum QKV {
        case separate(q: Linear, k: Linear, v: Linear)
        case fused(Linear)
    }
    let qkv: QKV
    let oProj: Linear
    let heads, kvHeads, headDim: Int
    /// This layer's index (the strategy's and the cache's key).
    let layer: Int
    /// The model's rotary inverse frequencies (shared by every layer), per pass under dynamic scaling.
    let rotary: RotaryFrequencies
    /// M-RoPE's frequencies per position row (Qwen2.5-VL: [16, 24, 24]); used when the pass carries
    /// `[3, T]` positions.
    let mropeSections: [Int]?

    /// x `[T, D]` act (the layer input) -> x + attention(norm(x)) `[T, D]` act (the residual
    /// added in the output projection's GEMM).
    func callAsFunction(_ x: Tensor, norm: RMSNorm, _ pass: ForwardPass) throws -> Tensor {
        let backend = pass.backend
        let out: Tensor  // [T, H, d]
        do {  // the scope frees q, k and v once attention has run
            let input = try pass.timed(.projections) {
                try project(norm(x, backend), keepPreRotary: pass.strategy.readsPreRotaryProjections, pass)
            }
            out = try pass.timed(.attention, layer: layer) {
                try pass.strategy.attend(input, cache: pass.cache, backend: backend)
            }
        }
        return try pass.timed(.projections) {
            try backend.matmulAdd(
                out.reshaped(out.shape.rows, heads * headDim), weight: oProj.weight, bias: oProj.bias,
                residual: x)
        }
    }

    /// normed `[T, D]` -> RoPE'd q, k and v. The normed input and the projections before RoPE are
    /// released on return unless `keepPreRotary` (a strategy that reads them, APB's retaining heads).
    private func project(_ normed: Tensor, keepPreRotary: Bool, _ pass: ForwardPass) throws -> AttentionInput {
        let (backend, positions, tokens) = (pass.backend, pass.positions, normed.shape.rows)
        let inverseFrequencies = try rotary.inverseFrequencies(ropeLength: pass.ropeLength)
        func rotated(_ x: Tensor) throws -> Tensor {
            guard positions.shape.rank == 2, let mropeSections else {
                return try backend.rotary(x, positions: positions, inverseFrequencies: inverseFrequencies)
            }
            return try backend.sectionedRotary(
                x, positions: positions, inverseFrequencies: inverseFrequencies,
                sections: mropeSections)
        }
        switch qkv {
        case .separate(let qProj, let kProj, let vProj):
            let q = try qProj(normed, backend)  // [T, H*d]
            let k = try kProj(normed, backend)  // [T, Hkv*d]
            let v = try vProj(normed, backend)  // [T, Hkv*d]
            let query = try rotated(q.reshaped(tokens, heads, headDim))
            let key = try rotated(k.reshaped(tokens, kvHeads, headDim))
            return AttentionInput(
                layer: layer, query: query, key: key, value: v.reshaped(tokens, kvHeads, headDim),
                preRotary: keepPreRotary ? .separate(query: q, key: k, value: v) : nil, timer: pass.timer)
        case .fused(let qkvProj):
            let joined = try qkvProj(normed, backend)  // [T, (H + 2 Hkv) d]
            let (query, key, value) = try backend.rotaryQKV(
                joined, heads: heads, kvHeads: kvHeads, positions: positions,
                inverseFrequencies: inverseFrequencies)
            return AttentionInput(
                layer: layer, query: query, key: key, value: value,
                preRotary: keepPreRotary ? .joined(joined) : nil, timer: pass.timer)
        }
    }

    var linears: [Linear] {
        switch qkv {
        case .separate(let q, let k, let v): [q, k, v, oProj]
        case .fused(let qkvProj): [qkvProj, oProj]
        }
    }
}

/// SwiGLU feed-forward: `down(silu(gate(x)) * up(x))`.
struct MLP {
    /// The gate and up projections: separate, or one `[2F, D]` weight `[gate; up]` (one GEMM, whose
    /// `[T, 2F]` output `siluMultiplyHalves` reads).
    enum GateUp {
        case separate(gate: Linear, up: Linear)
        case fused(Linear)
    }
    let gateUp: GateUp
    let downProj: Linear

    /// residual `[T, D]` act += mlp(x) (x `[T, D]` act), in place: the down GEMM accumulates into it.
    func callAsFunction(_ x: Tensor, accumulatingInto residual: Tensor, _ backend: any Backend) throws {
        let activated: Tensor
        switch gateUp {
        case .separate(let gate, let up):
            activated = try backend.siluMultiply(gate: gate(x, backend), up: up(x, backend))
        case .fused(let gateUp):
            activated = try backend.siluMultiplyHalves(gateUp(x, backend))
        }
        try backend.matmulAccumulate(activated, weight: downProj.weight, bias: downProj.bias, into: residual)
    }

    var linears: [Linear] {
        switch gateUp {
        case .separate(let gate, let up): [gate, up, downProj]
        case .fused(let gateUp): [gateUp, downProj]
        }
    }
}

/// `weight * x / rms(x)` over each row (Llama's RMSNorm).
struct RMSNorm {
    let weight: Tensor
    let epsilon: Float

    func callAsFunction(_ x: Tensor, _ backend: any Backend) throws -> Tensor {
        try backend.rmsNorm(x, weight: weight, epsilon: epsilon)
    }
}

/// Pre-norm decoder layer: `h = x + attention(norm1(x)); out = h + mlp(norm2(h))`.
struct TransformerBlock {
    let selfAttn: Attention
    let mlp: MLP
    let inputLayernorm: RMSNorm
    let postAttentionLayernorm: RMSNorm

    /// Rows per MLP call, so a long prefill never holds `[T, intermediate]` at once.
    var mlpRowBlock: Int

    /// x `[T, D]` act -> the layer's output `[T, D]` act. The MLP adds into `h` (this layer's own
    /// tensor) block by block, in place.
    func callAsFunction(_ x: Tensor, _ pass: ForwardPass) throws -> Tensor {
        let h = try selfAttn(x, norm: inputLayernorm, pass)
        try pass.timed(.mlp) {
            let blockRows = max(1, mlpRowBlock)
            for start in stride(from: 0, to: h.shape.rows, by: blockRows) {
                let rows = h.rows(start..<min(start + blockRows, h.shape.rows))
                try mlp(postAttentionLayernorm(rows, pass.backend), accumulatingInto: rows, pass.backend)
            }
        }
        return h
    }
}

/// Applies `body` to blocks of at most `blockRows` rows of `x` and stacks the results
/// `[rows, outputColumns]` `dtype`; a single block is returned as it is.
func mapRowBlocks(
    _ x: Tensor, blockRows: Int, outputColumns: Int, dtype: DType, _ backend: any Backend,
    _ body: (Tensor) throws -> Tensor
) throws -> Tensor {
    let rows = x.shape.rows
    if rows <= blockRows { return try body(x) }
    let out = try backend.empty(Shape([rows, outputColumns]), dtype: dtype)
    for start in stride(from: 0, to: rows, by: blockRows) {
        let range = start..<min(start + blockRows, rows)
        try backend.copy(body(x.rows(range)), into: out.rows(range))
    }
    return out
}

/// A Llama-family causal LM on one backend: embeddings, decoder layers, final norm, LM head.
/// The model only computes; the KV cache belongs to the caller and the strategy decides
/// attention.
public final class LlamaModel: @unchecked Sendable {
    public let config: ModelConfig
    public let backend: any Backend
    let embedTokens: Tensor
    private(set) var layers: [TransformerBlock]
    let norm: Tensor
    let lmHead: Tensor
    /// Rotary inverse frequencies on the backend, rope scaling included.
    let rotary: RotaryFrequencies
    /// M-RoPE sections (a Qwen2.5-VL language model): passes may then carry `[3, T]` positions.
    public let mropeSections: [Int]?
    /// Upper bound on the bytes of one block of f32 logits computed at once.
    public var logitsBlockBytes = 64 << 20
    /// Rows per MLP call in a layer: 4096 rows of Llama 3.1 8B's 14336-wide MLP are 3 x 117 MB
    /// in bf16, where a 128K-token prefill at once would need 3 x 3.7 GB. `BATON_MLP_ROW_BLOCK`
    /// overrides it (16384 measured 0.8% faster at 32K on an H100, but only with GEMM autotuning
    /// on; see bench/RESULTS.md).
    public var mlpRowBlock: Int {
        didSet { for index in layers.indices { layers[index].mlpRowBlock = max(1, mlpRowBlock) } }
    }

    /// Builds the model from `weights` on `backend`, tensor by tensor; `progress` reports bytes.
    /// `fuseProjections`: whether q/k/v and gate/up load as one weight each (`ProjectionFusion`);
    /// nil: on a device unless switched off by their environment variables, never on the CPU.
    /// `mropeSections`: M-RoPE's frequencies per position row (they must sum to headDim / 2); q/k/v
    /// then stay separate projections (the fused split applies 1-D RoPE).
    public init(
        config: ModelConfig, weights: WeightSource, backend: any Backend, fuseProjections: Bool? = nil,
        mropeSections: [Int]? = nil, progress: ((_ done: Int, _ total: Int) -> Void)? = nil
    ) throws {
        try config.validate()
        if let mropeSections {
            try BatonTensor.require(
                mropeSections.reduce(0, +) == config.headDim / 2,
                "LlamaModel: M-RoPE sections \(mropeSections) must sum to headDim / 2 = "
                    + "\(config.headDim / 2)")
            // transformers' M-RoPE models have no dynamic variant; a length-dependent base is not
            // defined for three position rows.
            if config.hasLengthDependentRope {
                throw BatonError.unsupported(
                    "LlamaModel: dynamic rope scaling with M-RoPE sections \(mropeSections); an M-RoPE model "
                        + "runs without rope scaling")
            }
        }
        self.config = config
        self.backend = backend
        self.mropeSections = mropeSections
        let mlpRowBlock = BatonSettings.current.mlpRowBlock
        self.mlpRowBlock = mlpRowBlock
        let rotary = try RotaryFrequencies(config: config, backend: backend)
        self.rotary = rotary
        let specs = Self.weightSpecs(config)
        let loader = try WeightLoader(source: weights, backend: backend, specs: specs, progress: progress)
        let fuseQKV = mropeSections == nil && (fuseProjections ?? ProjectionFusion.qkv.applies(on: backend))
        let fuseGateUp = fuseProjections ?? ProjectionFusion.gateUp.applies(on: backend)
        let loaded = try loadFusingProjections(
            specs: specs, loader: loader,
            fusions: (fuseQKV ? [.qkv] : []) + (fuseGateUp ? [.gateUp] : []),
            backend: backend)
        func linear(_ prefix: String, bias: Bool) -> Linear {
            Linear(weight: loaded[prefix + ".weight"]!, bias: bias ? loaded[prefix + ".bias"]! : nil)
        }
        embedTokens = loaded["model.embed_tokens.weight"]!
        norm = loaded["model.norm.weight"]!
        lmHead = config.tieWordEmbeddings ? embedTokens : loaded["lm_head.weight"]!
        layers = (0..<config.numHiddenLayers).map { layer in
            let p = "model.layers.\(layer)."
            return TransformerBlock(
                selfAttn: Attention(
                    qkv: fuseQKV
                        ? .fused(linear(p + "self_attn.qkv_proj", bias: config.hasQKVBias))
                        : .separate(
                            q: linear(p + "self_attn.q_proj", bias: config.hasQKVBias),
                            k: linear(p + "self_attn.k_proj", bias: config.hasQKVBias),
                            v: linear(p + "self_attn.v_proj", bias: config.hasQKVBias)),
                    oProj: linear(p + "self_attn.o_proj", bias: config.hasOutputBias),
                    heads: config.numAttentionHeads, kvHeads: config.numKeyValueHeads,
                    headDim: config.headDim, layer: layer, rotary: rotary,
                    mropeSections: mropeSections),
                mlp: MLP(
                    gateUp: fuseGateUp
                        ? .fused(linear(p + "mlp.gate_up_proj", bias: config.mlpBias))
                        : .separate(
                            gate: linear(p + "mlp.gate_proj", bias: config.mlpBias),
                            up: linear(p + "mlp.up_proj", bias: config.mlpBias)),
                    downProj: linear(p + "mlp.down_proj", bias: config.mlpBias)),
                inputLayernorm: RMSNorm(
                    weight: loaded[p + "input_layernorm.weight"]!, epsilon: Float(config.rmsNormEps)),
                postAttentionLayernorm: RMSNorm(
                    weight: loaded[p + "post_attention_layernorm.weight"]!,
                    epsilon: Float(config.rmsNormEps)),
                mlpRowBlock: mlpRowBlock)
        }
    }

    /// Reads `directory/config.json` and its safetensors.
    public static func load(
        directory: URL, backend: any Backend,
        progress: ((_ done: Int, _ total: Int) -> Void)? = nil
    ) throws -> LlamaModel {
        let config = try ModelConfig.load(directory: directory)
        return try LlamaModel(config: config, weights: .directory(directory), backend: backend, progress: progress)
    }

    /// Every tensor the checkpoint must hold, with its shape (no `lm_head` when tied).
    static func weightSpecs(_ config: ModelConfig) -> [WeightSpec] {
        let (d, hd) = (config.hiddenSize, config.headDim)
        let (qRows, kvRows, ff) = (config.numAttentionHeads * hd, config.numKeyValueHeads * hd, config.intermediateSize)
        var specs = [WeightSpec(name: "model.embed_tokens.weight", shape: [config.vocabSize, d])]
        for layer in 0..<config.numHiddenLayers {
            let p = "model.layers.\(layer)."
            func projection(_ name: String, _ rows: Int, _ columns: Int, bias: Bool) {
                specs.append(WeightSpec(name: p + name + ".weight", shape: [rows, columns]))
                if bias { specs.append(WeightSpec(name: p + name + ".bias", shape: [rows])) }
            }
            specs.append(WeightSpec(name: p + "input_layernorm.weight", shape: [d], initialization: .ones))
            projection("self_attn.q_proj", qRows, d, bias: config.hasQKVBias)
            projection("self_attn.k_proj", kvRows, d, bias: config.hasQKVBias)
            projection("self_attn.v_proj", kvRows, d, bias: config.hasQKVBias)
            projection("self_attn.o_proj", d, qRows, bias: config.hasOutputBias)
            specs.append(WeightSpec(name: p + "post_attention_layernorm.weight", shape: [d], initialization: .ones))
            projection("mlp.gate_proj", ff, d, bias: config.mlpBias)
            projection("mlp.up_proj", ff, d, bias: config.mlpBias)
            projection("mlp.down_proj", d, ff, bias: config.mlpBias)
        }
        specs.append(WeightSpec(name: "model.norm.weight", shape: [d], initialization: .ones))
        if !config.tieWordEmbeddings {
            specs.append(WeightSpec(name: "lm_head.weight", shape: [config.vocabSize, d]))
        }
        return specs
    }

    /// tokens `[T]` i32 on this backend -> `[T, D]` act, the final-normed hidden states. Each
    /// layer's attention goes through `pass.strategy`, which keeps what it wants in `pass.cache`.
    public func forward(tokens: Tensor, _ pass: ForwardPass) throws -> Tensor {
        try BatonTensor.require(
            tokens.shape.rank == 1 && tokens.dtype == .i32,
            "LlamaModel.forward: tokens must be [T] i32, found \(tokens.shape) \(tokens.dtype)")
        let embeddings = try pass.timed(.head) { try backend.embedding(table: embedTokens, ids: tokens) }
        return try forward(embeddings: consume embeddings, pass)
    }

    /// embeddings `[T, D]` act (token embeddings, or visual embeddings spliced into them) ->
    /// `[T, D]` act, the final-normed hidden states. The embeddings are consumed, so their memory
    /// is free once the first layer has run (a `[T, D]` tensor: 256 MiB at 32K tokens of an 8B model).
    public func forward(embeddings: consuming Tensor, _ pass: ForwardPass) throws -> Tensor {
        try requireCompatible(pass, rows: embeddings.shape.rows)
        var h = consume embeddings
        for layer in layers {
            h = try layer(h, pass)
        }
        return try pass.timed(.head) { try backend.rmsNorm(h, weight: norm, epsilon: Float(config.rmsNormEps)) }
    }

    /// Checks that `pass` runs on this model's backend with one 1-D position per row (or, for an
    /// M-RoPE model, three), a cache of this model's depth, and its request length where the
    /// frequencies depend on it.
    private func requireCompatible(_ pass: ForwardPass, rows: Int) throws {
        try BatonTensor.require(
            pass.backend as AnyObject === backend as AnyObject,
            "LlamaModel.forward: the pass runs on \(pass.backend.device), the model on \(backend.device)")
        let shapes = mropeSections == nil ? [Shape([rows])] : [Shape([rows]), Shape([3, rows])]
        try BatonTensor.require(
            shapes.contains(pass.positions.shape) && pass.positions.dtype == .i32,
            "LlamaModel.forward: positions must be "
                + "\(shapes.map(\.description).joined(separator: " or ")) i32, "
                + "found \(pass.positions.shape) \(pass.positions.dtype)")
        try BatonTensor.require(
            pass.cache.layerCount == layers.count,
            "LlamaModel.forward: cache has \(pass.cache.layerCount) layers, model has \(layers.count)")
        if config.hasLengthDependentRope {
            try BatonTensor.require(
                (pass.ropeLength ?? 0) > 0,
                "LlamaModel.forward: dynamic rope scaling needs the pass's ropeLength (the whole request's "
                    + "largest position + 1), found \(pass.ropeLength.map(String.init) ?? "none")")
        }
    }

    /// The `[headDim / 2]` f32 rotary inverse frequencies of a pass over a request `ropeLength`
    /// positions long (see `ForwardPass.ropeLength`; nil is fine without dynamic scaling).
    public func inverseFrequencies(ropeLength: Int?) throws -> Tensor {
        try rotary.inverseFrequencies(ropeLength: ropeLength)
    }

    /// hidden `[R, D]` act -> logits `[R, V]` f32, computed in row blocks whose f32 logits take at
    /// most `logitsBlockBytes`, so scoring many rows adds no more than that in temporaries.
    public func logits(_ hidden: Tensor) throws -> Tensor {
        try BatonTensor.require(
            hidden.shape.rank == 2 && hidden.shape[1] == config.hiddenSize,
            "LlamaModel.logits: hidden must be [R, \(config.hiddenSize)], found \(hidden.shape)")
        let vocabulary = config.vocabSize
        let blockRows = max(1, logitsBlockBytes / (vocabulary * DType.f32.byteSize))
        return try mapRowBlocks(hidden, blockRows: blockRows, outputColumns: vocabulary, dtype: .f32, backend) { rows in
            let block = try backend.matmul(rows, weight: lmHead, bias: nil)
            return block.dtype == .f32 ? block : try backend.cast(block, to: .f32)
        }
    }

    /// An empty KV cache for this model on `backend`.
    public func makeCache(backend: any Backend) -> KVCache {
        KVCache(
            backend: backend, layers: config.numHiddenLayers, kvHeads: config.numKeyValueHeads,
            headDim: config.headDim)
    }

    /// Bytes of weights on the backend (the LM head counted once when tied).
    public var weightByteCount: Int {
        let perLayer = layers.reduce(0) { sum, block in
            let linears = block.selfAttn.linears + block.mlp.linears
            return sum + linears.reduce(0) { $0 + $1.weight.byteCount + ($1.bias?.byteCount ?? 0) }
                + block.inputLayernorm.weight.byteCount + block.postAttentionLayernorm.weight.byteCount
        }
        return perLayer + embedTokens.byteCount + norm.byteCount + (config.tieWordEmbeddings ? 0 : lmHead.byteCount)
    }
}
