import BatonEngine
import BatonVision
import Foundation
import Hummingbird
import HummingbirdTesting
import XCTest

@testable import BatonServer

/// Chat requests with image and video parts on the tiny InternVL fixture: the answer is `baton
/// generate`'s greedy text through the same family-neutral path, and a follow-up on the same image
/// reads its tiles' embeddings from the encoder cache and answers alike.
final class InternVLChatTests: XCTestCase {
    static let directory = ServerFixture.fixtures.appendingPathComponent("tiny-internvl")
    static let engine: Engine = {
        do {
            return try Engine.load(EngineOptions(modelDirectory: directory, showProgress: false))
        } catch {
            fatalError("loading \(directory.path): \(error)")
        }
    }()

    override func setUpWithError() throws {
        do { _ = try FFmpegTools.locate() } catch { throw XCTSkip("needs ffmpeg: \(error)") }
    }

    static func server(ranks: Int = 1) -> OpenAIServer {
        OpenAIServer(
            engine: engine,
            options: ServerOptions(
                host: "127.0.0.1", port: 0, modelName: "tiny-internvl", ranks: ranks, visualCacheBytes: 16 << 20))
    }

    static func body(_ part: String, question: String, extra: String = "") -> String {
        #"{"model": "tiny-internvl", "max_tokens": 6, "temperature": 0, \#(extra) "messages": "#
            + #"[{"role": "user", "content": [\#(part), {"type": "text", "text": "\#(question)"}]}]}"#
    }

    func testImageTilesAnswerWithGeneratesTextAndComeFromTheCacheOnAFollowUp() async throws {
        let image = ServerFixture.clips.appendingPathComponent("testsrc.png")
        let question = "Describe the picture."
        let expected = try generateText(["--image", image.path, "--prompt", question], model: Self.directory)
        let part = #"{"type": "image_url", "image_url": {"url": "\#(image.path)"}}"#
        let app = Application(router: Self.server().router())
        try await app.test(.router) { client in
            let first = try await VisualChatTests.answer(client, Self.body(part, question: question))
            XCTAssertEqual(first.text, expected)
            // 13 tiles (12 dynamic tiles and the thumbnail) of 4 tokens each at the fixture's 56 px.
            XCTAssertEqual(first.usage["visual_tokens"] as? Int, 52)
            XCTAssertEqual(first.usage["cached_visual_tokens"] as? Int, 0)
            let second = try await VisualChatTests.answer(client, Self.body(part, question: question))
            XCTAssertEqual(second.text, expected)
            XCTAssertEqual(second.usage["cached_visual_tokens"] as? Int, 52)
        }
    }

    func testVideoFramesOnTwoRanksAnswerWithGeneratesText() async throws {
        let video = ServerFixture.clips.appendingPathComponent("testsrc_h264.mp4")
        let question = "What happens?"
        let expected = try generateText(
            ["--video", video.path, "--max-frames", "4", "--prompt", question], model: Self.directory)
        let part = #"{"type": "video_url", "video_url": {"url": "\#(video.path)", "max_frames": 4}}"#
        let app = Application(router: Self.server(ranks: 2).router())
        try await app.test(.router) { client in
            let ring = try await VisualChatTests.answer(
                client, Self.body(part, question: question, extra: #""baton": {"method": "ring"},"#))
            XCTAssertEqual(ring.text, expected)
            XCTAssertEqual(ring.usage["visual_tokens"] as? Int, 16)
        }
    }
}
