import BatonTensor
import Foundation

/// `vision_config` of a Qwen2.5-VL `config.json`: the ViT with windowed attention and the 2x2
/// patch merger. Keys as in the file; defaults are transformers' class defaults (which differ
/// from the released checkpoints: always read the checkpoint's).
public struct Qwen2VisionConfig: Sendable, Equatable {
    public var depth: Int
    public var hiddenSize: Int
    public var numHeads: Int
    public var intermediateSize: Int
    public var inChannels: Int
    public var patchSize: Int
    public var temporalPatchSize: Int
    public var spatialMergeSize: Int
    /// Window side in pixels (112: 4x4 merge units of 28 pixels).
    public var windowSize: Int
    /// Blocks that attend over whole temporal units instead of windows.
    public var fullAttentionBlockIndexes: [Int]
    /// Temporal M-RoPE steps per second of video.
    public var tokensPerSecond: Double
    /// The merger's output width: the language model's hidden size.
    public var outHiddenSize: Int

    public var headDim: Int { hiddenSize / numHeads }
    /// Values per patch row: channels x temporal patch x patch x patch (1176 for 3 x 2 x 14 x 14).
    public var patchInputSize: Int { inChannels * temporalPatchSize * patchSize * patchSize }
    /// Patches per merge unit (4 for a 2x2 merge).
    public var mergeUnit: Int { spatialMergeSize * spatialMergeSize }
    /// The merger's input width: the features of one merge unit side by side.
    public var mergedHiddenSize: Int { hiddenSize * mergeUnit }
    /// Window side in merge units (`vit_merger_window_size`).
    public var windowMergeUnits: Int { windowSize / spatialMergeSize / patchSize }

    public func validate() throws {
        func check(_ condition: Bool, _ message: String) throws {
            if !condition { throw BatonError.invalidModel(message) }
        }
        for (name, value) in [
            ("depth", depth), ("hidden_size", hiddenSize), ("num_heads", numHeads),
            ("intermediate_size", intermediateSize), ("in_chans", inChannels),
            ("patch_size", patchSize), ("temporal_patch_size", temporalPatchSize),
            ("spatial_merge_size", spatialMergeSize), ("out_hidden_size", outHiddenSize)
        ] {
            try check(value > 0, "field `vision_config.\(name)` must be positive, found \(value)")
        }
        try check(
            hiddenSize % numHeads == 0,
            "vision_config.hidden_size (\(hiddenSize)) must be a multiple of num_heads (\(numHeads))")
        try check(headDim % 4 == 0, "vision head dim (\(headDim)) must be a multiple of 4 for the 2-D rotary")
        try check(
            windowMergeUnits > 0,
            "vision_config.window_size (\(windowSize)) must be at least "
                + "spatial_merge_size x patch_size = \(spatialMergeSize * patchSize)")
        for index in fullAttentionBlockIndexes {
            try check(
                (0..<depth).contains(index),
                "vision_config.fullatt_block_indexes holds \(index), outside the \(depth) blocks")
        }
    }
}

extension Qwen2VisionConfig: Decodable {
    enum CodingKeys: String, CodingKey {
        case depth, hiddenSize = "hidden_size", numHeads = "num_heads", intermediateSize = "intermediate_size"
        case inChans = "in_chans", inChannels = "in_channels", patchSize = "patch_size"
        case spatialPatchSize = "spatial_patch_size", temporalPatchSize = "temporal_patch_size"
        case spatialMergeSize = "spatial_merge_size", windowSize = "window_size"
        case fullAttentionBlockIndexes = "fullatt_block_indexes", tokensPerSecond = "tokens_per_second"
        case outHiddenSize = "out_hidden_size", hiddenAct = "hidden_act"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let activation = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? "silu"
        guard activation == "silu" else {
            throw BatonError.unsupported(
                "field `vision_config.hidden_act` is \(activation); Qwen2.5-VL's vision MLP is silu")
        }
        depth = try c.decodeIfPresent(Int.self, forKey: .depth) ?? 32
        hiddenSize = try c.decodeIfPresent(Int.self, forKey: .hiddenSize) ?? 3584
        numHeads = try c.decodeIfPresent(Int.self, forKey: .numHeads) ?? 16
        intermediateSize = try c.decodeIfPresent(Int.self, forKey: .intermediateSize) ?? 3420
        inChannels =
            try c.decodeIfPresent(Int.self, forKey: .inChans)
            ?? c.decodeIfPresent(Int.self, forKey: .inChannels) ?? 3
        patchSize =
            try c.decodeIfPresent(Int.self, forKey: .patchSize)
            ?? c.decodeIfPresent(Int.self, forKey: .spatialPatchSize) ?? 14
        temporalPatchSize = try c.decodeIfPresent(Int.self, forKey: .temporalPatchSize) ?? 2
        spatialMergeSize = try c.decodeIfPresent(Int.self, forKey: .spatialMergeSize) ?? 2
        windowSize = try c.decodeIfPresent(Int.self, forKey: .windowSize) ?? 112
        fullAttentionBlockIndexes =
            try c.decodeIfPresent([Int].self, forKey: .fullAttentionBlockIndexes)
            ?? [7, 15, 23, 31]
        tokensPerSecond = try c.decodeIfPresent(Double.self, forKey: .tokensPerSecond) ?? 4
        outHiddenSize = try c.decodeIfPresent(Int.self, forKey: .outHiddenSize) ?? 3584
    }
}

/// A Qwen2.5-VL `config.json` (`Qwen2_5_VLForConditionalGeneration`): the Qwen2 language model
/// (text keys flat at the top level as released, or under `text_config` as transformers 5 writes
/// them), `vision_config`, M-RoPE's `mrope_section` and the vision token ids.
public struct Qwen2VLConfig: Sendable, Equatable {
    public static let architecture = "Qwen2_5_VLForConditionalGeneration"
    public static let modelType = "qwen2_5_vl"

    /// The language model as a Qwen2 decoder (RoPE theta from the rope block, no scaling).
    public var text: ModelConfig
    public var vision: Qwen2VisionConfig
    /// Frequencies per M-RoPE row (t, h, w); sums to head_dim / 2 ([16, 24, 24] for head dim 128).
    public var mropeSection: [Int]
    public var imageTokenId: Int
    public var videoTokenId: Int
    public var visionStartTokenId: Int
    public var visionEndTokenId: Int

    /// Reads and validates `directory/config.json`.
    public static func load(directory: URL) throws -> Qwen2VLConfig {
        let url = directory.appendingPathComponent("config.json")
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw BatonError(.io, "\(url.path): config.json not found in the model directory")
        }
        return try parse(data, file: url.path)
    }

    /// Whether config.json contents describe a Qwen2.5-VL model (architecture or model_type).
    public static func describes(_ data: Data) -> Bool {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return false }
        return (object["architectures"] as? [String])?.contains(architecture) == true
            || object["model_type"] as? String == modelType
    }

    /// Parses and validates config.json contents; `file` names the source in errors.
    public static func parse(_ data: Data, file: String = "config.json") throws -> Qwen2VLConfig {
        do {
            return try parseObject(data)
        } catch let error as BatonError {
            throw BatonError(error.kind, "\(file): \(error.message)")
        } catch let DecodingError.typeMismatch(type, context) {
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw BatonError.invalidModel("\(file): field `vision_config.\(path)` should be \(type)")
        } catch {
            throw BatonError.invalidModel("\(file): \(error.localizedDescription)")
        }
    }

    private static func parseObject(_ data: Data) throws -> Qwen2VLConfig {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw BatonError.invalidModel("not a valid JSON object")
        }
        let architectures = object["architectures"] as? [String] ?? []
        guard architectures.contains(architecture) || object["model_type"] as? String == modelType else {
            throw BatonError.unsupported(
                "field `architectures` is \(architectures) and model_type is "
                    + "\(object["model_type"] as? String ?? "null"); expected \(architecture)")
        }
        guard let visionObject = object["vision_config"] as? [String: Any] else {
            throw BatonError.invalidModel("required field `vision_config` is missing")
        }
        // The text model: top-level keys, overridden by `text_config` where transformers 5 nests them.
        var textObject = object.filter { $0.key != "vision_config" && $0.key != "text_config" }
        for (key, value) in object["text_config"] as? [String: Any] ?? [:] { textObject[key] = value }
        // M-RoPE: `rope_scaling` {type "mrope" | "default", mrope_section} (4.x) or `rope_parameters`
        // (5.x, also holding rope_theta). Sections aside it is the default RoPE.
        let rope = (textObject["rope_parameters"] ?? textObject["rope_scaling"]) as? [String: Any] ?? [:]
        let kind = (rope["rope_type"] ?? rope["type"]) as? String ?? "default"
        guard kind == "mrope" || kind == "default" else {
            throw BatonError.unsupported("field `rope_scaling.type` is \(kind); Qwen2.5-VL runs M-RoPE (mrope/default)")
        }
        guard let section = (rope["mrope_section"] as? [Any])?.compactMap({ ($0 as? NSNumber)?.intValue }),
            !section.isEmpty
        else {
            throw BatonError.invalidModel(
                "required field `rope_scaling.mrope_section` (or `rope_parameters.mrope_section`) is missing")
        }
        if textObject["rope_theta"] == nil, let theta = rope["rope_theta"] { textObject["rope_theta"] = theta }
        textObject["rope_scaling"] = nil
        textObject["rope_parameters"] = nil
        textObject["architectures"] = [ModelArchitecture.qwen2.rawValue]
        textObject["model_type"] = "qwen2"
        let text = try ModelConfig.parse(try JSONSerialization.data(withJSONObject: textObject), file: "text config")
        let vision = try JSONDecoder().decode(
            Qwen2VisionConfig.self,
            from: try JSONSerialization.data(withJSONObject: visionObject))
        try vision.validate()
        func tokenId(_ key: String, _ fallback: Int) throws -> Int {
            guard let value = textObject[key] ?? object[key] else { return fallback }
            guard let number = value as? NSNumber else {
                throw BatonError.invalidModel("field `\(key)` should be an integer")
            }
            return number.intValue
        }
        let config = Qwen2VLConfig(
            text: text, vision: vision, mropeSection: section,
            imageTokenId: try tokenId("image_token_id", 151_655), videoTokenId: try tokenId("video_token_id", 151_656),
            visionStartTokenId: try tokenId("vision_start_token_id", 151_652),
            visionEndTokenId: try tokenId("vision_end_token_id", 151_653))
        try config.validate()
        return config
    }

    public func validate() throws {
        try text.validate()
        try vision.validate()
        guard mropeSection.allSatisfy({ $0 >= 0 }), mropeSection.reduce(0, +) == text.headDim / 2 else {
            throw BatonError.invalidModel(
                "rope mrope_section \(mropeSection) must sum to head_dim / 2 = \(text.headDim / 2)")
        }
        guard vision.outHiddenSize == text.hiddenSize else {
            throw BatonError.invalidModel(
                "vision_config.out_hidden_size (\(vision.outHiddenSize)) must equal the "
                    + "language model's hidden_size (\(text.hiddenSize))")
        }
    }
}
