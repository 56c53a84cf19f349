import BatonEngine
import BatonModels
import BatonTensor
import Foundation
import XCTest

/// `baton bench video` on the tiny Qwen2.5-VL fixture (random frames), the presets, and the PyTorch
/// baseline's config and failure rows.
final class VideoBenchmarkTests: XCTestCase {
    static let model = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tiny-qwen2-vl")

    func testOneTinyRandomFrameCaseRunsAndItsPartsAddUpToTheTotal() throws {
        let options = VideoBenchmarkOptions(
            modelDirectory: Self.model, frames: [2],
            resolutions: [try VideoResolution.named("56x56")])
        let rows = try runVideoBenchmark(options)
        XCTAssertEqual(rows.count, 1)
        let row = try XCTUnwrap(rows.first)
        XCTAssertNil(row.skipped)
        XCTAssertEqual(row.grid, [1, 4, 4])
        XCTAssertEqual(row.visual_tokens, 4)
        XCTAssertEqual(row.prompt_tokens, 4 + 28)
        XCTAssertEqual(row.runs.count, 1)
        for part in [row.preprocess_s, row.vision_s, row.prefill_s] { XCTAssertGreaterThanOrEqual(part, 0) }
        XCTAssertEqual(row.preprocess_s + row.vision_s + row.prefill_s, row.median_s, accuracy: 1e-9)
        XCTAssertTrue(videoTable(rows).contains("| dense | cpu | 2 | 56x56 | 56x56 | 4 |"))
    }

    /// The papers' sizes: native resolution rounded to multiples of 28 on the image path (VIDEO.md 8).
    /// The limit is on M-RoPE positions, not tokens: with max_position_embeddings lowered to 64,
    /// 360p (23 merge units across) fits and the wider frames become rows saying why.
    func testPaperResolutionsRoundToMultiplesOf28AndOverlongCasesBecomeRowsSayingWhy() throws {
        let model = try tinyQwen2VLCopy(maxPositionEmbeddings: 64)
        defer { try? FileManager.default.removeItem(at: model) }
        let names = ["360p", "720p", "1080p", "1440p"]
        let options = VideoBenchmarkOptions(
            modelDirectory: model, frames: [16],
            resolutions: try names.map(VideoResolution.named))
        let rows = try runVideoBenchmark(options)
        XCTAssertEqual(rows.map(\.resized), ["644x364", "1288x728", "1932x1092", "2548x1428"])
        // Tokens per temporal unit (2 frames): 299, 1196, 2691, 4641; 8 units each.
        XCTAssertEqual(rows.map(\.visual_tokens), [299, 1196, 2691, 4641].map { $0 * 8 })
        XCTAssertNil(rows[0].skipped, "2420 tokens reach only about 50 positions")
        for row in rows.dropFirst() {
            let reason = try XCTUnwrap(row.skipped)
            XCTAssertTrue(
                reason.hasPrefix("\(row.prompt_tokens) prompt tokens reach M-RoPE position ")
                    && reason.hasSuffix("beyond the model's 64 positions"), reason)
        }
        XCTAssertTrue(videoTable(rows).contains("not run: 9596 prompt tokens reach M-RoPE position"))
    }

    func testBadResolutionNamesTheFlag() {
        XCTAssertThrowsError(try VideoResolution.named("huge")) { error in
            XCTAssertTrue("\(error)".contains("--resolution"), "\(error)")
        }
    }

    func testPresetConfigsSurviveTheTorchConfigJSONRoundTrip() throws {
        for preset in Qwen2VLPreset.allCases {
            let config = preset.config
            try config.validate()
            let json = try TorchVideoBaseline(python: "python3", config: .qwen2VL(config), device: .cpu).configJSON()
            XCTAssertEqual(try Qwen2VLConfig.parse(json), config, preset.rawValue)
        }
        for preset in InternVLPreset.allCases {
            let json = try TorchVideoBaseline(python: "python3", config: .internVL(preset.config), device: .cpu)
                .configJSON()
            let parsed = try InternVLConfig.parse(json)
            XCTAssertEqual(parsed.vision, preset.config.vision, preset.rawValue)
            XCTAssertEqual(parsed.text, preset.config.text, preset.rawValue)
        }
        XCTAssertEqual(Qwen2VLPreset.qwen25VL3B.config.text.hiddenSize, 2048)
        XCTAssertEqual(Qwen2VLPreset.qwen25VL7B.config.vision.depth, 32)
    }

    func testTorchBaselineWithoutAnInterpreterGivesRowsSayingWhy() throws {
        let options = VideoBenchmarkOptions(
            modelDirectory: Self.model, frames: [2, 4],
            resolutions: [try VideoResolution.named("56x56")])
        let config = try XCTUnwrap(VisionLanguageConfig.load(directory: Self.model))
        let rows = TorchVideoBaseline(python: "/nonexistent/python3", config: config, device: .cpu).run(options)
        XCTAssertEqual(rows.map(\.frames), [2, 4])
        for row in rows {
            XCTAssertEqual(row.method, "torch-sdpa")
            XCTAssertTrue(row.skipped?.contains("PyTorch baseline failed") == true, "\(row.skipped ?? "ran")")
        }
    }
}
