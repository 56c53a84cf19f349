import BatonEngine
import BatonModels
import BatonTensor
import BatonTokenizer
import Foundation
import XCTest

/// The engine end to end on the CPU: tokenizer, template, prefill, KV-cache decode, stop ids.
final class EngineGenerationTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    struct GreedyReference: Decodable {
        struct Case: Decodable {
            let prompt: String
            let prompt_ids: [Int32]
            let new_ids: [Int32]
            let text: String
            let min_top2_margin: Double
        }
        let cases: [Case]
    }

    /// The real default model (SmolLM2-135M-Instruct, fetched by .ci/run or on first use) must
    /// continue three prompts exactly as transformers does in fp32, 32 greedy tokens each.
    func testDefaultModelGreedyTextEqualsTransformersFor32Tokens() throws {
        let directory = DefaultModel.cachedDirectory
        guard FileManager.default.fileExists(atPath: directory.appendingPathComponent("config.json").path) else {
            throw XCTSkip("default model not fetched (\(directory.path)); .ci/run fetches it")
        }
        let data = try Data(contentsOf: Self.fixtures.appendingPathComponent("default-model/transformers-greedy.json"))
        let reference = try JSONDecoder().decode(GreedyReference.self, from: data)
        let engine = try Engine.load(EngineOptions(modelDirectory: directory, showProgress: false))
        for item in reference.cases {
            XCTAssertEqual(
                try engine.encode(prompt: item.prompt, chat: false), item.prompt_ids, "prompt ids of \(item.prompt)")
            // EOS is not a stop here, as in the reference, so all 32 ids are compared.
            let result = try engine.generate(
                promptIds: item.prompt_ids, options: GenerationOptions(maxTokens: 32),
                ignoringModelStopIds: true)
            XCTAssertEqual(result.tokens, item.new_ids, "greedy ids after \(item.prompt)")
            XCTAssertEqual(engine.tokenizer!.decode(result.tokens), item.text)
        }
    }

    /// Through the engine (not a hand-written loop), the tiny Qwen2 checkpoint made by
    /// transformers gives transformers' 32 greedy ids.
    func testEngineGreedyIdsEqualTransformersOnTinyQwen2() throws {
        let directory = Self.fixtures.appendingPathComponent("tiny-qwen2")
        let expected =
            try JSONSerialization.jsonObject(with: Data(contentsOf: directory.appendingPathComponent("expected.json")))
            as! [String: Any]
        let generations = expected["generation"] as! [[String: Any]]
        let engine = try Engine.load(EngineOptions(modelDirectory: directory, showProgress: false))
        for generation in generations {
            let prompt = (generation["prompt_ids"] as! [Int]).map(Int32.init)
            let newIds = (generation["new_ids"] as! [Int]).map(Int32.init)
            let result = try engine.generate(
                promptIds: prompt, options: GenerationOptions(maxTokens: newIds.count),
                ignoringModelStopIds: true)
            XCTAssertEqual(result.tokens, newIds)
            XCTAssertEqual(result.stopReason, .maxTokens)
        }
    }

    func testGenerationStopsAtStopIdAndCountsTokens() throws {
        let directory = Self.fixtures.appendingPathComponent("tiny-llama")
        let engine = try Engine.load(EngineOptions(modelDirectory: directory, showProgress: false))
        let prompt = try engine.encode(prompt: "hello world", chat: false)
        let free = try engine.generate(
            promptIds: prompt, options: GenerationOptions(maxTokens: 6), ignoringModelStopIds: true)
        XCTAssertEqual(free.tokens.count, 6)
        let stopAt = free.tokens[2]
        let stopped = try engine.generate(
            promptIds: prompt, options: GenerationOptions(maxTokens: 6, stopIds: [stopAt]))
        XCTAssertEqual(stopped.stopReason, .stopToken)
        XCTAssertEqual(stopped.tokens, Array(free.tokens.prefix(through: free.tokens.firstIndex(of: stopAt)!)))
    }

    func testSeededSamplingIsReproducibleAndDiffersFromGreedy() throws {
        let engine = try Engine.load(
            EngineOptions(modelDirectory: Self.fixtures.appendingPathComponent("tiny-llama"), showProgress: false))
        let prompt = try engine.encode(prompt: "The sky is", chat: false)
        let sampling = SamplingOptions(temperature: 1.5, topP: 0.95, seed: 7)
        let a = try engine.generate(
            promptIds: prompt, options: GenerationOptions(maxTokens: 16, sampling: sampling), ignoringModelStopIds: true
        )
        let b = try engine.generate(
            promptIds: prompt, options: GenerationOptions(maxTokens: 16, sampling: sampling), ignoringModelStopIds: true
        )
        let greedy = try engine.generate(
            promptIds: prompt, options: GenerationOptions(maxTokens: 16), ignoringModelStopIds: true)
        XCTAssertEqual(a.tokens, b.tokens)
        XCTAssertNotEqual(a.tokens, greedy.tokens)
    }

    func testPromptLongerThanMaxPositionsIsRejectedWithBothNumbers() throws {
        let engine = try Engine.load(
            EngineOptions(modelDirectory: Self.fixtures.appendingPathComponent("tiny-llama"), showProgress: false))
        let limit = engine.config.maxPositionEmbeddings
        // A full-length prompt with one new token fits (the new token is never fed back); two do not.
        XCTAssertNoThrow(try engine.checkContext(promptTokens: limit, maxTokens: 1))
        XCTAssertThrowsError(
            try engine.generate(promptIds: Array(repeating: 5, count: limit), options: GenerationOptions(maxTokens: 2))
        ) { error in
            let text = String(describing: error)
            XCTAssertTrue(text.contains("\(limit)") && text.contains("max_position_embeddings"), text)
        }
    }

    func testMissingModelDirectoryNamesThePath() {
        XCTAssertThrowsError(
            try Engine.load(
                EngineOptions(modelDirectory: URL(fileURLWithPath: "/nonexistent/model"), showProgress: false))
        ) { error in
            XCTAssertTrue(String(describing: error).contains("/nonexistent/model"), "\(error)")
        }
    }

    func testChatTemplateWrapsThePromptForChatMLModels() throws {
        let engine = try Engine.load(
            EngineOptions(modelDirectory: Self.fixtures.appendingPathComponent("tiny-qwen2"), showProgress: false))
        let ids = try engine.encode(prompt: "hi", chat: true)
        let text = engine.tokenizer!.decode(ids)
        XCTAssertTrue(text.hasPrefix("<|im_start|>system\n"), text)
        XCTAssertTrue(text.hasSuffix("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"), text)
    }
}

/// The check `baton selftest --model` runs on the GPU, here on the CPU where fp32 must match tightly.
final class ReferenceCheckTests: XCTestCase {
    func testReferenceCheckOnCPUMatchesTransformersTightly() throws {
        for name in ["tiny-llama", "tiny-qwen2"] {
            let rows = try ReferenceCheck(
                directory: EngineGenerationTests.fixtures.appendingPathComponent(name), device: .cpu
            ).run()
            XCTAssertEqual(rows.count, 2)
            for row in rows {
                XCTAssertLessThan(row.relativeNorm, 1e-5, "\(name) \(row.name)")
                XCTAssertEqual(row.greedyMatches, row.greedyTotal, "\(name) \(row.name)")
            }
        }
    }
}

/// The check `baton selftest --model DIR --ranks N` runs on GPU ranks, here with CPU ranks on both
/// sides: every method agrees with itself, and the exact ones with dense.
final class MethodAgreementCheckTests: XCTestCase {
    func testEveryMethodAgreesWithItsCPUTwinAndExactOnesWithDense() throws {
        let directory = EngineGenerationTests.fixtures.appendingPathComponent("tiny-llama")
        let engine = try Engine.load(EngineOptions(modelDirectory: directory, showProgress: false))
        let ids = try engine.encode(prompt: String(repeating: "The sky is blue. ", count: 30), chat: false)
        let rows = try MethodAgreementCheck(directory: directory, device: .cpu, ranks: 2).run(
            promptIds: ids, maxTokens: 8)
        XCTAssertEqual(rows.map(\.method), [.ring, .zigzag, .star, .apb, .spava])
        for row in rows {
            XCTAssertEqual(row.matchesCPU, row.total, "\(row.method)")
            if row.method == .ring || row.method == .zigzag {
                XCTAssertEqual(row.matchesDense, row.total, "\(row.method)")
            }
        }
    }
}
