import BatonEngine
import Foundation
import Hummingbird
import HummingbirdTesting
import XCTest

@testable import BatonServer

/// Every error answered as OpenAI does: status, `error.type`, `error.param`, `error.code`, message.
final class ErrorResponseTests: XCTestCase {
    func testMalformedOrMistypedBodiesAre400NamingTheField() async throws {
        let app = Application(router: ServerFixture.server().router())
        try await app.test(.router) { client in
            try await expectError(
                client, "/v1/completions", #"{"model": "tiny-llama", "prompt": "#, status: .badRequest, param: nil)
            try await expectError(client, "/v1/completions", #"{"prompt": "Hi"}"#, status: .badRequest, param: "model")
            try await expectError(
                client, "/v1/completions", #"{"model": "tiny-llama", "prompt": "Hi", "max_tokens": "ten"}"#,
                status: .badRequest, param: "max_tokens")
            try await expectError(
                client, "/v1/chat/completions",
                #"{"model": "tiny-llama", "messages": [{"role": "user", "content": 5}]}"#,
                status: .badRequest, param: "messages.0.content")
            try await expectError(
                client, "/v1/chat/completions",
                #"{"model": "tiny-llama", "messages": [{"role": "robot", "content": "x"}]}"#,
                status: .badRequest, param: "messages.0.role")
            try await expectError(
                client, "/v1/chat/completions", #"{"model": "tiny-llama", "messages": []}"#, status: .badRequest,
                param: "messages")
        }
    }

    func testOutOfRangeFieldsAre400() async throws {
        let app = Application(router: ServerFixture.server().router())
        try await app.test(.router) { client in
            let base = #"{"model": "tiny-llama", "prompt": "Hi""#
            try await expectError(client, "/v1/completions", base + #", "n": 2}"#, status: .badRequest, param: "n")
            try await expectError(
                client, "/v1/completions", base + #", "temperature": 2.5}"#, status: .badRequest, param: "temperature")
            try await expectError(
                client, "/v1/completions", base + #", "top_p": 0}"#, status: .badRequest, param: "top_p")
            try await expectError(
                client, "/v1/completions", base + #", "max_tokens": 0}"#, status: .badRequest, param: "max_tokens")
            try await expectError(
                client, "/v1/completions", base + #", "logprobs": 3}"#, status: .badRequest, param: "logprobs")
            try await expectError(
                client, "/v1/completions", #"{"model": "tiny-llama", "prompt": [5, 99999]}"#, status: .badRequest,
                param: "prompt")
            let method = try await expectError(
                client, "/v1/completions", base + #", "baton": {"method": "warp"}}"#,
                status: .badRequest, param: "baton.method")
            XCTAssertTrue((method["message"] as? String ?? "").contains("spava"), "the message lists the methods")
        }
    }

    func testUnknownModelIs404() async throws {
        let app = Application(router: ServerFixture.server().router())
        try await app.test(.router) { client in
            let error = try await expectError(
                client, "/v1/chat/completions", #"{"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]}"#,
                status: .notFound, param: "model")
            XCTAssertEqual(error["code"] as? String, "model_not_found")
        }
    }

    func testPromptLongerThanTheContextIs400WithTheNumbers() async throws {
        let limit = ServerFixture.engine.config.maxPositionEmbeddings
        let ids = (0..<limit - 10).map { String(100 + $0 % 500) }.joined(separator: ",")
        let app = Application(router: ServerFixture.server().router())
        try await app.test(.router) { client in
            let error = try await expectError(
                client, "/v1/completions", #"{"model": "tiny-llama", "prompt": [\#(ids)], "max_tokens": 100}"#,
                status: .badRequest, param: "prompt")
            XCTAssertEqual(error["code"] as? String, "context_length_exceeded")
            let message = try XCTUnwrap(error["message"] as? String)
            for number in [limit, limit - 10, 100] {
                XCTAssertTrue(message.contains("\(number)"), "\(number) in: \(message)")
            }
        }
    }

    func testMissingOrWrongAPIKeyIs401AndTheRightKeyPasses() async throws {
        let app = Application(router: ServerFixture.server(apiKey: "sekrit").router())
        try await app.test(.router) { client in
            for headers: HTTPFields in [[:], [.authorization: "Bearer wrong"], [.authorization: "sekrit"]] {
                let response = try await client.execute(uri: "/v1/models", method: .get, headers: headers) { $0 }
                XCTAssertEqual(response.status, .unauthorized)
                XCTAssertEqual(try errorObject(response)["code"] as? String, "invalid_api_key")
            }
            try await expectError(
                client, "/v1/completions", #"{"model": "tiny-llama", "prompt": "Hi"}"#, status: .unauthorized,
                param: nil)
            let allowed = try await client.execute(
                uri: "/v1/models", method: .get, headers: [.authorization: "Bearer sekrit"]
            ) { $0 }
            XCTAssertEqual(allowed.status, .ok)
            // /health stays open for load balancers.
            let health = try await client.execute(uri: "/health", method: .get) { $0 }
            XCTAssertEqual(health.status, .ok)
        }
    }

    func testImageAndVideoPartsAre400NamingTheTextOnlyModel() async throws {
        let app = Application(router: ServerFixture.server().router())
        try await app.test(.router) { client in
            for part in [
                #"{"type": "image_url", "image_url": {"url": "file:///tmp/cat.png"}}"#,
                #"{"type": "video_url", "video_url": {"url": "data:video/mp4;base64,AAAA"}}"#
            ] {
                let error = try await expectError(
                    client, "/v1/chat/completions",
                    #"{"model": "tiny-llama", "messages": [{"role": "user", "content": [{"type": "text", "text": "What is this?"}, \#(part)]}]}"#,
                    status: .badRequest, param: "messages.0.content.1")
                XCTAssertTrue((error["message"] as? String ?? "").contains("the model 'tiny-llama' is text-only"))
                XCTAssertEqual(error["code"] as? String, "unsupported_content")
            }
        }
    }

    func testFullQueueIs503WithRetryAfter() async throws {
        let server = ServerFixture.server(maxQueue: 0)
        let app = Application(router: server.router())
        try await app.test(.router) { client in
            // Hold the engine's thread so the first request stays admitted while the second arrives.
            let gate = DispatchSemaphore(value: 0)
            server.worker.queue.async { gate.wait() }
            async let first = client.post(
                "/v1/completions", #"{"model": "tiny-llama", "prompt": "Hi", "max_tokens": 2}"#)
            while server.worker.admittedCount == 0 { await Task.yield() }
            let second = try await client.post(
                "/v1/completions", #"{"model": "tiny-llama", "prompt": "Hi", "max_tokens": 2}"#)
            gate.signal()
            XCTAssertEqual(second.status, .serviceUnavailable)
            XCTAssertEqual(second.headers[.retryAfter], "1")
            XCTAssertEqual(try errorObject(second)["code"] as? String, "queue_full")
            let firstStatus = try await first.status
            XCTAssertEqual(firstStatus, .ok)
        }
    }
}

/// POSTs `body` to `uri` and checks the status and the error's param; returns the error object.
@discardableResult
func expectError(
    _ client: some TestClientProtocol, _ uri: String, _ body: String, status: HTTPResponse.Status,
    param: String?, headers: HTTPFields = [:], file: StaticString = #filePath, line: UInt = #line
) async throws -> [String: Any] {
    let response = try await client.post(uri, body, headers: headers)
    XCTAssertEqual(response.status, status, String(buffer: response.body), file: file, line: line)
    XCTAssertEqual(response.headers[.contentType], "application/json", file: file, line: line)
    let error = try errorObject(response)
    XCTAssertEqual(error["param"] as? String, param, "\(error)", file: file, line: line)
    XCTAssertFalse((error["message"] as? String ?? "").isEmpty, file: file, line: line)
    XCTAssertNotNil(error["type"] as? String, file: file, line: line)
    return error
}
