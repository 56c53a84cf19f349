import BatonTensor
import Foundation

/// The InternViT vision tower of InternVL3 (`vision_config`): a pre-norm ViT with a class token,
/// learned position embeddings, LayerNorm, GELU and per-channel layer scale. Both spellings of the
/// keys are read: the original (`qkv_bias`, `qk_normalization`, `norm_type`) and transformers'
/// (`attention_bias`, `use_qk_norm`, `layer_norm_eps`).
public struct InternVisionConfig: Sendable, Equatable {
    public var hiddenSize: Int
    public var numLayers: Int
    public var numHeads: Int
    public var intermediateSize: Int
    /// The side of one tile in pixels (448); the position embedding holds (image/patch)^2 + 1 rows.
    public var imageSize: Int
    public var patchSize: Int
    public var layerNormEps: Double
    public var qkvBias: Bool

    public var headDim: Int { hiddenSize / numHeads }
    /// Patches along one side of a tile (32).
    public var patchesPerSide: Int { imageSize / patchSize }
    /// Patch tokens of one tile (1024), without the class token.
    public var patchesPerTile: Int { patchesPerSide * patchesPerSide }
    /// Values per patch row: 3 channels x patch x patch (588).
    public var patchInputSize: Int { 3 * patchSize * patchSize }

    public init(
        hiddenSize: Int, numLayers: Int, numHeads: Int, intermediateSize: Int, imageSize: Int = 448,
        patchSize: Int = 14, layerNormEps: Double = 1e-6, qkvBias: Bool = true
    ) {
        self.hiddenSize = hiddenSize
        self.numLayers = numLayers
        self.numHeads = numHeads
        self.intermediateSize = intermediateSize
        self.imageSize = imageSize
        self.patchSize = patchSize
        self.layerNormEps = layerNormEps
        self.qkvBias = qkvBias
    }

    /// InternViT-300M-448px-V2_5, the tower of every InternVL3 size.
    public static let internViT300M = InternVisionConfig(
        hiddenSize: 1024, numLayers: 24, numHeads: 16, intermediateSize: 4096)

    /// Reads `vision_config`; unsupported variants (QK norm, RMSNorm, other activations) are refused
    /// by name rather than run wrongly.
    static func parse(_ object: [String: Any]) throws -> InternVisionConfig {
        let reader = JSONFields(object, section: "vision_config")
        let config = InternVisionConfig(
            hiddenSize: try reader.int("hidden_size", default: 1024),
            numLayers: try reader.int("num_hidden_layers", default: 24),
            numHeads: try reader.int("num_attention_heads", default: 16),
            intermediateSize: try reader.int("intermediate_size", default: 4096),
            imageSize: try reader.side("image_size", default: 448),
            patchSize: try reader.side("patch_size", default: 14),
            layerNormEps: try reader.double("layer_norm_eps", default: 1e-6),
            qkvBias: try reader.bool("qkv_bias", or: "attention_bias", default: true))
        if try reader.bool("qk_normalization", or: "use_qk_norm", default: false) {
            throw BatonError.unsupported(
                "field `vision_config.qk_normalization` is true; Baton runs InternViT without QK norm")
        }
        let norm = try reader.string("norm_type", default: "layer_norm")
        guard norm == "layer_norm" else {
            throw BatonError.unsupported("field `vision_config.norm_type` is \(norm); Baton runs layer_norm")
        }
        let activation = try reader.string("hidden_act", default: "gelu")
        guard activation == "gelu" else {
            throw BatonError.unsupported("field `vision_config.hidden_act` is \(activation); InternViT's MLP is gelu")
        }
        try config.validate()
        return config
    }

    public func validate() throws {
        for (name, value) in [
            ("hidden_size", hiddenSize), ("num_hidden_layers", numLayers), ("num_attention_heads", numHeads),
            ("intermediate_size", intermediateSize), ("image_size", imageSize), ("patch_size", patchSize)
        ] where value <= 0 {
            throw BatonError.invalidModel("field `vision_config.\(name)` must be positive, found \(value)")
        }
        try BatonTensor.require(
            hiddenSize % numHeads == 0,
            "vision_config.hidden_size (\(hiddenSize)) must be a multiple of num_attention_heads (\(numHeads))")
        guard imageSize % patchSize == 0, patchesPerSide % 2 == 0 else {
            throw BatonError.invalidModel(
                "vision_config.image_size (\(imageSize)) must be an even multiple of patch_size (\(patchSize)) "
                    + "for the 0.5 pixel shuffle")
        }
    }
}

/// An InternVL3 `config.json` in either format: transformers' (`InternVLForConditionalGeneration`,
/// `model_type: internvl`, `text_config`) or OpenGVLab's original (`InternVLChatModel`,
/// `model_type: internvl_chat`, `llm_config`). The language model is Qwen2 with 1-D RoPE.
public struct InternVLConfig: Sendable, Equatable {
    public enum Format: String, Sendable { case transformers, original }

    public static let architectures = ["InternVLForConditionalGeneration", "InternVLChatModel"]
    public static let modelTypes = ["internvl", "internvl_chat"]

    public var format: Format
    public var text: ModelConfig
    public var vision: InternVisionConfig
    /// `<IMG_CONTEXT>`: every visual token of an image or a video frame.
    public var imageTokenId: Int
    /// `<img>` and `</img>` around each tile run: the InternVL3 tokenizer's ids (neither config
    /// format records them; prompts look them up in the tokenizer by name).
    public var imageStartTokenId = 151_665
    public var imageEndTokenId = 151_666
    /// The projector's LayerNorm epsilon (the original's nn.LayerNorm default).
    public var projectorLayerNormEps: Double = 1e-5

    /// Tokens per tile after the 0.5 pixel shuffle (256 at 448 px).
    public var tokensPerTile: Int { vision.patchesPerTile / 4 }
    /// The projector's input width: four neighbouring patches side by side.
    public var shuffledHiddenSize: Int { vision.hiddenSize * 4 }

    /// Whether config.json contents describe an InternVL model.
    public static func describes(_ data: Data) -> Bool {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return false }
        let architectures = object["architectures"] as? [String] ?? []
        return architectures.contains(where: Self.architectures.contains)
            || (object["model_type"] as? String).map(modelTypes.contains) == true
    }

    /// Parses and validates config.json contents; `file` names the source in errors.
    public static func parse(_ data: Data, file: String = "config.json") throws -> InternVLConfig {
        do {
            return try parseObject(data)
        } catch let error as BatonError {
            throw BatonError(error.kind, "\(file): \(error.message)")
        }
    }

    private static func parseObject(_ data: Data) throws -> InternVLConfig {
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw BatonError.invalidModel("not a valid JSON object")
        }
        let original = object["llm_config"] != nil || object["model_type"] as? String == "internvl_chat"
        guard let visionObject = object["vision_config"] as? [String: Any] else {
            throw BatonError.invalidModel("required field `vision_config` is missing")
        }
        let textKey = original ? "llm_config" : "text_config"
        guard var textObject = object[textKey] as? [String: Any] else {
            throw BatonError.invalidModel("required field `\(textKey)` is missing")
        }
        let fields = JSONFields(object, section: nil)
        // Only what InternVL3 releases use: a 0.5 pixel shuffle (v2), the last vision layer.
        let ratio = try fields.double("downsample_ratio", default: 0.5)
        guard ratio == 0.5 else {
            throw BatonError.unsupported("field `downsample_ratio` is \(ratio); Baton runs the 0.5 pixel shuffle")
        }
        let layer = try fields.int(original ? "select_layer" : "vision_feature_layer", default: -1)
        guard layer == -1 else {
            throw BatonError.unsupported(
                "field `\(original ? "select_layer" : "vision_feature_layer")` is \(layer); Baton takes the last layer (-1)"
            )
        }
        if original {
            let version = try fields.string("ps_version", default: "v2")
            guard version == "v2" else {
                throw BatonError.unsupported("field `ps_version` is \(version); InternVL3 uses v2")
            }
        }
        let architectures = textObject["architectures"] as? [String] ?? []
        guard architectures.isEmpty || architectures.contains(ModelArchitecture.qwen2.rawValue) else {
            throw BatonError.unsupported(
                "field `\(textKey).architectures` is \(architectures); Baton runs InternVL with a Qwen2 language model")
        }
        textObject["architectures"] = [ModelArchitecture.qwen2.rawValue]
        textObject["model_type"] = "qwen2"
        let text = try ModelConfig.parse(try JSONSerialization.data(withJSONObject: textObject), file: textKey)
        let config = InternVLConfig(
            format: original ? .original : .transformers, text: text,
            vision: try InternVisionConfig.parse(visionObject),
            imageTokenId: try fields.int("image_token_id", default: 151_667))
        try config.validate()
        return config
    }

    public func validate() throws {
        try text.validate()
        try vision.validate()
    }

    /// The original format's config.json does not record `<IMG_CONTEXT>`'s id (its code asks the
    /// tokenizer), and neither format records `<img>`/`</img>`: take them from the directory's
    /// tokenizer.json `added_tokens` when it is there. An `image_token_id` in config.json must agree.
    public mutating func takeTokenIds(fromTokenizerIn directory: URL) throws {
        let url = directory.appendingPathComponent("tokenizer.json")
        guard let data = FileManager.default.contents(atPath: url.path),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let added = object["added_tokens"] as? [[String: Any]]
        else { return }
        var ids: [String: Int] = [:]
        for token in added {
            if let content = token["content"] as? String, let id = (token["id"] as? NSNumber)?.intValue {
                ids[content] = id
            }
        }
        if let context = ids["<IMG_CONTEXT>"] {
            if format == .transformers, context != imageTokenId {
                throw BatonError.invalidModel(
                    "\(url.path): <IMG_CONTEXT> is id \(context) but config.json's image_token_id is \(imageTokenId)")
            }
            imageTokenId = context
        }
        imageStartTokenId = ids["<img>"] ?? imageStartTokenId
        imageEndTokenId = ids["</img>"] ?? imageEndTokenId
    }
}

/// Typed reads of one JSON object's fields with errors that name the field.
struct JSONFields {
    let object: [String: Any]
    let section: String?

    init(_ object: [String: Any], section: String?) {
        self.object = object
        self.section = section
    }

    private func path(_ key: String) -> String { section.map { "\($0).\(key)" } ?? key }

    func int(_ key: String, default fallback: Int) throws -> Int {
        guard let value = object[key], !(value is NSNull) else { return fallback }
        guard let number = value as? NSNumber, Double(number.intValue) == number.doubleValue else {
            throw BatonError.invalidModel("field `\(path(key))` should be an integer, found \(value)")
        }
        return number.intValue
    }

    /// A square's side: an integer, or `[h, w]` with h = w (transformers writes sizes as pairs).
    func side(_ key: String, default fallback: Int) throws -> Int {
        if let pair = object[key] as? [NSNumber] {
            guard pair.count == 2, pair[0] == pair[1] else {
                throw BatonError.unsupported("field `\(path(key))` is \(pair); Baton runs square tiles and patches")
            }
            return pair[0].intValue
        }
        return try int(key, default: fallback)
    }

    func double(_ key: String, default fallback: Double) throws -> Double {
        guard let value = object[key], !(value is NSNull) else { return fallback }
        guard let number = value as? NSNumber else {
            throw BatonError.invalidModel("field `\(path(key))` should be a number, found \(value)")
        }
        return number.doubleValue
    }

    func string(_ key: String, default fallback: String) throws -> String {
        guard let value = object[key], !(value is NSNull) else { return fallback }
        guard let string = value as? String else {
            throw BatonError.invalidModel("field `\(path(key))` should be a string, found \(value)")
        }
        return string
    }

    /// `key`, else its other spelling `alternative`, else `fallback`.
    func bool(_ key: String, or alternative: String, default fallback: Bool) throws -> Bool {
        for name in [key, alternative] {
            guard let value = object[name], !(value is NSNull) else { continue }
            guard let flag = value as? Bool else {
                throw BatonError.invalidModel("field `\(path(name))` should be true or false, found \(value)")
            }
            return flag
        }
        return fallback
    }
}
