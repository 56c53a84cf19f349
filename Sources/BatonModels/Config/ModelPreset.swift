import BatonTensor

/// Configurations of the models in the papers' experiments, copied from their public
/// config.json files, plus tiny ones for tests. With `WeightSource.random` they give speed runs
/// of the real shapes without downloading weights.
public enum ModelPreset: String, Sendable, CaseIterable {
    /// meta-llama/Llama-3.1-8B-Instruct (llama3 rope scaling, 128K context).
    case llama31_8b = "llama-3.1-8b"
    /// gradientai/Llama-3-8B-Instruct-Gradient-1048k (rope theta raised for 1M context).
    case llama3_8b_1m = "llama-3-8b-1m"
    /// Qwen/Qwen2.5-7B-Instruct (QKV bias).
    case qwen25_7b = "qwen2.5-7b"
    /// Qwen/Qwen2.5-14B-Instruct (QKV bias).
    case qwen25_14b = "qwen2.5-14b"
    /// 01-ai/Yi-34B (Llama architecture).
    case yi34b = "yi-34b"
    /// Two layers, hidden 64, llama3 rope scaling, untied head: fast Llama tests.
    case tinyLlama = "tiny-llama"
    /// Two layers, hidden 64, QKV bias, tied head: fast Qwen2 tests.
    case tinyQwen2 = "tiny-qwen2"

    public var config: ModelConfig {
        switch self {
        case .llama31_8b:
            Self.llama3_8B(
                maxPositionEmbeddings: 131_072, ropeTheta: 500_000,
                ropeScaling: .llama3(
                    factor: 8, lowFrequencyFactor: 1, highFrequencyFactor: 4,
                    originalMaxPositionEmbeddings: 8192),
                eosTokenIds: [128_001, 128_008, 128_009])
        case .llama3_8b_1m:
            Self.llama3_8B(maxPositionEmbeddings: 1_048_576, ropeTheta: 3_580_165_449, eosTokenIds: [128_001])
        case .qwen25_7b:
            Self.qwen25(hiddenSize: 3584, intermediateSize: 18944, layers: 28, heads: 28, kvHeads: 4)
        case .qwen25_14b:
            Self.qwen25(hiddenSize: 5120, intermediateSize: 13824, layers: 48, heads: 40, kvHeads: 8)
        case .yi34b:
            ModelConfig(
                architecture: .llama, hiddenSize: 7168, intermediateSize: 20480, numHiddenLayers: 60,
                numAttentionHeads: 56, numKeyValueHeads: 8, headDim: 128, vocabSize: 64000,
                maxPositionEmbeddings: 4096, rmsNormEps: 1e-5, ropeTheta: 5_000_000,
                bosTokenIds: [1], eosTokenIds: [2])
        case .tinyLlama:
            ModelConfig(
                architecture: .llama, hiddenSize: 64, intermediateSize: 128, numHiddenLayers: 2,
                numAttentionHeads: 4, numKeyValueHeads: 2, vocabSize: 256, maxPositionEmbeddings: 4096,
                rmsNormEps: 1e-5, ropeTheta: 500_000,
                ropeScaling: .llama3(
                    factor: 8, lowFrequencyFactor: 1, highFrequencyFactor: 4,
                    originalMaxPositionEmbeddings: 64),
                bosTokenIds: [1], eosTokenIds: [2])
        case .tinyQwen2:
            ModelConfig(
                architecture: .qwen2, hiddenSize: 64, intermediateSize: 160, numHiddenLayers: 2,
                numAttentionHeads: 4, numKeyValueHeads: 1, vocabSize: 256, maxPositionEmbeddings: 4096,
                rmsNormEps: 1e-6, ropeTheta: 1_000_000, tieWordEmbeddings: true, torchDType: "float32",
                bosTokenIds: [1], eosTokenIds: [2])
        }
    }

    /// Llama 3 8B's shape and tokenizer, shared by Llama-3.1-8B and the 1M-context Gradient model
    /// (a Llama-3-8B fine-tune), which differ in context length, rope and end-of-sequence ids.
    private static func llama3_8B(
        maxPositionEmbeddings: Int, ropeTheta: Double, ropeScaling: RopeScaling? = nil,
        eosTokenIds: [Int]
    ) -> ModelConfig {
        ModelConfig(
            architecture: .llama, hiddenSize: 4096, intermediateSize: 14336, numHiddenLayers: 32,
            numAttentionHeads: 32, numKeyValueHeads: 8, headDim: 128, vocabSize: 128_256,
            maxPositionEmbeddings: maxPositionEmbeddings, rmsNormEps: 1e-5, ropeTheta: ropeTheta,
            ropeScaling: ropeScaling, bosTokenIds: [128_000], eosTokenIds: eosTokenIds)
    }

    /// What every Qwen2.5 size shares (vocabulary, 32K context, rope, head dim, special ids); the
    /// sizes differ only in width, depth and head counts.
    private static func qwen25(hiddenSize: Int, intermediateSize: Int, layers: Int, heads: Int, kvHeads: Int)
        -> ModelConfig
    {
        ModelConfig(
            architecture: .qwen2, hiddenSize: hiddenSize, intermediateSize: intermediateSize,
            numHiddenLayers: layers, numAttentionHeads: heads, numKeyValueHeads: kvHeads, headDim: 128,
            vocabSize: 152_064, maxPositionEmbeddings: 32768, rmsNormEps: 1e-6, ropeTheta: 1_000_000,
            bosTokenIds: [151_643], eosTokenIds: [151_645], slidingWindow: 131_072)
    }

    /// The preset called `name` (its raw value), or an error listing them.
    public static func named(_ name: String) throws -> ModelPreset {
        guard let preset = ModelPreset(rawValue: name) else {
            throw BatonError.invalidArgument(
                "unknown model preset \(name); presets: "
                    + allCases.map(\.rawValue).joined(separator: ", "))
        }
        return preset
    }
}
