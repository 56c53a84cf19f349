import BatonTensor
@testable import BatonVision
import Foundation
import XCTest

/// Baton's processor output for real clips against qwen-vl-utils + transformers' Qwen2-VL video and
/// image processors (Tests/Fixtures/video). Frame indices, grids and the stream facts must be equal;
/// patch values agree within `tolerance`.
final class VideoFixtureTests: XCTestCase {
    /// Largest allowed |Baton - transformers| of a normalised value: one uint8 level in the
    /// channel with the smallest std, 1 / (255 · 0.26130258) = 0.01501, where a resize sum lands
    /// within float rounding of .5 and rounds the other way; anything structural (a wrong frame, a
    /// wrong patch order) is far larger.
    static let tolerance: Float = 0.0151
    /// And at most this fraction of values may differ at all (by more than float noise).
    static let differingFraction = 0.002

    private func compare(rows: Tensor, entryName: String, rowCount: Int, rowStride: Int, file: String, sums: [Double])
        throws
    {
        XCTAssertEqual(rows.shape.dimensions, [rowCount, 1176], entryName)
        let values = rows.floats()
        let reference = try VideoFixture.storedRows(file)
        var maxDifference: Float = 0, differing = 0, compared = 0
        for (k, row) in stride(from: 0, to: rowCount, by: rowStride).enumerated() {
            for i in 0..<1176 {
                let d = abs(values[row * 1176 + i] - reference[k * 1176 + i])
                maxDifference = max(maxDifference, d)
                if d > 1e-5 { differing += 1 }
                compared += 1
            }
        }
        XCTAssertEqual(compared, reference.count, "\(entryName): stored rows")
        XCTAssertLessThanOrEqual(maxDifference, Self.tolerance, "\(entryName): max |diff| over stored rows")
        XCTAssertLessThanOrEqual(
            Double(differing) / Double(compared), Self.differingFraction, "\(entryName): \(differing) differ")
        // Every row's sum: 1176 values, each off by at most one level, and only a few of them.
        for row in 0..<rowCount {
            let sum = (0..<1176).reduce(0.0) { $0 + Double(values[row * 1176 + $1]) }
            XCTAssertEqual(sum, sums[row], accuracy: 0.2, "\(entryName): row \(row) sum")
        }
        print("\(entryName): max |diff| \(maxDifference), \(differing) of \(compared) stored values differ")
    }

    func testVideoPatchesIndicesAndGridsEqualTransformersForH264VP9MJPEGAndMPEG4Clips() throws {
        let tools = try requireFFmpeg()
        let fixture = try VideoFixture.load()
        var checked = 0
        for entry in fixture.videos where entry.rows_file != nil {
            let clip = VideoFixture.clipURL(entry.clip)
            guard FileManager.default.fileExists(atPath: clip.path) else {
                print("skipping \(entry.name): \(clip.path) is missing (apt-get download opencv-doc; see .ci/run)")
                continue
            }
            let plan = try VideoPlan.make(file: clip, options: entry.options.videoOptions, tools: tools)
            XCTAssertEqual(plan.stream.frameCount, entry.total_frames, "\(entry.name): frame count")
            XCTAssertEqual(plan.stream.averageFPS, entry.video_fps, accuracy: 1e-9, "\(entry.name): fps")
            XCTAssertEqual(plan.frameIndices, entry.frame_indices, "\(entry.name): frame indices")
            XCTAssertEqual([plan.height, plan.width], entry.resized, "\(entry.name): size")
            XCTAssertEqual([plan.grid.t, plan.grid.h, plan.grid.w], entry.grid, "\(entry.name): grid")
            XCTAssertEqual(plan.secondPerGridT, entry.second_per_grid_t!, accuracy: 1e-12, "\(entry.name)")
            let input = try plan.preprocess()
            XCTAssertEqual(input.tokenCount, entry.grid!.reduce(1, *) / 4)
            XCTAssertEqual(input.timestamps.count, entry.frame_indices.count)
            try compare(
                rows: input.pixelValues, entryName: entry.name, rowCount: entry.rows!, rowStride: entry.row_stride!,
                file: entry.rows_file!, sums: entry.row_sums!)
            checked += 1
        }
        XCTAssertGreaterThanOrEqual(checked, 4, "the four committed clips")
    }

    func testSamplingOfTheRealClipMegamindEqualsQwenVLUtils() throws {
        let tools = try requireFFmpeg()
        let fixture = try VideoFixture.load()
        let clip = VideoFixture.clipURL("Megamind.avi")
        guard FileManager.default.fileExists(atPath: clip.path) else {
            throw XCTSkip("\(clip.path) missing: apt-get download opencv-doc && dpkg-deb -x opencv-doc_*.deb /tmp/ocv")
        }
        for entry in fixture.videos where entry.clip == "Megamind.avi" {
            let plan = try VideoPlan.make(file: clip, options: entry.options.videoOptions, tools: tools)
            XCTAssertEqual(plan.frameIndices, entry.frame_indices, entry.name)
            XCTAssertEqual(plan.sampledFPS, entry.sample_fps, accuracy: 1e-9, entry.name)
            XCTAssertEqual([plan.height, plan.width], entry.resized, entry.name)
        }
    }

    func testImagePatchesEqualTransformersForPNGAndGridForJPEG() throws {
        let tools = try requireFFmpeg()
        let fixture = try VideoFixture.load()
        for entry in fixture.images {
            let input = try VisionInput.image(
                VideoFixture.directory.appendingPathComponent("clips/\(entry.image)"), tools: tools)
            XCTAssertEqual([input.grid.t, input.grid.h, input.grid.w], entry.grid, entry.name)
            XCTAssertNil(input.secondPerGridT)
            if entry.image.hasSuffix(".png") {
                // Lossless: ffmpeg and Pillow decode the same pixels, so only the resize can differ.
                try compare(
                    rows: input.pixelValues, entryName: entry.name, rowCount: entry.rows, rowStride: entry.row_stride,
                    file: entry.rows_file, sums: entry.row_sums)
            } else {
                // JPEG: ffmpeg's decoder and Pillow's libjpeg differ in IDCT and chroma upsampling, so
                // only the mean difference is bounded: under 3 uint8 levels (0.045 after normalising; measured
                // 0.028 with the scaler flags `FrameDecoder.decodeFirstFrame` sets).
                let values = input.pixelValues.floats(), reference = try VideoFixture.storedRows(entry.rows_file)
                var total: Float = 0
                for (k, row) in stride(from: 0, to: entry.rows, by: entry.row_stride).enumerated() {
                    for i in 0..<1176 { total += abs(values[row * 1176 + i] - reference[k * 1176 + i]) }
                }
                let mean = total / Float(reference.count)
                print("\(entry.name): mean |diff| \(mean) (decoders differ)")
                XCTAssertLessThan(mean, 0.045, entry.name)
            }
        }
    }

    /// Frame-parallel encoding: a rank preprocessing temporal units 1..<3 gets exactly those rows of
    /// the whole video, decoding only their frames.
    func testPreprocessingARangeOfTemporalUnitsEqualsThoseRowsOfTheWholeVideo() throws {
        let tools = try requireFFmpeg()
        let clip = VideoFixture.clipURL("testsrc_h264.mp4")
        let options = VideoOptions(minPixels: 6272, maxPixels: 50176)
        let plan = try VideoPlan.make(file: clip, options: options, tools: tools)
        XCTAssertEqual(plan.temporalUnits, 3)
        let whole = try plan.preprocess().pixelValues
        let part = try plan.preprocess(temporalUnits: 1..<3)
        let unitRows = plan.grid.h * plan.grid.w
        XCTAssertEqual(part.floats(), whole.rows(unitRows..<(3 * unitRows)).floats())
        XCTAssertEqual(plan.framePositions(temporalUnits: 1..<3), [2, 3, 4, 5])
        XCTAssertEqual(try plan.decodeFrames(temporalUnits: 2..<3).count, 2)
    }
}
