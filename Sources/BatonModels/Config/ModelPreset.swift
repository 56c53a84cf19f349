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
            ModelConfig(architecture: .llama, hiddenSize: 4096, intermediateSize: 14336, numHiddenLayers: 32,
                        numAttentionHeads: 32, numKeyValueHeads: 8, headDim: 128, vocabSize: 128_256,
                        maxPositionEmbeddings: 131_072, rmsNormEps: 1e-5, ropeTheta: 500_000,
                        ropeScaling: .llama3(factor: 8, lowFrequencyFactor: 1, highFrequencyFactor: 4,
                                             originalMaxPositionEmbeddings: 8192),
                        bosTokenIds: [128_000], eosTokenIds: [128_001, 128_008, 128_009])
        case .llama3_8b_1m:
            ModelConfig(architecture: .llama, hiddenSize: 4096, intermediateSize: 14336, numHiddenLayers: 32,
                        numAttentionHeads: 32, numKeyValueHeads: 8, headDim: 128, vocabSize: 128_256,
                        maxPositionEmbeddings: 1_048_576, rmsNormEps: 1e-5, ropeTheta: 3_580_165_449,
                        bosTokenIds: [128_000], eosTokenIds: [128_001])
        case .qwen25_7b:
            ModelConfig(architecture: .qwen2, hiddenSize: 3584, intermediateSize: 18944, numHiddenLayers: 28,
                        numAttentionHeads: 28, numKeyValueHeads: 4, headDim: 128, vocabSize: 152_064,
                        maxPositionEmbeddings: 32768, rmsNormEps: 1e-6, ropeTheta: 1_000_000,
                        bosTokenIds: [151_643], eosTokenIds: [151_645], slidingWindow: 131_072)
        case .qwen25_14b:
            ModelConfig(architecture: .qwen2, hiddenSize: 5120, intermediateSize: 13824, numHiddenLayers: 48,
                        numAttentionHeads: 40, numKeyValueHeads: 8, headDim: 128, vocabSize: 152_064,
                        maxPositionEmbeddings: 32768, rmsNormEps: 1e-6, ropeTheta: 1_000_000,
                        bosTokenIds: [151_643], eosTokenIds: [151_645], slidingWindow: 131_072)
        case .yi34b:
            ModelConfig(architecture: .llama, hiddenSize: 7168, intermediateSize: 20480, numHiddenLayers: 60,
                        numAttentionHeads: 56, numKeyValueHeads: 8, headDim: 128, vocabSize: 64000,
                        maxPositionEmbeddings: 4096, rmsNormEps: 1e-5, ropeTheta: 5_000_000,
                        bosTokenIds: [1], eosTokenIds: [2])
        case .tinyLlama:
            ModelConfig(architecture: .llama, hiddenSize: 64, intermediateSize: 128, numHiddenLayers: 2,
                        numAttentionHeads: 4, numKeyValueHeads: 2, vocabSize: 256, maxPositionEmbeddings: 4096,
                        rmsNormEps: 1e-5, ropeTheta: 500_000,
                        ropeScaling: .llama3(factor: 8, lowFrequencyFactor: 1, highFrequencyFactor: 4,
                                             originalMaxPositionEmbeddings: 64),
                        bosTokenIds: [1], eosTokenIds: [2])
        case .tinyQwen2:
            ModelConfig(architecture: .qwen2, hiddenSize: 64, intermediateSize: 160, numHiddenLayers: 2,
                        numAttentionHeads: 4, numKeyValueHeads: 1, vocabSize: 256, maxPositionEmbeddings: 4096,
                        rmsNormEps: 1e-6, ropeTheta: 1_000_000, tieWordEmbeddings: true, torchDType: "float32",
                        bosTokenIds: [1], eosTokenIds: [2])
        }
    }

    /// The preset called `name` (its raw value), or an error listing them.
    public static func named(_ name: String) throws -> ModelPreset {
        guard let preset = ModelPreset(rawValue: name) else {
            throw BatonError.invalidArgument("unknown model preset \(name); presets: "
                                             + allCases.map(\.rawValue).joined(separator: ", "))
        }
        return preset
    }
}

