import BatonTensor
@testable import BatonVision
import Foundation
import XCTest

/// Bad input: one error line naming the file and what is wrong, never a crash.
final class VideoInputErrorTests: XCTestCase {
    private func assertError(
        _ body: () throws -> Void, mentions parts: [String],
        file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            let text = "\(error)"
            XCTAssertFalse(text.contains("\n"), "one line: \(text)", file: file, line: line)
            for part in parts {
                XCTAssertTrue(text.contains(part), "\(text) should mention \(part)", file: file, line: line)
            }
        }
    }

    func testMissingFileIsNamed() throws {
        let tools = try requireFFmpeg()
        assertError(
            { _ = try VisionInput.video(URL(fileURLWithPath: "/nonexistent/clip.mp4"), tools: tools) },
            mentions: ["/nonexistent/clip.mp4", "no such file"])
        assertError(
            { _ = try VisionInput.image(URL(fileURLWithPath: "/nonexistent/a.png"), tools: tools) },
            mentions: ["/nonexistent/a.png", "no such file"])
    }

    func testCorruptFileIsNamed() throws {
        let tools = try requireFFmpeg()
        let directory = try temporaryDirectory()
        let clip = directory.appendingPathComponent("garbage.mp4")
        try Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7919 &+ 13) }).write(to: clip)
        assertError({ _ = try VisionInput.video(clip, tools: tools) }, mentions: [clip.path, "cannot read"])
        let image = directory.appendingPathComponent("garbage.png")
        try Data(repeating: 0x42, count: 300).write(to: image)
        assertError({ _ = try VisionInput.image(image, tools: tools) }, mentions: [image.path])
    }

    func testAudioOnlyFileHasNoVideoStream() throws {
        let tools = try requireFFmpeg()
        let clip = try temporaryDirectory().appendingPathComponent("tone.wav")
        try runFFmpeg(tools, ["-f", "lavfi", "-i", "sine=frequency=440:duration=1", clip.path])
        assertError({ _ = try VisionInput.video(clip, tools: tools) }, mentions: [clip.path, "no video stream"])
    }

    func testOneFrameVideoHasZeroFramesAfterSampling() throws {
        let tools = try requireFFmpeg()
        let clip = try temporaryDirectory().appendingPathComponent("still.mp4")
        try runFFmpeg(
            tools, ["-f", "lavfi", "-i", "testsrc2=size=64x48:rate=25", "-frames:v", "1", "-c:v", "mpeg4", clip.path])
        assertError(
            { _ = try VisionInput.video(clip, tools: tools) }, mentions: [clip.path, "zero frames after sampling"])
    }

    func testBadBatonFFmpegIsNamed() {
        assertError(
            { _ = try FFmpegTools.locate(environment: ["BATON_FFMPEG": "/nonexistent/ffmpeg"]) },
            mentions: ["BATON_FFMPEG", "/nonexistent/ffmpeg"])
    }

    func testMissingFFmpegMessageSaysWhatToInstall() {
        XCTAssertTrue(FFmpegTools.missingMessage.contains("apt-get install ffmpeg"))
        XCTAssertTrue(FFmpegTools.missingMessage.contains("pip install imageio-ffmpeg"))
    }

    /// The ffmpeg-only probe (imageio-ffmpeg ships no ffprobe) reads the same stream facts.
    func testProbingWithoutFFprobeAgreesWithFFprobe() throws {
        let tools = try requireFFmpeg()
        guard tools.ffprobe != nil else { throw XCTSkip("needs ffprobe to compare with") }
        for name in ["testsrc_h264.mp4", "testsrc_vp9.webm", "testsrc_mjpeg.avi", "testsrc_mpeg4.mkv"] {
            let clip = VideoFixture.clipURL(name)
            let withProbe = try VideoProbe.probe(clip, tools: tools)
            let alone = try VideoProbe.probe(clip, tools: FFmpegTools(ffmpeg: tools.ffmpeg, ffprobe: nil))
            XCTAssertEqual(alone.frameCount, withProbe.frameCount, name)
            XCTAssertEqual(alone.width, withProbe.width, name)
            XCTAssertEqual(alone.height, withProbe.height, name)
            XCTAssertEqual(alone.averageFPS, withProbe.averageFPS, accuracy: 1e-3 * withProbe.averageFPS, name)
            XCTAssertEqual(alone.frameTimestamps.count, withProbe.frameTimestamps.count, name)
        }
    }
}
