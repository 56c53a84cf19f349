import BatonParallel
import BatonTensor
import XCTest

@testable import BatonEngine

/// `bench prefill` keeps going past a case that cannot run: that case becomes a row saying why.
/// Every case also gets each rank's parts, with attention split into compute, selection and
/// communication.
final class PrefillBenchmarkTests: XCTestCase {
    func testImpossibleCasesBecomeRowsWithTheReasonAndTheOthersRunWithTokensCountingTheQuestion() throws {
        // tiny-llama's max_position_embeddings is 4096: 4097 cannot run; 40 is shorter than the
        // question. The error's "prompt of 4097" (not 4147) shows that --tokens counts the question,
        // so 4096, the model's full context, is a runnable length (`bench prefill --tokens 4096`).
        let options = PrefillBenchmarkOptions(
            preset: "tiny-llama", tokens: [4097, 96, 40], methods: [.dense, .ring], ranks: [2],
            device: .cpu, runs: 1, warmups: 0, queryTokens: 50)
        let rows = try runPrefillBenchmark(options)
        XCTAssertEqual(rows.map(\.tokens), [4097, 4097, 96, 96, 40, 40])
        XCTAssertEqual(rows.map(\.method), ["dense", "ring", "dense", "ring", "dense", "ring"])
        for row in rows where row.tokens == 4097 {
            XCTAssertTrue(
                row.skipped?.contains(
                    "prompt of 4097 tokens + 1 new tokens exceeds the model's max_position_embeddings (4096)") == true,
                "\(String(describing: row.skipped))")
            XCTAssertEqual(row.runs, [])
        }
        for row in rows where row.tokens == 40 {
            XCTAssertTrue(
                row.skipped?.contains("40 tokens leave no context before the 50-token question") == true,
                "\(String(describing: row.skipped))")
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

    /// Every method on 2 CPU ranks: one breakdown per rank, parts non-negative, the parts inside
    /// attention adding up to at most attention, communication and compute measured where a method
    /// has them, selection where it selects; dense keeps its four-part `breakdown_s`.
    func testEveryRankRecordsItsPartsWithAttentionSplitIntoComputeSelectionAndCommunication() throws {
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/tiny-llama")
        let methods: [BatonParallel.Method] = [.dense, .ring, .zigzag, .star, .apb, .spava]
        let options = PrefillBenchmarkOptions(
            modelDirectory: fixture, tokens: [1024], methods: methods, ranks: [2],
            device: .cpu, runs: 1, warmups: 0, queryTokens: 50)
        let rows = try runPrefillBenchmark(options)
        XCTAssertEqual(rows.map(\.method), methods.map(\.rawValue))
        let names = PartTimer.Part.allCases.map(\.rawValue)
        for row in rows {
            XCTAssertNil(row.skipped, row.method)
            let ranks = try XCTUnwrap(row.ranks_breakdown_s, row.method)
            XCTAssertEqual(ranks.count, row.ranks, row.method)
            for (rank, entry) in ranks.enumerated() {
                let parts = try XCTUnwrap(entry, "\(row.method) rank \(rank)")
                let context = "\(row.method) rank \(rank): \(parts)"
                XCTAssertEqual(Set(parts.keys), Set(names), context)
                XCTAssertTrue(parts.values.allSatisfy { $0 >= 0 }, context)
                let inside = parts["attention_compute"]! + parts["selection"]! + parts["communication"]!
                XCTAssertLessThanOrEqual(inside, parts["attention"]! + 1e-6, context)
                XCTAssertGreaterThan(parts["attention_compute"]!, 0, context)
                XCTAssertGreaterThan(parts["attention"]!, 0, context)
                XCTAssertEqual(parts["communication"]! > 0, row.method != "dense", context)
                // Only APB and Spava select; at 1024 tokens every one of their ranks has candidates.
                XCTAssertEqual(parts["selection"]! > 0, ["apb", "spava"].contains(row.method), context)
            }
        }
        let dense = try XCTUnwrap(rows.first)
        XCTAssertEqual(Set(dense.breakdown_s?.keys.map { $0 } ?? []), ["projections", "attention", "mlp", "head"])
        XCTAssertTrue(rows.dropFirst().allSatisfy { $0.breakdown_s == nil })

        let lines = prefillTable(rows).split(separator: "\n").map(String.init)
        let header = try XCTUnwrap(
            lines.firstIndex { $0.hasPrefix("| method | ranks | tokens | rank |") },
            lines.joined(separator: "\n"))
        XCTAssertTrue(
            lines[header].contains("| attention_compute | selection | communication | attention other |"), lines[header]
        )
        let perRank = lines[(header + 2)...].prefix { $0.hasPrefix("|") }
        XCTAssertEqual(perRank.count, 1 + 2 * (methods.count - 1), perRank.joined(separator: "\n"))
        for method in ["apb", "spava"] {
            XCTAssertEqual(
                perRank.filter { $0.hasPrefix("| \(method) | 2 | 1024 |") }.map { $0.split(separator: "|")[3] },
                [" 0 ", " 1 "], perRank.joined(separator: "\n"))
        }
    }

    /// A rank timed in another process (one process per rank) is a row saying so, not zeros.
    func testRankNotTimedHereIsARowSayingSo() {
        let parts = Dictionary(uniqueKeysWithValues: PartTimer.Part.allCases.map { ($0.rawValue, 0.5) })
        let row = PrefillMeasurement(
            method: "apb", ranks: 2, device: "cuda:0", tokens: 1000, queryTokens: 50, runs: [1],
            median_s: 1, min_s: 1, max_s: 1, tokens_per_s: 1000, breakdown_s: nil,
            ranks_breakdown_s: [parts, nil], peak_device_bytes: nil)
        let table = prefillTable([row])
        XCTAssertTrue(table.contains("| apb | 2 | 1000 | 0 | 0.500 |"), table)
        XCTAssertTrue(table.contains("| apb | 2 | 1000 | 1 | not timed: this rank ran in another process |"), table)
    }
}
