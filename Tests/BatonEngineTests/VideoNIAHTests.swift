import BatonEngine
import BatonModels
import BatonTensor
import BatonParallel
import BatonVision
import Foundation
import XCTest

/// `baton eval video-niah` on the tiny Qwen2.5-VL fixture (random weights): the needle is drawn
/// and placed where asked, and the exact methods give dense's answers (the score means nothing).
final class VideoNIAHTests: XCTestCase {
    func testTheBitmapFontDrawsGlyphsOnAWhitePanel() throws {
        let black = RGBFrame(width: 15, height: 11, pixels: [UInt8](repeating: 0, count: 15 * 11 * 3))
        let drawn = try BitmapText.draw("1", on: black, scale: 1)
        // '#': black inside the panel (the glyph), '.': white, ' ': the untouched frame.
        let rows = (0..<drawn.height).map { y in
            String(
                (0..<drawn.width).map { x -> Character in
                    let value = drawn.pixels[(y * drawn.width + x) * 3]
                    let inPanel = (3...11).contains(x) && (0...10).contains(y)
                    return value == 255 ? "." : inPanel ? "#" : " "
                })
        }
        XCTAssertEqual(
            rows,
            [
                "   .........   ", "   .........   ", "   ....#....   ", "   ...##....   ", "   ....#....   ",
                "   ....#....   ", "   ....#....   ", "   ....#....   ", "   ...###...   ", "   .........   ",
                "   .........   "
            ])
        XCTAssertThrowsError(try BitmapText.draw("a-b", on: black)) { error in
            XCTAssertTrue("\(error)".contains("no glyph for '-'"), "\(error)")
        }
        XCTAssertEqual(BitmapText.scale(characters: 4, width: 448, height: 252), 12)
    }

    func testNeedleUnitsSpanTheVideoFromFirstToLast() {
        let units = [0, 0.25, 0.5, 0.75, 1].map { VideoNeedleSample(frames: 18, depth: $0, index: 0, value: "1").unit }
        XCTAssertEqual(units, [0, 2, 4, 6, 8])
    }

    /// Ring and ZigZag, and APB and Spava keeping everything, answer every sample as dense does.
    func testExactMethodsGiveDensesAnswersOnTwoRanks() throws {
        let engine = try Engine.load(EngineOptions(modelDirectory: VideoGenerationTests.model, showProgress: false))
        let options = VideoNIAHOptions(
            frames: [8], depths: [0, 0.5, 1], resolution: try VideoResolution.named("112x112"), maxNewTokens: 6)
        let eval = try VideoNIAH(engine: engine, options: options, modelDirectory: VideoGenerationTests.model)
        XCTAssertEqual(eval.samples.map(\.value).count, 3)
        XCTAssertEqual(Set(eval.samples.map(\.value)).count, 3, "each sample draws its own needle")
        // 8 frames of 112x112: 4 units of 8x8 patches, 64 visual tokens after the chat prefix.
        let config = try XCTUnwrap(engine.visionLanguage?.config)
        let prompt = try VisualPromptEncoding.encode(
            question: options.question, items: [VisualItem(kind: .video, grid: VisionGrid(t: 4, h: 8, w: 8))],
            tokenizer: XCTUnwrap(engine.tokenizer), config: config)
        let firstPad = try XCTUnwrap(prompt.firstIndex(where: config.isVisualToken))
        let context = try VisualPromptEncoding.splitQuery(prompt, config: config).context
        // APB is exact when its anchor (with video rows) fits in host 0's block and every entry is passed.
        XCTAssertGreaterThan(context.count / 2, firstPad)
        var apb = PlanOptions(anchorLength: context.count / 2, passingLength: 1000)
        apb.anchorQueryPrefix = nil
        let methods = [
            VideoNIAHMethod(method: .dense, ranks: 1), VideoNIAHMethod(method: .ring, ranks: 2),
            VideoNIAHMethod(method: .zigzag, ranks: 2), VideoNIAHMethod(method: .apb, ranks: 2, plan: apb),
            VideoNIAHMethod(
                method: .spava, ranks: 2, plan: PlanOptions(anchorLength: firstPad + 5, passingLength: 1000))
        ]
        let predictions = try eval.run(methods: methods)
        XCTAssertEqual(predictions.count, 3 * methods.count)
        let dense = predictions.filter { $0.method == "dense" }
        XCTAssertTrue(dense.contains { !$0.prediction.isEmpty }, "empty answers would make the comparison vacuous")
        for method in ["ring", "zigzag", "apb", "spava"] {
            XCTAssertEqual(
                predictions.filter { $0.method == method }.map(\.prediction), dense.map(\.prediction), method)
        }
        let report = EvalReport(
            benchmark: "video-niah", model: "tiny", seed: 42, lengths: [8], depths: [0, 0.5, 1],
            predictions: predictions)
        let table = report.markdown()
        XCTAssertTrue(table.contains("columns are video lengths in frames"), table)
        XCTAssertTrue(table.contains("| depth | 8 |"), table)
        XCTAssertTrue(table.contains("| ring | 3 | 3 |"), table)
    }
}

/// The command: its report, and ring's answers equal to dense's.
extension CommandLineErrorTests {
    func testEvalVideoNIAHOnTwoRanksWritesItsReportWithRingGivingDensesAnswers() throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("baton-video-niah-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: out) }
        let model = Self.fixtures.appendingPathComponent("tiny-qwen2-vl").path
        let result = try runCapturing([
            "eval", "video-niah", "--model", model, "--frames", "4,6", "--depths", "0,1", "--resolution", "56x56",
            "--methods", "dense,ring", "--ranks", "2", "--out", out.path
        ])
        XCTAssertEqual(result.status, 0, result.stderr)
        let data = try Data(contentsOf: out.appendingPathComponent("video-niah.json"))
        let report = try JSONDecoder().decode(EvalReport.self, from: data)
        XCTAssertEqual(report.lengths, [4, 6])
        XCTAssertEqual(report.cells.count, 2 * 2 * 2)
        let dense = report.predictions.filter { $0.method == "dense" }
        let ring = report.predictions.filter { $0.method == "ring" }
        XCTAssertEqual(dense.count, 4)
        XCTAssertEqual(ring.map(\.prediction), dense.map(\.prediction))
        XCTAssertTrue(dense.allSatisfy { $0.references.first?.count == 4 }, "\(dense)")
        let markdown = try String(contentsOf: out.appendingPathComponent("video-niah.md"), encoding: .utf8)
        XCTAssertTrue(markdown.contains("| ring | 4 | 4 |"), markdown)
    }

    func testEvalVideoNIAHRefusesATextOnlyModelAndOddFrameCounts() throws {
        try assertOneLineError(
            ["eval", "video-niah", "--model", Self.tinyLlama, "--frames", "4"], mentions: ["Qwen2.5-VL", "text-only"])
        let model = Self.fixtures.appendingPathComponent("tiny-qwen2-vl").path
        try assertOneLineError(["eval", "video-niah", "--model", model, "--frames", "5"], mentions: ["--frames", "5"])
        try assertOneLineError(["eval", "video-niah", "--model", model, "--needle", "faces"], mentions: ["--needle"])
    }
}
