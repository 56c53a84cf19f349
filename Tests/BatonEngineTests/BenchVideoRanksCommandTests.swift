import Foundation
import XCTest

/// `baton bench video` with several methods on 2 CPU ranks: a row per method with every stage
/// timed, the exchange and speedup columns, `ranks_stages_s` in video.json and the per-rank table.
extension CommandLineErrorTests {
    func testBenchVideoOnTwoRanksWritesEveryMethodsStagesAndAPerRankTable() throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent(
            "baton-bench-video-ranks-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: out) }
        let model = Self.fixtures.appendingPathComponent("tiny-qwen2-vl").path
        let result = try runCapturing([
            "bench", "video", "--model", model, "--frames", "4", "--resolution", "56x56",
            "--methods", "dense,ring,spava", "--ranks", "2", "--warmup", "0", "--out", out.path
        ])
        XCTAssertEqual(result.status, 0, result.stderr)

        let data = try Data(contentsOf: out.appendingPathComponent("video.json"))
        let json = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        let rows = try XCTUnwrap(json?["rows"] as? [[String: Any]])
        XCTAssertEqual(rows.map { $0["method"] as? String }, ["dense", "ring", "spava"])
        XCTAssertEqual(rows.map { $0["ranks"] as? Int }, [1, 2, 2])
        for row in rows {
            XCTAssertNil(row["skipped"], "\(row)")
            for stage in ["median_s", "preprocess_s", "vision_s", "exchange_s", "prefill_s"] {
                XCTAssertGreaterThanOrEqual(try XCTUnwrap(row[stage] as? Double), 0, "\(stage) of \(row)")
            }
            let perRank = try XCTUnwrap(row["ranks_stages_s"] as? [[String: Double]])
            XCTAssertEqual(perRank.count, row["ranks"] as? Int)
            for stages in perRank {
                XCTAssertEqual(stages.keys.sorted(), ["decode_preprocess", "exchange", "lm_prefill", "vision_tower"])
                XCTAssertTrue(stages.values.allSatisfy { $0 >= 0 }, "\(stages)")
            }
            // The row's stages are the slowest rank's.
            XCTAssertEqual(row["vision_s"] as? Double, perRank.compactMap { $0["vision_tower"] }.max())
        }
        // Two temporal units, one per rank: each rank runs the tower on its own.
        let ring = try XCTUnwrap(rows[1]["ranks_stages_s"] as? [[String: Double]])
        XCTAssertTrue(ring.allSatisfy { $0["vision_tower"]! > 0 }, "\(ring)")

        let markdown = try String(contentsOf: out.appendingPathComponent("video.md"), encoding: .utf8)
        XCTAssertTrue(result.stdout.contains(markdown.trimmingCharacters(in: .newlines)), result.stdout)
        XCTAssertTrue(markdown.contains("| exchange s |"), markdown)
        XCTAssertTrue(markdown.contains("| speedup vs dense | vision speedup vs 1 rank |"), markdown)
        XCTAssertTrue(markdown.contains("| ring | 2 | cpu | 4 | 56x56 | 56x56 | 8 |"), markdown)
        let perRankRows = markdown.split(separator: "\n").filter {
            $0.range(
                of: #"^\| (dense \| 1|ring \| 2|spava \| 2) \| 4 \| 56x56 \| [01] \|"#, options: .regularExpression)
                != nil
        }
        XCTAssertEqual(perRankRows.count, 1 + 2 + 2, markdown)
    }
}
