import ArgumentParser
import BatonEngine
import BatonModels
import BatonParallel
import BatonTensor
import BatonVision
import Foundation

/// `--video`, `--image` and the sampling and size bounds of generate (Qwen2.5-VL models).
struct VisualOptions: ParsableArguments {
    @Option(help: "A video file (mp4, mkv, webm, avi; decoded with ffmpeg) for a Qwen2.5-VL model; implies --chat.")
    var video: [String] = []

    @Option(help: "An image file for a Qwen2.5-VL model (repeatable; after the videos); implies --chat.")
    var image: [String] = []

    @Option(parsing: .unconditional, help: "Video frames sampled per second (default 2).")
    var fps: Double?

    @Option(name: .customLong("max-frames"), parsing: .unconditional, help: "Most video frames sampled (default 768).")
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
    /// Qwen2.5-VL chat prompt, dense on one rank. Everything that can fail fast (flags, files,
    /// sampling, the prompt's length) is checked before frames are decoded and weights loaded.
    func generateVisual(preflight: ModelPreflight, question: String, method: Method, mode: LaunchMode,
                        device: Device) throws {
        guard let config = preflight.visionLanguageConfig else {
            throw BatonError.invalidArgument(
                "\(visualOptions.firstFlag): the model in \(preflight.directory.path) is text-only "
                + "(\(preflight.config.architecture.rawValue)); images and videos need a Qwen2.5-VL checkpoint")
        }
        guard method == .dense, mode.worldSize == 1 else {
            let given = method == .dense ? "--ranks/--gpus \(mode.worldSize)" : "--method \(method.rawValue)"
            throw BatonError.invalidArgument("\(given) with --video/--image: images and videos run with --method dense "
                                             + "on one rank for now (sequence-parallel video is issue #16)")
        }
        if query != nil {
            throw BatonError.invalidArgument("--query with --video/--image: the question is --prompt (it follows the "
                                             + "images and videos in the chat prompt)")
        }
        let processor = try QwenProcessorConfig.load(modelDirectory: preflight.directory)
        let start = MonotonicClock.now()
        let sources = try VisualSource.plan(videos: visualOptions.video.map { URL(fileURLWithPath: $0) },
                                            images: visualOptions.image.map { URL(fileURLWithPath: $0) },
                                            options: visualOptions.videoOptions(), processor: processor)
        let prompt = try VisualPromptEncoding.encode(question: question, kinds: sources.map(\.kind),
                                                     counts: sources.map(\.tokenCount), tokenizer: preflight.tokenizer,
                                                     config: config)
        try VisualPromptEncoding.checkContext(
            promptTokens: prompt, items: sources.map(\.item), maxTokens: maxTokens, config: config, sources: sources, where: "in " + preflight.directory.appendingPathComponent("config.json").path)
        let inputs = try sources.map { try $0.preprocess() }
        let preprocessSeconds = MonotonicClock.now() - start
        let engine = try Engine.load(EngineOptions(modelDirectory: preflight.directory, device: device,
                                                   showProgress: mode.printsOutput), tokenizer: preflight.tokenizer)
        guard let model = engine.visionLanguage else { throw BatonError.invalidModel("the engine has no vision tower") }
        let visuals = try inputs.map { try BatonModels.VisualInput($0, backend: engine.backend) }
        let frames = sources.reduce(0) { $0 + $1.frameCount }
        standardError(String(format: "baton: %d frames and %d images -> %d visual tokens (prompt %d tokens); "
                             + "decoded and preprocessed in %.3f s\n", frames,
                             sources.count - visualOptions.video.count,
                             sources.reduce(0) { $0 + $1.tokenCount }, prompt.count, preprocessSeconds))
        try generate(engine: engine, context: prompt, query: [], method: .dense, mode: mode, plan: PlanOptions(),
                     visuals: VisualPrefill(model: model, visuals: visuals))
    }
}
