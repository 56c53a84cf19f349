import BatonCPU
import BatonEngine
import BatonModels
import BatonParallel
import Foundation
import XCTest

/// Multi-rank greedy generation on CPU ranks with a tiny random Llama, against one rank.
final class ParallelGenerationTests: XCTestCase {
    static let model: LlamaModel = {
        var config = ModelPreset.tinyLlama.config
        config.eosTokenIds = []  // random weights: never stop early, compare all tokens
        return try! LlamaModel(config: config, weights: .random(seed: 11), backend: CPUBackend(threads: 1))
    }()

    let context: [Int32] = (0..<45).map { Int32(($0 * 37 + 11) % 250 + 3) }
    let query: [Int32] = [17, 99, 4, 200]

    func generate(_ method: Method, ranks: Int, plan: PlanOptions = PlanOptions()) throws -> [Int32] {
        let request = ParallelRequest(
            context: context, query: query, method: method, ranks: ranks, plan: plan,
            generation: GenerationOptions(maxTokens: 8))
        return try generateParallel(request, model: { _ in Self.model }).tokens
    }

    func testExactMethodsGenerateTheDenseGreedyTextOn2And4Ranks() throws {
        let dense = try generate(.dense, ranks: 1)
        XCTAssertEqual(dense.count, 8)
        XCTAssertGreaterThan(Set(dense).count, 1, "a degenerate model would make the comparison vacuous")
        for ranks in [2, 4] {
            XCTAssertEqual(try generate(.ring, ranks: ranks), dense, "ring \(ranks)")
            XCTAssertEqual(try generate(.zigzag, ranks: ranks), dense, "zigzag \(ranks)")
        }
        // Star on two ranks with the whole first block as anchor sees the whole prefix: exact.
        XCTAssertEqual(try generate(.star, ranks: 2), dense, "star 2")
    }

    func testAPBAndSpavaWithKeepEverythingBudgetsGenerateTheDenseGreedyText() throws {
        let dense = try generate(.dense, ranks: 1)
        var apb = PlanOptions(anchorLength: 4, passingLength: 64)
        apb.anchorQueryPrefix = nil
        let spava = PlanOptions(anchorLength: 5, passingLength: 64)
        for ranks in [2, 4] {
            XCTAssertEqual(try generate(.apb, ranks: ranks, plan: apb), dense, "apb \(ranks)")
            XCTAssertEqual(try generate(.spava, ranks: ranks, plan: spava), dense, "spava \(ranks)")
        }
    }

    func testSmallBudgetsStillGenerateOnEveryMethod() throws {
        // Approximate settings: no equality to claim, but every method must run to max tokens.
        let small = PlanOptions(anchorLength: 4, passingLength: 2)
        for method in [Method.apb, .spava, .star] {
            XCTAssertEqual(try generate(method, ranks: 4, plan: small).count, 8, "\(method)")
        }
    }
}

extension ParallelGenerationTests {
    func testAPBWithRetainingHeadsRunsAndKeepsDenseTextWithAKeepEverythingBudget() throws {
        let heads = try RetainingHeads.random(
            config: Self.model.config, backend: Self.model.backend, seed: 5, hiddenSize: 32)
        func run(_ plan: PlanOptions) throws -> [Int32] {
            let request = ParallelRequest(
                context: context, query: query, method: .apb, ranks: 3, plan: plan,
                generation: GenerationOptions(maxTokens: 8))
            return try generateParallel(request, model: { _ in Self.model }, retainingHeads: { _ in heads }).tokens
        }
        var keepAll = PlanOptions(anchorLength: 4, passingLength: 64)
        keepAll.anchorQueryPrefix = nil
        XCTAssertEqual(try run(keepAll), try generate(.dense, ranks: 1))
        XCTAssertEqual(try run(PlanOptions(anchorLength: 6, passingLength: 3)).count, 8)
    }
}

/// The function `baton generate --method M --ranks N` calls, on the tiny-llama fixture checkpoint.
final class EngineParallelGenerationTests: XCTestCase {
    func testEngineGenerateParallelEqualsSingleRankGenerateForExactSettings() throws {
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/tiny-llama")
        let engine = try Engine.load(EngineOptions(modelDirectory: fixture, showProgress: false))
        let prompt = try engine.encode(
            prompt: String(repeating: "The sky is blue. The tree is green. ", count: 4)
                + "What colour is the sky?", chat: false)
        let options = GenerationOptions(maxTokens: 6)
        let single = try engine.generate(promptIds: prompt, options: options, ignoringModelStopIds: true).tokens
        let zigzag = try engine.generateParallel(
            promptIds: prompt, method: .zigzag, ranks: 3, options: options,
            ignoringModelStopIds: true)
        XCTAssertEqual(zigzag.tokens, single)
        XCTAssertEqual(zigzag.promptTokens, prompt.count)
        let spava = try engine.generateParallel(
            promptIds: prompt, method: .spava, ranks: 2, queryLength: 6,
            plan: PlanOptions(anchorLength: 8, passingLength: 1000), options: options,
            ignoringModelStopIds: true)
        XCTAssertEqual(spava.tokens, single)
        // Seeded sampling: the owner samples, every rank follows its broadcast token.
        let sampled = GenerationOptions(maxTokens: 6, sampling: SamplingOptions(temperature: 1.2, topP: 0.9, seed: 3))
        XCTAssertEqual(
            try engine.generateParallel(
                promptIds: prompt, method: .ring, ranks: 2, options: sampled,
                ignoringModelStopIds: true
            ).tokens,
            try engine.generate(promptIds: prompt, options: sampled, ignoringModelStopIds: true).tokens)
    }

    func testUnknownMethodNameListsTheMethods() {
        XCTAssertThrowsError(try Method.named("ulysses")) { error in
            XCTAssertTrue(String(describing: error).contains("dense, ring, zigzag, star, apb, spava"), "\(error)")
        }
    }
}

extension ParallelGenerationTests {
    func testAPBAnchorQueryIsCutAtTheFirstEndOfTurnToken() {
        XCTAssertEqual(questionBeforeEndOfTurn([5, 6, 7, 2, 9, 2], endOfTurn: [2]), [5, 6, 7])
        XCTAssertNil(questionBeforeEndOfTurn([5, 6, 7], endOfTurn: [2]))
        XCTAssertEqual(questionBeforeEndOfTurn([2, 5], endOfTurn: [2]), [])
    }
}
