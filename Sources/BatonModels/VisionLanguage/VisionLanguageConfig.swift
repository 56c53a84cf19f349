import BatonTensor
import Foundation

/// A vision tower with its projector: patch rows of a batch of images and videos in (items back to
/// back, each in its processor's row order), one embedding of the language model's width per
/// visual token out, in prompt order.
public protocol VisionEncoder: AnyObject, Sendable {
    func callAsFunction(pixels: Tensor, grids: [VisionGrid]) throws -> Tensor
}

/// The vision-language families Baton runs, as the engine sees them: a Qwen2 language model whose
/// input embeddings at the visual tokens come from a vision tower. They differ in the tower, the
/// positions (M-RoPE or 1-D), the visual tokens and the prompt around them.
public enum VisionLanguageConfig: Sendable, Equatable {
    /// Qwen2.5-VL: windowed ViT with 2-D rotary, M-RoPE, `<|image_pad|>`/`<|video_pad|>`.
    case qwen2VL(Qwen2VLConfig)
    /// InternVL3: InternViT on 448-pixel tiles, 1-D RoPE, `<IMG_CONTEXT>` between `<img>` and `</img>`.
    case internVL(InternVLConfig)

    /// Reads `directory/config.json` when it describes a vision-language model; nil for a text model.
    public static func load(directory: URL) throws -> VisionLanguageConfig? {
        let url = directory.appendingPathComponent("config.json")
        guard let data = FileManager.default.contents(atPath: url.path) else { return nil }
        if Qwen2VLConfig.describes(data) { return .qwen2VL(try Qwen2VLConfig.parse(data, file: url.path)) }
        if InternVLConfig.describes(data) {
            var config = try InternVLConfig.parse(data, file: url.path)
            try config.takeTokenIds(fromTokenizerIn: directory)
            return .internVL(config)
        }
        return nil
    }

    public var text: ModelConfig {
        switch self {
        case .qwen2VL(let config): config.text
        case .internVL(let config): config.text
        }
    }

    /// The architecture as config.json names it.
    public var architecture: String {
        switch self {
        case .qwen2VL: Qwen2VLConfig.architecture
        case .internVL(let config):
            config.format == .original ? "InternVLChatModel" : "InternVLForConditionalGeneration"
        }
    }

    /// Patch rows per visual token: the 2x2 merge (Qwen2.5-VL) or the 0.5 pixel shuffle (InternVL): 4.
    public var mergeUnit: Int {
        switch self {
        case .qwen2VL(let config): config.vision.mergeUnit
        case .internVL: 4
        }
    }

    /// The positions a visual prompt may take, or nil when the language model's RoPE rescales
    /// itself to any length (dynamic NTK, InternVL3's Qwen2.5): transformers sets no limit there, and
    /// Spava's InternVL speed test runs 256 frames (67K tokens) past 32768 x factor 2. Memory is
    /// checked where the KV cache is allocated.
    public var positionLimit: Int? {
        if case .dynamic = text.ropeScaling { return nil }
        return text.maxPositionEmbeddings
    }

    /// M-RoPE's frequencies per position row, or nil for 1-D RoPE.
    public var mropeSection: [Int]? {
        switch self {
        case .qwen2VL(let config): config.mropeSection
        case .internVL: nil
        }
    }

    /// Whether `token` stands for one visual embedding.
    public func isVisualToken(_ token: Int32) -> Bool {
        switch self {
        case .qwen2VL(let config): token == Int32(config.imageTokenId) || token == Int32(config.videoTokenId)
        case .internVL(let config): token == Int32(config.imageTokenId)
        }
    }

    /// The token that closes an image or video block (`<|vision_end|>`, `</img>`'s id is the
    /// tokenizer's): the context of a visual prompt ends at the last one.
    public var visualEndToken: String {
        switch self {
        case .qwen2VL: "<|vision_end|>"
        case .internVL: "</img>"
        }
    }

    /// Positions of a prompt: 3 rows (M-RoPE t, h, w) or 1 row (consecutive), each `T` long, and
    /// the delta decoding adds (the token at absolute index `c >= T` sits at `c + ropeDelta`).
    public func ropePositions(tokens: [Int32], items: [VisualItem]) throws -> (rows: [[Int32]], ropeDelta: Int) {
        switch self {
        case .qwen2VL(let config): return try config.ropePositions(tokens: tokens, items: items)
        case .internVL: return ([(0..<tokens.count).map(Int32.init)], 0)
        }
    }

    /// Positions of `count` decoded tokens from absolute index `first`, rows as `ropePositions`.
    public func decodingPositions(first: Int, count: Int, ropeDelta: Int) -> [[Int32]] {
        switch self {
        case .qwen2VL: MRoPE.decodingPositions(first: first, count: count, ropeDelta: ropeDelta)
        case .internVL: [(first..<first + count).map(Int32.init)]
        }
    }
}
