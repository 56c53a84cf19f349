import BatonTensor
import Foundation

// The Qwen2.5-VL vision tower, in forward order: VisionAttention, VisionMLP, VisionBlock,
// PatchMerger, Qwen2VisionTower. Field names follow the checkpoint's (`visual.blocks.i.attn.qkv`).

/// Non-causal multi-head attention over variable-length segments, with the 2-D rotary on q and k.
struct VisionAttention {
    /// The fused `qkv` weight `[3C, C]` and bias, as row views `[q; k; v]`: three GEMMs whose outputs
    /// are already `[N, H, d]`, no column split.
    let query, key, value: Linear
    let proj: Linear
    let heads, headDim: Int

    /// x `[N, C]` act (the block input), normed `[N, C]` -> x + proj(attention(normed)) `[N, C]` act.
    func callAsFunction(
        _ x: Tensor, normed: Tensor, rotary: VisionRotary, segments: Tensor,
        backend: any Backend
    ) throws -> Tensor {
        let rows = normed.shape.rows
        func rotated(_ projection: Linear) throws -> Tensor {
            try backend.sectionedRotary(
                projection(normed, backend).reshaped(rows, heads, headDim),
                positions: rotary.positions, inverseFrequencies: rotary.inverseFrequencies,
                sections: rotary.sections)
        }
        let attended = try backend.attentionSegments(
            query: rotated(query), key: rotated(key), value: value(normed, backend).reshaped(rows, heads, headDim),
            segments: segments, scale: 1 / Float(headDim).squareRoot())
        return try backend.matmulAdd(
            attended.reshaped(rows, heads * headDim), weight: proj.weight, bias: proj.bias,
            residual: x)
    }
}

/// SwiGLU with biases: `down(silu(gate(x)) * up(x))`.
struct VisionMLP {
    /// gate and up apart (the CPU reference), or one weight `[gate; up]` read by `siluMultiplyHalves`.
    enum Projections {
        case apart(gate: Linear, up: Linear)
        case fused(gateUp: Linear)
    }

    let projections: Projections
    let downProj: Linear

    /// residual `[N, C]` act += mlp(x), in place.
    func callAsFunction(_ x: Tensor, accumulatingInto residual: Tensor, _ backend: any Backend) throws {
        let activated =
            switch projections {
            case .apart(let gate, let up): try backend.siluMultiply(gate: gate(x, backend), up: up(x, backend))
            case .fused(let gateUp): try backend.siluMultiplyHalves(gateUp(x, backend))
            }
        try backend.matmulAccumulate(activated, weight: downProj.weight, bias: downProj.bias, into: residual)
    }

    /// Multiple the fused intermediate width is padded to.
    static let paddedWidthMultiple = 64

    /// On a device: gate and up `[F, C]` as one `[2F', C]` weight and down `[C, F]` as `[C, F']`,
    /// F' = F rounded up to 64, the added rows, biases and columns zero. Qwen2.5-VL's F = 3420 makes
    /// rows of 6,840 bytes, not a multiple of 16, and cuBLASLt then ran the MLP's GEMMs at 200-260
    /// TFLOP/s against 750 for the aligned q/k/v ones (BATON_PROFILE=1 on an H200). Exact: a zero gate
    /// row gives silu(0) = 0, so the padded activations are 0 and meet zero columns of down.
    static func fusedAndPadded(gate: Linear, up: Linear, down: Linear, backend: any Backend) throws -> VisionMLP {
        let (width, columns) = (gate.weight.shape.rows, gate.weight.shape[1])
        let padded = (width + paddedWidthMultiple - 1) / paddedWidthMultiple * paddedWidthMultiple
        let dtype = backend.activationDType
        let weight = try backend.zeros(Shape([2 * padded, columns]), dtype: dtype)
        let bias = try backend.zeros(Shape([2 * padded]), dtype: dtype)
        for (index, part) in [gate, up].enumerated() {
            let rows = index * padded..<index * padded + width
            try backend.copy(backend.cast(part.weight, to: dtype), into: weight.rows(rows))
            if let partBias = part.bias { try backend.copy(backend.cast(partBias, to: dtype), into: bias.rows(rows)) }
        }
        var downWeight = down.weight
        if padded > width {
            let zeroColumns = try backend.zeros(Shape([down.weight.shape.rows, padded - width]), dtype: dtype)
            downWeight = try backend.concatColumns([backend.cast(down.weight, to: dtype), zeroColumns])
        }
        return VisionMLP(
            projections: .fused(gateUp: Linear(weight: weight, bias: bias)),
            downProj: Linear(weight: downWeight, bias: down.bias))
    }
}

/// The 2-D rotary of one forward pass: positions `[2, N]` (rows h, w) on the backend,
/// inverse frequencies `[d/2]` = the `d/4` frequencies twice, sections `[d/4, d/4]`.
struct VisionRotary {
    let positions: Tensor
    let inverseFrequencies: Tensor
    let sections: [Int]
}

/// Pre-norm block: `h = x + attn(norm1(x)); out = h + mlp(norm2(h))`.
struct VisionBlock {
    let norm1, norm2: RMSNorm
    let attn: VisionAttention
    let mlp: VisionMLP

    func callAsFunction(_ x: Tensor, rotary: VisionRotary, segments: Tensor, backend: any Backend) throws -> Tensor {
        let h = try attn(x, normed: norm1(x, backend), rotary: rotary, segments: segments, backend: backend)
        try mlp(norm2(h, backend), accumulatingInto: h, backend)
        return h
    }
}

/// `mlp(ln_q(x) viewed as [N/4, 4C])`: RMSNorm per patch, each merge unit's four patches side by side,
/// Linear, exact GELU, Linear -> `[N/4, D]`.
struct PatchMerger {
    let lnQ: RMSNorm
    let fc1, fc2: Linear

    func callAsFunction(_ x: Tensor, mergeUnit: Int, _ backend: any Backend) throws -> Tensor {
        let normed = try lnQ(x, backend)
        let grouped = normed.reshaped(x.shape.rows / mergeUnit, x.shape[1] * mergeUnit)
        return try fc2(backend.gelu(fc1(grouped, backend)), backend)
    }
}

/// The vision tower of Qwen2.5-VL on one backend: pixel patches `[N, 1176]` of a batch of images and
/// videos in, one `[N/4, D]` embedding per merge unit out (D = the language model's hidden size).
public final class Qwen2VisionTower: VisionEncoder, @unchecked Sendable {
    public let config: Qwen2VisionConfig
    public let backend: any Backend
    /// The Conv3d weight `[C, 3, 2, 14, 14]` viewed as `[C, 1176]` (kernel = stride: one GEMM).
    let patchEmbed: Tensor
    let blocks: [VisionBlock]
    let merger: PatchMerger
    /// `[d/2]` f32: `10000^(-j / (d/4))`, j < d/4, twice (h frequencies, then w).
    let inverseFrequencies: Tensor

    /// Builds the tower from `weights`; `prefix` is where its tensors live in the checkpoint
    /// (`visual.` or `model.visual.`, see `Qwen2VLWeightNames`).
    public init(
        config: Qwen2VisionConfig, weights: WeightSource, prefix: String = "visual.", backend: any Backend,
        progress: ((_ done: Int, _ total: Int) -> Void)? = nil
    ) throws {
        try config.validate()
        self.config = config
        self.backend = backend
        let specs = Self.weightSpecs(config, prefix: prefix)
        let loader = try WeightLoader(source: weights, backend: backend, specs: specs, progress: progress)
        var loaded: [String: Tensor] = [:]
        for spec in specs { loaded[spec.name] = try loader.load(spec) }
        func linear(_ name: String) -> Linear {
            Linear(weight: loaded[prefix + name + ".weight"]!, bias: loaded[prefix + name + ".bias"]!)
        }
        func norm(_ name: String) -> RMSNorm { RMSNorm(weight: loaded[prefix + name + ".weight"]!, epsilon: 1e-6) }
        let (c, d) = (config.hiddenSize, config.headDim)
        // On a device gate/up are fused and padded (BATON_FUSE_GATE_UP=0 keeps them apart, as on the CPU).
        func mlp(_ i: Int) throws -> VisionMLP {
            let (gate, up) = (linear("blocks.\(i).mlp.gate_proj"), linear("blocks.\(i).mlp.up_proj"))
            let down = linear("blocks.\(i).mlp.down_proj")
            guard ProjectionFusion.gateUp.applies(on: backend) else {
                return VisionMLP(projections: .apart(gate: gate, up: up), downProj: down)
            }
            return try VisionMLP.fusedAndPadded(gate: gate, up: up, down: down, backend: backend)
        }
        patchEmbed = loaded[prefix + "patch_embed.proj.weight"]!.reshaped(c, config.patchInputSize)
        blocks = try (0..<config.depth).map { i in
            let qkv = linear("blocks.\(i).attn.qkv")
            func third(_ k: Int) -> Linear {
                Linear(weight: qkv.weight.rows(k * c..<(k + 1) * c), bias: qkv.bias!.rows(k * c..<(k + 1) * c))
            }
            return VisionBlock(
                norm1: norm("blocks.\(i).norm1"), norm2: norm("blocks.\(i).norm2"),
                attn: VisionAttention(
                    query: third(0), key: third(1), value: third(2),
                    proj: linear("blocks.\(i).attn.proj"), heads: config.numHeads, headDim: d),
                mlp: try mlp(i))
        }
        merger = PatchMerger(lnQ: norm("merger.ln_q"), fc1: linear("merger.mlp.0"), fc2: linear("merger.mlp.2"))
        let quarter = d / 4
        let frequencies = (0..<quarter).map { Float(1 / pow(10_000, Double(2 * $0) / Double(d / 2))) }
        inverseFrequencies = try backend.upload(Tensor(frequencies + frequencies, shape: [d / 2], dtype: .f32))
    }

    /// Every tensor of the tower under `prefix`, with its shape.
    static func weightSpecs(_ config: Qwen2VisionConfig, prefix: String) -> [WeightSpec] {
        let (c, f, m) = (config.hiddenSize, config.intermediateSize, config.mergedHiddenSize)
        let patch = config.patchSize
        var specs = [
            WeightSpec(
                name: prefix + "patch_embed.proj.weight",
                shape: [c, config.inChannels, config.temporalPatchSize, patch, patch])
        ]
        func linear(_ name: String, _ rows: Int, _ columns: Int) {
            specs.append(WeightSpec(name: prefix + name + ".weight", shape: [rows, columns]))
            specs.append(WeightSpec(name: prefix + name + ".bias", shape: [rows]))
        }
        for i in 0..<config.depth {
            let p = "blocks.\(i)."
            specs.append(WeightSpec(name: prefix + p + "norm1.weight", shape: [c], initialization: .ones))
            specs.append(WeightSpec(name: prefix + p + "norm2.weight", shape: [c], initialization: .ones))
            linear(p + "attn.qkv", 3 * c, c)
            linear(p + "attn.proj", c, c)
            linear(p + "mlp.gate_proj", f, c)
            linear(p + "mlp.up_proj", f, c)
            linear(p + "mlp.down_proj", c, f)
        }
        specs.append(WeightSpec(name: prefix + "merger.ln_q.weight", shape: [c], initialization: .ones))
        linear("merger.mlp.0", m, m)
        linear("merger.mlp.2", config.outHiddenSize, m)
        return specs
    }

    /// pixels `[N, 1176]` any float (rows in processor order, items back to back), grids of the
    /// items -> `[N/4, D]` act in processor order (item k's rows follow item k-1's).
    public func callAsFunction(pixels: Tensor, grids: [VisionGrid]) throws -> Tensor {
        let merge = config.spatialMergeSize
        for grid in grids {
            let valid = grid.t > 0 && grid.h > 0 && grid.w > 0 && grid.h % merge == 0 && grid.w % merge == 0
            try BatonTensor.require(
                valid,
                "vision tower: grid \(grid) must be positive with h and w multiples of \(merge)")
        }
        let layout = VisionLayout(grids: grids, mergeSize: merge, windowUnits: config.windowMergeUnits)
        try BatonTensor.require(
            pixels.shape == Shape([layout.patchCount, config.patchInputSize]),
            "vision tower: pixels must be [\(layout.patchCount), \(config.patchInputSize)] for grids "
                + "\(grids), found \(pixels.shape)")
        let embedded = try backend.matmul(pixels, weight: patchEmbed, bias: nil)  // [N, C]
        var x = try backend.embedding(table: embedded, ids: backend.int32Tensor(layout.patchOrder))  // window order
        let quarter = config.headDim / 4
        let rotary = VisionRotary(
            positions: try backend.upload(Tensor(int32: layout.rotaryPositions, shape: [2, layout.patchCount])),
            inverseFrequencies: inverseFrequencies, sections: [quarter, quarter])
        let windows = try backend.int32Tensor(layout.windowSegments)
        let frames = try backend.int32Tensor(layout.frameSegments)
        let fullAttention = Set(config.fullAttentionBlockIndexes)
        for (index, block) in blocks.enumerated() {
            let segments = fullAttention.contains(index) ? frames : windows
            x = try block(x, rotary: rotary, segments: segments, backend: backend)
        }
        let merged = try merger(x, mergeUnit: config.mergeUnit, backend)
        return try backend.embedding(table: merged, ids: backend.int32Tensor(layout.mergedRestoreOrder))
    }
}
