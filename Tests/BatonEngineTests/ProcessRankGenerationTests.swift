import BatonComm
import BatonCPU
@testable import BatonEngine
import BatonModels
import BatonParallel
import BatonTensor
import Foundation
import XCTest

/// The per-process path of torchrun jobs (`generateParallelRank`: each rank on its own, the plan
/// made on every rank) run as CPU threads with a `LocalCommunicator` standing in for NCCL, and the
/// engine's and bench's multi-GPU bookkeeping that needs no GPU.
final class ProcessRankGenerationTests: XCTestCase {
    final class Streamed: @unchecked Sendable {
        private let lock = NSLock()
        private var tokens: [Int: [Int32]] = [:]
        func append(_ rank: Int, _ token: Int32) { lock.withLock { tokens[rank, default: []].append(token) } }
        var byRank: [Int: [Int32]] { lock.withLock { tokens } }
    }

    func testEveryRankOnItsOwnGivesTheGroupsTokensAndOnlyRankZeroStreams() throws {
        let model = ParallelGenerationTests.model
        let context: [Int32] = (0..<45).map { Int32(($0 * 37 + 11) % 250 + 3) }
        var plan = PlanOptions(anchorLength: 5, passingLength: 64)
        plan.anchorQueryPrefix = nil
        for method in [Method.ring, .spava] {
            let request = ParallelRequest(
                context: context, query: [17, 99, 4, 200], method: method, ranks: 3, plan: plan,
                generation: GenerationOptions(maxTokens: 6))
            let together = try generateParallel(request, model: { _ in model }).tokens
            let streamed = Streamed()
            let communicators = try LocalCommunicator.group(worldSize: 3, timeout: 60)
            let results = try runRanks(on: communicators) { rank, communicator in
                try generateParallelRank(
                    request, rank: rank, communicator: communicator, model: model, streamingRank: 0,
                    onToken: { streamed.append(rank, $0) })
            }
            for (rank, result) in results.enumerated() {
                XCTAssertEqual(result.tokens, together, "\(method) rank \(rank)")
            }
            XCTAssertEqual(streamed.byRank, [0: together], "\(method): rank 0 streams every token, no other rank does")
        }
    }

    func testARankWhoseCommunicatorDoesNotMatchIsRejected() throws {
        let request = ParallelRequest(context: [1, 2, 3, 4], query: [5, 6], method: .ring, ranks: 2)
        let communicator = try LocalCommunicator.group(worldSize: 3)[1]
        XCTAssertThrowsError(
            try generateParallelRank(request, rank: 1, communicator: communicator, model: ParallelGenerationTests.model)
        ) {
            XCTAssertTrue("\($0)".contains("rank 1 of 2, but the communicator is rank 1 of 3"), "\($0)")
        }
    }

    func testOneGPUPerRankOnACPUEngineIsAClearError() throws {
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/tiny-llama")
        let engine = try Engine.load(EngineOptions(modelDirectory: fixture, showProgress: false))
        var request = ParallelRequest(context: Array(repeating: 5, count: 20), query: [6, 7], method: .ring, ranks: 2)
        request.placement = .onePerGPU
        XCTAssertThrowsError(try engine.run(request)) { XCTAssertTrue("\($0)".contains("need a CUDA engine"), "\($0)") }
        let config = ProcessGroupConfig(rank: 0, worldSize: 2, localRank: 0, masterAddress: "127.0.0.1", masterPort: 1)
        XCTAssertThrowsError(
            try engine.runRank(ParallelRequest(context: [1, 2], query: [3], method: .ring, ranks: 2), process: config)
        ) {
            XCTAssertTrue("\($0)".contains("needs a CUDA engine"), "\($0)")
        }
        XCTAssertThrowsError(
            try engine.runRank(ParallelRequest(context: [1, 2], query: [3], method: .ring, ranks: 3), process: config)
        ) {
            XCTAssertTrue("\($0)".contains("WORLD_SIZE is 2"), "\($0)")
        }
    }

    func testBenchTableShowsSkippedRowsAndComparesMultiGPURowsWithOneGPUDense() {
        func row(_ method: String, _ ranks: Int, _ device: String, _ median: Double, skipped: String? = nil)
            -> PrefillMeasurement
        {
            PrefillMeasurement(
                method: method, ranks: ranks, device: device, tokens: 1000, queryTokens: 50, runs: [median],
                median_s: median, min_s: median, max_s: median, tokens_per_s: median > 0 ? 1050 / median : 0,
                breakdown_s: nil, peak_device_bytes: nil, skipped: skipped)
        }
        let table = prefillTable([
            row("dense", 1, "cuda:0", 2), row("spava", 2, "cuda:0-1 (2 GPUs, NCCL)", 0.5),
            row("spava", 4, "cuda:0-3 (4 GPUs, NCCL)", 0, skipped: "needs 4 GPUs, 2 visible")
        ])
        let lines = table.split(separator: "\n")
        XCTAssertTrue(lines.contains { $0.hasPrefix("| spava | 2 |") && $0.contains("4.00x") }, table)
        XCTAssertTrue(
            lines.contains { $0.hasPrefix("| spava | 4 |") && $0.contains("not run: needs 4 GPUs, 2 visible") }, table)
    }
}
