import BatonVision
import Foundation
import Hummingbird
import HummingbirdTesting
import XCTest

@testable import BatonServer

/// Chat requests with `video_url` and `image_url` parts on the tiny Qwen2.5-VL fixture: the answer
/// is `baton generate --video/--image`'s greedy text, a follow-up on the same file takes the vision
/// tower's output from the encoder cache, and bad parts are 400s naming the field.
final class VisualChatTests: XCTestCase {
    static let video = ServerFixture.clips.appendingPathComponent("testsrc_h264.mp4")
    static let image = ServerFixture.clips.appendingPathComponent("testsrc.png")
    static let question = "What is in this video?"
    /// One 56x56 size for every frame and image (2x2 merge units), as generate's video tests pin it.
    static let sizeFields = #""min_pixels": 3136, "max_pixels": 3136"#
    static let sizeFlags = ["--min-pixels", "3136", "--max-pixels", "3136"]

    override func setUpWithError() throws {
        do { _ = try FFmpegTools.locate() } catch { throw XCTSkip("needs ffmpeg: \(error)") }
    }

    /// A chat body: one user message holding `part`, then the question; greedy, 6 new tokens.
    static func body(_ part: String, question: String = question, extra: String = "") -> String {
        #"{"model": "tiny-qwen2-vl", "max_tokens": 6, "temperature": 0, \#(extra) "messages": "#
            + #"[{"role": "user", "content": [\#(part), {"type": "text", "text": "\#(question)"}]}]}"#
    }

    static func videoPart(_ url: String, options: String = sizeFields) -> String {
        #"{"type": "video_url", "video_url": {"url": "\#(url)", \#(options)}}"#
    }

    /// POSTs a chat body; returns the answer's text, `usage.baton` and the method that ran it.
    static func answer(_ client: some TestClientProtocol, _ body: String) async throws -> (
        text: String, usage: [String: Any], method: String?
    ) {
        let response = try await client.post("/v1/chat/completions", body)
        XCTAssertEqual(response.status, .ok, String(buffer: response.body))
        let json = try jsonObject(response.body)
        let choices = try XCTUnwrap(json["choices"] as? [[String: Any]])
        let text = try XCTUnwrap((choices.first?["message"] as? [String: Any])?["content"] as? String)
        let usage = try XCTUnwrap(json["usage"] as? [String: Any])
        return (
            text, try XCTUnwrap(usage["baton"] as? [String: Any], "usage.baton in \(usage)"),
            response.headers[.batonMethod]
        )
    }

    func testVideoPathAndFileURLAnswerWithGenerateVideosText() async throws {
        let expected = try generateText(["--video", Self.video.path, "--prompt", Self.question] + Self.sizeFlags)
        let app = Application(router: ServerFixture.visionLanguageServer().router())
        try await app.test(.router) { client in
            let byPath = try await Self.answer(client, Self.body(Self.videoPart(Self.video.path)))
            XCTAssertEqual(byPath.text, expected)
            let byURL = try await Self.answer(client, Self.body(Self.videoPart(Self.video.absoluteString)))
            XCTAssertEqual(byURL.text, expected)
        }
    }

    func testDataURLImageAnswersWithGenerateImagesText() async throws {
        let question = "Describe the picture."
        let expected = try generateText(["--image", Self.image.path, "--prompt", question] + Self.sizeFlags)
        let data = "data:image/png;base64," + (try Data(contentsOf: Self.image)).base64EncodedString()
        let part = #"{"type": "image_url", "image_url": {"url": "\#(data)", \#(Self.sizeFields)}}"#
        let app = Application(router: ServerFixture.visionLanguageServer().router())
        try await app.test(.router) { client in
            let (text, usage, _) = try await Self.answer(client, Self.body(part, question: question))
            XCTAssertEqual(text, expected)
            XCTAssertEqual(usage["cached_visual_tokens"] as? Int, 0)
        }
    }

    /// The second question reads a copy of the clip under another name: the cache goes by content.
    /// Other sizing options are another entry.
    func testFollowUpOnTheSameVideoTakesItsEmbeddingsFromTheCacheAndAnswersAlike() async throws {
        let copy = FileManager.default.temporaryDirectory.appendingPathComponent("baton-copy-\(UUID().uuidString).mp4")
        try FileManager.default.copyItem(at: Self.video, to: copy)
        addTeardownBlock { try? FileManager.default.removeItem(at: copy) }
        let server = ServerFixture.visionLanguageServer()
        let app = Application(router: server.router())
        try await app.test(.router) { client in
            let first = try await Self.answer(client, Self.body(Self.videoPart(Self.video.path)))
            let visualTokens = try XCTUnwrap(first.usage["visual_tokens"] as? Int)
            XCTAssertGreaterThan(visualTokens, 0)
            XCTAssertEqual(first.usage["cached_visual_tokens"] as? Int, 0)
            let second = try await Self.answer(client, Self.body(Self.videoPart(copy.path)))
            XCTAssertEqual(second.text, first.text)
            XCTAssertEqual(second.usage["cached_visual_tokens"] as? Int, visualTokens)
            let streamed = try await client.post(
                "/v1/chat/completions",
                Self.body(
                    Self.videoPart(copy.path), extra: #""stream": true, "stream_options": {"include_usage": true},"#))
            // The usage chunk is the last before [DONE].
            let payloads = eventPayloads(streamed.body)
            let usageChunk = try jsonObject(ByteBuffer(string: payloads[payloads.count - 2]))
            let streamedUsage = try XCTUnwrap((usageChunk["usage"] as? [String: Any])?["baton"] as? [String: Any])
            XCTAssertEqual(streamedUsage["cached_visual_tokens"] as? Int, visualTokens)
            let resized = try await Self.answer(
                client, Self.body(Self.videoPart(copy.path, options: #""max_pixels": 6272, "min_pixels": 6272"#)))
            XCTAssertEqual(resized.usage["cached_visual_tokens"] as? Int, 0)
        }
        let metrics = server.metrics.exposition()
        XCTAssertTrue(metrics.contains("baton_visual_cache_hits_total 2"), metrics)
        XCTAssertTrue(metrics.contains("baton_visual_cache_misses_total 2"), metrics)
        XCTAssertEqual(server.visualCache.count, 2)
    }

    /// Ring on two CPU ranks: each rank encodes one share of the temporal units. Run cold, its
    /// shares are cached as one whole video that dense then reads; dense's text either way.
    func testRingOnTwoRanksAnswersWithDenseTextCachedOrNot() async throws {
        let ring = #""baton": {"method": "ring"},"#
        let warm = Application(router: ServerFixture.visionLanguageServer(ranks: 2).router())
        let denseText = try await warm.test(.router) { client in
            let dense = try await Self.answer(client, Self.body(Self.videoPart(Self.video.path)))
            XCTAssertEqual(dense.method, "dense")
            let cachedRing = try await Self.answer(client, Self.body(Self.videoPart(Self.video.path), extra: ring))
            XCTAssertEqual(cachedRing.method, "ring")
            XCTAssertEqual(cachedRing.text, dense.text)
            XCTAssertGreaterThan(cachedRing.usage["cached_visual_tokens"] as? Int ?? 0, 0)
            return dense.text
        }
        let cold = Application(router: ServerFixture.visionLanguageServer(ranks: 2).router())
        try await cold.test(.router) { client in
            let coldRing = try await Self.answer(client, Self.body(Self.videoPart(Self.video.path), extra: ring))
            XCTAssertEqual(coldRing.method, "ring")
            XCTAssertEqual(coldRing.usage["cached_visual_tokens"] as? Int, 0)
            XCTAssertEqual(coldRing.text, denseText)
            let dense = try await Self.answer(client, Self.body(Self.videoPart(Self.video.path)))
            XCTAssertEqual(dense.text, denseText)
            XCTAssertGreaterThan(dense.usage["cached_visual_tokens"] as? Int ?? 0, 0)
        }
    }

    func testBadVisualPartsAre400NamingTheField() async throws {
        let garbage =
            "data:video/mp4;base64,"
            + Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7919 &+ 13) })
            .base64EncodedString()
        let app = Application(router: ServerFixture.visionLanguageServer().router())
        try await app.test(.router) { client in
            let url = "messages.0.content.0.video_url.url"
            for (source, needle) in [
                ("https://example.com/cat.mp4", "does not fetch"), ("/no/such/clip.mp4", "no such file"),
                ("ftp://host/clip.mp4", "unsupported URL scheme"), (garbage, "cannot read")
            ] {
                let error = try await expectError(
                    client, "/v1/chat/completions", Self.body(Self.videoPart(source)), status: .badRequest,
                    param: url)
                XCTAssertTrue((error["message"] as? String ?? "").contains(needle), "\(error)")
            }
            let fps = try await expectError(
                client, "/v1/chat/completions", Self.body(Self.videoPart(Self.video.path, options: #""fps": 0"#)),
                status: .badRequest, param: "messages.0.content.0.video_url")
            XCTAssertTrue((fps["message"] as? String ?? "").contains("fps must be"), "\(fps)")
            try await expectError(
                client, "/v1/chat/completions", Self.body(#"{"type": "video_url"}"#), status: .badRequest,
                param: "messages.0.content.0.video_url")
        }
    }

    /// 2,048 positions (the fixture's limit) cannot hold the video and 5,000 new tokens.
    func testVideoBeyondTheContextIs400WithFramesVisualTokensAndLimit() async throws {
        let app = Application(router: ServerFixture.visionLanguageServer().router())
        try await app.test(.router) { client in
            let body = Self.body(Self.videoPart(Self.video.path)).replacingOccurrences(
                of: #""max_tokens": 6"#, with: #""max_tokens": 5000"#)
            let error = try await expectError(
                client, "/v1/chat/completions", body, status: .badRequest, param: "messages")
            XCTAssertEqual(error["code"] as? String, "context_length_exceeded")
            let message = error["message"] as? String ?? ""
            for needle in ["video frames", "visual tokens", "max_position_embeddings (2048)", "max_frames"] {
                XCTAssertTrue(message.contains(needle), "\(message) should mention \(needle)")
            }
        }
    }
}
