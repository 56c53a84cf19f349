import BatonModels
import Foundation
import XCTest

@testable import BatonEngine

/// `bench prefill --baseline torch`: how Baton runs the embedded PyTorch script, reads its results
/// and reports a baseline that cannot run. A stand-in interpreter (a shell script answering the
/// script's command line) checks the protocol without PyTorch.
final class TorchBaselineTests: XCTestCase {
    func interpreter(_ body: String) throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("fake-python-\(UUID().uuidString)")
        try ("#!/bin/sh\n" + body).write(to: url, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: url.path)
        addTeardownBlock { try? FileManager.default.removeItem(at: url) }
        return url.path
    }

    /// Runs `body` with this process's stderr sent to /dev/null: the baseline copies the
    /// interpreter's output to stderr, and these tests run failing interpreters on purpose.
    func silencingStandardError<T>(_ body: () throws -> T) rethrows -> T {
        fflush(nil)
        let saved = dup(STDERR_FILENO), null = open("/dev/null", O_WRONLY)
        dup2(null, STDERR_FILENO)
        close(null)
        defer { fflush(nil); dup2(saved, STDERR_FILENO); close(saved) }
        return try body()
    }

    func testRowsComeFromTheScriptsJSONAtThePromptLengths() throws {
        // Echoes the lengths it was asked for (--tokens: whole prompts, question included) into
        // --json, and checks that --config points at a folder with the model's config.json and
        // that --device is passed.
        let fake = try interpreter(
            """
            while [ $# -gt 0 ]; do
              case "$1" in --tokens) t="$2"; shift;; --json) j="$2"; shift;; --config) c="$2"; shift;; --device) d="$2"; shift;; esac; shift
            done
            grep -q '"num_hidden_layers"' "$c/config.json" || exit 3
            [ "$d" = cuda:0 ] || exit 4
            [ "$t" = 100,200 ] || exit 5
            rows=""
            for n in $(echo "$t" | tr ',' ' '); do
              rows="$rows${rows:+,}{\\"tokens\\": $n, \\"runs\\": [2.0], \\"median_s\\": 2.0, \\"min_s\\": 2.0, \\"max_s\\": 2.0, \\"tokens_per_s\\": 1.0, \\"peak_gib\\": 1.5}"
            done
            echo "{\\"torch\\": \\"9.9\\", \\"transformers\\": \\"5.0\\", \\"device\\": \\"Fake GPU\\", \\"rows\\": [$rows]}" > "$j"
            echo measured
            """)
        let baseline = TorchBaseline(
            python: fake, modelDirectory: nil, config: ModelPreset.tinyLlama.config, device: .cuda(ordinal: 0))
        let rows = silencingStandardError { baseline.run(tokens: [100, 200], queryTokens: 50, runs: 1) }
        XCTAssertEqual(rows.map(\.tokens), [100, 200])
        XCTAssertEqual(rows.map(\.skipped), [nil, nil], "\(rows.map(\.skipped))")
        XCTAssertEqual(rows.map(\.method), [TorchBaseline.method, TorchBaseline.method])
        XCTAssertEqual(rows.first?.median_s, 2.0)
        XCTAssertEqual(rows.first?.peak_device_bytes, Int(1.5 * 1_073_741_824))
        XCTAssertTrue(
            rows.first?.device.contains("Fake GPU (PyTorch 9.9, transformers 5.0 sdpa)") == true, rows.first!.device)
    }

    func testAFailingBaselineBecomesSkippedRowsWithTheReason() throws {
        let fake = try interpreter("echo 'ModuleNotFoundError: No module named torch' >&2; exit 1\n")
        let rows = silencingStandardError {
            TorchBaseline(
                python: fake, modelDirectory: nil, config: ModelPreset.tinyLlama.config, device: .cuda(ordinal: 0)
            )
            .run(tokens: [64], queryTokens: 0, runs: 1)
        }
        XCTAssertEqual(rows.count, 1)
        XCTAssertTrue(
            rows[0].skipped?.contains("No module named torch") == true, "\(String(describing: rows[0].skipped))")
        let missing = silencingStandardError {
            TorchBaseline(
                python: "/nonexistent/python3", modelDirectory: nil, config: ModelPreset.tinyLlama.config,
                device: .cpu
            ).run(tokens: [64], queryTokens: 0, runs: 1)
        }
        XCTAssertTrue(
            missing[0].skipped?.contains("/nonexistent/python3") == true, "\(String(describing: missing[0].skipped))")
    }

    func testTableReportsSpeedupOverPyTorchAtTheSameLength() {
        func row(_ method: String, _ ranks: Int, _ device: String, _ median: Double) -> PrefillMeasurement {
            PrefillMeasurement(
                method: method, ranks: ranks, device: device, tokens: 1000, queryTokens: 50, runs: [median],
                median_s: median, min_s: median, max_s: median, tokens_per_s: 1050 / median,
                breakdown_s: nil, peak_device_bytes: nil, skipped: nil)
        }
        let table = prefillTable([
            row(TorchBaseline.method, 1, "H100 (PyTorch)", 3), row("dense", 1, "cuda:0", 2),
            row("spava", 2, "cuda:0-1 (2 GPUs, NCCL)", 0.5)
        ])
        let lines = table.split(separator: "\n")
        XCTAssertTrue(lines.contains { $0.hasPrefix("| dense | 1 |") && $0.contains("| 1.00x | 1.50x |") }, table)
        XCTAssertTrue(lines.contains { $0.hasPrefix("| spava | 2 |") && $0.contains("| 4.00x | 6.00x |") }, table)
    }
}
