import BatonTensor
import Foundation

/// One image or video of a prompt, ready for the model: what M-RoPE needs and its pixel rows
/// `[t*h*w, 1176]` in processor order (any float dtype, on the model's backend).
public struct VisualInput: Sendable {
    public var item: VisualItem
    public var pixels: Tensor

    public init(item: VisualItem, pixels: Tensor) {
        self.item = item
        self.pixels = pixels
    }
}

/// A vision-language model on one backend (Qwen2.5-VL or InternVL3, `VisionLanguageConfig`): the
/// vision tower, and the Qwen2 language model whose input embeddings at the visual tokens are the
/// tower's output rows, with M-RoPE or 1-D positions.
public final class VisionLanguageModel: @unchecked Sendable {
    public let config: VisionLanguageConfig
    public let vision: any VisionEncoder
    public let language: LlamaModel
    public var backend: any Backend { language.backend }

    /// Loads both halves from `checkpoint`, in any of the family's weight namings.
    public convenience init(
        config: VisionLanguageConfig, checkpoint: SafetensorsCheckpoint, backend: any Backend,
        progress: ((_ done: Int, _ total: Int) -> Void)? = nil
    ) throws {
        try self.init(config: config, weights: .checkpoint(checkpoint), backend: backend, progress: progress)
    }

    /// Builds both halves from `weights`: a checkpoint in any of the family's weight namings, or
    /// random weights (speed runs of the presets; the tower and the language model get different
    /// seeds). `progress` reports the language model's bytes.
    public init(
        config: VisionLanguageConfig, weights: WeightSource, backend: any Backend,
        progress: ((_ done: Int, _ total: Int) -> Void)? = nil
    ) throws {
        self.config = config
        /// The tower's and the language model's weights: the checkpoint under Baton's names (as it
        /// is when `rename` is nil), or random weights with different seeds.
        func split(_ rename: ((String) -> String)?) -> (vision: WeightSource, language: WeightSource) {
            switch weights {
            case .checkpoint(let checkpoint):
                let named = rename.map { checkpoint.renamed($0) } ?? checkpoint
                return (.checkpoint(named), .checkpoint(named))
            case .random(let seed): return (.random(seed: seed &+ 1), .random(seed: seed))
            }
        }
        let languageWeights: WeightSource
        switch config {
        case .qwen2VL(let qwen):
            var (prefix, sources) = ("visual.", split(nil))
            if case .checkpoint(let checkpoint) = weights {
                let names = try Qwen2VLWeightNames.detect(in: checkpoint.names)
                prefix = names.visualPrefix
                if names != .released { sources = split(names.batonName) }
            }
            vision = try Qwen2VisionTower(
                config: qwen.vision, weights: sources.vision, prefix: prefix, backend: backend)
            languageWeights = sources.language
        case .internVL(let intern):
            var names = InternVLWeightNames.transformers
            if case .checkpoint(let checkpoint) = weights {
                names = try InternVLWeightNames.detect(in: checkpoint.names)
            }
            let sources = split(names.batonName)
            vision = try InternVisionTower(
                config: intern, weights: sources.vision, fusedQKV: names.fusedQKV, backend: backend)
            languageWeights = sources.language
        }
        language = try LlamaModel(
            config: config.text, weights: languageWeights, backend: backend,
            mropeSections: config.mropeSection, progress: progress)
    }

    /// Reads `directory/config.json` and its safetensors.
    public static func load(directory: URL, backend: any Backend) throws -> VisionLanguageModel {
        guard let config = try VisionLanguageConfig.load(directory: directory) else {
            throw BatonError.unsupported("\(directory.path)/config.json does not describe a vision-language model")
        }
        return try VisionLanguageModel(
            config: config,
            checkpoint: try SafetensorsCheckpoint(directory: directory), backend: backend)
    }

    /// The vision tower over `visuals` in one call: `[padCount, D]` act, one row per pad token in
    /// prompt order; nil without visuals.
    public func visualEmbeddings(_ visuals: [VisualInput]) throws -> Tensor? {
        if visuals.isEmpty { return nil }
        let pixels = visuals.count == 1 ? visuals[0].pixels : try backend.concatRows(visuals.map(\.pixels))
        return try vision(pixels: pixels, grids: visuals.map(\.item.grid))
    }

    /// The prompt's input embeddings `[T, D]` act: token embeddings, with the rows of the k-th pad
    /// token (image or video, in prompt order) replaced by the k-th row of the vision tower's output
    /// over `visuals` (one tower call for all of them).
    public func embeddings(tokens: [Int32], visuals: [VisualInput]) throws -> Tensor {
        try embeddings(tokens: tokens, items: visuals.map(\.item), visualRows: visualEmbeddings(visuals))
    }

    /// Token embeddings of `tokens` with the pad tokens' rows taken from `visualRows` `[padCount, D]`
    /// (the tower's output over `items`, `visualEmbeddings`).
    public func embeddings(tokens: [Int32], items: [VisualItem], visualRows: Tensor?) throws -> Tensor {
        let padCount = tokens.filter(isPad).count
        let visualCount = items.reduce(0) { $0 + $1.grid.patchCount / config.mergeUnit }
        try BatonTensor.require(
            padCount == visualCount && (visualRows?.shape.rows ?? 0) == visualCount,
            "\(config.architecture): the prompt has \(padCount) image/video pad tokens, the \(items.count) "
                + "images/videos give \(visualCount) embeddings")
        return try embeddings(tokens: tokens, visualRows: visualRows, visualRowOfToken: visualRowNumbers(tokens))
    }

    /// Token embeddings of `tokens` `[T]` with row i replaced by row `visualRowOfToken[i]` of
    /// `visualRows` `[V, D]` where that is `>= 0` (a pad token; `-1` elsewhere) -> `[T, D]` act.
    /// A rank of a sequence-parallel request passes the visual rows its part of the prompt reads.
    public func embeddings(tokens: [Int32], visualRows: Tensor?, visualRowOfToken: [Int32]) throws -> Tensor {
        let textRows = try backend.embedding(table: language.embedTokens, ids: backend.int32Tensor(tokens))
        let available = visualRows?.shape.rows ?? 0
        let inRange = visualRowOfToken.allSatisfy { $0 < available }
        try BatonTensor.require(
            visualRowOfToken.count == tokens.count && inRange,
            "\(config.architecture): \(visualRowOfToken.count) visual row numbers for \(tokens.count) tokens, "
                + "each below the \(available) visual rows")
        guard let visualRows, visualRowOfToken.contains(where: { $0 >= 0 }) else { return textRows }
        // One gather from [text rows; visual rows]: row i is i, or T + k where it takes visual row k.
        let count = Int32(tokens.count)
        let source = visualRowOfToken.enumerated().map { index, row in row >= 0 ? count + row : Int32(index) }
        let table = try backend.concatRows([
            textRows,
            visualRows.dtype == textRows.dtype
                ? visualRows : backend.cast(visualRows, to: textRows.dtype)
        ])
        return try backend.embedding(table: table, ids: backend.int32Tensor(source))
    }

    /// Whether `token` is an image or video pad token (one visual embedding each).
    public func isPad(_ token: Int32) -> Bool { config.isVisualToken(token) }

    /// The number of each pad token among the pad tokens of `tokens` (its row of the tower's
    /// output over the prompt's images and videos), `-1` for other tokens.
    public func visualRowNumbers(_ tokens: [Int32]) -> [Int32] {
        var next: Int32 = 0
        return tokens.map { token in
            guard isPad(token) else { return -1 }
            defer { next += 1 }
            return next
        }
    }

    /// Runs a whole prompt: embeddings with the visuals spliced in, M-RoPE positions `[3, T]`
    /// -> the final-normed hidden states `[T, D]` act and the rope delta decoding adds.
    public func prefill(
        tokens: [Int32], visuals: [VisualInput], strategy: any AttentionStrategy,
        cache: KVCache
    ) throws -> (hidden: Tensor, ropeDelta: Int) {
        try prefill(
            tokens: tokens, items: visuals.map(\.item), visualRows: visualEmbeddings(visuals),
            strategy: strategy, cache: cache)
    }

    /// `prefill` with the tower's output computed already (`visualEmbeddings`); `timer` records the
    /// language model's parts.
    public func prefill(
        tokens: [Int32], items: [VisualItem], visualRows: Tensor?, strategy: any AttentionStrategy,
        cache: KVCache, timer: PartTimer? = nil
    ) throws -> (hidden: Tensor, ropeDelta: Int) {
        let (rows, ropeDelta) = try config.ropePositions(tokens: tokens, items: items)
        let pass = ForwardPass(
            backend: backend, positions: try positions(rows), strategy: strategy, cache: cache,
            timer: timer, ropeLength: rows.joined().max().map { Int($0) + 1 })
        let embedded = try embeddings(tokens: tokens, items: items, visualRows: visualRows)
        return (try language.forward(embeddings: embedded, pass), ropeDelta)
    }

    /// Text tokens after the prompt, at absolute indices `first...` (position `first + ropeDelta`
    /// onwards on all three rows) -> hidden states `[n, D]` act.
    public func decode(
        tokens: [Int32], first: Int, ropeDelta: Int, strategy: any AttentionStrategy,
        cache: KVCache
    ) throws -> Tensor {
        let rows = config.decodingPositions(first: first, count: tokens.count, ropeDelta: ropeDelta)
        let pass = ForwardPass(
            backend: backend, positions: try positions(rows), strategy: strategy, cache: cache,
            ropeLength: first + ropeDelta + tokens.count)
        return try language.forward(tokens: backend.int32Tensor(tokens), pass)
    }

    /// Greedy tokens after a prompt of `promptLength` tokens whose prefill left `hidden` (its last
    /// row is the prompt's last token) and `cache`: `count` tokens through the KV cache, no stop ids.
    public func greedyTokens(
        after hidden: Tensor, promptLength: Int, ropeDelta: Int, strategy: any AttentionStrategy, cache: KVCache,
        count: Int
    ) throws -> [Int32] {
        var hidden = hidden.rows(hidden.shape.rows - 1..<hidden.shape.rows)
        var tokens: [Int32] = []
        while tokens.count < count {
            let logits = try backend.floats(language.logits(hidden))
            tokens.append(Int32(logits.indices.max { logits[$0] < logits[$1] }!))
            hidden = try decode(
                tokens: [tokens.last!], first: promptLength + tokens.count - 1, ropeDelta: ropeDelta,
                strategy: strategy, cache: cache)
        }
        return tokens
    }

    /// Position rows (M-RoPE's t, h, w or one 1-D row, each `T` long) -> positions `[3, T]` or
    /// `[T]` i32 on the backend, as a `ForwardPass` takes them.
    public func positions(_ rows: [[Int32]]) throws -> Tensor {
        let expected = config.mropeSection == nil ? 1 : 3
        try BatonTensor.require(
            rows.count == expected && rows.allSatisfy { $0.count == rows[0].count },
            "\(config.architecture) positions: expected \(expected) rows of one length")
        let shape: Shape = expected == 1 ? [rows[0].count] : [3, rows[0].count]
        return try backend.upload(Tensor(int32: rows.flatMap { $0 }, shape: shape))
    }
}
