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
/// VisionLanguageModel prefill + greedy decode on the processor's output, and bad input is one line.
final class VideoGenerationTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")
    static let model = fixtures.appendingPathComponent("tiny-qwen2-vl")
    /// One 56x56 size for every frame: 2x2 merge units of 28 pixels (the fixture has no
    /// preprocessor_config.json, so the processor's released bounds apply; these pin the frame size).
    static let sizeFlags = ["--min-pixels", "3136", "--max-pixels", "3136"]
    static let question = "What is in this video?"

    /// Greedy tokens straight from the model pieces: the processor, the tokenizer on the chat text
    /// written out by hand (VIDEO.md section 6), VisionLanguageModel.prefill and decode, stopping on EOS.
    func directGreedy(clip: URL, maxTokens: Int) throws -> (tokens: [Int32], promptLength: Int) {
        let backend = CPUBackend()
        let model = try VisionLanguageModel.load(directory: Self.model, backend: backend)
        let tokenizer = try Tokenizer(directory: Self.model)
        let video = try VisionInput.video(clip, options: VideoOptions(minPixels: 3136, maxPixels: 3136))
        let pads = [Int32](repeating: 1009, count: video.tokenCount)  // <|video_pad|> of the fixture
        let head = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<|vision_start|>"
        let tail = "<|vision_end|>\(Self.question)<|im_end|>\n<|im_start|>assistant\n"
        let prompt =
            tokenizer.encode(head, addSpecialTokens: false) + pads + tokenizer.encode(tail, addSpecialTokens: false)
        let input = BatonModels.VisualInput(
            item: VisualItem(
                kind: .video, grid: video.grid,
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
            hidden = try model.decode(
                tokens: [next], first: prompt.count + tokens.count - 1, ropeDelta: ropeDelta,
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
        let source = try VisualSource.plan(
            videos: [clip], images: [], options: VideoOptions(minPixels: 3136, maxPixels: 3136),
            processor: .qwen(QwenProcessorConfig.load(modelDirectory: Self.model)))
        let prompt = try VisualPromptEncoding.encode(
            question: Self.question, items: source.map(\.item), tokenizer: engine.tokenizer!, config: config)
        XCTAssertEqual(prompt.count, direct.promptLength)
        let visuals = try source.map { try BatonModels.VisualInput($0.preprocess(), backend: engine.backend) }
        var request = ParallelRequest(
            context: prompt, query: [], method: .dense, ranks: 1,
            generation: GenerationOptions(maxTokens: 6, stopIds: engine.stopIds(GenerationOptions())))
        request.visuals = VisualPrefill(visuals: visuals)
        let result = try engine.run(request)
        XCTAssertEqual(result.tokens, direct.tokens)
        XCTAssertEqual(result.promptTokens, direct.promptLength)
    }

    // MARK: the baton binary

    func run(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        try BatonExecutable.run(arguments)
    }

    /// Exit status 1 and exactly one `baton:` line on standard error holding every needle.
    func assertOneLineError(
        _ arguments: [String], mentions needles: [String], model: URL = model,
        file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let result = try run(["generate", "--model", model.path, "--max-tokens", "2"] + arguments)
        XCTAssertEqual(result.status, 1, result.stderr, file: file, line: line)
        let lines = result.stderr.split(separator: "\n").filter { $0.hasPrefix("baton:") }
        XCTAssertEqual(lines.count, 1, result.stderr, file: file, line: line)
        XCTAssertFalse(result.stderr.contains("Fatal error"), result.stderr, file: file, line: line)
        for needle in needles {
            XCTAssertTrue(
                result.stderr.contains(needle), "\(result.stderr) should mention \(needle)", file: file, line: line)
        }
    }

    func testGenerateVideoPrintsTheDirectModelsGreedyTextTwiceAlike() throws {
        let clip = try makeClip()
        let direct = try directGreedy(clip: clip, maxTokens: 6)
        let tokenizer = try Tokenizer(directory: Self.model)
        let expected = tokenizer.decode(direct.tokens.filter { !tokenizer.eosTokenIds.contains($0) }) + "\n"
        let arguments =
            [
                "generate", "--model", Self.model.path, "--video", clip.path, "--prompt", Self.question,
                "--max-tokens", "6"
            ] + Self.sizeFlags
        let first = try run(arguments)
        XCTAssertEqual(first.status, 0, first.stderr)
        XCTAssertEqual(first.stdout, expected)
        // 4 frames -> 2 temporal units of 56x56 (2x2 merge units): 8 visual tokens.
        XCTAssertTrue(first.stderr.contains("4 frames and 0 images -> 8 visual tokens"), first.stderr)
        XCTAssertTrue(first.stderr.contains("(prompt \(direct.promptLength) tokens)"), first.stderr)
        XCTAssertEqual(try run(arguments).stdout, first.stdout)
    }

    /// `baton generate --video ... --method ring --ranks 2`: each rank decodes and encodes one of the
    /// clip's two temporal units, and the text is dense's.
    func testGenerateVideoWithRingOnTwoRanksPrintsTheDenseText() throws {
        let clip = try makeClip()
        let arguments =
            [
                "generate", "--model", Self.model.path, "--video", clip.path, "--prompt", Self.question,
                "--max-tokens", "6"
            ] + Self.sizeFlags
        let dense = try run(arguments)
        XCTAssertEqual(dense.status, 0, dense.stderr)
        let ring = try run(arguments + ["--method", "ring", "--ranks", "2"])
        XCTAssertEqual(ring.status, 0, ring.stderr)
        XCTAssertEqual(ring.stdout, dense.stdout)
        XCTAssertTrue(ring.stderr.contains("4 frames and 0 images -> 8 visual tokens"), ring.stderr)
        XCTAssertTrue(
            ring.stderr.contains("each of 2 ranks decodes and encodes its share of the temporal units"),
            ring.stderr)
        XCTAssertTrue(ring.stderr.contains("ring on 2 CPU ranks: time to first token"), ring.stderr)
    }

    func testVideoErrorsAreOneLineNamingTheFileOrFlag() throws {
        let tools = try requireTools()
        let clip = try makeClip()
        let directory = clip.deletingLastPathComponent()
        try assertOneLineError(
            ["--video", directory.appendingPathComponent("missing.mp4").path],
            mentions: ["--video", "missing.mp4", "no such file"])
        let garbage = directory.appendingPathComponent("garbage.mp4")
        try Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7919 &+ 13) }).write(to: garbage)
        try assertOneLineError(["--video", garbage.path], mentions: [garbage.path, "cannot read"])
        let tone = directory.appendingPathComponent("tone.wav")
        try ffmpeg(tools, ["-f", "lavfi", "-i", "sine=frequency=440:duration=1", tone.path])
        try assertOneLineError(["--video", tone.path], mentions: [tone.path, "no video stream"])
        let still = directory.appendingPathComponent("still.mp4")
        try ffmpeg(
            tools, ["-f", "lavfi", "-i", "testsrc=size=64x48:rate=25", "-frames:v", "1", "-c:v", "mpeg4", still.path])
        try assertOneLineError(["--video", still.path], mentions: [still.path, "zero frames after sampling"])
        try assertOneLineError(["--video", clip.path, "--fps", "0"], mentions: ["--fps"])
        try assertOneLineError(
            ["--video", clip.path, "--query", "Why?"] + Self.sizeFlags,
            mentions: ["--query", "--prompt"])
    }

    /// 16 frames sampled from 8 s at about 448x448: 8 temporal units, over 2000 visual tokens.
    /// M-RoPE gives them about 70 positions with the text, so the fixture's limit is lowered to 32.
    func testVideoOverTheContextSaysFramesTokensLimitAndFlags() throws {
        let tools = try requireTools()
        let clip = try makeClip()
        let long = clip.deletingLastPathComponent().appendingPathComponent("long.mp4")
        try ffmpeg(
            tools,
            [
                "-f", "lavfi", "-i", "testsrc=size=64x48:rate=4", "-t", "8", "-pix_fmt", "yuv420p",
                "-c:v", "libx264", long.path
            ])
        let model = try tinyQwen2VLCopy(maxPositionEmbeddings: 32)
        defer { try? FileManager.default.removeItem(at: model) }
        try assertOneLineError(
            ["--video", long.path, "--min-pixels", "200704", "--max-pixels", "200704"],
            mentions: [
                "16 video frames", "visual tokens", "M-RoPE position",
                "max_position_embeddings (32)", "--max-frames", "--max-pixels", "--fps"
            ],
            model: model)
    }

    func testVideoToATextOnlyModelNamesTheFlagAndTheModel() throws {
        let clip = try makeClip()
        let result = try run([
            "generate", "--model", Self.fixtures.appendingPathComponent("tiny-qwen2").path,
            "--video", clip.path
        ])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("--video \(clip.path)"), result.stderr)
        XCTAssertTrue(result.stderr.contains("text-only"), result.stderr)
    }

    func testTextOnlyPromptToTheVisionLanguageModelGenerates() throws {
        let result = try run([
            "generate", "--model", Self.model.path, "--prompt", "hello", "--chat", "--max-tokens", "3"
        ])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stderr.contains("prefill:"), result.stderr)
    }

    func testGenerateWithTwoImagesRunsAndCountsTheirTokens() throws {
        _ = try requireTools()
        let image = Self.fixtures.appendingPathComponent("video/clips/testsrc.png").path
        let result = try run(
            [
                "generate", "--model", Self.model.path, "--image", image, "--image", image,
                "--prompt", "Compare.", "--max-tokens", "3"
            ] + Self.sizeFlags)
        XCTAssertEqual(result.status, 0, result.stderr)
        let one = try VisionInput.image(
            URL(fileURLWithPath: image), options: VideoOptions(minPixels: 3136, maxPixels: 3136))
        XCTAssertTrue(
            result.stderr.contains("0 frames and 2 images -> \(2 * one.tokenCount) visual tokens"), result.stderr)
    }

    func testInspectShowsTheVisionTower() throws {
        let result = try run(["inspect", "--model", Self.model.path])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("architecture:     Qwen2_5_VLForConditionalGeneration"), result.stdout)
        XCTAssertTrue(
            result.stdout.contains("vision tower:     3 blocks, hidden 32 (MLP 48), 2 heads (head dim 16)"),
            result.stdout)
        XCTAssertTrue(result.stdout.contains("full attention in blocks 1"), result.stdout)
    }

    func testBenchVideoWritesItsTableAndJSONForOneTinyCase() throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent(
            "baton-bench-video-\(UUID().uuidString)")
        addTeardownBlock { try? FileManager.default.removeItem(at: out) }
        let result = try run([
            "bench", "video", "--model", Self.model.path, "--frames", "2", "--resolution", "56x56",
            "--out", out.path
        ])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("| dense | cpu | 2 | 56x56 | 56x56 | 4 |"), result.stdout)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("video.json")))
        let rows = try XCTUnwrap((json as? [String: Any])?["rows"] as? [[String: Any]])
        XCTAssertEqual(rows.first?["visual_tokens"] as? Int, 4)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("video.md").path))
    }

    /// What `baton selftest --model Tests/Fixtures/tiny-qwen2-vl` checks on the GPU, on the CPU.
    func testGenerationLoopGreedyEqualsDirectModelCallsOnTheCPU() throws {
        let clip = try makeClip()
        let engine = try Engine.load(EngineOptions(modelDirectory: Self.model, showProgress: false))
        let video = try VisionInput.video(clip, options: VideoOptions(minPixels: 3136, maxPixels: 3136))
        let tokens = try VisualPromptEncoding.encode(
            question: Self.question, items: [VisualSource.image(video).item],
            tokenizer: engine.tokenizer!, config: engine.visionLanguage!.config)
        let (looped, direct) = try engine.visualGreedyTwoWays(
            tokens: tokens, visuals: [BatonModels.VisualInput(video, backend: engine.backend)], maxTokens: 8)
        XCTAssertEqual(looped.count, 8)
        XCTAssertEqual(looped, direct)
    }

    /// Text alone on the VL model: M-RoPE with one position row is 1-D RoPE, so the exact
    /// sequence-parallel methods give dense's tokens.
    func testTextOnTheVisionLanguageModelIsTheSameDenseAndRingOnTwoRanks() throws {
        let engine = try Engine.load(EngineOptions(modelDirectory: Self.model, showProgress: false))
        let prompt = try engine.encode(prompt: "hello there my friend, how are you doing on this fine day", chat: false)
        let options = GenerationOptions(maxTokens: 6)
        let dense = try engine.generate(promptIds: prompt, options: options, ignoringModelStopIds: true)
        let ring = try engine.generateParallel(
            promptIds: prompt, method: .ring, ranks: 2, options: options,
            ignoringModelStopIds: true)
        XCTAssertEqual(dense.tokens.count, 6)
        XCTAssertEqual(ring.tokens, dense.tokens)
    }
}
