import BatonTensor
import Foundation

/// Qwen2-VL's image/video processor settings, as `preprocessor_config.json` spells them. Defaults are
/// the released Qwen2.5-VL checkpoints' (CLIP mean/std, 14x14 patches, 2 frames per temporal patch,
/// 2x2 merge, 56²..28²·16384 pixels). transformers 5 writes the bounds as
/// `size: {shortest_edge, longest_edge}`; either spelling is read.
public struct QwenProcessorConfig: Codable, Sendable, Equatable {
    public var minPixels: Int = 3136
    public var maxPixels: Int = 12_845_056
    public var patchSize: Int = 14
    public var temporalPatchSize: Int = 2
    public var mergeSize: Int = 2
    public var imageMean: [Double] = [0.48145466, 0.4578275, 0.40821073]
    public var imageStd: [Double] = [0.26862954, 0.26130258, 0.27577711]
    public var rescaleFactor: Double = 1.0 / 255.0

    enum CodingKeys: String, CodingKey {
        case minPixels = "min_pixels", maxPixels = "max_pixels", patchSize = "patch_size"
        case temporalPatchSize = "temporal_patch_size", mergeSize = "merge_size"
        case imageMean = "image_mean", imageStd = "image_std", rescaleFactor = "rescale_factor", size
    }

    struct Size: Codable { var shortest_edge: Int?; var longest_edge: Int? }

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let size = try c.decodeIfPresent(Size.self, forKey: .size)
        minPixels = try c.decodeIfPresent(Int.self, forKey: .minPixels) ?? size?.shortest_edge ?? minPixels
        maxPixels = try c.decodeIfPresent(Int.self, forKey: .maxPixels) ?? size?.longest_edge ?? maxPixels
        patchSize = try c.decodeIfPresent(Int.self, forKey: .patchSize) ?? patchSize
        temporalPatchSize = try c.decodeIfPresent(Int.self, forKey: .temporalPatchSize) ?? temporalPatchSize
        mergeSize = try c.decodeIfPresent(Int.self, forKey: .mergeSize) ?? mergeSize
        imageMean = try c.decodeIfPresent([Double].self, forKey: .imageMean) ?? imageMean
        imageStd = try c.decodeIfPresent([Double].self, forKey: .imageStd) ?? imageStd
        rescaleFactor = try c.decodeIfPresent(Double.self, forKey: .rescaleFactor) ?? rescaleFactor
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(minPixels, forKey: .minPixels)
        try c.encode(maxPixels, forKey: .maxPixels)
        try c.encode(patchSize, forKey: .patchSize)
        try c.encode(temporalPatchSize, forKey: .temporalPatchSize)
        try c.encode(mergeSize, forKey: .mergeSize)
        try c.encode(imageMean, forKey: .imageMean)
        try c.encode(imageStd, forKey: .imageStd)
        try c.encode(rescaleFactor, forKey: .rescaleFactor)
    }

    /// `directory/preprocessor_config.json` if present, else the defaults; one error line naming the
    /// file and field when it is malformed.
    public static func load(modelDirectory directory: URL) throws -> QwenProcessorConfig {
        let file = directory.appendingPathComponent("preprocessor_config.json")
        guard FileManager.default.fileExists(atPath: file.path) else { return QwenProcessorConfig() }
        let config: QwenProcessorConfig
        do { config = try JSONDecoder().decode(QwenProcessorConfig.self, from: Data(contentsOf: file)) } catch {
            throw BatonError.invalidModel("\(file.path): \(error)")
        }
        return try config.validated(file: file.path)
    }

    /// Self, or an error naming the field this module cannot follow (patch 14 x merge 2 only).
    public func validated(file: String = "preprocessor config") throws -> QwenProcessorConfig {
        guard patchSize == 14, mergeSize == 2, temporalPatchSize == 2 else {
            throw BatonError.unsupported(
                "\(file): patch_size \(patchSize), merge_size \(mergeSize), temporal_patch_size "
                    + "\(temporalPatchSize); Baton supports 14, 2, 2 (Qwen2-VL and Qwen2.5-VL)")
        }
        guard imageMean.count == 3, imageStd.count == 3, imageStd.allSatisfy({ $0 > 0 }) else {
            throw BatonError.invalidModel("\(file): image_mean and image_std need 3 values each, std > 0")
        }
        guard minPixels > 0, maxPixels >= minPixels else {
            throw BatonError.invalidModel(
                "\(file): min_pixels \(minPixels) and max_pixels \(maxPixels) are not a range")
        }
        return self
    }

    /// Values in one flattened patch row: channels x temporal patch x patch x patch (1176).
    public var rowSize: Int { 3 * temporalPatchSize * patchSize * patchSize }
}

/// The processor's last steps: rescale and normalise, group frames in pairs, cut 14x14 patches.
public enum QwenPatchifier {
    /// Normalised value of byte `v` in channel `c`: the fast processor fuses ×1/255 and
    /// (x - mean)/std into (v - mean/r)/(std/r) in float32, r = rescale factor; so does this table.
    static func normalisationTable(_ config: QwenProcessorConfig) -> [[Float]] {
        let inverse = Float(1.0 / config.rescaleFactor)
        return (0..<3).map { c in
            let mean = Float(config.imageMean[c]) * inverse, std = Float(config.imageStd[c]) * inverse
            return (0...255).map { (Float($0) - mean) / std }
        }
    }

    /// Patch rows of `frames` (all the same size, sides multiples of 28; an odd count repeats the
    /// last frame): `[frames/2 · h/14 · w/14, 1176]` f32, rows ordered (t, bh, bw, dy, dx) so each 2x2
    /// merge unit is 4 consecutive rows, each row ordered (c, tt, py, px).
    public static func patches(_ frames: [RGBFrame], config: QwenProcessorConfig) -> (values: [Float], grid: VisionGrid)
    {
        precondition(!frames.isEmpty, "patches of no frames")
        var grouped = frames
        while grouped.count % config.temporalPatchSize != 0 { grouped.append(grouped[grouped.count - 1]) }
        return MergeUnitPatchifier.rows(
            grouped, temporalPatchSize: config.temporalPatchSize, patchSize: config.patchSize,
            mergeSize: config.mergeSize, table: normalisationTable(config).flatMap { $0 })
    }
}
