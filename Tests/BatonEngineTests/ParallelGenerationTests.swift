import BatonCPU
import BatonEngine
import BatonModels
import BatonParallel
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
        let request = ParallelRequest(context: context, query: query, method: method, ranks: ranks, plan: plan,
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
        let heads = try RetainingHeads.random(config: Self.model.config, backend: Self.model.backend, seed: 5, hiddenSize: 32)
        func run(_ plan: PlanOptions) throws -> [Int32] {
            let request = ParallelRequest(context: context, query: query, method: .apb, ranks: 3, plan: plan,
                                          generation: GenerationOptions(maxTokens: 8))
            return try generateParallel(request, model: { _ in Self.model }, retainingHeads: { _ in heads }).tokens
        }
        var keepAll = PlanOptions(anchorLength: 4, passingLength: 64)
        keepAll.anchorQueryPrefix = nil
        XCTAssertEqual(try run(keepAll), try generate(.dense, ranks: 1))
        XCTAssertEqual(try run(PlanOptions(anchorLength: 6, passingLength: 3)).count, 8)
    }
}
