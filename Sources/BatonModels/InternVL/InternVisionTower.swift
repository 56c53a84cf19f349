import BatonTensor
import Foundation

// InternVL3's vision side in forward order: InternVisionLayer, InternVisionTower (InternViT, the
// 0.5 pixel shuffle and the `mlp1` projector). Tensor names are transformers' (`InternVLWeightNames`
// maps the original ones onto them).

/// `y = x W^T + b` of a LayerNorm'd input, with a bias.
struct LayerNorm {
    let weight: Tensor
    let bias: Tensor
    let epsilon: Float

    func callAsFunction(_ x: Tensor, _ backend: any Backend) throws -> Tensor {
        try backend.layerNorm(x, weight: weight, bias: bias, epsilon: epsilon)
    }
}

/// One pre-norm InternViT layer: `h = x + ls1 ⊙ proj(attn(norm1(x)))`, `out = h + ls2 ⊙ fc2(gelu(fc1(norm2(h))))`.
/// The layer scales are folded into `proj` and `fc2` at load (row o of the weight and bias times
/// ls[o]), so each residual add is the GEMM's epilogue.
struct InternVisionLayer {
    let norm1, norm2: LayerNorm
    let query, key, value: Linear
    /// `proj` and `fc2` with the layer scales folded in.
    let proj, fc2: Linear
    let fc1: Linear
    let heads, headDim: Int

    /// x `[N, C]` act, tiles of `segments` rows each attending to their own tile only.
    func callAsFunction(_ x: Tensor, segments: Tensor, backend: any Backend) throws -> Tensor {
        let rows = x.shape.rows
        let normed = try norm1(x, backend)
        func heads(_ projection: Linear) throws -> Tensor {
            try projection(normed, backend).reshaped(rows, self.heads, headDim)
        }
        let attended = try backend.attentionSegments(
            query: heads(query), key: heads(key), value: heads(value), segments: segments,
            scale: 1 / Float(headDim).squareRoot())
        let h = try backend.matmulAdd(
            attended.reshaped(rows, self.heads * headDim), weight: proj.weight, bias: proj.bias, residual: x)
        let activated = try backend.gelu(fc1(norm2(h, backend), backend))
        try backend.matmulAccumulate(activated, weight: fc2.weight, bias: fc2.bias, into: h)
        return h
    }
}

/// InternVL3's vision side on one backend: patch rows of 448x448 tiles in, 256 embeddings of the
/// language model's width per tile out.
///
/// Input rows come in merge-unit order (tile, bh, bw, dy, dx) — patch (2bh+dy, 2bw+dx) — as the
/// processor writes them (`InternVLPatches`), not the row-major order of the Conv2d output. The
/// tower is blind to the order of a tile's patches except through the position embedding (its
/// attention has no mask and no rotary), so each row takes the position embedding of its patch and
/// everything else is unchanged; the pixel shuffle (output token (R, C) = patches (2R, 2C),
/// (2R, 2C+1), (2R+1, 2C), (2R+1, 2C+1) side by side) is then a reshape of four consecutive rows.
public final class InternVisionTower: @unchecked Sendable {
    public let config: InternVLConfig
    public let backend: any Backend
    /// The Conv2d weight `[C, 3, 14, 14]` viewed as `[C, 588]` (kernel = stride: one GEMM) and its bias.
    let patchEmbed: Linear
    /// The class token `[1, C]` act.
    let classToken: Tensor
    /// Position embeddings `[1 + P, C]` act: row 0 the class token's, row 1 + j that of the patch
    /// the j-th input row of a tile holds (merge-unit order).
    let positions: Tensor
    let layers: [InternVisionLayer]
    let projectorNorm: LayerNorm
    let projector1, projector2: Linear

    /// Builds the tower and projector from `weights` (transformers' names; `fusedQKV` when the
    /// attention's q, k and v come as one `attention.qkv` tensor, the original format).
    public init(config: InternVLConfig, weights: WeightSource, fusedQKV: Bool, backend: any Backend) throws {
        try config.validate()
        self.config = config
        self.backend = backend
        let vision = config.vision
        let specs = Self.weightSpecs(config, fusedQKV: fusedQKV)
        let loader = try WeightLoader(source: weights, backend: backend, specs: specs, progress: nil)
        var loaded: [String: Tensor] = [:]
        for spec in specs { loaded[spec.name] = try loader.load(spec) }
        func linear(_ name: String) -> Linear {
            Linear(weight: loaded[name + ".weight"]!, bias: loaded[name + ".bias"])
        }
        func norm(_ name: String, _ epsilon: Double) -> LayerNorm {
            LayerNorm(weight: loaded[name + ".weight"]!, bias: loaded[name + ".bias"]!, epsilon: Float(epsilon))
        }
        let (c, t) = (vision.hiddenSize, "vision_tower.")
        patchEmbed = Linear(
            weight: loaded[t + "embeddings.patch_embeddings.projection.weight"]!.reshaped(c, vision.patchInputSize),
            bias: loaded[t + "embeddings.patch_embeddings.projection.bias"])
        let dtype = backend.activationDType
        func activations(_ x: Tensor) throws -> Tensor { x.dtype == dtype ? x : try backend.cast(x, to: dtype) }
        classToken = try activations(loaded[t + "embeddings.cls_token"]!.reshaped(1, c))
        let table = try activations(
            loaded[t + "embeddings.position_embeddings"]!.reshaped(1 + vision.patchesPerTile, c))
        let rowOrder = [0] + Self.patchOfRow(patchesPerSide: vision.patchesPerSide).map { $0 + 1 }
        positions = try backend.embedding(table: table, ids: backend.int32Tensor(rowOrder))
        layers = try (0..<vision.numLayers).map { i in
            let p = t + "encoder.layer.\(i)."
            let (query, key, value): (Linear, Linear, Linear)
            if fusedQKV {
                let qkv = linear(p + "attention.qkv")
                func third(_ k: Int) -> Linear {
                    Linear(weight: qkv.weight.rows(k * c..<(k + 1) * c), bias: qkv.bias?.rows(k * c..<(k + 1) * c))
                }
                (query, key, value) = (third(0), third(1), third(2))
            } else {
                (query, key, value) = (
                    linear(p + "attention.q_proj"), linear(p + "attention.k_proj"), linear(p + "attention.v_proj")
                )
            }
            return InternVisionLayer(
                norm1: norm(p + "layernorm_before", vision.layerNormEps),
                norm2: norm(p + "layernorm_after", vision.layerNormEps),
                query: query, key: key, value: value,
                proj: try Self.scaled(linear(p + "attention.projection_layer"), by: loaded[p + "lambda_1"]!, backend),
                fc2: try Self.scaled(linear(p + "mlp.fc2"), by: loaded[p + "lambda_2"]!, backend),
                fc1: linear(p + "mlp.fc1"), heads: vision.numHeads, headDim: vision.headDim)
        }
        let m = "multi_modal_projector."
        projectorNorm = norm(m + "layer_norm", config.projectorLayerNormEps)
        projector1 = linear(m + "linear_1")
        projector2 = linear(m + "linear_2")
    }

    /// For each input row of a tile (merge-unit order (bh, bw, dy, dx)), the row-major number of
    /// its patch (py·side + px with py = 2bh + dy, px = 2bw + dx).
    static func patchOfRow(patchesPerSide side: Int) -> [Int32] {
        var order: [Int32] = []
        order.reserveCapacity(side * side)
        for bh in 0..<side / 2 {
            for bw in 0..<side / 2 {
                for dy in 0..<2 {
                    for dx in 0..<2 { order.append(Int32((2 * bh + dy) * side + 2 * bw + dx)) }
                }
            }
        }
        return order
    }

    /// `linear` with row o of its weight and bias multiplied by `scale[o]` (a layer scale folded
    /// into the projection before it), computed in f32 on the host and stored in the act dtype.
    static func scaled(_ linear: Linear, by scale: Tensor, _ backend: any Backend) throws -> Linear {
        let factors = try backend.floats(scale)
        let (rows, columns) = (linear.weight.shape.rows, linear.weight.shape[1])
        var weight = try backend.floats(linear.weight)
        for row in 0..<rows {
            let factor = factors[row]
            for column in 0..<columns { weight[row * columns + column] *= factor }
        }
        let bias = try linear.bias.map { bias in zip(try backend.floats(bias), factors).map { $0 * $1 } }
        let dtype = backend.activationDType
        return Linear(
            weight: try backend.tensor(weight, shape: linear.weight.shape, dtype: dtype),
            bias: try bias.map { try backend.tensor($0, shape: [rows], dtype: dtype) })
    }

    /// Every tensor of the tower and projector, with its shape.
    static func weightSpecs(_ config: InternVLConfig, fusedQKV: Bool) -> [WeightSpec] {
        let vision = config.vision
        let (c, f, p) = (vision.hiddenSize, vision.intermediateSize, vision.patchSize)
        let t = "vision_tower."
        var specs = [
            WeightSpec(name: t + "embeddings.cls_token", shape: [1, 1, c]),
            WeightSpec(name: t + "embeddings.patch_embeddings.projection.weight", shape: [c, 3, p, p]),
            WeightSpec(name: t + "embeddings.patch_embeddings.projection.bias", shape: [c]),
            WeightSpec(name: t + "embeddings.position_embeddings", shape: [1, 1 + vision.patchesPerTile, c])
        ]
        func linear(_ name: String, _ rows: Int, _ columns: Int, bias: Bool = true) {
            specs.append(WeightSpec(name: name + ".weight", shape: [rows, columns]))
            if bias { specs.append(WeightSpec(name: name + ".bias", shape: [rows])) }
        }
        func norm(_ name: String, _ width: Int) {
            specs.append(WeightSpec(name: name + ".weight", shape: [width], initialization: .ones))
            specs.append(WeightSpec(name: name + ".bias", shape: [width]))
        }
        for i in 0..<vision.numLayers {
            let l = t + "encoder.layer.\(i)."
            norm(l + "layernorm_before", c)
            norm(l + "layernorm_after", c)
            if fusedQKV {
                linear(l + "attention.qkv", 3 * c, c, bias: vision.qkvBias)
            } else {
                for name in ["q_proj", "k_proj", "v_proj"] {
                    linear(l + "attention." + name, c, c, bias: vision.qkvBias)
                }
            }
            linear(l + "attention.projection_layer", c, c)
            specs.append(WeightSpec(name: l + "lambda_1", shape: [c], initialization: .ones))
            specs.append(WeightSpec(name: l + "lambda_2", shape: [c], initialization: .ones))
            linear(l + "mlp.fc1", f, c)
            linear(l + "mlp.fc2", c, f)
        }
        let m = "multi_modal_projector."
        norm(m + "layer_norm", config.shuffledHiddenSize)
        linear(m + "linear_1", config.text.hiddenSize, config.shuffledHiddenSize)
        linear(m + "linear_2", config.text.hiddenSize, config.text.hiddenSize)
        return specs
    }
}

extension InternVisionTower: VisionEncoder {
    /// pixels `[tiles·P, 588]` any float (merge-unit order, tiles back to back), grids of the items
    /// (each `(tiles, side, side)`) -> `[tiles·P/4, D]` act, tile by tile.
    public func callAsFunction(pixels: Tensor, grids: [VisionGrid]) throws -> Tensor {
        let vision = config.vision, side = vision.patchesPerSide, perTile = vision.patchesPerTile
        for grid in grids {
            try BatonTensor.require(
                grid.t > 0 && grid.h == side && grid.w == side,
                "InternVL vision tower: grid \(grid) must be (tiles, \(side), \(side)): one \(vision.imageSize)-pixel tile per unit"
            )
        }
        let tiles = grids.reduce(0) { $0 + $1.t }
        try BatonTensor.require(
            pixels.shape == Shape([tiles * perTile, vision.patchInputSize]),
            "InternVL vision tower: pixels must be [\(tiles * perTile), \(vision.patchInputSize)] for \(tiles) tiles, "
                + "found \(pixels.shape)")
        let dtype = backend.activationDType
        let input = pixels.dtype == dtype ? pixels : try backend.cast(pixels, to: dtype)
        let embedded = try backend.matmul(input, weight: patchEmbed.weight, bias: patchEmbed.bias)  // [tiles·P, C]
        // Each tile: its class token, then its patches; plus the position embeddings.
        let tokensPerTile = 1 + perTile
        var tokenSource: [Int32] = [], positionRow: [Int32] = []
        tokenSource.reserveCapacity(tiles * tokensPerTile)
        positionRow.reserveCapacity(tiles * tokensPerTile)
        for tile in 0..<tiles {
            tokenSource.append(Int32(tiles * perTile))
            for row in 0..<perTile { tokenSource.append(Int32(tile * perTile + row)) }
            for row in 0..<tokensPerTile { positionRow.append(Int32(row)) }
        }
        var x = try backend.add(
            backend.embedding(table: backend.concatRows([embedded, classToken]), ids: backend.int32Tensor(tokenSource)),
            backend.embedding(table: positions, ids: backend.int32Tensor(positionRow)))
        let segments = try backend.int32Tensor((0...tiles).map { Int32($0 * tokensPerTile) })
        for layer in layers { x = try layer(x, segments: segments, backend: backend) }
        // Drop the class tokens; four consecutive rows are one pixel-shuffled token.
        let patchRows = (0..<tiles).flatMap { tile in (1..<tokensPerTile).map { Int32(tile * tokensPerTile + $0) } }
        let patches = try backend.embedding(table: x, ids: backend.int32Tensor(patchRows))
        let shuffled = patches.reshaped(tiles * perTile / 4, config.shuffledHiddenSize)
        return try projector2(backend.gelu(projector1(projectorNorm(shuffled, backend), backend)), backend)
    }
}
