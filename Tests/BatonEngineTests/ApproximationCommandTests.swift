import Foundation
import XCTest

/// `--report-approximation` on the command line (tiny-llama fixture, 2 layers, 2 CPU ranks):
/// generate's table on standard error, bench prefill's `approximation` per case, eval's per method
/// and length beside the accuracy.
extension CommandLineErrorTests {
    /// The rows of a report table whose first cell is a layer number: (layer, mean error).
    func approximationLayers(_ text: String) -> [(layer: Int, meanError: Double)] {
        text.split(separator: "\n").compactMap { line in
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count > 3, let layer = Int(cells[0]), let error = Double(cells[2]) else { return nil }
            return (layer, error)
        }
    }

    func testGeneratePrintsAPerLayerReportWithRoundingErrorForZigZagAndMoreForStar() throws {
        var means: [String: [Double]] = [:]
        for method in ["zigzag", "star"] {
            let result = try runCapturing([
                "generate", "--model", Self.tinyLlama, "--prompt", String(repeating: "one two three four ", count: 40),
                "--method", method, "--ranks", "2", "--max-tokens", "2", "--anchor-length", "8",
                "--report-approximation", "--approximation-rows", "16"
            ])
            XCTAssertEqual(result.status, 0, result.stderr)
            XCTAssertTrue(result.stderr.contains("approximation report: \(method) on 2 CPU ranks, 16 context rows"))
            let layers = approximationLayers(result.stderr)
            XCTAssertEqual(layers.map(\.layer), [0, 1], result.stderr)
            means[method] = layers.map(\.meanError)
        }
        XCTAssertLessThan(means["zigzag"]!.max()!, 1e-5, "zigzag is exact")
        XCTAssertGreaterThan(means["star"]!.max()!, 1e-3, "star's rank 1 sees only an 8-token anchor")
    }

    func testGenerateWithoutTheFlagPrintsNoReport() throws {
        let result = try runCapturing([
            "generate", "--model", Self.tinyLlama, "--method", "ring", "--ranks", "2", "--max-tokens", "1"
        ])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertFalse(result.stderr.contains("approximation"), result.stderr)
    }

    func testApproximationRowsBelowOneIsOneLineNamingTheOption() throws {
        try assertOneLineError(
            ["generate", "--model", Self.tinyLlama, "--report-approximation", "--approximation-rows", "0"],
            mentions: ["--approximation-rows"])
    }

    func testBenchPrefillAddsTheReportToEachParallelCase() throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("baton-approx-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: out) }
        let result = try runCapturing([
            "bench", "prefill", "--model", Self.tinyLlama, "--tokens", "256", "--methods", "dense,apb",
            "--ranks", "2", "--runs", "1", "--warmup", "0", "--report-approximation", "--out", out.path
        ])
        XCTAssertEqual(result.status, 0, result.stderr)
        let data = try Data(contentsOf: out.appendingPathComponent("prefill.json"))
        let cases = try XCTUnwrap(
            (try JSONSerialization.jsonObject(with: data) as? [String: Any])?["rows"] as? [[String: Any]])
        XCTAssertNil(cases[0]["approximation"], "dense on one rank is exact: no report")
        let report = try XCTUnwrap(cases[1]["approximation"] as? [String: Any])
        XCTAssertEqual((report["layers"] as? [Any])?.count, 2)
        XCTAssertEqual(report["rowsPerRank"] as? Int, 64)
        let markdown = try String(contentsOf: out.appendingPathComponent("prefill.md"), encoding: .utf8)
        XCTAssertTrue(markdown.contains("Approximation report, apb x2 at 256 tokens"), markdown)
    }

    func testEvalWritesTheReportPerMethodAndLengthBesideTheAccuracy() throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("baton-approx-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: out) }
        let result = try runCapturing([
            "eval", "niah", "--model", Self.tinyLlama, "--lengths", "512", "--depths", "0,1", "--methods",
            "dense,ring,spava", "--ranks", "2", "--report-approximation", "--approximation-rows", "8",
            "--out", out.path
        ])
        XCTAssertEqual(result.status, 0, result.stderr)
        let data = try Data(contentsOf: out.appendingPathComponent("niah.json"))
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let reports = try XCTUnwrap(json["approximation"] as? [[String: Any]])
        XCTAssertEqual(reports.map { $0["method"] as? String }, ["ring", "spava"])
        XCTAssertEqual(reports.map { $0["samples"] as? Int }, [2, 2])
        let ring = try XCTUnwrap(reports[0]["summary"] as? [String: Any])
        XCTAssertLessThan(try XCTUnwrap(ring["maxError"] as? Double), 1e-5)
        let layers = try XCTUnwrap(ring["layers"] as? [[String: Any]])
        XCTAssertEqual(layers.map { $0["rows"] as? Int }, [32, 32], "8 rows x 2 ranks x 2 samples per layer")
        let markdown = try String(contentsOf: out.appendingPathComponent("niah.md"), encoding: .utf8)
        XCTAssertTrue(markdown.contains("## Approximation report"), markdown)
        XCTAssertTrue(markdown.contains("| spava | 512 | 2 |"), markdown)
    }

    func testEvalPassingLengthReachesTheMethodAndASmallerBudgetErrsMore() throws {
        func spavaMeanError(passing: Int) throws -> (error: Double, markdown: String, json: [String: Any]) {
            let out = FileManager.default.temporaryDirectory.appendingPathComponent("baton-approx-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: out) }
            let result = try runCapturing([
                "eval", "niah", "--model", Self.tinyLlama, "--lengths", "512", "--depths", "0.5", "--methods", "spava",
                "--ranks", "2", "--passing-length", "\(passing)", "--report-approximation", "--approximation-rows", "8",
                "--out", out.path
            ])
            XCTAssertEqual(result.status, 0, result.stderr)
            let data = try Data(contentsOf: out.appendingPathComponent("niah.json"))
            let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            let reports = try XCTUnwrap(json["approximation"] as? [[String: Any]])
            let summary = try XCTUnwrap(reports.first?["summary"] as? [String: Any])
            let markdown = try String(contentsOf: out.appendingPathComponent("niah.md"), encoding: .utf8)
            return (try XCTUnwrap(summary["meanError"] as? Double), markdown, json)
        }
        let small = try spavaMeanError(passing: 4)
        let large = try spavaMeanError(passing: 512)
        XCTAssertEqual(small.json["passingLength"] as? Int, 4)
        XCTAssertNil(small.json["anchorLength"] as? Int)
        XCTAssertTrue(small.markdown.contains("APB/Spava passing length 4 tokens."), small.markdown)
        XCTAssertLessThan(large.error, 1e-5, "512 keeps every entry of a 512-token context: Spava is exact")
        XCTAssertGreaterThan(small.error, 10 * max(large.error, 1e-7))
    }
}
