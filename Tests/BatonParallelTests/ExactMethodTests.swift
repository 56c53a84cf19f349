import BatonTensor
import XCTest
@testable import BatonParallel

/// Single-layer runs on CPU ranks compared with dense causal attention over the global sequence.
final class ExactMethodTests: XCTestCase {
    let gqa = TokenVectors(heads: 4, kvHeads: 2, headDim: 16)
    let wideGQA = TokenVectors(heads: 8, kvHeads: 2, headDim: 16)

    /// Runs `plan` with two decode steps and checks every prefill row (except `skip`), the query
    /// pass and the decode steps against dense attention.
    func assertMatchesDense(
        _ plan: Plan, _ vectors: TokenVectors, skip: (RankLayout) -> [Range<Int>] = { _ in [] },
        file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let n = plan.contextLength, q = plan.queryLength
        let decodeTokens = [Int32(n + q), Int32(n + q + 1)]
        let global = (0..<Int32(n + q)).map { $0 } + decodeTokens
        let dense = try denseRows(global, vectors)
        let runs = try runSingleLayer(plan, vectors, decodeTokens: decodeTokens)
        let width = vectors.heads * vectors.headDim
        let name = "\(plan.method.rawValue) W=\(plan.worldSize) N=\(n)"
        for (rank, run) in runs.enumerated() {
            let layout = plan.ranks[rank]
            let skipped = skip(layout)
            for (local, token) in layout.tokenIDs.enumerated() where !skipped.contains(where: { $0.contains(local) }) {
                assertClose(
                    row(run.prefill, local, width: width), dense[Int(token)],
                    "\(name) rank \(rank) prefill row \(local) (token \(token))", file: file, line: line)
            }
            if plan.needsQueryPass {
                for t in 0..<q {
                    assertClose(
                        row(run.query, t, width: width), dense[n + t], "\(name) rank \(rank) query row \(t)",
                        file: file, line: line)
                }
            }
            for (step, out) in run.decode.enumerated() {
                assertClose(
                    out, dense[n + q + step], "\(name) rank \(rank) decode step \(step)", file: file, line: line)
            }
        }
    }

    func testRingEqualsDenseAt2And3RanksWithUnevenBlocks() throws {
        let (context, query) = tokens(context: 40, query: 3)
        for w in [2, 3] {
            try assertMatchesDense(try Plan.make(method: .ring, context: context, query: query, worldSize: w), gqa)
        }
    }

    func testRingEqualsDenseAt8Ranks() throws {
        let (context, query) = tokens(context: 53, query: 2)
        try assertMatchesDense(try Plan.make(method: .ring, context: context, query: query, worldSize: 8), wideGQA)
    }

    func testZigZagRingEqualsDenseAt2To4And8Ranks() throws {
        let (context, query) = tokens(context: 45, query: 4)
        for w in [2, 3, 4, 8] {
            try assertMatchesDense(try Plan.make(method: .zigzag, context: context, query: query, worldSize: w), gqa)
        }
    }

    func testDenseOnOneRankEqualsDense() throws {
        let (context, query) = tokens(context: 21, query: 2)
        try assertMatchesDense(try Plan.make(method: .dense, context: context, query: query, worldSize: 1), gqa)
    }

    func testAPBWithKeepEverythingBudgetEqualsDenseAt2To4And8Ranks() throws {
        // No query in the anchor, so the anchor is the true prefix; k >= every block, so each
        // host passes its whole block (host 0: all but the anchor's copy).
        let (context, query) = tokens(context: 47, query: 3)
        var options = PlanOptions(anchorLength: 5, passingLength: 64)
        options.anchorQueryPrefix = nil
        for w in [2, 3, 4, 8] {
            let plan = try Plan.make(method: .apb, context: context, query: query, worldSize: w, options: options)
            try assertMatchesDense(plan, wideGQA, skip: { [$0.probeOnlyRows] })
        }
    }

    func testSpavaWithKeepEverythingBudgetEqualsDenseAt2To4And8Ranks() throws {
        let (context, query) = tokens(context: 61, query: 3)
        for w in [2, 3, 4, 8] {
            let plan = try Plan.make(
                method: .spava, context: context, query: query, worldSize: w,
                options: PlanOptions(anchorLength: 6, passingLength: 64))
            try assertMatchesDense(plan, gqa)
        }
    }

    func testStarEqualsItsNaiveDefinitionAndDecodesExactly() throws {
        // Star's block rows see [anchor ; own block] causally; the query pass and decode are exact.
        let (context, query) = tokens(context: 38, query: 3)
        let vectors = gqa, width = vectors.heads * vectors.headDim
        for w in [2, 4] {
            let plan = try Plan.make(
                method: .star, context: context, query: query, worldSize: w,
                options: PlanOptions(anchorLength: 7))
            // Query pass and decode against dense; prefill rows checked below instead.
            try assertMatchesDense(plan, vectors, skip: { [0..<$0.rowCount] })
            let runs = try runSingleLayer(plan, vectors)
            for (rank, run) in runs.enumerated() {
                let layout = plan.ranks[rank]
                for (local, token) in layout.tokenIDs.enumerated() {
                    let visible = Array(layout.tokenIDs[0...local])  // local causal over [anchor ; block]
                    let expected = (0..<vectors.heads).flatMap {
                        vectors.naiveAttention(token, head: $0, keys: visible)
                    }
                    assertClose(
                        row(run.prefill, local, width: width), expected, "star W=\(w) rank \(rank) row \(local)")
                }
            }
        }
    }
}
