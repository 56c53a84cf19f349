import BatonTensor
import BatonVision
import Foundation
import XCTest

/// `Tests/Fixtures/internvl-processor/expected.json`, written by `scripts/internvl_processor_reference.py`
/// from OpenGVLab's loader logic (`dynamic_preprocess`, `build_transform`, `get_index`) run with Pillow
/// and torchvision.
struct InternVLFixture: Decodable {
    struct Tiling: Decodable {
        var size: [Int]
        var min_tiles: Int
        var max_tiles: Int
        var grid: [Int]
    }

    struct FrameIndices: Decodable {
        var total_frames: Int
        var segments: Int
        var indices: [Int]
    }

    /// Checksums of patch rows [rows, 588]: every tile's sum, the sums of every `row_stride`-th row,
    /// and single values at (row, column).
    struct Rows: Decodable {
        var rows: Int
        var tile_sums: [Double]
        var row_stride: Int
        var row_sums: [Double]
        var samples: [[Double]]
    }

    struct ImageCase: Decodable {
        var name: String
        var size: [Int]
        var min_tiles: Int
        var max_tiles: Int
        var grid: [Int]
        var tiles: Int
        var checks: Rows

        enum CodingKeys: String, CodingKey { case name, size, min_tiles, max_tiles, grid, tiles }

        init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            name = try c.decode(String.self, forKey: .name)
            size = try c.decode([Int].self, forKey: .size)
            min_tiles = try c.decode(Int.self, forKey: .min_tiles)
            max_tiles = try c.decode(Int.self, forKey: .max_tiles)
            grid = try c.decode([Int].self, forKey: .grid)
            tiles = try c.decode(Int.self, forKey: .tiles)
            checks = try Rows(from: decoder)
        }
    }

    struct VideoCase: Decodable {
        var name: String
        var clip: String
        var total_frames: Int
        var segments: Int
        var frame_indices: [Int]
        var checks: Rows

        enum CodingKeys: String, CodingKey { case name, clip, total_frames, segments, frame_indices }

        init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            name = try c.decode(String.self, forKey: .name)
            clip = try c.decode(String.self, forKey: .clip)
            total_frames = try c.decode(Int.self, forKey: .total_frames)
            segments = try c.decode(Int.self, forKey: .segments)
            frame_indices = try c.decode([Int].self, forKey: .frame_indices)
            checks = try Rows(from: decoder)
        }
    }

    var tiling: [Tiling]
    var frame_indices: [FrameIndices]
    var images: [ImageCase]
    var videos: [VideoCase]

    static func load() throws -> InternVLFixture {
        let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/internvl-processor/expected.json")
        return try JSONDecoder().decode(InternVLFixture.self, from: Data(contentsOf: file))
    }

    /// Baton's rows against the reference checksums. Identical uint8 tiles give identical float32
    /// values (both compute (v/255 − mean)/std in float32), so the bounds only absorb the rounding of
    /// the stored sums; a resize off by one level somewhere moves a value by ≥ 0.017.
    static func compare(
        _ rows: Tensor, _ expected: Rows, name: String, file: StaticString = #filePath, line: UInt = #line
    ) {
        let width = 588
        XCTAssertEqual(rows.shape.dimensions, [expected.rows, width], name, file: file, line: line)
        guard rows.shape.dimensions == [expected.rows, width] else { return }
        let values = rows.floats()
        var worst: Float = 0
        for sample in expected.samples {
            let (row, column) = (Int(sample[0]), Int(sample[1]))
            worst = max(worst, abs(values[row * width + column] - Float(sample[2])))
        }
        XCTAssertLessThanOrEqual(worst, 1e-6, "\(name): largest |diff| of \(expected.samples.count) sampled values")
        for (k, row) in stride(from: 0, to: expected.rows, by: expected.row_stride).enumerated() {
            let sum = (0..<width).reduce(0.0) { $0 + Double(values[row * width + $1]) }
            XCTAssertEqual(sum, expected.row_sums[k], accuracy: 1e-3, "\(name): row \(row) sum", file: file, line: line)
        }
        let tileValues = 1024 * width
        for (tile, expectedSum) in expected.tile_sums.enumerated() {
            let sum = values[(tile * tileValues)..<((tile + 1) * tileValues)].reduce(0.0) { $0 + Double($1) }
            XCTAssertEqual(sum, expectedSum, accuracy: 1e-3, "\(name): tile \(tile) sum", file: file, line: line)
        }
    }
}
