import BatonTensor
import XCTest
@testable import BatonParallel

final class PlanTests: XCTestCase {
    func testAPBDefaultsAt128KOn8RanksAreTheReferenceConstants() throws {
        let (context, query) = tokens(context: 131_072, query: 5)
        let plan = try Plan.make(method: .apb, context: context, query: query, worldSize: 8)
        XCTAssertEqual(plan.anchorLength, 4096)
        XCTAssertEqual(plan.passingLength, 2048)
        XCTAssertEqual(plan.owner, 7)
        XCTAssertTrue(plan.needsQueryPass)
        // Host 0: its block plus the query appended as probe rows; hosts > 0: anchor + block.
        XCTAssertEqual(plan.ranks[0].rowCount, 16_384 + 5)
        XCTAssertEqual(plan.ranks[0].probeOnlyRows, 16_384..<16_389)
        XCTAssertEqual(plan.ranks[3].rowCount, 4096 + 16_384)
        XCTAssertEqual(plan.ranks[3].cacheRows, [4096..<20_480])
        XCTAssertEqual(plan.ranks[3].positions[4096], 3 * 16_384)
    }

    func testAPBAnchorInsertsTheQueryAfterThePrefix() throws {
        let context = (0..<20).map { Int32($0) }
        var options = PlanOptions(anchorLength: 8, passingLength: 4)
        options.anchorQueryPrefix = 3
        let plan = try Plan.make(method: .apb, context: context, query: [100, 101], worldSize: 2, options: options)
        XCTAssertEqual(Array(plan.ranks[1].tokenIDs[0..<8]), [0, 1, 2, 100, 101, 3, 4, 5])
        XCTAssertEqual(Array(plan.ranks[1].positions[0..<8]), (0..<8).map { Int32($0) })
        XCTAssertEqual(plan.ranks[1].queryRows, 3..<5)
        XCTAssertEqual(plan.ranks[1].probeOnlyRows, 0..<0)
    }

    func testSpavaDefaultsAt64KMatchTheWorkedExample() throws {
        let (context, query) = tokens(context: 65_536, query: 20)
        let plan = try Plan.make(method: .spava, context: context, query: query, worldSize: 8)
        XCTAssertEqual(plan.anchorLength, 1024)
        XCTAssertEqual(plan.passingLength, 512)
        XCTAssertEqual(plan.owner, 0)
        XCTAssertEqual(plan.ranks[2].rowCount, 1024 + 4032 + 4032 + 20)
        XCTAssertEqual(plan.ranks[2].blockRows.map(\.count), [4032, 4032])
        XCTAssertEqual(plan.ranks[2].positions[1024], Int32(1024 + 2 * 4032))  // chunk 2
        XCTAssertEqual(plan.ranks[2].positions[1024 + 4032], Int32(1024 + 13 * 4032))  // chunk 13
        XCTAssertEqual(plan.ranks[2].cacheRows.first, 256..<384)  // anchor shard 2
        XCTAssertEqual(plan.ranks[0].cacheRows.last, plan.ranks[0].queryRows)  // the query on GPU 0
    }

    func testSpavaDefaultsFitShortContextsThatTheRoundedAnchorWouldFill() throws {
        // A 128-token anchor used to take all of a 130-token context and leave the zigzag chunks
        // empty ("plan: spava over 4 parts leaves zigzag chunk ... empty").
        // (N, W, the anchor: N/(2W+1) below 128 * (2W+1) tokens; none below 64, where N/64 is 0).
        for (n, w, anchor) in [(130, 2, 26), (64, 2, 12), (200, 4, 22), (2047, 8, 120), (12, 2, 0), (8192, 2, 128)] {
            let (context, query) = tokens(context: n, query: 4)
            let plan = try Plan.make(method: .spava, context: context, query: query, worldSize: w)
            XCTAssertEqual(plan.anchorLength, anchor, "N \(n), W \(w)")
            let chunks = plan.ranks.flatMap(\.blockRows).map(\.count)
            XCTAssertGreaterThanOrEqual(chunks.min() ?? 0, plan.anchorLength, "N \(n), W \(w)")
            XCTAssertEqual(chunks.reduce(0, +) + plan.anchorLength, n)
        }
        XCTAssertThrowsError(try Plan.make(method: .spava, context: [1, 2, 3], query: [4], worldSize: 2))
    }

    func testCachedRowsCoverContextAndQueryExactlyOnce() throws {
        let (context, query) = tokens(context: 77, query: 3)
        for method in [Method.ring, .zigzag, .spava] {
            let plan = try Plan.make(
                method: method, context: context, query: query, worldSize: 3,
                options: PlanOptions(anchorLength: 5, passingLength: 4))
            let cached = plan.ranks.flatMap { layout in layout.cacheRows.flatMap { $0.map { layout.tokenIDs[$0] } } }
            XCTAssertEqual(cached.sorted(), context + query, "\(method)")
            let owner = plan.ranks[plan.owner]
            XCTAssertEqual(owner.queryRows.map { owner.tokenIDs[$0] }, query, "\(method): the owner holds the query")
            XCTAssertEqual(owner.tokenIDs.last, query.last, "\(method): the owner's last row predicts the first token")
        }
        for method in [Method.star, .apb] {
            let plan = try Plan.make(
                method: method, context: context, query: query, worldSize: 3,
                options: PlanOptions(anchorLength: 5, passingLength: 4))
            let cached = plan.ranks.flatMap { layout in layout.cacheRows.flatMap { $0.map { layout.tokenIDs[$0] } } }
            XCTAssertEqual(cached.sorted(), context, "\(method): the query pass adds the query on the owner")
        }
    }

    func testImpossibleSplitsAreInvalidArguments() {
        let (context, query) = tokens(context: 5, query: 1)
        XCTAssertThrowsError(try Plan.make(method: .dense, context: context, query: query, worldSize: 2))
        XCTAssertThrowsError(try Plan.make(method: .zigzag, context: context, query: query, worldSize: 4))
        XCTAssertThrowsError(try Plan.make(method: .spava, context: context, query: [], worldSize: 2))
        XCTAssertThrowsError(try Plan.make(method: .ring, context: [], query: query, worldSize: 1))
    }
}

extension PlanTests {
    func testNegativeOptionsAndAnAnchorLongerThanHostZerosBlockAreHandled() throws {
        let (context, query) = tokens(context: 30, query: 2)
        XCTAssertThrowsError(
            try Plan.make(
                method: .apb, context: context, query: query, worldSize: 2,
                options: PlanOptions(anchorLength: -1)))
        XCTAssertThrowsError(
            try Plan.make(
                method: .spava, context: context, query: query, worldSize: 2,
                options: PlanOptions(passingLength: -4)))
        // An APB anchor longer than host 0's block: host 0 has nothing to select, the others still run.
        let plan = try Plan.make(
            method: .apb, context: context, query: query, worldSize: 3,
            options: PlanOptions(anchorLength: 12, passingLength: 4))
        let runs = try runSingleLayer(plan, TokenVectors(heads: 4, kvHeads: 2, headDim: 16))
        XCTAssertEqual(runs[1].passing[0].map(\.count), [0, 0], "host 0 passes nothing")
        XCTAssertEqual(runs[2].passing[0].map(\.count), [4, 4], "host 1 passes k entries per KV head")
    }
}
