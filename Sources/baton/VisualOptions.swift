import ArgumentParser
import BatonEngine
import BatonModels
import BatonParallel
import BatonTensor
import BatonVision
import Foundation

/// `--video`, `--image` and the sampling and size bounds of generate (Qwen2.5-VL and InternVL3 models).
struct VisualOptions: ParsableArguments {
    @Option(
        help:
            "A video file (mp4, mkv, webm, avi; decoded with ffmpeg) for a Qwen2.5-VL or InternVL3 model; implies --chat."
    )
    var video: [String] = []

    @Option(help: "An image file for a Qwen2.5-VL or InternVL3 model (repeatable; after the videos); implies --chat.")
    var image: [String] = []

    @Option(parsing: .unconditional, help: "Video frames sampled per second (default 2).")
    var fps: Double?

    @Option(
        name: .customLong("max-frames"), parsing: .unconditional,
        help: "Most video frames sampled (Qwen2.5-VL, default 768); InternVL3: the frames sampled (default 32).")
    var maxFrames: Int?

    @Option(name: .customLong("min-pixels"), parsing: .unconditional, help: "Fewest pixels per frame or image.")
    var minPixels: Int?

    @Option(name: .customLong("max-pixels"), parsing: .unconditional, help: "Most pixels per frame or image.")
    var maxPixels: Int?

    var isEmpty: Bool { video.isEmpty && image.isEmpty }

    /// The sampling options, checked (one line naming the flag).
    func videoOptions() throws -> VideoOptions {
        var options = VideoOptions()
        if let fps { options.fps = fps }
        options.maxFrames = maxFrames
        options.minPixels = minPixels
        options.maxPixels = maxPixels
        return try options.validated()
    }

    /// The flag and file to name when the model cannot take visual input.
    var firstFlag: String { video.first.map { "--video \($0)" } ?? image.first.map { "--image \($0)" } ?? "" }
}

extension Generate {
    /// Generation with images and videos: the prompt's question after the visual blocks in the
    /// Qwen2.5-VL chat prompt, with any method on any number of ranks. Everything that can fail fast
    /// (flags, files, sampling, the prompt's length) is checked before frames are decoded and weights
    /// loaded. One rank decodes everything first; several ranks each decode and encode their own
    /// share of the temporal units (frame parallelism) inside the request.
    func generateVisual(
        preflight: ModelPreflight, question: String, method: Method, mode: LaunchMode,
        device: Device, plan: PlanOptions
    ) throws {
        guard let config = preflight.visionLanguageConfig else {
            throw BatonError.invalidArgument(
                "\(visualOptions.firstFlag): the model in \(preflight.directory.path) is text-only "
                    + "(\(preflight.config.architecture.rawValue)); images and videos need a Qwen2.5-VL or InternVL3 checkpoint"
            )
        }
        if query != nil {
            throw BatonError.invalidArgument(
                "--query with --video/--image: the question is --prompt (it follows the "
                    + "images and videos in the chat prompt)")
        }
        let processor = try VisualProcessor.load(modelDirectory: preflight.directory, config: config)
        let start = MonotonicClock.now()
        let sources = try VisualSource.plan(
            videos: visualOptions.video.map { URL(fileURLWithPath: $0) },
            images: visualOptions.image.map { URL(fileURLWithPath: $0) },
            options: visualOptions.videoOptions(), processor: processor)
        let prompt = try VisualPromptEncoding.encode(
            question: question, items: sources.map(\.item), tokenizer: preflight.tokenizer, config: config)
        try VisualPromptEncoding.checkContext(
            promptTokens: prompt, items: sources.map(\.item), maxTokens: maxTokens, config: config, sources: sources,
            where: "in " + preflight.directory.appendingPathComponent("config.json").path)
        // The images and videos are context; the question and the assistant's opening are the query.
        let (context, questionIDs) =
            method == .dense
            ? (prompt, []) : try VisualPromptEncoding.splitQuery(prompt, config: config)
        if method != .dense, rankOptions.ranks == nil, rankOptions.gpus == nil, mode.printsOutput {
            standardError(oneRankNote(method))
        }
        let summary = String(
            format: "baton: %d frames and %d images -> %d visual tokens (prompt %d tokens); ",
            sources.reduce(0) { $0 + $1.frameCount }, sources.count - visualOptions.video.count,
            sources.reduce(0) { $0 + $1.tokenCount }, prompt.count)
        let visuals: VisualPrefill, engine: Engine
        if mode.worldSize == 1 {
            let inputs = try sources.map { try $0.preprocess() }
            let preprocessSeconds = MonotonicClock.now() - start
            engine = try Engine.load(
                EngineOptions(
                    modelDirectory: preflight.directory, device: device,
                    showProgress: mode.printsOutput), tokenizer: preflight.tokenizer)
            visuals = VisualPrefill(
                visuals: try inputs.map {
                    try BatonModels.VisualInput($0, backend: engine.backend)
                })
            standardError(summary + String(format: "decoded and preprocessed in %.3f s\n", preprocessSeconds))
        } else {
            engine = try Engine.load(
                EngineOptions(
                    modelDirectory: preflight.directory, device: device,
                    showProgress: mode.printsOutput), tokenizer: preflight.tokenizer)
            visuals = VisualPrefill(sources: sources)
            if mode.printsOutput {
                standardError(
                    summary + "each of \(mode.worldSize) ranks decodes and encodes its share of the "
                        + "temporal units\n")
            }
        }
        try generate(
            engine: engine, context: context, query: questionIDs, method: method, mode: mode, plan: plan,
            visuals: visuals)
    }
}
