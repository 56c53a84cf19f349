@testable import BatonEngine
import Foundation
import XCTest

/// Eval prompts sized with a real tokenizer and chat template (the tiny-llama fixture).
final class EvalEngineTests: XCTestCase {
    static let tinyLlama = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tiny-llama")

    /// What the model actually reads: template over the user turn, continuation raw, no extra BOS.
    func templatedTokens(_ engine: Engine, _ prompt: EvalPrompt) -> Int {
        let text =
            engine.renderChat(user: prompt.user, addGenerationPrompt: prompt.addGenerationPrompt) + prompt.continuation
        return engine.tokenizer!.encode(text, addSpecialTokens: false).count
    }

    func testPromptsSizedWithTheModelTokenizerFitTheTargetWithTheChatTemplate() throws {
        let engine = try Engine.load(EngineOptions(modelDirectory: Self.tinyLlama, showProgress: false))
        let count = engine.promptTokenCounter()
        var samples = try EvalSuite.passKeySamples(
            lengths: [512, 1024], depths: [0, 0.5], samples: 1, seed: 5, count: count)
        samples += try EvalSuite.rulerSamples(
            tasks: ["niah_single_2", "niah_multikey_3", "vt", "cwe", "fwe"],
            lengths: [2048], samples: 1, seed: 5, count: count)
        for sample in samples {
            let total = templatedTokens(engine, sample.prompt) + sample.prompt.maxNewTokens
            // Token boundaries between template, text and continuation may merge a token or two.
            XCTAssertLessThanOrEqual(total, sample.length + 2, "\(sample.task) at \(sample.length)")
            XCTAssertGreaterThanOrEqual(
                Double(total), 0.9 * Double(sample.length), "\(sample.task) at \(sample.length)")
        }
    }

    func testPassKeyPromptEndsWithTheRawQueryAfterTheUserTurn() throws {
        let engine = try Engine.load(EngineOptions(modelDirectory: Self.tinyLlama, showProgress: false))
        let sample = try EvalSuite.passKeySamples(
            lengths: [512], depths: [1], samples: 1, seed: 0,
            count: engine.promptTokenCounter())[0]
        let text = engine.renderChat(user: sample.prompt.user, addGenerationPrompt: false) + sample.prompt.continuation
        let turn = engine.renderChat(user: sample.prompt.user, addGenerationPrompt: false)
        XCTAssertTrue(text.hasSuffix(PassKeyNIAH.query))
        XCTAssertTrue(turn.contains(sample.prompt.user.trimmingWhitespace()), "templates trim the turn")
        XCTAssertLessThan(
            turn.count, engine.renderChat(user: sample.prompt.user, addGenerationPrompt: true).count,
            "APB's layout leaves out the assistant header")
    }
}
