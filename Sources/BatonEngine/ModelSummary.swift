import BatonModels
import BatonTensor
import Foundation

/// What `baton inspect` prints: the architecture from config.json and the parameter count and
/// dtypes read from the safetensors headers (nothing is loaded).
public struct ModelSummary {
    public let config: ModelConfig
    public let parameterCount: Int
    public let bytesByDType: [DType: Int]
    public let directory: URL
    /// A vision-language model's whole configuration (`config` is then its language model).
    public let visionLanguage: VisionLanguageConfig?
    /// Parameters of the vision tower and projector (every tensor outside the language model).
    public let visionParameterCount: Int

    public init(
        config: ModelConfig, checkpoint: SafetensorsCheckpoint, directory: URL,
        visionLanguage: VisionLanguageConfig? = nil
    ) {
        self.config = config
        self.directory = directory
        self.visionLanguage = visionLanguage
        var vision = 0
        var count = 0
        var bytes: [DType: Int] = [:]
        for file in checkpoint.files.values {
            for (name, entry) in file.entries {
                count += entry.shape.elementCount
                if visionLanguage != nil && !Self.isLanguageTensor(name) { vision += entry.shape.elementCount }
                bytes[entry.dtype, default: 0] += entry.byteRange.count
            }
        }
        parameterCount = count
        bytesByDType = bytes
        visionParameterCount = vision
    }

    public var text: String {
        let c = config
        let rope: String
        switch c.ropeScaling {
        case nil: rope = "theta \(c.ropeTheta)"
        case .some(let scaling): rope = "theta \(c.ropeTheta), scaling \(scaling)"
        }
        // Dynamic NTK scaling runs past max_position_embeddings: say where the longer limit comes from.
        let contextNote = c.contextLength == c.maxPositionEmbeddings ? "" : " (\(c.contextLengthOrigin))"
        let dtypes = bytesByDType.sorted { $0.value > $1.value }
            .map { "\($0.key.rawValue) (\(formatBytes($0.value)))" }.joined(separator: ", ")
        return """
            model:            \(directory.path)
            architecture:     \(visionLanguage == nil ? c.architecture.rawValue
                                    : "\(visionLanguage!.architecture) (language model \(c.architecture.rawValue))")
            parameters:       \(formatCount(parameterCount))
            dtype:            \(dtypes)
            context length:   \(c.contextLength) tokens\(contextNote)
            layers:           \(c.numHiddenLayers)
            hidden size:      \(c.hiddenSize) (MLP \(c.intermediateSize))
            attention heads:  \(c.numAttentionHeads) query, \(c.numKeyValueHeads) KV, head dim \(c.headDim)
            vocabulary:       \(c.vocabSize)
            rope:             \(rope)
            tied embeddings:  \(c.tieWordEmbeddings ? "yes" : "no")
            QKV bias:         \(c.hasQKVBias ? "yes" : "no")
            """ + (visionLanguage.map { "\n" + visionText($0) } ?? "")
    }

    /// Whether a vision-language checkpoint's tensor belongs to its language model, in any of the
    /// namings (`model.*` as released, `model.language_model.*`, `language_model.*`, `lm_head.*`).
    static func isLanguageTensor(_ name: String) -> Bool {
        let visionPrefixes = [
            "visual.", "model.visual.", "vision_model.", "mlp1.", "vision_tower.", "model.vision_tower."
        ]
        return !visionPrefixes.contains(where: name.hasPrefix) && !name.contains("multi_modal_projector.")
    }

    /// The vision tower's lines of a vision-language model.
    func visionText(_ config: VisionLanguageConfig) -> String {
        switch config {
        case .qwen2VL(let qwen): qwenVisionText(qwen)
        case .internVL(let intern):
            """
            vision tower:     InternViT, \(intern.vision.numLayers) layers, hidden \(intern.vision.hiddenSize) \
            (MLP \(intern.vision.intermediateSize)), \(intern.vision.numHeads) heads (head dim \(intern.vision.headDim)), \
            \(formatCount(visionParameterCount)) parameters with the projector
            vision tiles:     \(intern.vision.imageSize) px, \(intern.vision.patchSize) px patches, 0.5 pixel shuffle -> \
            \(intern.tokensPerTile) tokens per tile, \(intern.text.hiddenSize) wide
            checkpoint:       \(intern.format == .original ? "OpenGVLab original (InternVLChatModel)" : "transformers (InternVLForConditionalGeneration)")
            """
        }
    }

    private func qwenVisionText(_ vl: Qwen2VLConfig) -> String {
        let v = vl.vision
        return """
            vision tower:     \(v.depth) blocks, hidden \(v.hiddenSize) (MLP \(v.intermediateSize)), \(v.numHeads) heads \
            (head dim \(v.headDim)), \(formatCount(visionParameterCount)) parameters
            vision windows:   \(v.windowSize) px (\(v.windowMergeUnits)x\(v.windowMergeUnits) merge units); full attention \
            in blocks \(v.fullAttentionBlockIndexes.map(String.init).joined(separator: ", "))
            vision patches:   \(v.patchSize)x\(v.patchSize) px, \(v.temporalPatchSize) frames each, \
            \(v.spatialMergeSize)x\(v.spatialMergeSize) merge -> \(v.outHiddenSize) wide tokens
            M-RoPE:           sections \(vl.mropeSection) (t, h, w), \(v.tokensPerSecond) temporal steps per second
            """
    }
}

/// 1.2 B / 135.1 M / 12.3 K.
func formatCount(_ n: Int) -> String {
    let x = Double(n)
    if x >= 1e9 { return "\(format1(x / 1e9)) B (\(n))" }
    if x >= 1e6 { return "\(format1(x / 1e6)) M (\(n))" }
    if x >= 1e3 { return "\(format1(x / 1e3)) K (\(n))" }
    return String(n)
}

/// 1.5 GiB / 12.0 MiB / 512 B.
func formatBytes(_ n: Int) -> String {
    let x = Double(n)
    if x >= 1_073_741_824 { return "\(format1(x / 1_073_741_824)) GiB" }
    if x >= 1_048_576 { return "\(format1(x / 1_048_576)) MiB" }
    if x >= 1024 { return "\(format1(x / 1024)) KiB" }
    return "\(n) B"
}
