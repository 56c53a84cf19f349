import BatonCPU
import BatonEngine
import BatonModels
import BatonParallel
import BatonTensor
import BatonTokenizer
import BatonVision
import Foundation
import XCTest

/// `baton generate --video/--image` on the tiny Qwen2.5-VL fixture: the CLI's tokens equal a direct
/// Qwen2VLModel prefill + greedy decode on the processor's output, and bad input is one line.
final class VideoGenerationTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")
    static let model = fixtures.appendingPathComponent("tiny-qwen2-vl")
    /// One 56x56 size for every frame: 2x2 merge units of 28 pixels (the fixture has no
    /// preprocessor_config.json, so the processor's released bounds apply; these pin the frame size).
    static let sizeFlags = ["--min-pixels", "3136", "--max-pixels", "3136"]
    static let question = "What is in this video?"

    /// A 2 s, 4 fps, 64x48 H.264 clip from ffmpeg's test pattern: 8 frames, 4 sampled at 2 fps.
    func makeClip() throws -> URL {
        let tools = try requireTools()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("baton-vl-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: directory) }
        let clip = directory.appendingPathComponent("testsrc.mp4")
        try ffmpeg(tools, ["-f", "lavfi", "-i", "testsrc=size=64x48:rate=4", "-t", "2", "-pix_fmt", "yuv420p",
                           "-c:v", "libx264", clip.path])
        return clip
    }

    func requireTools() throws -> FFmpegTools {
        do { return try FFmpegTools.locate() } catch { throw XCTSkip("needs ffmpeg: \(error)") }
    }

    func ffmpeg(_ tools: FFmpegTools, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = tools.ffmpeg
        process.arguments = ["-v", "error", "-y"] + arguments
        try process.run()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, "ffmpeg \(arguments)")
    }

    /// Greedy tokens straight from the model pieces: the processor, the tokenizer on the chat text
    /// written out by hand (VIDEO.md section 6), Qwen2VLModel.prefill and decode, stopping on EOS.
    func directGreedy(clip: URL, maxTokens: Int) throws -> (tokens: [Int32], promptLength: Int) {
        let backend = CPUBackend()
        let model = try Qwen2VLModel.load(directory: Self.model, backend: backend)
        let tokenizer = try Tokenizer(directory: Self.model)
        let video = try VisionInput.video(clip, options: VideoOptions(minPixels: 3136, maxPixels: 3136))
        let pads = [Int32](repeating: 1009, count: video.tokenCount)  // <|video_pad|> of the fixture
        let head = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<|vision_start|>"
        let tail = "<|vision_end|>\(Self.question)<|im_end|>\n<|im_start|>assistant\n"
        let prompt = tokenizer.encode(head, addSpecialTokens: false) + pads + tokenizer.encode(tail, addSpecialTokens: false)
        let input = BatonModels.VisualInput(
            item: VisualItem(kind: .video, grid: VisionGrid(t: video.grid.t, h: video.grid.h, w: video.grid.w),
                             secondsPerGrid: video.secondPerGridT!),
            pixels: video.pixelValues)
        let strategy = Dense(headDim: model.config.text.headDim)
        let cache = model.language.makeCache(backend: backend)
        var (hidden, ropeDelta) = try model.prefill(tokens: prompt, visuals: [input], strategy: strategy, cache: cache)
        var row = prompt.count - 1
        var tokens: [Int32] = []
        while true {
            let logits = try backend.floats(model.language.logits(hidden.rows(row..<row + 1)))
            let next = Int32(logits.indices.max { logits[$0] < logits[$1] }!)
            tokens.append(next)
            if tokenizer.eosTokenIds.contains(next) || tokens.count >= maxTokens { break }
            hidden = try model.decode(tokens: [next], first: prompt.count + tokens.count - 1, ropeDelta: ropeDelta,
                                      strategy: strategy, cache: cache)
            row = 0
        }
        return (tokens, prompt.count)
    }

    func testEngineVideoTokensEqualADirectQwen2VLModelCall() throws {
        let clip = try makeClip()
        let direct = try directGreedy(clip: clip, maxTokens: 6)
        let engine = try Engine.load(EngineOptions(modelDirectory: Self.model, showProgress: false))
        let config = try XCTUnwrap(engine.visionLanguage).config
        let source = try VisualSource.plan(videos: [clip], images: [], options: VideoOptions(minPixels: 3136, maxPixels: 3136),
                                           processor: QwenProcessorConfig.load(modelDirectory: Self.model))
        let prompt = try VisualPromptEncoding.encode(question: Self.question, kinds: [.video],
                                                     counts: source.map(\.tokenCount), tokenizer: engine.tokenizer!,
                                                     config: config)
        XCTAssertEqual(prompt.count, direct.promptLength)
        let visuals = try source.map { try BatonModels.VisualInput($0.preprocess(), backend: engine.backend) }
        var request = ParallelRequest(context: prompt, query: [], method: .dense, ranks: 1,
                                      generation: GenerationOptions(maxTokens: 6, stopIds: engine.stopIds(GenerationOptions())))
        request.visuals = VisualPrefill(model: engine.visionLanguage!, visuals: visuals)
        let result = try engine.run(request)
        XCTAssertEqual(result.tokens, direct.tokens)
        XCTAssertEqual(result.promptTokens, direct.promptLength)
    }
}
