import BatonVision
import Foundation
import Hummingbird
import HummingbirdTesting
import XCTest

@testable import BatonServer

/// The server on a loopback port with real clients: the official `openai` Python client (PyPI),
/// a bounded load, a client killed mid-stream, and the `baton serve` binary shut down by SIGTERM.
final class LiveServerTests: XCTestCase {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
        "openai_client.py"
    ).path

    /// A Python with the `openai` package: $BATON_OPENAI_PYTHON or python3. Missing, the tests
    /// skip, except under CI (CI=true), whose .ci/run installs it.
    static func python() throws -> String {
        let python = ProcessInfo.processInfo.environment["BATON_OPENAI_PYTHON"] ?? "python3"
        let check = Process()
        check.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        check.arguments = [python, "-c", "import openai"]
        check.standardError = Pipe()
        try check.run()
        check.waitUntilExit()
        if check.terminationStatus != 0 {
            let message = "\(python) cannot import openai (pip install openai, or set BATON_OPENAI_PYTHON)"
            if ProcessInfo.processInfo.environment["CI"] == "true" { XCTFail(message) }
            throw XCTSkip(message)
        }
        return python
    }

    /// Starts the client script; its standard output is returned through the pipe.
    static func startClient(
        _ arguments: [String], port: Int, apiKey: String = "none", model: String = ServerFixture.modelName
    ) throws -> (Process, Pipe) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [try Self.python(), Self.script, "http://127.0.0.1:\(port)/v1", model, apiKey] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        return (process, output)
    }

    /// Runs the client script to its end off the cooperative threads; returns its status and output.
    static func runClient(
        _ arguments: [String], port: Int, apiKey: String = "none", model: String = ServerFixture.modelName
    ) async throws -> (Int32, String) {
        let (process, output) = try Self.startClient(arguments, port: port, apiKey: apiKey, model: model)
        return await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                let data = output.fileHandleForReading.readDataToEndOfFile()
                process.waitUntilExit()
                continuation.resume(returning: (process.terminationStatus, String(decoding: data, as: UTF8.self)))
            }
        }
    }

    func testOfficialOpenAIClientGetsEqualWholeAndStreamedAnswersAndTypedErrors() async throws {
        _ = try Self.python()
        let server = ServerFixture.server(apiKey: "test-key")
        try await server.application().test(.live) { client in
            let (status, output) = try await Self.runClient(
                ["basic"], port: try XCTUnwrap(client.port), apiKey: "test-key")
            XCTAssertEqual(status, 0, output)
            XCTAssertTrue(output.contains("checks passed"), output)
        }
    }

    /// An image part as the openai client sends it (a base64 data: URL), to the Qwen2.5-VL fixture.
    func testOfficialOpenAIClientSendsAnImageAndTheFollowUpComesFromTheEncoderCache() async throws {
        _ = try Self.python()
        do { _ = try FFmpegTools.locate() } catch { throw XCTSkip("needs ffmpeg: \(error)") }
        let server = ServerFixture.visionLanguageServer()
        try await server.application().test(.live) { client in
            let (status, output) = try await Self.runClient(
                ["image", VisualChatTests.image.path], port: try XCTUnwrap(client.port), model: "tiny-qwen2-vl")
            XCTAssertEqual(status, 0, output)
            XCTAssertTrue(output.contains("checks passed"), output)
        }
    }

    /// 1,000 streaming requests (BATON_SERVER_LOAD_REQUESTS to change), 64 at a time, max_tokens 6:
    /// every stream complete, each with its own request's text, none lost.
    func testLoadOf64ConcurrentStreamsLosesAndMixesUpNone() async throws {
        _ = try Self.python()
        let requests = ProcessInfo.processInfo.environment["BATON_SERVER_LOAD_REQUESTS"] ?? "1000"
        let server = ServerFixture.server(maxQueue: 128)
        try await server.application().test(.live) { client in
            let (status, output) = try await Self.runClient(["load", requests, "64"], port: try XCTUnwrap(client.port))
            XCTAssertEqual(status, 0, output)
            let metrics = server.metrics.exposition()
            XCTAssertTrue(
                metrics.contains(
                    #"baton_requests_total{endpoint="/v1/completions",status="200"} \#(Int(requests)! + 50)"#), metrics)
            XCTAssertTrue(metrics.contains("baton_queue_length 0"), metrics)
        }
    }

    func testClientKilledMidStreamLeavesTheServerServing() async throws {
        _ = try Self.python()
        let server = ServerFixture.server()
        try await server.application().test(.live) { client in
            let (process, output) = try Self.startClient(["abandon"], port: try XCTUnwrap(client.port))
            let started: String = await withCheckedContinuation { continuation in
                DispatchQueue.global().async {
                    continuation.resume(
                        returning: String(decoding: output.fileHandleForReading.availableData, as: UTF8.self))
                }
            }
            XCTAssertTrue(started.contains("streaming"), started)
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            // The stream asked for 2,000 tokens past EOS (a few seconds of the tiny model); its
            // generation stops at the first write that fails once the client is gone.
            while server.worker.admittedCount > 0 { try await Task.sleep(for: .milliseconds(10)) }
            let metrics = server.metrics.exposition()
            XCTAssertTrue(metrics.contains("baton_streams_abandoned_total 1"), metrics)
            let generated = try XCTUnwrap(
                metrics.firstMatch(of: /baton_generation_tokens_total (\d+)/).map { Int($0.1)! })
            XCTAssertLessThan(generated, 2000, "the abandoned generation stopped early")
            let health = try await client.execute(uri: "/health", method: .get) { $0 }
            XCTAssertEqual(health.status, .ok)
            let next = try await client.post(
                "/v1/completions",
                #"{"model": "tiny-llama", "prompt": "Still there?", "max_tokens": 4, "temperature": 0}"#)
            XCTAssertEqual(next.status, .ok, String(buffer: next.body))
            XCTAssertEqual(try jsonObject(next.body)["object"] as? String, "text_completion")
        }
    }
}
