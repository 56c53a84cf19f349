import BatonTensor
import Foundation

/// The decoder families Baton runs. All share the Llama layer; they differ in which
/// projections carry a bias.
public enum ModelArchitecture: String, Sendable, CaseIterable {
    /// Llama 2/3.x, Yi (`attention_bias` puts a bias on q/k/v/o).
    case llama = "LlamaForCausalLM"
    /// Mistral (no biases; `sliding_window` is accepted and ignored).
    case mistral = "MistralForCausalLM"
    /// Qwen2 / Qwen2.5 (q/k/v always carry a bias, o does not).
    case qwen2 = "Qwen2ForCausalLM"

    /// The `model_type` spelling, used when `architectures` is absent.
    var modelType: String {
        switch self {
        case .llama: "llama"
        case .mistral: "mistral"
        case .qwen2: "qwen2"
        }
    }

    static var supportedList: String { allCases.map(\.rawValue).joined(separator: ", ") }
}

/// A Hugging Face `config.json` of the Llama family. Keys are spelled as in the file; defaults
/// are transformers' defaults. `validate()` checks the numbers fit together.
public struct ModelConfig: Sendable, Equatable {
    public var architecture: ModelArchitecture
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var numKeyValueHeads: Int
    public var headDim: Int
    public var vocabSize: Int
    public var maxPositionEmbeddings: Int
    public var rmsNormEps: Double
    public var ropeTheta: Double
    public var ropeScaling: RopeScaling?
    public var tieWordEmbeddings: Bool
    /// Llama's `attention_bias` (q/k/v/o); Qwen2 has a q/k/v bias whatever this says.
    public var attentionBias: Bool
    /// Llama's `mlp_bias` (gate/up/down).
    public var mlpBias: Bool
    /// `torch_dtype` (4.x) or `dtype` (5.x), e.g. "bfloat16".
    public var torchDType: String?
    public var bosTokenIds: [Int]
    public var eosTokenIds: [Int]
    /// Accepted and ignored: Baton attends to the whole context.
    public var slidingWindow: Int?

    public init(
        architecture: ModelArchitecture, hiddenSize: Int, intermediateSize: Int, numHiddenLayers: Int,
        numAttentionHeads: Int, numKeyValueHeads: Int? = nil, headDim: Int? = nil, vocabSize: Int,
        maxPositionEmbeddings: Int, rmsNormEps: Double, ropeTheta: Double, ropeScaling: RopeScaling? = nil,
        tieWordEmbeddings: Bool = false, attentionBias: Bool = false, mlpBias: Bool = false,
        torchDType: String? = "bfloat16", bosTokenIds: [Int] = [], eosTokenIds: [Int] = [],
        slidingWindow: Int? = nil
    ) {
        self.architecture = architecture
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads
        self.numKeyValueHeads = numKeyValueHeads ?? numAttentionHeads
        self.headDim = headDim ?? hiddenSize / max(numAttentionHeads, 1)
        self.vocabSize = vocabSize
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.rmsNormEps = rmsNormEps
        self.ropeTheta = ropeTheta
        self.ropeScaling = ropeScaling
        self.tieWordEmbeddings = tieWordEmbeddings
        self.attentionBias = attentionBias
        self.mlpBias = mlpBias
        self.torchDType = torchDType
        self.bosTokenIds = bosTokenIds
        self.eosTokenIds = eosTokenIds
        self.slidingWindow = slidingWindow
    }

    /// Whether q/k/v projections carry a bias.
    public var hasQKVBias: Bool { architecture == .qwen2 || attentionBias }
    /// Whether the output projection carries a bias.
    public var hasOutputBias: Bool { architecture != .qwen2 && attentionBias }
    /// Query heads per KV head.
    public var groupSize: Int { numAttentionHeads / numKeyValueHeads }

    /// The checkpoint's storage type from `torch_dtype` / `dtype`, if it names one Baton stores.
    public var weightDType: DType? {
        switch torchDType {
        case "bfloat16": .bf16
        case "float16", "half": .f16
        case "float32", "float": .f32
        default: nil
        }
    }

    /// Reads and validates `directory/config.json`.
    public static func load(directory: URL) throws -> ModelConfig {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory.path, isDirectory: &isDirectory) else {
            throw BatonError(.io, "model directory \(directory.path) does not exist")
        }
        guard isDirectory.boolValue else {
            throw BatonError(
                .io,
                "\(directory.path) is a file, not a model directory (a Hugging Face folder with config.json, *.safetensors and tokenizer.json)"
            )
        }
        let url = directory.appendingPathComponent("config.json")
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw BatonError(.io, "\(url.path): config.json not found in the model directory")
        }
        return try parse(data, file: url.path)
    }

    /// Parses and validates config.json contents; `file` names the source in errors.
    public static func parse(_ data: Data, file: String = "config.json") throws -> ModelConfig {
        let config: ModelConfig
        do {
            config = try JSONDecoder().decode(ModelConfig.self, from: data)
        } catch let error as BatonError {
            throw BatonError(error.kind, "\(file): \(error.message)")
        } catch let DecodingError.keyNotFound(key, context) {
            let path = (context.codingPath + [key]).map(\.stringValue).joined(separator: ".")
            throw BatonError.invalidModel("\(file): required field `\(path)` is missing")
        } catch let DecodingError.typeMismatch(type, context) {
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw BatonError.invalidModel("\(file): field `\(path)` should be \(type)")
        } catch let DecodingError.valueNotFound(type, context) {
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw BatonError.invalidModel("\(file): field `\(path)` is null, expected \(type)")
        } catch {
            throw BatonError.invalidModel("\(file): not a valid JSON object (\(error.localizedDescription))")
        }
        do {
            try config.validate()
        } catch let error as BatonError {
            throw BatonError(error.kind, "\(file): \(error.message)")
        }
        return config
    }

    /// Checks the dimensions fit together (heads divide evenly, head dimension even, ...).
    public func validate() throws {
        func check(_ condition: Bool, _ message: String) throws {
            if !condition { throw BatonError.invalidModel(message) }
        }
        for (name, value) in [
            ("hidden_size", hiddenSize), ("intermediate_size", intermediateSize),
            ("num_hidden_layers", numHiddenLayers), ("num_attention_heads", numAttentionHeads),
            ("num_key_value_heads", numKeyValueHeads), ("head_dim", headDim),
            ("vocab_size", vocabSize)
        ] {
            try check(value > 0, "field `\(name)` must be positive, found \(value)")
        }
        try check(
            numAttentionHeads % numKeyValueHeads == 0,
            "num_attention_heads (\(numAttentionHeads)) must be a multiple of num_key_value_heads (\(numKeyValueHeads))"
        )
        try check(headDim % 2 == 0, "head_dim must be even for rotary embeddings, found \(headDim)")
        try check(rmsNormEps > 0, "rms_norm_eps must be positive, found \(rmsNormEps)")
        try check(ropeTheta > 0, "rope_theta must be positive, found \(ropeTheta)")
        try ropeScaling?.validate(headDim: headDim)
    }
}

// MARK: - Decoding config.json

extension ModelConfig: Decodable {
    enum CodingKeys: String, CodingKey {
        case architectures, modelType = "model_type", hiddenSize = "hidden_size"
        case intermediateSize = "intermediate_size", numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads", numKeyValueHeads = "num_key_value_heads"
        case headDim = "head_dim", vocabSize = "vocab_size", maxPositionEmbeddings = "max_position_embeddings"
        case rmsNormEps = "rms_norm_eps", ropeTheta = "rope_theta", ropeScaling = "rope_scaling"
        case ropeParameters = "rope_parameters", tieWordEmbeddings = "tie_word_embeddings"
        case attentionBias = "attention_bias", mlpBias = "mlp_bias", torchDType = "torch_dtype", dtype
        case bosTokenId = "bos_token_id", eosTokenId = "eos_token_id", slidingWindow = "sliding_window"
        case hiddenAct = "hidden_act"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let architectures = try c.decodeIfPresent([String].self, forKey: .architectures)
        let modelType = try c.decodeIfPresent(String.self, forKey: .modelType)
        if let architectures {
            guard let known = architectures.lazy.compactMap(ModelArchitecture.init(rawValue:)).first else {
                throw BatonError.unsupported(
                    "field `architectures` is \(architectures); supported: \(ModelArchitecture.supportedList)")
            }
            architecture = known
        } else if let known = ModelArchitecture.allCases.first(where: { $0.modelType == modelType }) {
            architecture = known
        } else {
            throw BatonError.unsupported(
                "field `architectures` is missing and model_type \(modelType ?? "null") "
                    + "is not one of: \(ModelArchitecture.supportedList)")
        }
        let activation = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? "silu"
        guard activation == "silu" else {
            throw BatonError.unsupported("field `hidden_act` is \(activation); Baton supports silu")
        }
        hiddenSize = try c.decode(Int.self, forKey: .hiddenSize)
        intermediateSize = try c.decode(Int.self, forKey: .intermediateSize)
        numHiddenLayers = try c.decode(Int.self, forKey: .numHiddenLayers)
        numAttentionHeads = try c.decode(Int.self, forKey: .numAttentionHeads)
        numKeyValueHeads = try c.decodeIfPresent(Int.self, forKey: .numKeyValueHeads) ?? numAttentionHeads
        headDim = try c.decodeIfPresent(Int.self, forKey: .headDim) ?? hiddenSize / max(numAttentionHeads, 1)
        vocabSize = try c.decode(Int.self, forKey: .vocabSize)
        maxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings) ?? 2048
        rmsNormEps = try c.decodeIfPresent(Double.self, forKey: .rmsNormEps) ?? 1e-6
        tieWordEmbeddings = try c.decodeIfPresent(Bool.self, forKey: .tieWordEmbeddings) ?? false
        attentionBias = try c.decodeIfPresent(Bool.self, forKey: .attentionBias) ?? false
        mlpBias = try c.decodeIfPresent(Bool.self, forKey: .mlpBias) ?? false
        torchDType =
            try c.decodeIfPresent(String.self, forKey: .torchDType)
            ?? c.decodeIfPresent(String.self, forKey: .dtype)
        bosTokenIds = try c.decodeTokenIds(forKey: .bosTokenId)
        eosTokenIds = try c.decodeTokenIds(forKey: .eosTokenId)
        slidingWindow = try? c.decodeIfPresent(Int.self, forKey: .slidingWindow)

        // transformers 4.x: rope_theta + rope_scaling; 5.x: rope_parameters holding both.
        let scalingEntry = try c.decodeIfPresent(RopeEntry.self, forKey: .ropeScaling)
        let parametersEntry = try c.decodeIfPresent(RopeEntry.self, forKey: .ropeParameters)
        ropeTheta = try c.decodeIfPresent(Double.self, forKey: .ropeTheta) ?? parametersEntry?.ropeTheta ?? 10_000
        if let parametersEntry, parametersEntry.kind != nil && parametersEntry.kind != "default" {
            ropeScaling = try parametersEntry.scaling(field: "rope_parameters")
        } else {
            ropeScaling = try scalingEntry?.scaling(field: "rope_scaling")
        }
    }
}

// MARK: - Encoding config.json

extension ModelConfig: Encodable {
    /// Writes the transformers 4.x layout (top-level `rope_theta`, `rope_scaling`, `torch_dtype`),
    /// which every transformers version reads; e.g. to save a preset next to random weights.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode([architecture.rawValue], forKey: .architectures)
        try c.encode(architecture.modelType, forKey: .modelType)
        try c.encode(hiddenSize, forKey: .hiddenSize)
        try c.encode(intermediateSize, forKey: .intermediateSize)
        try c.encode(numHiddenLayers, forKey: .numHiddenLayers)
        try c.encode(numAttentionHeads, forKey: .numAttentionHeads)
        try c.encode(numKeyValueHeads, forKey: .numKeyValueHeads)
        try c.encode(headDim, forKey: .headDim)
        try c.encode(vocabSize, forKey: .vocabSize)
        try c.encode(maxPositionEmbeddings, forKey: .maxPositionEmbeddings)
        try c.encode(rmsNormEps, forKey: .rmsNormEps)
        try c.encode(ropeTheta, forKey: .ropeTheta)
        if let ropeScaling {
            try c.encode(RopeScalingEntry(ropeScaling), forKey: .ropeScaling)
        } else {
            try c.encodeNil(forKey: .ropeScaling)
        }
        try c.encode(tieWordEmbeddings, forKey: .tieWordEmbeddings)
        try c.encode(attentionBias, forKey: .attentionBias)
        try c.encode(mlpBias, forKey: .mlpBias)
        try c.encodeIfPresent(torchDType, forKey: .torchDType)
        try c.encodeTokenIds(bosTokenIds, forKey: .bosTokenId)
        try c.encodeTokenIds(eosTokenIds, forKey: .eosTokenId)
        try c.encodeIfPresent(slidingWindow, forKey: .slidingWindow)
        try c.encode("silu", forKey: .hiddenAct)
    }
}

extension KeyedEncodingContainer {
    /// One id as an integer, several as a list, none as null (how transformers writes them).
    fileprivate mutating func encodeTokenIds(_ ids: [Int], forKey key: Key) throws {
        switch ids.count {
        case 0: try encodeNil(forKey: key)
        case 1: try encode(ids[0], forKey: key)
        default: try encode(ids, forKey: key)
        }
    }
}

extension KeyedDecodingContainer {
    /// A token id field that may be an integer, a list of integers, or null.
    fileprivate func decodeTokenIds(forKey key: Key) throws -> [Int] {
        if try !contains(key) || decodeNil(forKey: key) { return [] }
        if let one = try? decode(Int.self, forKey: key) { return [one] }
        return try decode([Int].self, forKey: key)
    }
}
