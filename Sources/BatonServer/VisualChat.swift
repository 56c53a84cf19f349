import BatonEngine
import BatonModels
import BatonTensor
import BatonTokenizer
import BatonVision
import Foundation

/// An `image_url` or `video_url` part of a chat request, in prompt order.
struct MediaPart: Sendable {
    var kind: BatonVision.VisualInput.Kind
    var media: ContentPart.MediaURL
    /// The part in errors' `param` (`messages.0.content.1`).
    var param: String

    /// The field holding the URL and the options.
    var field: String { "\(param).\(kind == .video ? "video_url" : "image_url")" }
}

/// A chat request's images and videos as the engine's job takes them, and what the job leaves for
/// the encoder cache: the tower's output of the items that were not cached, stored after the run.
struct VisualRequest: Sendable {
    let sources: [VisualSource]
    let prefill: VisualPrefill
    let config: VisionLanguageConfig
    let usage: VisualUsage
    /// The positions the prompt takes (M-RoPE gives a video's tokens far fewer than their count).
    let promptPositions: Int
    /// Cache keys of the items this request encodes, by their index in the prompt.
    let keysToStore: [Int: VisualCacheKey]
    let recorder: VisualEmbeddingRecorder
    let cache: VisualEmbeddingCache
    /// The bytes of `data:` URLs as files, kept until the job is gone (a video decodes as it runs).
    let temporaryFiles: TemporaryFiles

    /// Throws when the prompt and `maxTokens` new tokens pass the model's positions, saying the
    /// frames, visual tokens and limit, and which part options lower them.
    func checkContext(_ ids: [Int32], maxTokens: Int, modelName: String) throws {
        try VisualPromptEncoding.checkContext(
            promptTokens: ids, items: prefill.items, maxTokens: maxTokens, config: config, sources: sources,
            where: "of model '\(modelName)'",
            lower: (
                "max_frames, fps or max_pixels of the video_url parts (or max_pixels of the image_url parts)",
                "max_pixels of the image_url parts"
            ))
    }

    /// Moves the tower's output of the items this request encoded into the cache.
    func storeEncoded() {
        for (index, embeddings) in recorder.completedItems() {
            guard let key = keysToStore[index] else { continue }
            cache.insert(
                EncodedVisual(
                    item: prefill.items[index], embeddings: embeddings, frameCount: sources[index].frameCount),
                for: key)
        }
    }
}

extension OpenAIServer {
    /// The prompt of a chat request with images and videos on a Qwen2.5-VL engine: each part
    /// taken from the encoder cache when its file (by content) was encoded before with the same
    /// options, else planned (a video probed and sampled, an image decoded), then the messages
    /// through the chat template with each item's pad tokens.
    func visualChatPrompt(_ messages: [ChatMessage], media: [MediaPart]) async throws -> ChatPrompt {
        guard let config = engine.visionLanguage?.config else {
            throw APIError.invalidRequest("this model has no vision tower", param: "messages")
        }
        let processor = try VisualProcessor.load(modelDirectory: engine.options.modelDirectory, config: config)
        let temporaryFiles = TemporaryFiles()
        var sources: [VisualSource] = [], keysToStore: [Int: VisualCacheKey] = [:], cachedTokens = 0
        for part in media {
            let (source, key, cached) = try await offCooperativeThreads { [self] in
                try visualSource(part, processor: processor, temporaryFiles: temporaryFiles)
            }
            // With no room in the cache (--visual-cache-mb 0) nothing is copied out to keep.
            if cached {
                cachedTokens += source.tokenCount
            } else if visualCache.capacityBytes > 0 {
                keysToStore[sources.count] = key
            }
            sources.append(source)
        }
        let ids: [Int32]
        do {
            ids = try VisualPromptEncoding.encode(
                messages: messages, items: sources.map(\.item), tokenizer: tokenizer(), config: config)
        } catch let error as BatonError where error.kind == .invalidArgument {
            throw APIError.invalidRequest(error.message, param: "messages")
        }
        let recorder = VisualEmbeddingRecorder(
            items: sources.map(\.item), recording: Array(keysToStore.keys), mergeUnit: config.mergeUnit)
        let prefill = VisualPrefill(sources: sources, recorder: recorder)
        let positions: Int
        do {
            positions = try VisualPromptEncoding.promptPositions(ids, items: prefill.items, config: config)
        } catch let error as BatonError {
            throw APIError.invalidRequest(error.message, param: "messages")
        }
        let visual = VisualRequest(
            sources: sources, prefill: prefill, config: config,
            usage: VisualUsage(
                visualTokens: sources.reduce(0) { $0 + $1.tokenCount }, cachedVisualTokens: cachedTokens),
            promptPositions: positions, keysToStore: keysToStore, recorder: recorder,
            cache: visualCache, temporaryFiles: temporaryFiles)
        return ChatPrompt(ids: ids, visual: visual)
    }

    /// One part: from the cache (`cached` true), or planned; `key` is its cache key.
    private func visualSource(
        _ part: MediaPart, processor: VisualProcessor, temporaryFiles: TemporaryFiles
    ) throws -> (source: VisualSource, key: VisualCacheKey, cached: Bool) {
        let reference = try MediaReference.parse(part.media.url, param: "\(part.field).url")
        let options = try videoOptions(part)
        let key: VisualCacheKey
        do {
            key = VisualCacheKey(contentDigest: try reference.contentDigest(), kind: part.kind, options: options)
        } catch {
            throw APIError.invalidRequest(
                "\(part.media.url.prefix(200)): cannot be read: \(error.localizedDescription)",
                param: "\(part.field).url")
        }
        if let visual = visualCache.lookup(key) {
            metrics.visualCacheHits.increment()
            return (.encoded(visual), key, true)
        }
        metrics.visualCacheMisses.increment()
        do {
            let file = try reference.fileURL(in: temporaryFiles)
            let planned = try VisualSource.plan(
                videos: part.kind == .video ? [file] : [], images: part.kind == .image ? [file] : [],
                options: options, processor: processor)
            return (planned[0], key, false)
        } catch let error as BatonError {
            // No ffmpeg on the server is the server's fault, not the request's.
            guard error.kind != .notAvailable else {
                throw APIError(status: .internalServerError, message: error.message, type: "server_error")
            }
            throw APIError.invalidRequest(error.message, param: "\(part.field).url", code: "invalid_value")
        }
    }

    /// The part's sampling and size options, checked; an image takes only the pixel bounds.
    private func videoOptions(_ part: MediaPart) throws(APIError) -> VideoOptions {
        var options = VideoOptions(minPixels: part.media.minPixels, maxPixels: part.media.maxPixels)
        if part.kind == .video {
            if let fps = part.media.fps { options.fps = fps }
            options.maxFrames = part.media.maxFrames
        }
        do {
            return try options.validated()
        } catch {
            // The checks name generate's flags; a request names its fields.
            var message = (error as? BatonError)?.message ?? "\(error)"
            for (flag, field) in [
                ("--fps", "fps"), ("--max-frames", "max_frames"), ("--min-pixels", "min_pixels"),
                ("--max-pixels", "max_pixels")
            ] {
                message = message.replacingOccurrences(of: flag, with: field)
            }
            throw .invalidRequest(message, param: part.field, code: "invalid_value")
        }
    }
}

/// Runs blocking work (hashing files, ffprobe, decoding an image) on a Dispatch thread: Swift's
/// cooperative threads, which serve every request, must not wait on it.
func offCooperativeThreads<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try work() }) }
    }
}
