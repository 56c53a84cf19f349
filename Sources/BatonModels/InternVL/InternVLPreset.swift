import BatonTensor

/// InternVL3 shapes (VIDEO.md section 7), for speed runs with `WeightSource.random`: InternViT-300M
/// on 448-pixel tiles for every size, the Qwen2.5 language model of each size.
public enum InternVLPreset: String, Sendable, CaseIterable {
    /// OpenGVLab/InternVL3-2B: Qwen2.5-1.5B.
    case internVL3_2B = "internvl3-2b"
    /// OpenGVLab/InternVL3-8B: Qwen2.5-7B.
    case internVL3_8B = "internvl3-8b"

    public var config: InternVLConfig {
        InternVLConfig(format: .transformers, text: text, vision: .internViT300M, imageTokenId: 151_667)
    }

    /// Qwen2 with QKV bias, rope theta 1e6, 32768 positions with dynamic NTK scaling (factor 2, as
    /// the released `llm_config`s), a separate LM head, vocabulary 151,674 (Qwen2.5's with InternVL's
    /// image and box tokens).
    var text: ModelConfig {
        let (hidden, layers, heads, kvHeads, intermediate) =
            switch self {
            case .internVL3_2B: (1536, 28, 12, 2, 8960)
            case .internVL3_8B: (3584, 28, 28, 4, 18944)
            }
        return ModelConfig(
            architecture: .qwen2, hiddenSize: hidden, intermediateSize: intermediate, numHiddenLayers: layers,
            numAttentionHeads: heads, numKeyValueHeads: kvHeads, headDim: 128, vocabSize: 151_674,
            maxPositionEmbeddings: 32768, rmsNormEps: 1e-6, ropeTheta: 1_000_000, ropeScaling: .dynamic(factor: 2),
            bosTokenIds: [151_643], eosTokenIds: [151_645])
    }
}

/// The vision-language presets: Qwen2.5-VL's and InternVL3's.
public enum VisionLanguagePreset {
    /// The preset called `name`, or nil when it is not a vision-language preset.
    public static func named(_ name: String) -> VisionLanguageConfig? {
        if let qwen = Qwen2VLPreset.named(name) { return .qwen2VL(qwen.config) }
        if let intern = InternVLPreset(rawValue: name) { return .internVL(intern.config) }
        return nil
    }

    public static var names: [String] {
        Qwen2VLPreset.allCases.map(\.rawValue) + InternVLPreset.allCases.map(\.rawValue)
    }
}
