import BatonCPU
import BatonComm
import BatonTensor
import XCTest

@testable import BatonParallel

/// The approximation report (`--report-approximation`) on one attention layer with deterministic
/// token vectors: a token has the same q/k/v on every rank, so the exact attention of context row
/// `p` is the float64 softmax over tokens `0...p`.
final class ApproximationReportTests: XCTestCase {
    let vectors = TokenVectors(heads: 4, kvHeads: 2, headDim: 8)
    let (context, query) = tokens(context: 96, query: 4)

    /// Runs the prefill of every rank of `plan` with the report on; returns it.
    func report(_ plan: Plan, rows: Int = 64, keepExact: Bool = false) throws -> ApproximationReport {
        let report = ApproximationReport(rowsPerRank: rows)
        report.recordsExactRows = keepExact
        let vectors = vectors
        _ = try runRanks(plan.worldSize, timeout: 30) { rank, comm in
            let backend = CPUBackend(threads: 1)
            let strategy = try makeStrategy(
                plan: plan, communicator: comm, headDim: vectors.headDim, approximation: report)
            let cache = KVCache(backend: backend, layers: 1, kvHeads: vectors.kvHeads, headDim: vectors.headDim)
            return try strategy.attend(vectors.input(plan.ranks[rank].tokenIDs), cache: cache, backend: backend)
                .floats()
        }
        return report
    }

    func plan(_ method: Method, ranks: Int = 3, anchor: Int? = nil, passing: Int? = nil) throws -> Plan {
        var options = PlanOptions(anchorLength: anchor, passingLength: passing)
        options.anchorQueryPrefix = nil  // the anchor is the context's start, as the exact keys are
        return try Plan.make(method: method, context: context, query: query, worldSize: ranks, options: options)
    }

    func testRingAndZigZagReportRoundingLevelErrorAndAllTheMass() throws {
        for method in [Method.ring, .zigzag] {
            let summary = try report(plan(method)).summary()
            XCTAssertEqual(summary.layers.count, 1, "\(method)")
            XCTAssertEqual(summary.layers[0].rows, 96, "\(method): every context row is sampled (96 < 3 x 64)")
            XCTAssertLessThan(summary.maxError, 1e-5, "\(method)")
            XCTAssertEqual(summary.meanVisibleMass, 1, accuracy: 1e-5, "\(method)")
        }
    }

    func testAPBAndSpavaWithBudgetsKeepingEverythingReportNoError() throws {
        for method in [Method.apb, .spava] {
            let summary = try report(plan(method, anchor: 8, passing: 96)).summary()
            XCTAssertLessThan(summary.maxError, 1e-5, "\(method): nothing was compressed away")
            XCTAssertEqual(summary.layers[0].minVisibleMass, 1, accuracy: 1e-5, "\(method)")
        }
    }

    func testSmallerPassingBudgetReportsLargerError() throws {
        for method in [Method.apb, .spava] {
            let small = try report(plan(method, anchor: 8, passing: 2)).summary()
            let large = try report(plan(method, anchor: 8, passing: 12)).summary()
            XCTAssertGreaterThan(small.meanError, 1e-3, "\(method): a budget of 2 loses real attention mass")
            XCTAssertGreaterThan(small.meanError, large.meanError, "\(method): passing 2 vs 12")
            XCTAssertLessThan(small.meanVisibleMass, large.meanVisibleMass, "\(method)")
            XCTAssertLessThan(small.meanVisibleMass, 1 - 1e-3, "\(method)")
        }
    }

    func testStarIsExactOnRankZeroOnly() throws {
        let summary = try report(plan(.star, anchor: 8)).summary()
        let ranks = summary.layers[0].ranks
        XCTAssertEqual(ranks.map(\.rank), [0, 1, 2])
        XCTAssertLessThan(ranks[0].maxError, 1e-5, "rank 0's block starts the sequence: causal is exact")
        XCTAssertGreaterThan(ranks[1].meanError, 1e-3, "rank 1 misses keys 8..<32")
        XCTAssertGreaterThan(ranks[2].meanError, 1e-3, "rank 2 misses keys 8..<64")
    }

    func testExactAttentionOfSampledRowsEqualsFloat64Reference() throws {
        for method in [Method.star, .apb, .spava, .zigzag] {
            let report = try report(plan(method, anchor: 8, passing: 4), rows: 5, keepExact: true)
            let rows = try XCTUnwrap(report.exactRows[0], "\(method)")
            XCTAssertEqual(rows.count, 15, "\(method): 5 rows on each of 3 ranks")
            for (position, values) in rows {
                let reference = (0..<vectors.heads).flatMap { head in
                    vectors.naiveAttention(Int32(position), head: head, keys: (0...position).map { Int32($0) })
                }
                assertClose(values, reference, tolerance: 1e-5, "\(method), position \(position)")
            }
        }
    }

    func testSamplesSpreadOverTheBlockWithItsFirstAndLastRows() {
        XCTAssertEqual(ApproximationSamples.spread(3, over: Array(10..<20)), [10, 15, 19])
        XCTAssertEqual(ApproximationSamples.spread(2, over: Array(10..<20)), [10, 19])
        XCTAssertEqual(ApproximationSamples.spread(64, over: Array(0..<5)), [0, 1, 2, 3, 4])
        let spread = ApproximationSamples.spread(64, over: Array(0..<1000))
        XCTAssertEqual(spread.count, 64)
        XCTAssertEqual(Set(spread).count, 64)
        XCTAssertEqual([spread.first, spread.last], [0, 999])
    }

    func testWithoutTheReportNoProbeIsInstalled() throws {
        let plan = try plan(.apb), vectors = vectors
        _ = try runRanks(plan.worldSize, timeout: 30) { _, comm in
            let strategy = try makeStrategy(plan: plan, communicator: comm, headDim: vectors.headDim)
            XCTAssertNil((strategy as? SequenceParallelMethod)?.approximationProbe)
        }
    }
}
