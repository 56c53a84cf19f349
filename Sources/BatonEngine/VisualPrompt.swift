import BatonModels
import BatonParallel
import BatonTensor
import BatonTokenizer
import BatonVision
import Foundation

/// One image or video of a request: a video planned (probed, sampled, sized) but not decoded, so
/// the prompt's length is known before frames are decoded or weights loaded; an image preprocessed;
/// or either already through the vision tower (a cached encoding: nothing to decode or encode).
public enum VisualSource: Sendable {
    case video(VideoPlan)
    case image(BatonVision.VisualInput)
    case encoded(EncodedVisual)

    /// Plans `videos` then `images` (the order their blocks take in the prompt) with the model
    /// directory's processor settings (`preprocessor_config.json`, else the released defaults).
    public static func plan(
        videos: [URL], images: [URL], options: VideoOptions,
        processor: QwenProcessorConfig
    ) throws -> [VisualSource] {
        let options = try options.validated()
        for (flag, files) in [("--video", videos), ("--image", images)] {
            for file in files where !FileManager.default.fileExists(atPath: file.path) {
                throw BatonError(.io, "\(flag) \(file.path): no such file")
            }
        }
        let tools = try FFmpegTools.locate()
        let planned = try videos.map {
            VisualSource.video(
                try VideoPlan.make(
                    file: $0, options: options,
                    processor: processor, tools: tools))
        }
        return try planned
            + images.map {
                .image(try VisionInput.image($0, options: options, processor: processor, tools: tools))
            }
    }

    public var kind: BatonVision.VisualInput.Kind {
        switch self {
        case .video: .video
        case .image: .image
        case .encoded(let visual): visual.item.kind == .video ? .video : .image
        }
    }

    /// Sampled frames (a video) or 0 (an image).
    public var frameCount: Int {
        switch self {
        case .video(let plan): plan.frameIndices.count
        case .image: 0
        case .encoded(let visual): visual.frameCount
        }
    }

    /// The pad tokens this item expands to: t·h·w/4.
    public var tokenCount: Int {
        switch self {
        case .video(let plan): plan.grid.tokenCount
        case .image(let input): input.tokenCount
        case .encoded(let visual): visual.embeddings.shape.rows
        }
    }

    /// Decodes and preprocesses a video; an image is ready; an encoded item has no pixels left.
    public func preprocess() throws -> BatonVision.VisualInput {
        switch self {
        case .video(let plan): return try plan.preprocess()
        case .image(let input): return input
        case .encoded:
            throw BatonError.invalidArgument("an encoded image or video has no pixels to preprocess")
        }
    }
}

/// The token ids of a Qwen2.5-VL chat prompt with images and videos (VIDEO.md section 6): the
/// default system turn, then a user turn of `<|vision_start|>` + N pad tokens + `<|vision_end|>` per
/// item, then the question, then the assistant's opening. Pad ids are looked up in the tokenizer by
/// name and must agree with config.json.
public enum VisualPromptEncoding {
    /// `counts[k]`: the pad tokens of item k (t·h·w/4); `kinds[k]`: its pad token.
    public static func encode(
        question: String, kinds: [BatonVision.VisualInput.Kind], counts: [Int],
        tokenizer: Tokenizer, config: Qwen2VLConfig
    ) throws -> [Int32] {
        try encode(
            messages: [.user(kinds.map(block).joined() + question)], counts: counts, tokenizer: tokenizer,
            config: config)
    }

    /// The text that stands for one image or video in a message, where the item sits in it
    /// (Qwen2.5-VL's chat template writes this for an image or video content part).
    public static func block(_ kind: BatonVision.VisualInput.Kind) -> String {
        "<|vision_start|>" + (kind == .video ? "<|video_pad|>" : "<|image_pad|>") + "<|vision_end|>"
    }

    /// A conversation whose messages hold the items' `block`s: through the chat template, with the
    /// assistant's opening, each block's pad token widened to `counts[k]` in order.
    public static func encode(
        messages: [ChatMessage], counts: [Int], tokenizer: Tokenizer, config: Qwen2VLConfig
    ) throws -> [Int32] {
        func id(_ token: String, _ expected: Int) throws -> Int32 {
            guard let id = tokenizer.id(forToken: token) else {
                throw BatonError.invalidModel("tokenizer.json has no \(token) token; a Qwen2.5-VL tokenizer is needed")
            }
            guard Int(id) == expected else {
                throw BatonError.invalidModel("tokenizer.json gives \(token) id \(id) but config.json says \(expected)")
            }
            return id
        }
        let videoPad = try id("<|video_pad|>", config.videoTokenId)
        let imagePad = try id("<|image_pad|>", config.imageTokenId)
        _ = try id("<|vision_start|>", config.visionStartTokenId)
        _ = try id("<|vision_end|>", config.visionEndTokenId)
        // One pad per item in the text (so the tokenizer sees the markers as added tokens), each
        // then widened to its item's count; text follows a <|vision_end|> directly.
        // Qwen2.5-VL's template: the tokenizer's ChatML one (default system "You are a helpful
        // assistant."), or that default when the tokenizer's template is not recognised.
        let template = tokenizer.chatTemplate.flatMap { $0.family == .chatML ? $0 : nil } ?? .qwen2
        let text = template.render(messages: messages, addGenerationPrompt: true)
        var remaining = counts[...]
        var ids: [Int32] = []
        for token in tokenizer.encode(text, addSpecialTokens: false) {
            guard token == videoPad || token == imagePad else { ids.append(token); continue }
            guard let count = remaining.popFirst() else {
                throw BatonError.invalidArgument("the prompt's text holds an image or video pad token itself")
            }
            ids.append(contentsOf: repeatElement(token, count: count))
        }
        return ids
    }

    /// A visual prompt split for the sequence-parallel methods: the context up to and including the
    /// last `<|vision_end|>` (every image and video is context) and the query after it, the question
    /// and the assistant's opening, as Spava's drivers tokenize the query apart (VIDEO.md 8). A
    /// prompt without images or videos splits as text does (`splitContextAndQuery`).
    public static func splitQuery(
        _ prompt: [Int32],
        config: Qwen2VLConfig
    ) throws -> (context: [Int32], query: [Int32]) {
        guard let end = prompt.lastIndex(of: Int32(config.visionEndTokenId)), end + 1 < prompt.count else {
            return try splitContextAndQuery(prompt)
        }
        return (Array(prompt[...end]), Array(prompt[(end + 1)...]))
    }

    /// Throws one line when the prompt does not fit the model's positions, saying the frames and
    /// visual tokens and which flag lowers them. M-RoPE gives a video's tokens far fewer positions
    /// than tokens (a temporal unit's h·w/4 tokens share its time index, and their h and w indexes
    /// stay below the grid's), so the limit applies to the prompt's highest position, not to its
    /// length (64 frames of 1440p are 148,540 tokens but a few hundred positions). Memory for
    /// the KV cache is checked where it is allocated.
    ///
    /// `lower` names what the user can lower (the frames' and the pixels' options) for a prompt
    /// with video frames and for one with images alone; by default the CLI's flags.
    public static func checkContext(
        promptTokens: [Int32], items: [VisualItem], maxTokens: Int, config: Qwen2VLConfig,
        sources: [VisualSource], where source: String,
        lower: (frames: String, images: String) = ("--max-frames, --fps or --max-pixels", "--max-pixels")
    ) throws {
        let limit = config.text.maxPositionEmbeddings
        // The last new token is never fed back.
        let positionsUsed = try promptPositions(promptTokens, items: items, config: config) + max(maxTokens, 1) - 1
        guard positionsUsed > limit else { return }
        let frames = sources.reduce(0) { $0 + $1.frameCount }
        let images = sources.filter { $0.kind == .image }.count
        let visual = sources.reduce(0) { $0 + $1.tokenCount }
        throw BatonError.invalidArgument(
            "\(frames) video frames and \(images) images give \(visual) visual tokens: the prompt of "
                + "\(promptTokens.count) tokens + \(maxTokens) new tokens reaches M-RoPE position \(positionsUsed), beyond "
                + "the model's max_position_embeddings (\(limit)) \(source); lower "
                + (frames > 0 ? lower.frames : lower.images))
    }

    /// The positions a prompt takes (its highest M-RoPE position + 1): decoded token c sits at
    /// c + ropeDelta, so the first new token takes this position.
    public static func promptPositions(_ promptTokens: [Int32], items: [VisualItem], config: Qwen2VLConfig) throws
        -> Int
    {
        try promptTokens.count + config.ropePositions(tokens: promptTokens, items: items).ropeDelta
    }
}

extension BatonModels.VisualInput {
    /// The processor's output on `backend`, as the model takes it.
    public init(_ input: BatonVision.VisualInput, backend: any Backend) throws {
        self.init(
            item: VisualItem(input.kind, grid: input.grid, secondPerGridT: input.secondPerGridT),
            pixels: try backend.upload(input.pixelValues))
    }
}

extension VisualItem {
    /// What M-RoPE needs of an item the processor sized: its kind, grid and, for a video, the
    /// seconds per temporal unit (1 when unknown, as transformers 4.51 assumes).
    init(_ kind: BatonVision.VisualInput.Kind, grid: VisionGrid, secondPerGridT: Double?) {
        self.init(
            kind: kind == .video ? .video : .image, grid: grid,
            secondsPerGrid: secondPerGridT ?? 1)
    }
}

extension Engine {
    /// Greedy tokens of a visual prompt two ways on this engine's device: through the one generation
    /// loop (`run` with `VisualPrefill`) and straight from `Qwen2VLModel.prefill`/`decode`. They must
    /// be equal (the GPU selftest runs this; `VideoGenerationTests` on the CPU). No stop ids.
    public func visualGreedyTwoWays(
        tokens: [Int32], visuals: [BatonModels.VisualInput],
        maxTokens: Int
    ) throws -> (engine: [Int32], direct: [Int32]) {
        guard let model = visionLanguage else { throw BatonError.invalidArgument("the engine has no vision tower") }
        var request = ParallelRequest(
            context: tokens, query: [], method: .dense, ranks: 1,
            generation: GenerationOptions(maxTokens: maxTokens))
        request.visuals = VisualPrefill(visuals: visuals)
        let looped = try run(request).tokens
        let strategy = Dense(headDim: model.config.text.headDim)
        let cache = model.language.makeCache(backend: backend)
        var (hidden, ropeDelta) = try model.prefill(tokens: tokens, visuals: visuals, strategy: strategy, cache: cache)
        var row = tokens.count - 1
        var direct: [Int32] = []
        while direct.count < maxTokens {
            let logits = try backend.floats(model.language.logits(hidden.rows(row..<row + 1)))
            direct.append(Int32(logits.indices.max { logits[$0] < logits[$1] }!))
            hidden = try model.decode(
                tokens: [direct.last!], first: tokens.count + direct.count - 1,
                ropeDelta: ropeDelta, strategy: strategy, cache: cache)
            row = 0
        }
        return (looped, direct)
    }
}
