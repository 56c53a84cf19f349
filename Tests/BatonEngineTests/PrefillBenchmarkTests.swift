import BatonEngine
import BatonParallel
import BatonTensor
import XCTest

/// `bench prefill` keeps going past a case that cannot run: that case becomes a row saying why.
final class PrefillBenchmarkTests: XCTestCase {
    func testImpossibleCasesBecomeRowsWithTheReasonAndTheOthersRunWithTokensCountingTheQuestion() throws {
        // tiny-llama's max_position_embeddings is 4096: 4097 cannot run; 40 is shorter than the
        // question. The error's "prompt of 4097" (not 4147) shows that --tokens counts the question,
        // so 4096, the model's full context, is a runnable length (`bench prefill --tokens 4096`).
        let options = PrefillBenchmarkOptions(preset: "tiny-llama", tokens: [4097, 96, 40], methods: [.dense, .ring], ranks: [2],
                                              device: .cpu, runs: 1, warmups: 0, queryTokens: 50)
        let rows = try runPrefillBenchmark(options)
        XCTAssertEqual(rows.map(\.tokens), [4097, 4097, 96, 96, 40, 40])
        XCTAssertEqual(rows.map(\.method), ["dense", "ring", "dense", "ring", "dense", "ring"])
        for row in rows where row.tokens == 4097 {
            XCTAssertTrue(row.skipped?.contains("prompt of 4097 tokens + 1 new tokens exceeds the model's max_position_embeddings (4096)") == true,
                          "\(String(describing: row.skipped))")
            XCTAssertEqual(row.runs, [])
        }
        for row in rows where row.tokens == 40 {
            XCTAssertTrue(row.skipped?.contains("40 tokens leave no context before the 50-token question") == true, "\(String(describing: row.skipped))")
        }
        for row in rows where row.tokens == 96 {
            XCTAssertNil(row.skipped)
            XCTAssertEqual(row.runs.count, 1)
            XCTAssertGreaterThan(row.median_s, 0)
            XCTAssertEqual(row.queryTokens, 50)
        }
        let table = prefillTable(rows)
        XCTAssertTrue(table.contains("| dense | 1 | cpu | 4097 | not run: prompt of 4097 tokens"), table)
        XCTAssertTrue(table.contains("| ring | 2 | cpu | 96 |"), table)
    }
}
