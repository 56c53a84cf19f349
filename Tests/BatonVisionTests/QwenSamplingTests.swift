import BatonTensor
@testable import BatonVision
import XCTest

final class QwenSamplingTests: XCTestCase {
    func testFrameIndicesEqualTorchLinspaceRoundedForEveryStoredCase() throws {
        let fixture = try VideoFixture.load()
        XCTAssertGreaterThan(fixture.linspace.count, 50)
        for entry in fixture.linspace {
            XCTAssertEqual(
                QwenSampling.frameIndices(totalFrames: entry.total, count: entry.count), entry.indices,
                "linspace(0, \(entry.total) - 1, \(entry.count))")
        }
    }

    /// Frame count, indices, sample fps and frame size from the stream facts qwen-vl-utils read,
    /// for every stored option set (defaults, fps 1, small pixel budgets).
    func testSamplingAndSizeEqualQwenVLUtilsFromTheSameStreamFacts() throws {
        let fixture = try VideoFixture.load()
        for entry in fixture.videos {
            let options = entry.options.videoOptions
            let count = try QwenSampling.frameCount(
                totalFrames: entry.total_frames, videoFPS: entry.video_fps,
                options: options, file: entry.clip)
            XCTAssertEqual(
                QwenSampling.frameIndices(totalFrames: entry.total_frames, count: count), entry.frame_indices,
                entry.name)
            XCTAssertEqual(
                Double(count) / Double(entry.total_frames) * entry.video_fps, entry.sample_fps,
                accuracy: 1e-12, entry.name)
            let bounds = QwenSampling.videoPixelBounds(frames: count, options: options)
            let size = try QwenSampling.smartResize(
                height: heightOf(entry),
                width: widthOf(entry), minPixels: bounds.min,
                maxPixels: bounds.max, file: entry.clip)
            XCTAssertEqual([size.height, size.width], entry.resized, entry.name)
        }
    }

    func testSmartResizeTiesRoundToEvenAndKeepsBounds() throws {
        // 42 / 28 = 1.5 rounds to 2 (even), 70 / 28 = 2.5 rounds to 2 (even): Swift's default would give 3.
        let size = try QwenSampling.smartResize(height: 42, width: 70, minPixels: 0, maxPixels: 1e9, file: "x")
        XCTAssertEqual(size.height, 56)
        XCTAssertEqual(size.width, 56)
        let shrunk = try QwenSampling.smartResize(
            height: 1080, width: 1920, minPixels: 3136,
            maxPixels: Double(QwenSampling.videoMaxPixels), file: "x")
        XCTAssertLessThanOrEqual(shrunk.height * shrunk.width, QwenSampling.videoMaxPixels)
        XCTAssertEqual(shrunk.height % 28, 0)
        XCTAssertEqual(shrunk.width % 28, 0)
    }

    func testExtremeAspectRatioIsRefusedNamingTheFile() {
        XCTAssertThrowsError(
            try QwenSampling.smartResize(
                height: 2, width: 500, minPixels: 0, maxPixels: 1e9,
                file: "wide.mp4")
        ) { error in
            XCTAssertTrue("\(error)".contains("wide.mp4"), "\(error)")
        }
    }

    func testOneFrameVideoHasZeroFramesAfterSampling() {
        XCTAssertThrowsError(
            try QwenSampling.frameCount(
                totalFrames: 1, videoFPS: 25, options: VideoOptions(),
                file: "one.mp4")
        ) { error in
            XCTAssertTrue("\(error)".contains("one.mp4: zero frames after sampling"), "\(error)")
        }
    }

    func testVideoOptionsValidationNamesTheFlag() {
        let bad: [(VideoOptions, String)] = [
            (VideoOptions(fps: 0), "--fps"), (VideoOptions(fps: .nan), "--fps"),
            (VideoOptions(maxFrames: 1), "--max-frames"),
            (VideoOptions(minPixels: 10), "--min-pixels"), (VideoOptions(maxPixels: 100), "--max-pixels"),
            (VideoOptions(minPixels: 100_000, maxPixels: 50_000), "--max-pixels")
        ]
        for (options, flag) in bad {
            XCTAssertThrowsError(try options.validated()) { error in
                XCTAssertTrue("\(error)".contains(flag), "\(error) should name \(flag)")
            }
        }
        XCTAssertNoThrow(try VideoOptions(fps: 1, maxFrames: 64, minPixels: 3136, maxPixels: 50176).validated())
    }

    func testProcessorConfigReadsBothSpellingsOfTheBounds() throws {
        let legacy =
            #"{"min_pixels": 3136, "max_pixels": 12845056, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}"#
        let v5 = #"{"size": {"shortest_edge": 6272, "longest_edge": 50176}, "patch_size": 14}"#
        let a = try JSONDecoder().decode(QwenProcessorConfig.self, from: Data(legacy.utf8))
        XCTAssertEqual(a.minPixels, 3136)
        XCTAssertEqual(a.imageMean, [0.5, 0.5, 0.5])
        let b = try JSONDecoder().decode(QwenProcessorConfig.self, from: Data(v5.utf8))
        XCTAssertEqual(b.minPixels, 6272)
        XCTAssertEqual(b.maxPixels, 50176)
        XCTAssertEqual(b.imageStd, QwenProcessorConfig().imageStd)
    }

    /// Stream size of the clips the fixture cases were made from.
    private func heightOf(_ entry: VideoFixture.VideoCase) -> Int { clipSize(entry.clip).height }
    private func widthOf(_ entry: VideoFixture.VideoCase) -> Int { clipSize(entry.clip).width }
    private func clipSize(_ clip: String) -> (height: Int, width: Int) {
        switch clip {
        case "Megamind.avi": (528, 720)
        case "testsrc_mpeg4.mkv": (144, 176)
        default: (120, 160)
        }
    }
}
