import BatonEngine
import Foundation
import Hummingbird
import HummingbirdTesting
import XCTest

@testable import BatonServer

/// The generation routes through Hummingbird's router test client: bodies, streams, stop strings.
final class CompletionRoutesTests: XCTestCase {
    static let prompt = "The capital of France is"

    func testModelsListsTheServedModel() async throws {
        let app = Application(router: ServerFixture.server().router())
        try await app.test(.router) { client in
            let response = try await client.execute(uri: "/v1/models", method: .get) { $0 }
            XCTAssertEqual(response.status, .ok)
            let data = try XCTUnwrap(try jsonObject(response.body)["data"] as? [[String: Any]])
            XCTAssertEqual(data.map { $0["id"] as? String }, [ServerFixture.modelName])
        }
    }

    func testGreedyCompletionIsTheEnginesOwnGreedyOutput() async throws {
        let prompt = Self.prompt
        let engine = ServerFixture.engine
        let tokenizer = try XCTUnwrap(engine.tokenizer)
        let ids = tokenizer.encode(prompt, addSpecialTokens: true)
        let reference = try engine.generate(promptIds: ids, options: GenerationOptions(maxTokens: 20))
        let stops = engine.stopIds(GenerationOptions())
        let expected = tokenizer.decode(reference.tokens.filter { !stops.contains($0) })
        let app = Application(router: ServerFixture.server().router())
        try await app.test(.router) { client in
            let response = try await client.post(
                "/v1/completions",
                #"{"model": "tiny-llama", "prompt": "\#(prompt)", "max_tokens": 20, "temperature": 0}"#)
            XCTAssertEqual(response.status, .ok)
            XCTAssertEqual(response.headers[.batonMethod], "dense")
            let body = try jsonObject(response.body)
            XCTAssertEqual(body["object"] as? String, "text_completion")
            let choice = try XCTUnwrap((body["choices"] as? [[String: Any]])?.first)
            XCTAssertEqual(choice["text"] as? String, expected)
            XCTAssertEqual(choice["finish_reason"] as? String, reference.stopReason == .stopToken ? "stop" : "length")
            let usage = try XCTUnwrap(body["usage"] as? [String: Int])
            XCTAssertEqual(
                usage,
                [
                    "prompt_tokens": ids.count, "completion_tokens": reference.tokens.count,
                    "total_tokens": ids.count + reference.tokens.count
                ])
        }
    }

    func testStreamedCompletionTextEqualsTheWholeCompletion() async throws {
        let app = Application(router: ServerFixture.server().router())
        try await app.test(.router) { client in
            let request =
                #"{"model": "tiny-llama", "prompt": "Once upon a time", "max_tokens": 40, "temperature": 0.9, "seed": 42"#
            let whole = try jsonObject(try await client.post("/v1/completions", request + "}").body)
            let wholeChoice = try XCTUnwrap((whole["choices"] as? [[String: Any]])?.first)
            let streamed = try await client.post(
                "/v1/completions", request + #", "stream": true, "stream_options": {"include_usage": true}}"#)
            XCTAssertEqual(streamed.headers[.contentType], "text/event-stream")
            let payloads = eventPayloads(streamed.body)
            XCTAssertEqual(payloads.last, "[DONE]")
            let chunks = try payloads.dropLast().map { try jsonObject(ByteBuffer(string: $0)) }
            let choices = chunks.compactMap { ($0["choices"] as? [[String: Any]])?.first }
            XCTAssertEqual(choices.map { $0["text"] as? String ?? "" }.joined(), wholeChoice["text"] as? String)
            XCTAssertEqual(
                choices.compactMap { $0["finish_reason"] as? String },
                [try XCTUnwrap(wholeChoice["finish_reason"] as? String)])
            // include_usage: the last chunk has no choices and the usage of the whole request.
            XCTAssertEqual((chunks.last?["choices"] as? [Any])?.count, 0, "the last chunk has no choices")
            XCTAssertEqual(chunks.last?["usage"] as? [String: Int], whole["usage"] as? [String: Int])
            XCTAssertTrue(chunks.dropLast().allSatisfy { $0["usage"] is NSNull }, "earlier chunks carry usage: null")
        }
    }

    func testStreamedChatStartsWithTheAssistantRoleAndEqualsTheWholeMessage() async throws {
        let app = Application(router: ServerFixture.server().router())
        try await app.test(.router) { client in
            let request =
                #"{"model": "tiny-llama", "messages": [{"role": "user", "content": "Hi there"}], "max_tokens": 30, "temperature": 0"#
            let whole = try jsonObject(try await client.post("/v1/chat/completions", request + "}").body)
            XCTAssertEqual(whole["object"] as? String, "chat.completion")
            let message = try XCTUnwrap((whole["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])
            XCTAssertEqual(message["role"] as? String, "assistant")
            let streamed = try await client.post("/v1/chat/completions", request + #", "stream": true}"#)
            let payloads = eventPayloads(streamed.body)
            XCTAssertEqual(payloads.last, "[DONE]")
            let chunks = try payloads.dropLast().map { try jsonObject(ByteBuffer(string: $0)) }
            XCTAssertTrue(
                chunks.allSatisfy { $0["object"] as? String == "chat.completion.chunk" && $0["usage"] == nil })
            let deltas = chunks.compactMap { ($0["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any] }
            XCTAssertEqual(deltas.first?["role"] as? String, "assistant")
            XCTAssertEqual(deltas.compactMap { $0["content"] as? String }.joined(), message["content"] as? String)
        }
    }

    func testStopStringCutsTheTextBeforeItsFirstMatchAndEndsGenerationThere() async throws {
        let prompt = Self.prompt
        let app = Application(router: ServerFixture.server().router())
        try await app.test(.router) { client in
            let request = #"{"model": "tiny-llama", "prompt": "\#(prompt)", "max_tokens": 60, "temperature": 0"#
            let full = try jsonObject(try await client.post("/v1/completions", request + "}").body)
            let fullText = try XCTUnwrap((full["choices"] as? [[String: Any]])?.first?["text"] as? String)
            let fullTokens = try XCTUnwrap((full["usage"] as? [String: Int])?["completion_tokens"])
            let characters = Array(fullText)
            try XCTSkipUnless(
                characters.count >= 12,
                "the fixture's greedy text is too short for this test: \(fullText.debugDescription)")
            let stop = String(characters[6..<9])
            let expected = String(fullText[..<fullText.range(of: stop)!.lowerBound])
            let stopJSON = String(
                data: try JSONSerialization.data(withJSONObject: [stop, "never-generated-zzz"]), encoding: .utf8)!
            for stream in [false, true] {
                let response = try await client.post(
                    "/v1/completions",
                    request
                        + #", "stop": \#(stopJSON), "stream": \#(stream), "stream_options": {"include_usage": true}}"#)
                let bodies =
                    stream
                    ? try eventPayloads(response.body).dropLast().map { try jsonObject(ByteBuffer(string: $0)) }
                    : [try jsonObject(response.body)]
                let choices = bodies.compactMap { ($0["choices"] as? [[String: Any]])?.first }
                XCTAssertEqual(choices.map { $0["text"] as? String ?? "" }.joined(), expected, "stream: \(stream)")
                XCTAssertEqual(choices.compactMap { $0["finish_reason"] as? String }, ["stop"])
                let tokens = try XCTUnwrap((bodies.last?["usage"] as? [String: Int])?["completion_tokens"])
                XCTAssertLessThan(tokens, fullTokens, "generation stopped at the stop string, stream: \(stream)")
            }
        }
    }

    func testRequestMethodFieldRunsThatMethodAndTheHeaderSaysSo() async throws {
        let app = Application(router: ServerFixture.server(ranks: 2).router())
        try await app.test(.router) { client in
            for method in ["ring", "apb", "dense"] {
                let response = try await client.post(
                    "/v1/completions",
                    #"{"model": "tiny-llama", "prompt": "A long enough prompt to split over two ranks, with a question at its end: what comes next?", "max_tokens": 5, "temperature": 0, "baton": {"method": "\#(method)"}}"#
                )
                XCTAssertEqual(response.status, .ok, String(buffer: response.body))
                XCTAssertEqual(response.headers[.batonMethod], method)
            }
            // auto on ranks sharing one device is dense.
            let auto = try await client.post(
                "/v1/completions", #"{"model": "tiny-llama", "prompt": "Hi", "max_tokens": 2}"#)
            XCTAssertEqual(auto.headers[.batonMethod], "dense")
        }
    }

    func testIgnoreEOSGeneratesExactlyMaxTokens() async throws {
        let app = Application(router: ServerFixture.server().router())
        try await app.test(.router) { client in
            // Greedy from this prompt ends with EOS well before 400 tokens (274 on the fixture).
            let request = #"{"model": "tiny-llama", "prompt": "Tell a long story", "max_tokens": 400, "temperature": 0"#
            let natural = try jsonObject(try await client.post("/v1/completions", request + "}").body)
            let naturalTokens = try XCTUnwrap((natural["usage"] as? [String: Int])?["completion_tokens"])
            try XCTSkipUnless(naturalTokens < 400, "the fixture's greedy text did not end with EOS")
            let forced = try jsonObject(
                try await client.post("/v1/completions", request + #", "baton": {"ignore_eos": true}}"#).body)
            XCTAssertEqual((forced["usage"] as? [String: Int])?["completion_tokens"], 400)
            XCTAssertEqual((forced["choices"] as? [[String: Any]])?.first?["finish_reason"] as? String, "length")
        }
    }

    func testHealthAndMetricsReportRequestsTokensAndLatencies() async throws {
        let app = Application(router: ServerFixture.server().router())
        try await app.test(.router) { client in
            let health = try await client.execute(uri: "/health", method: .get) { $0 }
            XCTAssertEqual(health.status, .ok)
            _ = try await client.post(
                "/v1/completions", #"{"model": "tiny-llama", "prompt": "Hi", "max_tokens": 3, "temperature": 0}"#)
            _ = try await client.post("/v1/completions", #"{"model": "nope", "prompt": "Hi"}"#)
            let metrics = String(buffer: try await client.execute(uri: "/metrics", method: .get) { $0 }.body)
            XCTAssertTrue(
                metrics.contains(#"baton_requests_total{endpoint="/v1/completions",status="200"} 1"#), metrics)
            XCTAssertTrue(
                metrics.contains(#"baton_requests_total{endpoint="/v1/completions",status="404"} 1"#), metrics)
            XCTAssertTrue(metrics.contains(#"baton_requests_total{endpoint="/health",status="200"} 1"#), metrics)
            XCTAssertTrue(metrics.contains("baton_queue_length 0"), metrics)
            XCTAssertTrue(metrics.contains("baton_time_to_first_token_seconds_count 1"), metrics)
            XCTAssertTrue(metrics.contains("baton_prompt_tokens_total "), metrics)
            XCTAssertTrue(metrics.contains("baton_time_per_output_token_seconds_bucket"), metrics)
        }
    }
}
