import Foundation
import XCTest

/// What a newcomer meets on the command line (issue 13): numbers range-checked, messages that
/// say what is wrong, standard output that holds only the generated text, help that says where
/// results go, `--version`, and unknown commands refused.
extension CommandLineErrorTests {
    static var tinyLlama: String { fixtures.appendingPathComponent("tiny-llama").path }

    func testNegativeAndOutOfRangeNumbersAreOneLineNamingTheOption() throws {
        let model = Self.tinyLlama
        let cases: [([String], String)] = [
            (["generate", "--model", model, "--max-tokens", "-1"], "--max-tokens"),
            (["generate", "--model", model, "--max-tokens", "0"], "--max-tokens"),
            (["generate", "--model", model, "--ranks", "-2"], "--ranks"),
            (["generate", "--model", model, "--gpus", "0"], "--gpus"),
            (["generate", "--model", model, "--temperature", "-1"], "--temperature"),
            (["generate", "--model", model, "--temperature=-1"], "--temperature"),
            (["generate", "--model", model, "--top-p", "2"], "--top-p"),
            (["generate", "--model", model, "--top-p", "0"], "--top-p"),
            (["generate", "--model", model, "--method", "apb", "--anchor-length", "-5"], "--anchor-length"),
            (["generate", "--model", model, "--method", "apb", "--passing-length", "-5"], "--passing-length"),
            (["bench", "prefill", "--preset", "tiny-llama", "--tokens", "-64"], "--tokens"),
            (["bench", "prefill", "--preset", "tiny-llama", "--ranks", "-2"], "--ranks"),
            (["bench", "prefill", "--preset", "tiny-llama", "--runs", "0"], "--runs"),
            (["bench", "prefill", "--preset", "tiny-llama", "--warmup", "-1"], "--warmup"),
            (["bench", "prefill", "--preset", "tiny-llama", "--query-tokens", "-1"], "--query-tokens"),
            (["eval", "niah", "--model", model, "--samples", "-1"], "--samples"),
            (["eval", "niah", "--model", model, "--ranks", "-2"], "--ranks"),
            (["eval", "niah", "--model", model, "--depths", "-0.5"], "--depths"),
            (["eval", "ruler", "--model", model, "--lengths", "-4096"], "--lengths"),
            (["selftest", "--ordinal", "-1"], "--ordinal"),
            (["selftest", "--bench-attention", "8192,-1"], "--bench-attention")
        ]
        for (arguments, option) in cases {
            try assertOneLineError(arguments, mentions: [option])
        }
    }

    func testUnknownMethodInAListIsOneLineNamingIt() throws {
        try assertOneLineError(
            ["bench", "prefill", "--preset", "tiny-llama", "--methods", "dense,ulysses"],
            mentions: ["--methods", "ulysses"])
    }

    func testBadTuningVariableIsOneLineNamingIt() throws {
        try assertOneLineError(
            ["generate", "--model", Self.tinyLlama], environment: ["BATON_ATTENTION": "fast"],
            mentions: ["BATON_ATTENTION=fast", "auto, flash, naive"])
    }

    // MARK: messages that say what is wrong

    func testMissingPromptFileSaysThereIsNoSuchFile() throws {
        try assertOneLineError(
            ["generate", "--model", Self.tinyLlama, "--prompt-file", "/nonexistent/prompt.txt"],
            mentions: ["--prompt-file /nonexistent/prompt.txt", "no such file"])
    }

    func testDirectoryAsPromptFileSaysItIsADirectory() throws {
        try assertOneLineError(
            ["generate", "--model", Self.tinyLlama, "--prompt-file", Self.fixtures.path],
            mentions: ["--prompt-file", "is a directory"])
    }

    func testModelThatIsAFileSaysItIsNotADirectory() throws {
        let file = Self.fixtures.appendingPathComponent("tiny-llama/config.json").path
        try assertOneLineError(["generate", "--model", file], mentions: [file, "is a file, not a model directory"])
    }

    /// A case longer than a preset's context is a row of the table saying why (bench prefill runs
    /// the other cases), and the reason names the preset, not a config.json that does not exist.
    func testPresetContextErrorNamesThePresetNotAConfigFile() throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent(
            "baton-preset-context-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: out) }
        let result = try runCapturing([
            "bench", "prefill", "--preset", "tiny-llama", "--tokens", "100000", "--runs", "1",
            "--warmup", "0", "--out", out.path
        ])
        XCTAssertEqual(result.status, 0, result.stderr)
        let row = result.stdout.split(separator: "\n").first { $0.contains("100000") }.map(String.init) ?? ""
        XCTAssertTrue(
            row.contains("not run") && row.contains("max_position_embeddings (4096) of preset tiny-llama"),
            "row: \(row)\nstdout: \(result.stdout)")
        XCTAssertFalse((result.stdout + result.stderr).contains("config.json"), result.stdout + result.stderr)
    }

    func testTooLongPromptFailsBeforeTheWeightsAreRead() throws {
        // The weights are damaged: only a check made before loading them can report the length.
        let model = try scratchModel("tiny-qwen2")
        try Data("not safetensors".utf8).write(to: model.appendingPathComponent("model.safetensors"))
        let prompt = String(repeating: "word ", count: 3000)
        try assertOneLineError(
            ["generate", "--model", model.path, "--prompt", prompt, "--max-tokens", "4"],
            mentions: ["max_position_embeddings (2048)", "config.json"])
    }

    func testSelftestWithoutCUDASaysNotAvailableOnce() throws {
        // No GPU visible even on a GPU machine, and no checks to run should one be found anyway.
        let (status, stderr) = try run(["selftest", "--skip-checks"], environment: ["CUDA_VISIBLE_DEVICES": ""])
        guard stderr.contains("CUDA is not available") else { throw XCTSkip("a CUDA device was found: \(stderr)") }
        XCTAssertEqual(status, 2)
        XCTAssertEqual(stderr.split(separator: "\n").count, 1, stderr)
        XCTAssertFalse(stderr.contains("not available: not available"), stderr)
    }

    // MARK: standard output, help, version, commands

    func testStandardOutputHoldsOnlyTheTextEvenWhenTheDefaultModelIsFetched() throws {
        // A stand-in for python3 that "fetches" the default model by copying a fixture and, like
        // the real script, reports on its standard output.
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
            "baton-cli-fetch-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
        let python = folder.appendingPathComponent("python3")
        try """
        #!/bin/sh
        echo "wrote $2 27 tensors, tied embeddings: False"
        mkdir -p "$2" && cp -R "\(Self.tinyLlama)/." "$2"
        """.write(to: python, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: python.path)
        let environment = [
            "PATH": folder.path + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"),
            "BATON_DEFAULT_MODEL": folder.appendingPathComponent("model").path
        ]
        let result = try runCapturing(["generate", "--max-tokens", "4"], environment: environment)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stderr.contains("wrote "), result.stderr)
        XCTAssertTrue(result.stderr.contains("prefill:"), result.stderr)
        for status in ["wrote", "loading", "prefill:", "fetching"] {
            XCTAssertFalse(result.stdout.contains(status), "'\(status)' on standard output: \(result.stdout)")
        }
    }

    func testHelpSaysWhereEvalAndBenchWriteTheirResults() throws {
        for (arguments, folder) in [
            (["eval", "niah", "--help"], "baton-eval"), (["eval", "ruler", "--help"], "baton-eval"),
            (["bench", "prefill", "--help"], "bench/out")
        ] {
            let result = try runCapturing(arguments)
            XCTAssertEqual(result.status, 0)
            let help = result.stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")  // help wraps lines
            XCTAssertTrue(
                help.contains("(default: \(folder) under the current folder)"), "\(arguments): \(result.stdout)")
        }
    }

    func testHelpDocumentsGpuAsAnAliasOfCuda() throws {
        for arguments in [["generate", "--help"], ["bench", "prefill", "--help"], ["eval", "niah", "--help"]] {
            let help = try runCapturing(arguments).stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
            XCTAssertTrue(help.contains("cuda (alias: gpu)"), "\(arguments)")
        }
    }

    func testVersionPrintsTheVersion() throws {
        let result = try runCapturing(["--version"])
        XCTAssertEqual(result.status, 0)
        XCTAssertNotNil(result.stdout.range(of: #"^\d+\.\d+\.\d+\n$"#, options: .regularExpression), result.stdout)
    }

    func testUnknownCommandIsAnErrorNotTheDefaultCommandsHelp() throws {
        for arguments in [["srve", "--help"], ["srve"]] {
            let result = try runCapturing(arguments)
            XCTAssertNotEqual(result.status, 0)
            XCTAssertFalse(result.stdout.contains("--max-tokens"), "generate's help: \(result.stdout)")
            try assertOneLineError(
                arguments,
                mentions: ["unknown command 'srve'", "generate, serve, inspect, selftest, bench, eval, models"])
        }
        // `serve` is a command of its own now: its help is its own, not generate's.
        let serveHelp = try runCapturing(["serve", "--help"])
        XCTAssertEqual(serveHelp.status, 0, serveHelp.stderr)
        XCTAssertTrue(
            serveHelp.stdout.contains("--max-queue") && !serveHelp.stdout.contains("--max-tokens"), serveHelp.stdout)
    }

    func testParallelMethodWithoutRanksSaysItRunsOnOneRank() throws {
        let alone = try runCapturing(["generate", "--model", Self.tinyLlama, "--method", "apb", "--max-tokens", "2"])
        XCTAssertEqual(alone.status, 0, alone.stderr)
        XCTAssertTrue(alone.stderr.contains("--method apb without --ranks or --gpus runs on 1 rank"), alone.stderr)
        let split = try runCapturing([
            "generate", "--model", Self.tinyLlama, "--method", "apb", "--ranks", "2", "--max-tokens", "2"
        ])
        XCTAssertEqual(split.status, 0, split.stderr)
        XCTAssertFalse(split.stderr.contains("runs on 1 rank"), split.stderr)
    }
}
