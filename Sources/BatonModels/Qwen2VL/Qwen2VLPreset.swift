import BatonTensor

/// Qwen2.5-VL shapes of the released checkpoints (VIDEO.md sections 1-2), for speed runs with
/// `WeightSource.random`: the vision tower is the same for every size, the language model differs.
public enum Qwen2VLPreset: String, Sendable, CaseIterable {
    /// Qwen/Qwen2.5-VL-3B-Instruct (tied head).
    case qwen25VL3B = "qwen2.5-vl-3b"
    /// Qwen/Qwen2.5-VL-7B-Instruct.
    case qwen25VL7B = "qwen2.5-vl-7b"

    /// The preset called `name`, or nil when it is not a vision-language preset.
    public static func named(_ name: String) -> Qwen2VLPreset? { Qwen2VLPreset(rawValue: name) }

    public var config: Qwen2VLConfig {
        let vision = Qwen2VisionConfig(
            depth: 32, hiddenSize: 1280, numHeads: 16, intermediateSize: 3420, inChannels: 3, patchSize: 14,
            temporalPatchSize: 2, spatialMergeSize: 2, windowSize: 112, fullAttentionBlockIndexes: [7, 15, 23, 31],
            tokensPerSecond: 2, outHiddenSize: text.hiddenSize)
        return Qwen2VLConfig(
            text: text, vision: vision, mropeSection: [16, 24, 24], imageTokenId: 151_655,
            videoTokenId: 151_656, visionStartTokenId: 151_652, visionEndTokenId: 151_653)
    }

    /// The language model: Qwen2 with QKV bias, rope theta 1e6, 128000 positions.
    var text: ModelConfig {
        switch self {
        case .qwen25VL3B:
            ModelConfig(
                architecture: .qwen2, hiddenSize: 2048, intermediateSize: 11008, numHiddenLayers: 36,
                numAttentionHeads: 16, numKeyValueHeads: 2, headDim: 128, vocabSize: 151_936,
                maxPositionEmbeddings: 128_000, rmsNormEps: 1e-6, ropeTheta: 1_000_000,
                tieWordEmbeddings: true, bosTokenIds: [151_643], eosTokenIds: [151_645])
        case .qwen25VL7B:
            ModelConfig(
                architecture: .qwen2, hiddenSize: 3584, intermediateSize: 18944, numHiddenLayers: 28,
                numAttentionHeads: 28, numKeyValueHeads: 4, headDim: 128, vocabSize: 152_064,
                maxPositionEmbeddings: 128_000, rmsNormEps: 1e-6, ropeTheta: 1_000_000,
                bosTokenIds: [151_643], eosTokenIds: [151_645])
        }
    }
}
