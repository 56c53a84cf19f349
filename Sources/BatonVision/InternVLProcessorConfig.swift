import BatonTensor
import Foundation

/// InternVL3's image/video preprocessing settings. Defaults are the released checkpoints': 448x448
/// tiles of 14x14 patches, a 2x2 pixel shuffle (ratio 0.5, 256 tokens per tile), ImageNet mean/std,
/// 1...12 tiles per image plus a thumbnail (OpenGVLab's `dynamic_preprocess` and `build_transform`).
public struct InternVLProcessorConfig: Sendable, Equatable {
    /// Side of a square tile in pixels: the vision tower's `image_size`.
    public var tileSize: Int
    /// Side of a patch (the patch embedding's kernel and stride).
    public var patchSize: Int
    /// Patches per side of one pixel-shuffle unit (downsample ratio 0.5 -> 2).
    public var mergeSize: Int
    public var imageMean: [Double]
    public var imageStd: [Double]
    /// Tiles an image is cut into: the chosen grid has minTiles <= columns·rows <= maxTiles.
    public var minTiles: Int
    public var maxTiles: Int
    /// Whether an image cut into more than one tile also gets a tile of the whole image, last.
    public var useThumbnail: Bool

    public init(
        tileSize: Int = 448, patchSize: Int = 14, mergeSize: Int = 2,
        imageMean: [Double] = [0.485, 0.456, 0.406], imageStd: [Double] = [0.229, 0.224, 0.225],
        minTiles: Int = 1, maxTiles: Int = 12, useThumbnail: Bool = true
    ) {
        self.tileSize = tileSize
        self.patchSize = patchSize
        self.mergeSize = mergeSize
        self.imageMean = imageMean
        self.imageStd = imageStd
        self.minTiles = minTiles
        self.maxTiles = maxTiles
        self.useThumbnail = useThumbnail
    }

    /// Patches along one side of a tile (32).
    public var patchesPerSide: Int { tileSize / patchSize }
    /// Patch rows per tile (1024).
    public var rowsPerTile: Int { patchesPerSide * patchesPerSide }
    /// Values in one patch row, ordered (c, ky, kx) like the patch embedding's weight [out, 3, p, p] (588).
    public var rowSize: Int { 3 * patchSize * patchSize }
    /// Language-model tokens one tile becomes after the pixel shuffle (256).
    public var tokensPerTile: Int { rowsPerTile / (mergeSize * mergeSize) }

    /// The patch grid of `tiles` tiles: one temporal unit per tile, so frame-parallel encoding splits
    /// whole tiles and `grid.tokenCount` is 256 per tile.
    public func grid(tiles: Int) -> VisionGrid { VisionGrid(t: tiles, h: patchesPerSide, w: patchesPerSide) }

    /// Normalised value of byte `v` in channel `c` at `256·c + v`: torchvision's `ToTensor` then
    /// `Normalize` as `build_transform` runs them, in float32: (v / 255 - mean) / std.
    var normalisationTable: [Float] {
        (0..<3).flatMap { c in
            let mean = Float(imageMean[c]), std = Float(imageStd[c])
            return (0...255).map { (Float($0) / 255 - mean) / std }
        }
    }

    /// `directory/preprocessor_config.json` when present, else the defaults with `tileSize` =
    /// `imageSize` (the vision config's `image_size`) when given. Reads transformers' GotOcr2 keys
    /// (`size` / `crop_size` as an integer, `{height, width}` or `{shortest_edge}`, `image_mean`,
    /// `image_std`, `min_patches`, `max_patches`, `crop_to_patches`) and the original checkpoints'
    /// CLIP-style file (`size` and `crop_size` integers). Throws one line naming the file and the field.
    ///
    /// `crop_to_patches: false` does not turn tiling off: transformers' conversion script writes that
    /// value, and `InternVLProcessor` passes its own `crop_to_patches=True` on every call, so the
    /// released HF-native models tile as the original ones do.
    public static func load(directory: URL, imageSize: Int?) throws -> InternVLProcessorConfig {
        var config = InternVLProcessorConfig()
        if let imageSize { config.tileSize = imageSize }
        let file = directory.appendingPathComponent("preprocessor_config.json")
        guard FileManager.default.fileExists(atPath: file.path) else {
            return try config.validated(file: "vision config")
        }
        let fields: PreprocessorFile
        do {
            fields = try JSONDecoder().decode(PreprocessorFile.self, from: Data(contentsOf: file))
        } catch let error as DecodingError {
            throw BatonError.invalidModel("\(file.path): \(Self.describe(error))")
        } catch {
            throw BatonError.invalidModel("\(file.path): \(error.localizedDescription)")
        }
        let sizes = [("size", fields.size), ("crop_size", fields.cropSize)].compactMap { name, edge in
            edge.map { (name, $0) }
        }
        for (name, edge) in sizes {
            guard let side = edge.side else {
                throw BatonError.unsupported("\(file.path): \(name) \(edge) is not square; InternVL tiles are")
            }
            guard side == sizes[0].1.side else {
                throw BatonError.invalidModel("\(file.path): size and crop_size differ (\(sizes[0].1) vs \(edge))")
            }
            if let imageSize, side != imageSize {
                throw BatonError.invalidModel(
                    "\(file.path): \(name) \(side) differs from the vision config's image_size \(imageSize)")
            }
            config.tileSize = side
        }
        config.imageMean = fields.imageMean ?? config.imageMean
        config.imageStd = fields.imageStd ?? config.imageStd
        // Tile counts are read as numbers, so a fraction is named here rather than as "not valid JSON".
        func tileCount(_ value: Double?, _ name: String) throws -> Int? {
            guard let value else { return nil }
            guard let count = Int(exactly: value) else {
                throw BatonError.invalidModel("\(file.path): \(name) \(value) is not a whole number")
            }
            return count
        }
        config.minTiles = try tileCount(fields.minPatches, "min_patches") ?? config.minTiles
        config.maxTiles = try tileCount(fields.maxPatches, "max_patches") ?? config.maxTiles
        return try config.validated(file: file.path)
    }

    /// Self, or one error line naming `file` and the field this processor cannot follow.
    public func validated(file: String = "InternVL processor config") throws -> InternVLProcessorConfig {
        guard patchSize > 0, mergeSize == 2 else {
            throw BatonError.unsupported(
                "\(file): patch size \(patchSize), merge size \(mergeSize); InternVL's pixel shuffle merges 2x2 patches"
            )
        }
        guard tileSize > 0, tileSize % (patchSize * mergeSize) == 0 else {
            throw BatonError.invalidModel(
                "\(file): size \(tileSize) is not a positive multiple of \(patchSize * mergeSize) "
                    + "(patch \(patchSize) x merge \(mergeSize))")
        }
        guard imageMean.count == 3, imageMean.allSatisfy(\.isFinite) else {
            throw BatonError.invalidModel("\(file): image_mean needs 3 finite values, got \(imageMean)")
        }
        guard imageStd.count == 3, imageStd.allSatisfy({ $0.isFinite && $0 > 0 }) else {
            throw BatonError.invalidModel("\(file): image_std needs 3 positive values, got \(imageStd)")
        }
        guard minTiles >= 1 else { throw BatonError.invalidModel("\(file): min_patches \(minTiles) is below 1") }
        guard maxTiles >= minTiles else {
            throw BatonError.invalidModel("\(file): max_patches \(maxTiles) is below min_patches \(minTiles)")
        }
        return self
    }

    /// "size.height: expected Int" from a decoding error: the field's path and what was wrong.
    private static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case .typeMismatch(let type, let context):
            return "\(path(context)): expected \(type) (\(context.debugDescription))"
        case .valueNotFound(let type, let context):
            return "\(path(context)): expected \(type), found null"
        case .keyNotFound(let key, let context):
            return "\(path(context)): missing \(key.stringValue)"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty
                ? "not valid JSON (\(context.debugDescription))" : "\(path(context)): \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }
}

/// The keys of `preprocessor_config.json` InternVL's processor reads; null reads as absent.
private struct PreprocessorFile: Decodable {
    var size: TileEdge?
    var cropSize: TileEdge?
    var imageMean: [Double]?
    var imageStd: [Double]?
    var minPatches: Double?
    var maxPatches: Double?
    var cropToPatches: Bool?

    enum CodingKeys: String, CodingKey {
        case size, cropSize = "crop_size", imageMean = "image_mean", imageStd = "image_std"
        case minPatches = "min_patches", maxPatches = "max_patches", cropToPatches = "crop_to_patches"
    }
}

/// A `size`/`crop_size` value: an integer, `{height, width}`, or `{shortest_edge}` (CLIP style).
private struct TileEdge: Decodable, CustomStringConvertible {
    var height: Int
    var width: Int

    private enum Keys: String, CodingKey { case height, width, shortestEdge = "shortest_edge" }

    init(from decoder: Decoder) throws {
        if let side = try? decoder.singleValueContainer().decode(Int.self) {
            (height, width) = (side, side)
            return
        }
        let c = try decoder.container(keyedBy: Keys.self)
        if let side = try c.decodeIfPresent(Int.self, forKey: .shortestEdge) {
            (height, width) = (side, side)
        } else {
            (height, width) = (try c.decode(Int.self, forKey: .height), try c.decode(Int.self, forKey: .width))
        }
    }

    /// The side of a square size, nil when height and width differ.
    var side: Int? { height == width ? height : nil }
    var description: String { "\(width)x\(height)" }
}
