import BatonTensor
import Foundation

/// InternVL's dynamic tiling (`dynamic_preprocess` / `find_closest_aspect_ratio` in OpenGVLab's
/// loader; transformers' GotOcr2 `get_optimal_tiled_canvas` is the same rule): an image becomes a
/// grid of square tiles whose shape is closest to the image's.
public enum InternVLTiling {
    /// Grids (columns, rows) with min <= columns·rows <= max, in the order they are tried: by tile
    /// count, then columns, then rows ascending. The original sorts a Python set, whose order among
    /// equal counts differs; that matters only for an aspect ratio exactly midway between two grids of
    /// one count with no better grid allowed (e.g. min = max = 4 and a 5:2 image), where transformers
    /// and the original already disagree.
    public static func candidates(minTiles: Int, maxTiles: Int) -> [(columns: Int, rows: Int)] {
        guard maxTiles >= 1, minTiles <= maxTiles else { return [] }
        var grids: [(columns: Int, rows: Int)] = []
        for columns in 1...maxTiles {
            for rows in 1...maxTiles where (minTiles...maxTiles).contains(columns * rows) {
                grids.append((columns, rows))
            }
        }
        // Swift's sort is stable, so grids of one count keep the columns-then-rows order.
        return grids.sorted { $0.columns * $0.rows < $1.columns * $1.rows }
    }

    /// The grid a `width` x `height` image is cut into: the candidate whose columns/rows is nearest to
    /// width/height; on an exact tie a later (larger) candidate wins while the image's area exceeds half
    /// of that grid's canvas (so a big square image gets 2x2 or 3x3 tiles, a small one 1x1).
    public static func grid(width: Int, height: Int, config: InternVLProcessorConfig) -> (columns: Int, rows: Int) {
        precondition(width > 0 && height > 0, "tiling a \(width)x\(height) image")
        let aspect = Double(width) / Double(height), area = Double(width) * Double(height)
        let tile = Double(config.tileSize)
        var best = (columns: 1, rows: 1), bestDifference = Double.infinity
        for grid in candidates(minTiles: config.minTiles, maxTiles: config.maxTiles) {
            let difference = abs(aspect - Double(grid.columns) / Double(grid.rows))
            if difference < bestDifference {
                (best, bestDifference) = (grid, difference)
            } else if difference == bestDifference, area > 0.5 * tile * tile * Double(grid.columns * grid.rows) {
                best = grid
            }
        }
        return best
    }
}

/// InternVL3's image preprocessing: tiles, each 448x448 RGB resized with Pillow's bicubic filter as
/// `Image.resize` does, normalised with ImageNet statistics, cut into 14x14 patch rows.
public enum InternVLImage {
    /// An image file (png, jpeg, anything ffmpeg reads), decoded with ffmpeg, then `preprocess(frame:)`.
    public static func preprocess(
        _ file: URL, config: InternVLProcessorConfig = InternVLProcessorConfig(), tools: FFmpegTools
    ) throws -> VisualInput {
        preprocess(frame: try FrameDecoder.decodeFirstFrame(file, tools: tools), config: config)
    }

    /// One picture as InternVL's loader feeds it: `tiles(of:)` then patch rows,
    /// `pixelValues` [tiles·1024, 588] f32 and grid (tiles, 32, 32). `maxTiles` overrides the
    /// config's (1 gives the single squashed tile of a video frame).
    public static func preprocess(
        frame: RGBFrame, config: InternVLProcessorConfig = InternVLProcessorConfig(), maxTiles: Int? = nil
    ) -> VisualInput {
        let tiles = tiles(of: frame, config: config, maxTiles: maxTiles)
        return VisualInput(
            kind: .image, pixelValues: patchRows(tiles, config: config), grid: config.grid(tiles: tiles.count),
            secondPerGridT: nil, frameIndices: [0], timestamps: [0])
    }

    /// `dynamic_preprocess`: the image resized to the chosen grid's canvas (tileSize·columns x
    /// tileSize·rows) and cut row-major, then, when there is more than one tile and `useThumbnail`,
    /// the whole image resized to one tile. All resizes are Pillow's bicubic on uint8.
    public static func tiles(
        of frame: RGBFrame, config: InternVLProcessorConfig = InternVLProcessorConfig(), maxTiles: Int? = nil
    ) -> [RGBFrame] {
        var config = config
        if let maxTiles {
            precondition(maxTiles >= 1, "maxTiles \(maxTiles)")
            config.maxTiles = maxTiles
            config.minTiles = min(config.minTiles, maxTiles)
        }
        let side = config.tileSize
        let grid = InternVLTiling.grid(width: frame.width, height: frame.height, config: config)
        let canvas = BicubicResampler.resize(
            frame, height: side * grid.rows, width: side * grid.columns, precision: .pillow)
        var tiles: [RGBFrame] = []
        for row in 0..<grid.rows {
            for column in 0..<grid.columns {
                tiles.append(crop(canvas, x: column * side, y: row * side, side: side))
            }
        }
        if config.useThumbnail && tiles.count > 1 {
            tiles.append(BicubicResampler.resize(frame, height: side, width: side, precision: .pillow))
        }
        return tiles
    }

    /// Patch rows of `tiles` (each tileSize x tileSize): [tiles·1024, 588] f32, tiles one after another,
    /// rows within a tile in merge-unit order (bh, bw, dy, dx) = patch (2bh + dy, 2bw + dx), each row
    /// (c, ky, kx), values (v/255 - mean[c]) / std[c].
    public static func patchRows(_ tiles: [RGBFrame], config: InternVLProcessorConfig) -> Tensor {
        precondition(tiles.allSatisfy { $0.width == config.tileSize && $0.height == config.tileSize }, "tile size")
        guard !tiles.isEmpty else { return .zeros(Shape([0, config.rowSize]), dtype: .f32) }
        let (values, grid) = MergeUnitPatchifier.rows(
            tiles, temporalPatchSize: 1, patchSize: config.patchSize, mergeSize: config.mergeSize,
            table: config.normalisationTable)
        return Tensor(values, shape: Shape([grid.patchCount, config.rowSize]))
    }

    /// The `side` x `side` square of `frame` whose top-left corner is (x, y).
    static func crop(_ frame: RGBFrame, x: Int, y: Int, side: Int) -> RGBFrame {
        if x == 0, y == 0, frame.width == side, frame.height == side { return frame }
        var pixels = [UInt8]()
        pixels.reserveCapacity(side * side * 3)
        for row in y..<(y + side) {
            let start = (row * frame.width + x) * 3
            pixels.append(contentsOf: frame.pixels[start..<(start + side * 3)])
        }
        return RGBFrame(width: side, height: side, pixels: pixels)
    }
}
