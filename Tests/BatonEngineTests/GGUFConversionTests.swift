import BatonEngine
import BatonTokenizer
import Foundation
import XCTest

/// The GGUF converter of the fetch script on a small qwen2 GGUF written by
/// scripts/check_gguf_conversion.py (Q8_0, Q4_K, Q6_K, F16 and F32 tensors with random blocks):
/// the script checks every converted tensor against its own dequantisation from the block layouts
/// (and that against the `gguf` package's); this test runs it, then loads the converted directory
/// in Baton. Skips when python3 cannot import gguf and numpy (.ci/run's default-model fetch
/// installs them into ~/.cache/baton/models/.fetch-tools).
final class GGUFConversionTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    func testSmallQwen2GGUFConvertsToTheSpecDequantisationAndLoadsInBaton() throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("baton-gguf-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: out) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "python3", Self.root.appendingPathComponent("scripts/check_gguf_conversion.py").path, out.path
        ]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        do { try process.run() } catch { throw XCTSkip("python3 not available: \(error)") }
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        if process.terminationStatus == 77 { throw XCTSkip("gguf/numpy not importable: \(text)") }
        XCTAssertEqual(process.terminationStatus, 0, text)
        XCTAssertTrue(text.contains("ok: 15 tensors equal"), text)

        let model = out.appendingPathComponent("model")
        let tokenizer = try Tokenizer(directory: model)
        // Qwen2's pre-tokenizer splits digits one by one; merges apply; ChatML specials are single ids.
        XCTAssertEqual(tokenizer.encode("2024", addSpecialTokens: false).count, 4)
        XCTAssertEqual(tokenizer.encode(" the", addSpecialTokens: false), [258])
        XCTAssertEqual(tokenizer.encode("<|im_end|>", addSpecialTokens: false), [263])
        XCTAssertEqual(
            tokenizer.decode(tokenizer.encode("naïve 12 in the", addSpecialTokens: false)), "naïve 12 in the")
        // The directory loads (q/k/v biases, untied output) and generates.
        let engine = try Engine.load(EngineOptions(modelDirectory: model, showProgress: false))
        let result = try engine.generate(
            promptIds: [258, 259], options: GenerationOptions(maxTokens: 3),
            ignoringModelStopIds: true)
        XCTAssertEqual(result.tokens.count, 3)
    }
}
