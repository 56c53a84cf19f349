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
    case video(any VideoPlanning)
    case image(BatonVision.VisualInput)
    case encoded(EncodedVisual)

    /// Plans `videos` then `images` (the order their blocks take in the prompt) with the model's
    /// processor (its directory's `preprocessor_config.json`, else the released defaults).
    public static func plan(
        videos: [URL], images: [URL], options: VideoOptions,
        processor: VisualProcessor
    ) throws -> [VisualSource] {
        let options = try options.validated()
        for (flag, files) in [("--video", videos), ("--image", images)] {
            for file in files where !FileManager.default.fileExists(atPath: file.path) {
                throw BatonError(.io, "\(flag) \(file.path): no such file")
            }
        }
        let tools = try FFmpegTools.locate()
        let planned = try videos.map { VisualSource.video(try processor.planVideo($0, options: options, tools: tools)) }
        return try planned + images.map { .image(try processor.image($0, options: options, tools: tools)) }
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

/// The token ids of a vision-language chat prompt (VIDEO.md section 6): the chat template around a
/// user turn whose images and videos are blocks of visual tokens, then the question, then the
/// assistant's opening.
///
/// Qwen2.5-VL: each item is `<|vision_start|>` + N pad tokens + `<|vision_end|>`, text following
/// directly; the default system turn. InternVL3: an image is `<img>` + 256·tiles `<IMG_CONTEXT>` +
/// `</img>` and a line break; a video is one line per frame, `FrameK: <img>…</img>`; the
/// original checkpoints' system message, none for transformers' (its chat template has none).
/// Marker ids are looked up in the tokenizer by name and must agree with config.json.
public enum VisualPromptEncoding {
    /// Where an image or video sits in a message's text (the server's content parts, `encode`'s
    /// question): replaced by the item's block in prompt order.
    public static let marker = "\u{FFFC}"

    /// The question after every item's block.
    public static func encode(
        question: String, items: [VisualItem], tokenizer: Tokenizer, config: VisionLanguageConfig
    ) throws -> [Int32] {
        try encode(
            messages: [.user(String(repeating: marker, count: items.count) + question)], items: items,
            tokenizer: tokenizer, config: config)
    }

    /// A conversation whose messages hold one `marker` per item: through the chat template, with
    /// the assistant's opening, each marker replaced by its item's block and each visual token of
    /// a block widened to the tokens it stands for.
    public static func encode(
        messages: [ChatMessage], items: [VisualItem], tokenizer: Tokenizer, config: VisionLanguageConfig
    ) throws -> [Int32] {
        let visualToken = try markerIds(tokenizer: tokenizer, config: config)
        // Each block holds one visual token per run (so the tokenizer sees the markers as added
        // tokens), widened afterwards to its run's length.
        var blocks = items.map { block($0, config: config) }[...]
        var runs: [Int] = []
        var rendered: [ChatMessage] = []
        for message in messages {
            var content = ""
            for piece in message.content.split(separator: Character(marker), omittingEmptySubsequences: false)
                .enumerated()
            {
                if piece.offset > 0 {
                    guard let (text, lengths) = blocks.popFirst() else {
                        throw BatonError.invalidArgument("the prompt holds more image/video markers than items")
                    }
                    content += text
                    runs += lengths
                }
                content += piece.element
            }
            rendered.append(ChatMessage(role: message.role, content: content))
        }
        guard blocks.isEmpty else {
            throw BatonError.invalidArgument("\(blocks.count) images/videos have no place in the prompt's messages")
        }
        let text = template(tokenizer: tokenizer, config: config).render(messages: rendered, addGenerationPrompt: true)
        var remaining = runs[...]
        var ids: [Int32] = []
        for token in tokenizer.encode(text, addSpecialTokens: false) {
            guard visualToken.contains(token) else { ids.append(token); continue }
            guard let count = remaining.popFirst() else {
                throw BatonError.invalidArgument("the prompt's text holds an image or video token itself")
            }
            ids.append(contentsOf: repeatElement(token, count: count))
        }
        return ids
    }

    /// The text of one item's block and the length of each visual-token run in it.
    static func block(_ item: VisualItem, config: VisionLanguageConfig) -> (text: String, runs: [Int]) {
        switch config {
        case .qwen2VL:
            let pad = item.kind == .video ? "<|video_pad|>" : "<|image_pad|>"
            return ("<|vision_start|>" + pad + "<|vision_end|>", [item.grid.tokenCount])
        case .internVL(let intern):
            let tile = "<img><IMG_CONTEXT></img>"
            guard item.kind == .video else { return (tile + "\n", [intern.tokensPerTile * item.grid.t]) }
            let lines = (1...max(item.grid.t, 1)).map { "Frame\($0): " + tile + "\n" }
            return (lines.joined(), Array(repeating: intern.tokensPerTile, count: item.grid.t))
        }
    }

    /// The ids of the visual tokens, checked against the tokenizer (with the block markers).
    private static func markerIds(tokenizer: Tokenizer, config: VisionLanguageConfig) throws -> Set<Int32> {
        func id(_ token: String, _ expected: Int?) throws -> Int32 {
            guard let id = tokenizer.id(forToken: token) else {
                throw BatonError.invalidModel(
                    "tokenizer.json has no \(token) token; a \(config.architecture) tokenizer is needed")
            }
            if let expected, Int(id) != expected {
                throw BatonError.invalidModel("tokenizer.json gives \(token) id \(id) but config.json says \(expected)")
            }
            return id
        }
        switch config {
        case .qwen2VL(let qwen):
            _ = try id("<|vision_start|>", qwen.visionStartTokenId)
            _ = try id("<|vision_end|>", qwen.visionEndTokenId)
            return [try id("<|video_pad|>", qwen.videoTokenId), try id("<|image_pad|>", qwen.imageTokenId)]
        case .internVL(let intern):
            _ = try id("<img>", nil)
            _ = try id("</img>", nil)
            return [try id("<IMG_CONTEXT>", intern.imageTokenId)]
        }
    }

    /// InternVL's original system message (`internvl2_5` template in OpenGVLab's conversation.py).
    static let internVLSystemMessage =
        "你是书生·万象，英文名是InternVL，是由上海人工智能实验室、清华大学及多家合作单位联合开发的多模态大语言模型。"

    /// The family's chat template: the tokenizer's ChatML one when it has one, else the family's
    /// default (Qwen2.5-VL: "You are a helpful assistant."; InternVL: the original's system
    /// message for an original checkpoint, none for transformers').
    static func template(tokenizer: Tokenizer, config: VisionLanguageConfig) -> ChatTemplate {
        if case .internVL(let intern) = config, intern.format == .original {
            return ChatTemplate(family: .chatML, defaultSystemPrompt: internVLSystemMessage)
        }
        if let own = tokenizer.chatTemplate, own.family == .chatML { return own }
        if case .internVL = config { return .chatML }
        return .qwen2
    }

    /// A visual prompt split for the sequence-parallel methods: the context up to and including the
    /// token closing the last image or video (every image and video is context) and the query
    /// after it, the question and the assistant's opening, as Spava's drivers tokenize the query
    /// apart (VIDEO.md 8). A prompt without images or videos splits as text does.
    public static func splitQuery(
        _ prompt: [Int32],
        config: VisionLanguageConfig
    ) throws -> (context: [Int32], query: [Int32]) {
        guard let last = prompt.lastIndex(where: config.isVisualToken), last + 2 < prompt.count else {
            return try splitContextAndQuery(prompt)
        }
        return (Array(prompt[...(last + 1)]), Array(prompt[(last + 2)...]))
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
        promptTokens: [Int32], items: [VisualItem], maxTokens: Int, config: VisionLanguageConfig,
        sources: [VisualSource], where source: String,
        lower: (frames: String, images: String) = ("--max-frames, --fps or --max-pixels", "--max-pixels")
    ) throws {
        guard let limit = config.positionLimit else { return }
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
    public static func promptPositions(_ promptTokens: [Int32], items: [VisualItem], config: VisionLanguageConfig)
        throws
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
    /// loop (`run` with `VisualPrefill`) and straight from `VisionLanguageModel.prefill`/`decode`. They must
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
        let (hidden, ropeDelta) = try model.prefill(tokens: tokens, visuals: visuals, strategy: strategy, cache: cache)
        let direct = try model.greedyTokens(
            after: hidden, promptLength: tokens.count, ropeDelta: ropeDelta, strategy: strategy, cache: cache,
            count: maxTokens)
        return (looped, direct)
    }
}
