import BatonTensor
import Foundation

/// Locret's retaining heads, which APB uses to score how much each key matters to later
/// queries: per layer, `scores = fc2(silu(fc1([q; k; v])))` on the pre-RoPE projections.
/// fc1 is `[hidden, (H + 2 Hkv) d]` (hidden is 1024 in Locret), fc2 `[Hkv, hidden]`; each may
/// carry a bias.
public final class RetainingHeads: @unchecked Sendable {
    struct Head {
        let fc1: Linear
        let fc2: Linear
    }

    public let config: ModelConfig
    public let backend: any Backend
    let heads: [Head]

    /// Width of fc1's output.
    public var hiddenSize: Int { heads.first?.fc1.weight.shape[0] ?? 0 }

    init(config: ModelConfig, backend: any Backend, heads: [Head]) {
        self.config = config
        self.backend = backend
        self.heads = heads
    }

    /// Loads every layer's head from a safetensors file. A key belongs to layer N if it holds
    /// the components `layers.N.` and `fc1` or `fc2` (e.g. `model.layers.3.self_attn.fc1.weight`
    /// or `...retaining_head.fc1.weight`); it ends in `weight` or `bias`.
    public convenience init(file path: String, config: ModelConfig, backend: any Backend) throws {
        let file = try SafetensorsFile(path: path)
        var found: [Int: [String: Tensor]] = [:]  // layer -> "fc1.weight" etc.
        for name in file.names {
            let parts = name.split(separator: ".").map(String.init)
            guard let layerAt = parts.firstIndex(of: "layers"), layerAt + 1 < parts.count,
                let layer = Int(parts[layerAt + 1]),
                let fc = parts.last(where: { $0 == "fc1" || $0 == "fc2" }),
                let kind = parts.last, kind == "weight" || kind == "bias"
            else { continue }
            found[layer, default: [:]]["\(fc).\(kind)"] = file.tensor(named: name)
        }
        let projectionWidth = (config.numAttentionHeads + 2 * config.numKeyValueHeads) * config.headDim
        var heads: [Head] = []
        for layer in 0..<config.numHiddenLayers {
            let tensors = found[layer] ?? [:]
            guard let fc1 = tensors["fc1.weight"], tensors["fc2.weight"] != nil else {
                throw BatonError.invalidModel(
                    "\(path): no retaining head for layer \(layer) "
                        + "(expected keys containing `layers.\(layer).` and fc1/fc2 weights)")
            }
            let hidden = fc1.shape.rank == 2 ? fc1.shape[0] : -1
            let expected: [(String, Shape)] = [
                ("fc1.weight", [hidden, projectionWidth]), ("fc1.bias", [hidden]),
                ("fc2.weight", [config.numKeyValueHeads, hidden]),
                ("fc2.bias", [config.numKeyValueHeads])
            ]
            for (key, shape) in expected {
                if let tensor = tensors[key], tensor.shape != shape {
                    throw BatonError.shapeMismatch(
                        "\(path): retaining head layer \(layer) \(key): "
                            + "expected \(shape), found \(tensor.shape)")
                }
            }
            func device(_ key: String) throws -> Tensor? {
                try tensors[key].map { try uploadWeight($0, to: backend) }
            }
            heads.append(
                Head(
                    fc1: Linear(weight: try device("fc1.weight")!, bias: try device("fc1.bias")),
                    fc2: Linear(weight: try device("fc2.weight")!, bias: try device("fc2.bias"))))
        }
        self.init(config: config, backend: backend, heads: heads)
    }

    /// Random heads (with biases) for speed runs; deterministic in `seed`.
    public static func random(
        config: ModelConfig, backend: any Backend, seed: UInt64,
        hiddenSize: Int = 1024
    ) throws -> RetainingHeads {
        let width = (config.numAttentionHeads + 2 * config.numKeyValueHeads) * config.headDim
        let dtype = backend.activationDType
        let heads = try (0..<config.numHiddenLayers).map { layer in
            func make(_ name: String, _ shape: Shape) throws -> Tensor {
                try RandomWeights.tensor(
                    WeightSpec(name: "retaining_head.layers.\(layer).\(name)", shape: shape),
                    seed: seed, dtype: dtype, backend: backend)
            }
            return Head(
                fc1: Linear(
                    weight: try make("fc1.weight", [hiddenSize, width]),
                    bias: try make("fc1.bias", [hiddenSize])),
                fc2: Linear(
                    weight: try make("fc2.weight", [config.numKeyValueHeads, hiddenSize]),
                    bias: try make("fc2.bias", [config.numKeyValueHeads])))
        }
        return RetainingHeads(config: config, backend: backend, heads: heads)
    }

    /// The layer's pre-RoPE projections `[q; k; v]` act -> importance `[T, Hkv]` f32.
    public func scores(layer: Int, preRotary: PreRotaryProjections) throws -> Tensor {
        try BatonTensor.require(
            heads.indices.contains(layer),
            "RetainingHeads.scores: layer \(layer) out of 0..<\(heads.count)")
        let head = heads[layer]
        let joined = try preRotary.joined(backend)
        try BatonTensor.require(
            joined.shape[1] == head.fc1.weight.shape[1],
            "RetainingHeads.scores: [q; k; v] has \(joined.shape[1]) columns, fc1 expects \(head.fc1.weight.shape[1])")
        let scores = try head.fc2(backend.silu(head.fc1(joined, backend)), backend)
        return scores.dtype == .f32 ? scores : try backend.cast(scores, to: .f32)
    }
}
