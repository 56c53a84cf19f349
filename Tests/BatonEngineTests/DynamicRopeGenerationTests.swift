import BatonCPU
import BatonEngine
import BatonParallel
import BatonTensor
import Foundation
import XCTest

@testable import BatonModels

/// Dynamic NTK RoPE through the engine: tiny-qwen2 with max_position_embeddings 32 and factor 2
/// (Tests/Fixtures/dynamic-rope) against transformers' greedy ids, on one rank and on sequence-parallel
/// CPU ranks, whose passes must all use the whole request's length, never their own rows'.
final class DynamicRopeGenerationTests: XCTestCase {
    struct Reference {
        let promptIds: [Int32]
        let newIds: [Int32]
    }

    /// The fixture's long_prompt case: 50 prompt tokens (past the 32 positions), 8 greedy ids.
    func reference() throws -> Reference {
        let data = try Data(contentsOf: fixtureDirectory("dynamic-rope").appendingPathComponent("expected.json"))
        let expected = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        let cases = try XCTUnwrap(expected["cases"] as? [[String: Any]])
        let long = try XCTUnwrap(cases.first { $0["name"] as? String == "long_prompt" })
        return Reference(
            promptIds: try XCTUnwrap(long["prompt_ids"] as? [Int]).map(Int32.init),
            newIds: try XCTUnwrap(long["new_ids"] as? [Int]).map(Int32.init))
    }

    func loadEngine() throws -> Engine {
        let directory = try tinyQwen2DynamicRopeCopy()
        addTeardownBlock { try? FileManager.default.removeItem(at: directory) }
        return try Engine.load(EngineOptions(modelDirectory: directory, showProgress: false))
    }

    func testOneRankAndExactMethodsOnTwoRanksGenerateTransformersGreedyIds() throws {
        let (engine, reference) = (try loadEngine(), try reference())
        XCTAssertEqual(engine.config.ropeScaling, .dynamic(factor: 2))
        let options = GenerationOptions(maxTokens: reference.newIds.count)
        let single = try engine.generate(promptIds: reference.promptIds, options: options, ignoringModelStopIds: true)
        XCTAssertEqual(single.tokens, reference.newIds, "dense, 1 rank")
        // Rank 0 of ring holds positions 0..<25: by its own rows it would take the plain frequencies.
        var apb = PlanOptions(anchorLength: 4, passingLength: 64)
        apb.anchorQueryPrefix = nil
        for (method, plan) in [(Method.ring, PlanOptions()), (.zigzag, PlanOptions()), (.apb, apb)] {
            let result = try engine.generateParallel(
                promptIds: reference.promptIds, method: method, ranks: 2, queryLength: 4, plan: plan,
                options: options, ignoringModelStopIds: true)
            XCTAssertEqual(result.tokens, reference.newIds, "\(method) on 2 ranks")
        }
    }

    /// The CPU ranks share one model, so the lengths its frequencies were asked for are every
    /// rank's: on 4 ring ranks (rows up to positions 13, 26, 38 and 50) the prefill asks for the
    /// prompt's 50 alone, and each decoding step for its own position + 1.
    func testEveryRankAsksForTheWholePromptsLength() throws {
        let (engine, reference) = (try loadEngine(), try reference())
        let prompt = reference.promptIds
        _ = try engine.generateParallel(
            promptIds: prompt, method: .ring, ranks: 4, queryLength: 4, options: GenerationOptions(maxTokens: 1),
            ignoringModelStopIds: true)
        XCTAssertEqual(engine.model.rotary.keptLengths, [prompt.count])
        _ = try engine.generateParallel(
            promptIds: prompt, method: .ring, ranks: 4, queryLength: 4, options: GenerationOptions(maxTokens: 3),
            ignoringModelStopIds: true)
        XCTAssertEqual(engine.model.rotary.keptLengths, [prompt.count, prompt.count + 1, prompt.count + 2])
    }

    /// Dynamic scaling runs past max_position_embeddings up to factor times it; `baton inspect` says so.
    func testContextLimitIsMaxPositionsTimesTheFactorAndInspectPrintsTheScaling() throws {
        let engine = try loadEngine()
        XCTAssertEqual(engine.config.contextLength, 64)
        XCTAssertNoThrow(try engine.checkContext(promptTokens: 50, maxTokens: 15))
        do {
            try engine.checkContext(promptTokens: 50, maxTokens: 16)
            XCTFail("65 positions fit in 64")
        } catch let error as BatonError {
            XCTAssertTrue(
                error.message.contains("max_position_embeddings (32) x dynamic rope factor 2.0 = 64"), "\(error)")
        }
        let directory = try XCTUnwrap(engine.options.modelDirectory)
        let summary = ModelSummary(
            config: engine.config, checkpoint: try SafetensorsCheckpoint(directory: directory), directory: directory
        ).text
        XCTAssertTrue(summary.contains("scaling dynamic NTK (factor 2.0"), summary)
        XCTAssertTrue(summary.contains("context length:   64 tokens (max_position_embeddings (32) x"), summary)
    }
}
