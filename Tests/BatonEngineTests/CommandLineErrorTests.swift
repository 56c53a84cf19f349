import Foundation
import XCTest

/// Bad input to the `baton` binary gives one clear line on standard error and a non-zero exit,
/// never a crash or a stack trace.
final class CommandLineErrorTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    func run(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, stderr: String) {
        let result = try runCapturing(arguments, environment: environment)
        return (result.status, result.stderr)
    }

    /// Runs `baton arguments` (see `BatonExecutable.run`).
    func runCapturing(_ arguments: [String], environment: [String: String] = [:]) throws
        -> (status: Int32, stdout: String, stderr: String)
    {
        try BatonExecutable.run(arguments, environment: environment)
    }

    /// A copy of a fixture model in a temporary directory that a test may damage.
    func scratchModel(_ name: String) throws -> URL {
        let target = FileManager.default.temporaryDirectory.appendingPathComponent(
            "baton-cli-\(name)-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: Self.fixtures.appendingPathComponent(name), to: target)
        addTeardownBlock { try? FileManager.default.removeItem(at: target) }
        return target
    }

    func assertOneLineError(
        _ arguments: [String], environment: [String: String] = [:], mentions needles: [String],
        file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let (status, stderr) = try run(arguments, environment: environment)
        XCTAssertNotEqual(status, 0, "exit status", file: file, line: line)
        let lines = stderr.split(separator: "\n").filter { !$0.hasPrefix("loading ") }
        XCTAssertEqual(lines.count, 1, "expected one error line, got:\n\(stderr)", file: file, line: line)
        for needle in needles {
            XCTAssertTrue(stderr.contains(needle), "'\(needle)' missing from: \(stderr)", file: file, line: line)
        }
    }

    func testMissingModelDirectory() throws {
        try assertOneLineError(
            ["generate", "--model", "/nonexistent/dir", "--prompt", "hi"], mentions: ["/nonexistent/dir"])
    }

    func testTruncatedSafetensors() throws {
        let model = try scratchModel("tiny-qwen2")
        let file = model.appendingPathComponent("model.safetensors")
        let data = try Data(contentsOf: file)
        try data.prefix(data.count / 2).write(to: file)
        try assertOneLineError(["generate", "--model", model.path, "--prompt", "hi"], mentions: ["model.safetensors"])
    }

    func testUnknownArchitecture() throws {
        let model = try scratchModel("tiny-qwen2")
        let config = model.appendingPathComponent("config.json")
        let text = try String(contentsOf: config, encoding: .utf8).replacingOccurrences(
            of: "Qwen2ForCausalLM", with: "GPTNeoXForCausalLM")
        try text.write(to: config, atomically: true, encoding: .utf8)
        try assertOneLineError(
            ["inspect", "--model", model.path], mentions: ["config.json", "architectures", "GPTNeoXForCausalLM"])
    }

    func testPromptLongerThanMaxPositions() throws {
        let model = try scratchModel("tiny-qwen2")
        let prompt = String(repeating: "word ", count: 3000)
        try assertOneLineError(
            ["generate", "--model", model.path, "--prompt", prompt, "--max-tokens", "4"],
            mentions: ["max_position_embeddings"])
    }

    func testUnknownDevice() throws {
        try assertOneLineError(
            ["generate", "--model", Self.fixtures.appendingPathComponent("tiny-qwen2").path, "--device", "tpu"],
            mentions: ["--device"])
    }

    // MARK: multi-GPU launch (no GPU and no NCCL on CI)

    func testMoreGPUsThanVisibleIsOneLineNamingGpus() throws {
        let model = Self.fixtures.appendingPathComponent("tiny-llama").path
        // Without CUDA: "--gpus 64 needs CUDA GPUs: ... libcuda ..."; with fewer GPUs: "... N CUDA device(s) visible".
        try assertOneLineError(
            ["generate", "--model", model, "--gpus", "64", "--method", "ring"], mentions: ["--gpus 64"])
    }

    func testGpusMustMatchTorchrunsWorldSize() throws {
        let model = Self.fixtures.appendingPathComponent("tiny-llama").path
        let torchrun = [
            "RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"
        ]
        try assertOneLineError(
            ["generate", "--model", model, "--gpus", "4", "--method", "ring"], environment: torchrun,
            mentions: ["--gpus 4", "WORLD_SIZE=2"])
        try assertOneLineError(
            ["generate", "--model", model, "--method", "ring"], environment: torchrun, mentions: ["pass --gpus 2"])
        try assertOneLineError(
            ["generate", "--model", model, "--gpus", "2"], environment: ["RANK": "0", "WORLD_SIZE": "2"],
            mentions: ["MASTER_PORT is not set"])
    }

    func testGpusAndRanksTogetherIsOneLine() throws {
        try assertOneLineError(["generate", "--gpus", "2", "--ranks", "2"], mentions: ["exclude each other"])
    }

    func testUnknownBenchBaselineIsOneLine() throws {
        try assertOneLineError(
            ["bench", "prefill", "--preset", "tiny-llama", "--tokens", "64", "--baseline", "tensorflow"],
            mentions: ["--baseline", "tensorflow"])
    }
}
