import BatonTensor
@testable import BatonVision
import Foundation
import XCTest

/// InternVL3 preprocessing against OpenGVLab's loader logic run in Python
/// (Tests/Fixtures/internvl-processor): tiling grids, segment-middle frame indices, patch rows of a
/// synthetic image, a PNG and a real H.264 clip through Baton's decoder.
final class InternVLProcessorTests: XCTestCase {
    func testTilingGridsEqualDynamicPreprocessForSizesAndTileLimits() throws {
        let fixture = try InternVLFixture.load()
        XCTAssertGreaterThanOrEqual(fixture.tiling.count, 100)
        for entry in fixture.tiling {
            let config = InternVLProcessorConfig(minTiles: entry.min_tiles, maxTiles: entry.max_tiles)
            let grid = InternVLTiling.grid(width: entry.size[0], height: entry.size[1], config: config)
            XCTAssertEqual(
                [grid.columns, grid.rows], entry.grid, "\(entry.size) in \(entry.min_tiles)...\(entry.max_tiles) tiles")
        }
    }

    /// The tie rule: a square image keeps taking the next square grid while it covers more than half
    /// of that grid's canvas (448² · n / 2).
    func testSquareImagesTakeLargerSquareGridsOnlyWhileTheyCoverHalfTheCanvas() {
        let config = InternVLProcessorConfig()
        XCTAssertEqual(InternVLTiling.grid(width: 448, height: 448, config: config).columns, 1)
        XCTAssertEqual(InternVLTiling.grid(width: 634, height: 634, config: config).columns, 2)  // 401,956 > 401,408
        XCTAssertEqual(InternVLTiling.grid(width: 633, height: 633, config: config).columns, 1)
        XCTAssertEqual(InternVLTiling.grid(width: 951, height: 951, config: config).columns, 3)
        XCTAssertEqual(InternVLTiling.grid(width: 950, height: 950, config: config).columns, 2)
        XCTAssertEqual(InternVLTiling.candidates(minTiles: 1, maxTiles: 12).count, 35)
    }

    func testFrameIndicesEqualGetIndexSegmentMiddles() throws {
        let fixture = try InternVLFixture.load()
        for entry in fixture.frame_indices {
            XCTAssertEqual(
                InternVLVideoPlan.frameIndices(totalFrames: entry.total_frames, count: entry.segments), entry.indices,
                "\(entry.segments) of \(entry.total_frames) frames")
        }
    }

    /// Row r of a tile is patch (2bh + dy, 2bw + dx) with r = ((bh·16 + bw)·2 + dy)·2 + dx, and column
    /// j is channel j/196, kernel row (j%196)/14, kernel column j%14: a tile whose red byte is the patch
    /// row, green the patch column and blue the position inside the patch says where every value came from.
    func testRowsAreMergeUnitOrderedAndColumnsAreChannelKernelRowKernelColumn() {
        let config = InternVLProcessorConfig()
        var pixels = [UInt8](repeating: 0, count: 448 * 448 * 3)
        for y in 0..<448 {
            for x in 0..<448 {
                pixels[(y * 448 + x) * 3] = UInt8(y / 14)
                pixels[(y * 448 + x) * 3 + 1] = UInt8(x / 14)
                pixels[(y * 448 + x) * 3 + 2] = UInt8((y % 14) * 14 + x % 14)
            }
        }
        let tile = RGBFrame(width: 448, height: 448, pixels: pixels)
        let rows = InternVLImage.patchRows([tile, tile], config: config)
        XCTAssertEqual(rows.shape.dimensions, [2048, 588])
        let values = rows.floats(), table = config.normalisationTable
        var wrong = 0
        for r in 0..<2048 {
            let unit = (r % 1024) / 4, dy = (r % 4) / 2, dx = r % 2
            let py = 2 * (unit / 16) + dy, px = 2 * (unit % 16) + dx
            for j in 0..<588 {
                let c = j / 196, ky = (j % 196) / 14, kx = j % 14
                let byte = [py, px, ky * 14 + kx][c]
                if values[r * 588 + j] != table[256 * c + byte] { wrong += 1 }
            }
        }
        XCTAssertEqual(wrong, 0)
    }

    /// A 500x300 formula image (3x2 grid + thumbnail) and a 300x500 one with at most 6 tiles
    /// (2x3 + thumbnail), through Pillow-bicubic tiling and ImageNet normalisation.
    func testSyntheticImagePatchRowsEqualTheReferenceLoader() throws {
        let fixture = try InternVLFixture.load()
        for entry in fixture.images where entry.name.hasPrefix("pattern") {
            let frame = BicubicResamplerTests.pattern(height: entry.size[1], width: entry.size[0])
            let config = InternVLProcessorConfig(minTiles: entry.min_tiles, maxTiles: entry.max_tiles)
            let input = InternVLImage.preprocess(frame: frame, config: config)
            XCTAssertEqual(input.grid, VisionGrid(t: entry.tiles, h: 32, w: 32), entry.name)
            XCTAssertEqual(input.tokenCount, 256 * entry.tiles, entry.name)
            XCTAssertNil(input.secondPerGridT)
            InternVLFixture.compare(input.pixelValues, entry.checks, name: entry.name)
        }
    }

    /// testsrc.png (100x75) decoded by ffmpeg: lossless, so the pixels are Pillow's; 4x3 tiles + thumbnail.
    func testPNGThroughTheDecoderEqualsTheReferenceLoader() throws {
        let tools = try requireFFmpeg()
        let fixture = try InternVLFixture.load()
        let entry = try XCTUnwrap(fixture.images.first { $0.name == "testsrc_png" })
        let input = try InternVLImage.preprocess(
            VideoFixture.directory.appendingPathComponent("clips/testsrc.png"), config: InternVLProcessorConfig(),
            tools: tools)
        XCTAssertEqual(entry.grid, [4, 3])
        XCTAssertEqual(input.grid.t, 13)
        InternVLFixture.compare(input.pixelValues, entry.checks, name: entry.name)
    }

    func testOneTileFrameIsTheSquashedImageWithoutThumbnail() {
        let frame = BicubicResamplerTests.pattern(height: 300, width: 500)
        let tiles = InternVLImage.tiles(of: frame, maxTiles: 1)
        XCTAssertEqual(tiles, [BicubicResampler.resize(frame, height: 448, width: 448, precision: .pillow)])
        let unthumbed = InternVLImage.tiles(of: frame, config: InternVLProcessorConfig(useThumbnail: false))
        XCTAssertEqual(unthumbed.count, 6)
    }

    /// testsrc_h264.mp4 (96 frames), 8 segments: frames 5, 17, ..., 88, one tile each, and a rank's
    /// share of temporal units equals those rows of the whole video.
    func testVideoPlanOnAnH264ClipEqualsTheReferenceLoaderAndSplitsByFrame() throws {
        let tools = try requireFFmpeg()
        let fixture = try InternVLFixture.load()
        let entry = try XCTUnwrap(fixture.videos.first)
        let clip = VideoFixture.clipURL(entry.clip)
        let plan = try InternVLVideoPlan.make(file: clip, frames: entry.segments, tools: tools)
        XCTAssertEqual(plan.stream.frameCount, entry.total_frames)
        XCTAssertEqual(plan.frameIndices, entry.frame_indices)
        XCTAssertEqual(plan.grid, VisionGrid(t: 8, h: 32, w: 32))
        XCTAssertEqual(plan.temporalUnits, 8)
        XCTAssertNil(plan.secondsPerTemporalUnit)
        XCTAssertEqual(plan.timestamps.count, 8)
        XCTAssertEqual(plan.timestamps[1], Double(entry.frame_indices[1]) / plan.stream.averageFPS, accuracy: 1e-3)
        let whole = try plan.preprocess()
        XCTAssertEqual(whole.kind, .video)
        XCTAssertEqual(whole.tokenCount, 8 * 256)
        XCTAssertNil(whole.secondPerGridT)
        InternVLFixture.compare(whole.pixelValues, entry.checks, name: entry.name)
        let part = try plan.preprocess(temporalUnits: 2..<5)
        XCTAssertEqual(part.floats(), whole.pixelValues.rows((2 * 1024)..<(5 * 1024)).floats())
        XCTAssertEqual(try plan.preprocess(temporalUnits: 3..<3).shape.dimensions, [0, 588])
        let planned: any VideoPlanning = plan
        XCTAssertEqual(planned.grid.tokenCount, 2048)
    }

    func testVideoOptionsGiveTheFrameCountCappedAtTheStream() throws {
        let tools = try requireFFmpeg()
        let clip = VideoFixture.clipURL("testsrc_h264.mp4")
        let eight = try InternVLVideoPlan.make(file: clip, options: VideoOptions(maxFrames: 8), tools: tools)
        XCTAssertEqual(eight.frameIndices, [5, 17, 29, 41, 53, 64, 76, 88])
        let all = try InternVLVideoPlan.make(file: clip, options: VideoOptions(maxFrames: 500), tools: tools)
        XCTAssertEqual(all.frameIndices, InternVLVideoPlan.frameIndices(totalFrames: 96, count: 96))
        XCTAssertEqual(all.frameIndices.count, 96)
        XCTAssertEqual(all.frameIndices.filter { $0 == 48 }.count, 2, "get_index repeats a frame here")
        let standard = try InternVLVideoPlan.make(file: clip, options: VideoOptions(), tools: tools)
        XCTAssertEqual(standard.frameIndices.count, InternVLVideoPlan.defaultFrames)
    }

    func testAskingForMoreFramesThanTheVideoHasIsAnErrorNamingBoth() throws {
        let tools = try requireFFmpeg()
        let clip = VideoFixture.clipURL("testsrc_h264.mp4")
        XCTAssertThrowsError(try InternVLVideoPlan.make(file: clip, frames: 97, tools: tools)) { error in
            let error = error as? BatonError
            XCTAssertEqual(error?.kind, .invalidArgument)
            XCTAssertTrue(error?.message.contains("96 frames") == true, "\(String(describing: error))")
            XCTAssertTrue(error?.message.contains("97") == true, "\(String(describing: error))")
        }
        XCTAssertThrowsError(try InternVLVideoPlan.make(file: clip, frames: 0, tools: tools))
        XCTAssertThrowsError(
            try InternVLVideoPlan.make(file: clip.appendingPathExtension("missing"), frames: 4, tools: tools))
    }
}
