import Foundation
import XCTest

/// `baton bench prefill` on 2 CPU ranks writes every rank's parts: the per-rank table in
/// prefill.md and on standard output, `ranks_breakdown_s` in prefill.json, and with
/// `BATON_TIMING_LAYERS=1` the attention parts per layer and rank on standard error.
extension CommandLineErrorTests {
    func testBenchPrefillWritesEveryRanksPartsAndPerLayerPartsOnRequest() throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent(
            "baton-bench-ranks-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: out) }
        let result = try runCapturing(
            [
                "bench", "prefill", "--model", Self.tinyLlama, "--device", "cpu", "--tokens", "512",
                "--methods", "dense,apb,spava", "--ranks", "2", "--runs", "1", "--warmup", "0",
                "--out", out.path
            ], environment: ["BATON_TIMING_LAYERS": "1"])
        XCTAssertEqual(result.status, 0, result.stderr)

        let markdown = try String(contentsOf: out.appendingPathComponent("prefill.md"), encoding: .utf8)
        XCTAssertTrue(result.stdout.contains(markdown.trimmingCharacters(in: .newlines)), result.stdout)
        let rows = markdown.split(separator: "\n").filter {
            $0.hasPrefix("| apb | 2 | 512 |") || $0.hasPrefix("| spava | 2 | 512 |")
        }
        XCTAssertEqual(rows.count, 4, markdown)  // two ranks of each method

        let data = try Data(contentsOf: out.appendingPathComponent("prefill.json"))
        let json = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        let cases = try XCTUnwrap(json?["rows"] as? [[String: Any]])
        XCTAssertEqual(cases.map { ($0["ranks_breakdown_s"] as? [Any])?.count }, [1, 2, 2])
        XCTAssertEqual(
            (cases[0]["breakdown_s"] as? [String: Double])?.keys.sorted(), ["attention", "head", "mlp", "projections"])
        let rank1 = try XCTUnwrap((cases[1]["ranks_breakdown_s"] as? [[String: Double]])?[1])
        XCTAssertEqual(
            rank1.keys.sorted(),
            ["attention", "attention_compute", "communication", "head", "mlp", "projections", "selection"])

        // tiny-llama has 2 layers: a row per layer and rank for each of the 3 cases.
        XCTAssertTrue(
            result.stderr.contains("bench prefill: apb x2, 512 tokens: attention per layer and rank (seconds)"),
            result.stderr)
        let layerRows = result.stderr.split(separator: "\n").filter {
            $0.range(of: #"^\| [01] \| [01] \| "#, options: .regularExpression) != nil
        }
        XCTAssertEqual(layerRows.count, 2 * (1 + 2 + 2), result.stderr)
    }
}
