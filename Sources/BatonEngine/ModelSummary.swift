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

    public init(config: ModelConfig, checkpoint: SafetensorsCheckpoint, directory: URL) {
        self.config = config
        self.directory = directory
        var count = 0
        var bytes: [DType: Int] = [:]
        for file in checkpoint.files.values {
            for entry in file.entries.values {
                count += entry.shape.elementCount
                bytes[entry.dtype, default: 0] += entry.byteRange.count
            }
        }
        parameterCount = count
        bytesByDType = bytes
    }

    public var text: String {
        let c = config
        let rope: String
        switch c.ropeScaling {
        case nil: rope = "theta \(c.ropeTheta)"
        case .some(let scaling): rope = "theta \(c.ropeTheta), scaling \(scaling)"
        }
        let dtypes = bytesByDType.sorted { $0.value > $1.value }
            .map { "\($0.key.rawValue) (\(formatBytes($0.value)))" }.joined(separator: ", ")
        return """
            model:            \(directory.path)
            architecture:     \(c.architecture.rawValue)
            parameters:       \(formatCount(parameterCount))
            dtype:            \(dtypes)
            context length:   \(c.maxPositionEmbeddings) tokens
            layers:           \(c.numHiddenLayers)
            hidden size:      \(c.hiddenSize) (MLP \(c.intermediateSize))
            attention heads:  \(c.numAttentionHeads) query, \(c.numKeyValueHeads) KV, head dim \(c.headDim)
            vocabulary:       \(c.vocabSize)
            rope:             \(rope)
            tied embeddings:  \(c.tieWordEmbeddings ? "yes" : "no")
            QKV bias:         \(c.hasQKVBias ? "yes" : "no")
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
