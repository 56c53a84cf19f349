import BatonEngine
import Foundation
import Hummingbird
import HummingbirdTesting
import XCTest

@testable import BatonServer

/// The tiny Llama fixture loaded once, and servers over it.
enum ServerFixture {
    static let modelDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/tiny-llama")

    static let engine: Engine = {
        do {
            return try Engine.load(EngineOptions(modelDirectory: modelDirectory, showProgress: false))
        } catch {
            fatalError("loading \(modelDirectory.path): \(error)")
        }
    }()

    static let modelName = "tiny-llama"

    static func server(apiKey: String? = nil, maxQueue: Int = 64, ranks: Int = 1) -> OpenAIServer {
        OpenAIServer(
            engine: engine,
            options: ServerOptions(
                host: "127.0.0.1", port: 0, modelName: modelName,
                apiKey: apiKey, maxQueue: maxQueue, ranks: ranks))
    }

    static let fixtures = modelDirectory.deletingLastPathComponent()
    /// The tiny Qwen2.5-VL fixture (random weights, Qwen's tokenizer) and the test clips.
    static let visionLanguageDirectory = fixtures.appendingPathComponent("tiny-qwen2-vl")
    static let clips = fixtures.appendingPathComponent("video/clips")

    static let visionLanguageEngine: Engine = {
        do {
            return try Engine.load(EngineOptions(modelDirectory: visionLanguageDirectory, showProgress: false))
        } catch {
            fatalError("loading \(visionLanguageDirectory.path): \(error)")
        }
    }()

    /// A server over the Qwen2.5-VL fixture, named `tiny-qwen2-vl`, with its own encoder cache.
    static func visionLanguageServer(ranks: Int = 1, visualCacheBytes: Int = 64 << 20) -> OpenAIServer {
        OpenAIServer(
            engine: visionLanguageEngine,
            options: ServerOptions(
                host: "127.0.0.1", port: 0, modelName: "tiny-qwen2-vl", ranks: ranks,
                visualCacheBytes: visualCacheBytes))
    }
}

extension XCTestCase {
    /// The `baton` executable built next to the test bundle.
    var binary: URL {
        get throws {
            var directory = Bundle(for: Self.self).bundleURL
            for _ in 0..<3 {
                let candidate = directory.appendingPathComponent("baton")
                if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
                directory.deleteLastPathComponent()
            }
            throw XCTSkip("the baton executable is not built next to the tests (run `swift build` first)")
        }
    }

    /// `baton generate` on `model` (the Qwen2.5-VL fixture by default) with `arguments`, greedy, 6
    /// tokens: its text (standard output, less the newline it ends with).
    func generateText(
        _ arguments: [String], model: URL = ServerFixture.visionLanguageDirectory
    ) throws -> String {
        let process = Process()
        process.executableURL = try binary
        process.arguments = ["generate", "--model", model.path, "--max-tokens", "6"] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, "baton generate \(arguments)")
        return text.hasSuffix("\n") ? String(text.dropLast()) : text
    }
}

/// A JSON object from a response body.
func jsonObject(_ buffer: ByteBuffer) throws -> [String: Any] {
    let value = try JSONSerialization.jsonObject(with: Data(buffer.readableBytesView))
    return try XCTUnwrap(value as? [String: Any], "not a JSON object: \(String(buffer: buffer))")
}

/// The `data:` payloads of a server-sent-events body, in order.
func eventPayloads(_ buffer: ByteBuffer) -> [String] {
    String(buffer: buffer).components(separatedBy: "\n\n").filter { !$0.isEmpty }.map { event in
        event.hasPrefix("data: ") ? String(event.dropFirst(6)) : "NOT AN EVENT: \(event)"
    }
}

extension TestClientProtocol {
    /// POSTs `body` (JSON text) to `uri`.
    func post(_ uri: String, _ body: String, headers: HTTPFields = [:]) async throws -> TestResponse {
        var headers = headers
        headers[.contentType] = "application/json"
        return try await execute(uri: uri, method: .post, headers: headers, body: ByteBuffer(string: body)) { $0 }
    }
}

/// The `error` object of an OpenAI error body.
func errorObject(_ response: TestResponse) throws -> [String: Any] {
    try XCTUnwrap(
        try jsonObject(response.body)["error"] as? [String: Any], "no error object in \(String(buffer: response.body))")
}
