import BatonTensor
import XCTest
@testable import BatonParallel

/// APB and Spava with small passing budgets against a naive fp64 reference that selects the
/// top-k by hand (query-aware score, max-pool 5, per KV head, ties to the lower row) and
/// attends with the method's own key sets.
final class SelectionTests: XCTestCase {
    let vectors = TokenVectors(heads: 6, kvHeads: 2, headDim: 16)

    /// Top-`k` tokens of `candidates` (local rows) per KV head, scored over `keyRows` with `probe`.
    func naiveSelection(
        _ layout: RankLayout, keyRows: Range<Int>, candidates: Range<Int>, budget: Int,
        vectors: TokenVectors
    ) -> [[Int32]] {
        let probe = layout.queryRows.map { layout.tokenIDs[$0] }
        return (0..<vectors.kvHeads).map { h in
            let raw = keyRows.map { vectors.queryAwareScore(key: layout.tokenIDs[$0], kvHead: h, probe: probe) }
            let pooled = keyRows.map { j in
                (max(keyRows.lowerBound, j - 2)...min(keyRows.upperBound - 1, j + 2)).map {
                    raw[$0 - keyRows.lowerBound]
                }.max()!
            }
            let ranked = candidates.sorted { a, b in
                let sa = pooled[a - keyRows.lowerBound], sb = pooled[b - keyRows.lowerBound]
                return sa != sb ? sa > sb : a < b
            }
            return ranked.prefix(min(budget, candidates.count)).map { layout.tokenIDs[$0] }
        }
    }

    func assertRows(
        _ run: RankRun, _ layout: RankLayout, rows: Range<Int>, name: String,
        keys: (_ local: Int, _ kvHead: Int) -> [Int32]
    ) {
        let width = vectors.heads * vectors.headDim
        for local in rows {
            let expected = (0..<vectors.heads).flatMap { head in
                vectors.naiveAttention(layout.tokenIDs[local], head: head, keys: keys(local, head / vectors.group))
            }
            assertClose(row(run.prefill, local, width: width), expected, tolerance: 2e-5, "\(name) row \(local)")
        }
    }

    /// Whatever the prefill passed, the query pass (APB) and decoding attend over exactly the
    /// cached context + query: dense results on every rank.
    func assertQueryAndDecodeExact(_ plan: Plan, _ runs: [RankRun], decodeToken: Int32) throws {
        let n = plan.contextLength, q = plan.queryLength, width = vectors.heads * vectors.headDim
        let dense = try denseRows((0..<Int32(n + q)).map { $0 } + [decodeToken], vectors)
        for (rank, run) in runs.enumerated() {
            for t in 0..<q where plan.needsQueryPass {
                assertClose(row(run.query, t, width: width), dense[n + t], "\(plan.method) rank \(rank) query row \(t)")
            }
            assertClose(run.decode[0], dense[n + q], "\(plan.method) rank \(rank) decode")
        }
    }

    func testAPBSelectsTheNaiveTopKPerHeadAndAttendsUnderTheAnchorRule() throws {
        let (context, query) = tokens(context: 71, query: 3)
        for w in [2, 3, 4] {
            var options = PlanOptions(anchorLength: 9, passingLength: 4)
            options.anchorQueryPrefix = 2  // the query goes into the anchor after two tokens
            let plan = try Plan.make(method: .apb, context: context, query: query, worldSize: w, options: options)
            let decodeToken = Int32(context.count + query.count)
            let runs = try runSingleLayer(plan, vectors, decodeTokens: [decodeToken])
            try assertQueryAndDecodeExact(plan, runs, decodeToken: decodeToken)
            let selections = plan.ranks.map { layout -> [[Int32]] in
                let block = layout.blockRows[0]
                return naiveSelection(
                    layout, keyRows: 0..<(layout.rowCount - layout.probeOnlyRows.count),
                    candidates: max(block.lowerBound, plan.anchorLength)..<block.upperBound,
                    budget: plan.passingLength, vectors: vectors)
            }
            for (rank, layout) in plan.ranks.enumerated() {
                let passing = { (h: Int) in (0..<rank).flatMap { selections[$0][h] } }
                XCTAssertEqual(
                    runs[rank].passing[0].map { Set($0) }, (0..<vectors.kvHeads).map { Set(passing($0)) },
                    "apb W=\(w) rank \(rank) passing block")
                assertRows(runs[rank], layout, rows: 0..<layout.rowCount, name: "apb W=\(w) rank \(rank)") { local, h in
                    let visible = Array(layout.tokenIDs[0...local])
                    return layout.anchorRows.contains(local) ? visible : passing(h) + visible
                }
            }
        }
    }

    func testSpavaSelectsTheNaiveTopKPerChunkAndPassesExactlyTheEarlierChunks() throws {
        let (context, query) = tokens(context: 83, query: 4)
        for w in [2, 3, 4] {
            let plan = try Plan.make(
                method: .spava, context: context, query: query, worldSize: w,
                options: PlanOptions(anchorLength: 7, passingLength: 3))
            let decodeToken = Int32(context.count + query.count)
            let runs = try runSingleLayer(plan, vectors, decodeTokens: [decodeToken])
            try assertQueryAndDecodeExact(plan, runs, decodeToken: decodeToken)
            let selections = plan.ranks.map { layout in
                layout.blockRows.map { chunk in
                    naiveSelection(
                        layout, keyRows: 0..<layout.blockRows[1].upperBound, candidates: chunk,
                        budget: plan.passingLength, vectors: vectors)
                }
            }
            let dense = try denseRows(context + query, vectors)
            for (rank, layout) in plan.ranks.enumerated() {
                let p1 = { (h: Int) in (0..<rank).flatMap { selections[$0][0][h] } }
                let p2 = { (h: Int) in
                    (0..<w).flatMap { selections[$0][0][h] }
                        + ((rank + 1)..<w).reversed().flatMap { selections[$0][1][h] }
                }
                XCTAssertEqual(runs[rank].passing[0].map { Set($0) }, (0..<vectors.kvHeads).map { Set(p1($0)) })
                XCTAssertEqual(runs[rank].passing[1].map { Set($0) }, (0..<vectors.kvHeads).map { Set(p2($0)) })
                let anchor = layout.anchorRows, b1 = layout.blockRows[0], b2 = layout.blockRows[1]
                let name = "spava W=\(w) rank \(rank)"
                assertRows(runs[rank], layout, rows: anchor.lowerBound..<b1.upperBound, name: name) { local, h in
                    let visible = Array(layout.tokenIDs[0...local])
                    return anchor.contains(local) ? visible : p1(h) + visible
                }
                assertRows(runs[rank], layout, rows: b2, name: name) { local, h in
                    p2(h) + layout.tokenIDs[anchor] + layout.tokenIDs[b2.lowerBound...local]
                }
                // The fused query rows are exact.
                let width = vectors.heads * vectors.headDim
                for (t, local) in layout.queryRows.enumerated() {
                    assertClose(
                        row(runs[rank].prefill, local, width: width), dense[context.count + t], "\(name) query row \(t)"
                    )
                }
            }
        }
    }

    /// A key whose query-aware score dominates: every later host must receive it.
    func plantNeedle(at token: Int32, query: [Int32]) -> TokenVectors {
        var planted = vectors
        let d = vectors.headDim
        let needle = (0..<vectors.kvHeads).flatMap { h -> [Float] in
            var mean = [Float](repeating: 0, count: d)
            for t in query {
                let q = vectors.query(t)
                for g in 0..<vectors.group { for i in 0..<d { mean[i] += q[(h * vectors.group + g) * d + i] } }
            }
            let norm = mean.map { $0 * $0 }.reduce(0, +).squareRoot()
            return mean.map { 40 * $0 / norm }
        }
        planted.keyOverrides[token] = needle
        return planted
    }

    func testAPBCarriesAPlantedNeedleToEveryLaterHost() throws {
        let (context, query) = tokens(context: 96, query: 3)
        let w = 4, needle: Int32 = 14  // in host 0's block (24 tokens), past the 6-token anchor copy
        var options = PlanOptions(anchorLength: 6, passingLength: 8)
        options.anchorQueryPrefix = 2
        let plan = try Plan.make(method: .apb, context: context, query: query, worldSize: w, options: options)
        let runs = try runSingleLayer(plan, plantNeedle(at: needle, query: query))
        for rank in 1..<w {
            for (h, passed) in runs[rank].passing[0].enumerated() {
                XCTAssertTrue(passed.contains(needle), "apb rank \(rank) KV head \(h) lacks the needle: \(passed)")
            }
        }
    }

    func testSpavaCarriesAPlantedNeedleToEveryLaterVirtualHost() throws {
        let (context, query) = tokens(context: 100, query: 3)
        let w = 3, needle: Int32 = 12  // anchor 4, chunks of 16: token 12 is in chunk 0 (GPU 0's B1)
        let plan = try Plan.make(
            method: .spava, context: context, query: query, worldSize: w,
            options: PlanOptions(anchorLength: 4, passingLength: 6))
        XCTAssertTrue(plan.ranks[0].tokenIDs[plan.ranks[0].blockRows[0]].contains(needle))
        let runs = try runSingleLayer(plan, plantNeedle(at: needle, query: query))
        for rank in 0..<w {
            for h in 0..<vectors.kvHeads {
                if rank > 0 { XCTAssertTrue(runs[rank].passing[0][h].contains(needle), "rank \(rank) P1 head \(h)") }
                XCTAssertTrue(runs[rank].passing[1][h].contains(needle), "rank \(rank) P2 head \(h)")
            }
        }
    }
}
