import BatonModels
import BatonTensor
import BatonVision
import Foundation

/// A model family's processor: how files become patch rows and how many visual tokens they give.
public enum VisualProcessor: Sendable {
    /// Qwen2.5-VL: qwen-vl-utils' sampling and sizing, then the Qwen2-VL processor.
    case qwen(QwenProcessorConfig)
    /// InternVL3: one 448-pixel tile per sampled frame; images in dynamic tiles with a thumbnail.
    case internVL(InternVLProcessorConfig)

    /// The processor of `config`'s family, from `modelDirectory`'s `preprocessor_config.json` when
    /// given and present, else the released defaults.
    public static func load(modelDirectory: URL?, config: VisionLanguageConfig) throws -> VisualProcessor {
        switch config {
        case .qwen2VL:
            return .qwen(
                try modelDirectory.map { try QwenProcessorConfig.load(modelDirectory: $0) } ?? QwenProcessorConfig())
        case .internVL(let intern):
            let size = intern.vision.imageSize
            guard let modelDirectory else {
                var processor = InternVLProcessorConfig()
                processor.tileSize = size
                return .internVL(processor)
            }
            return .internVL(try InternVLProcessorConfig.load(directory: modelDirectory, imageSize: size))
        }
    }

    /// Probes and samples a video (nothing decoded). InternVL reads `options.maxFrames` as the
    /// frame count (default `InternVLVideoPlan.defaultFrames`); the pixel options are Qwen's alone.
    func planVideo(_ file: URL, options: VideoOptions, tools: FFmpegTools) throws -> any VideoPlanning {
        switch self {
        case .qwen(let processor):
            return try VideoPlan.make(file: file, options: options, processor: processor, tools: tools)
        case .internVL(let processor):
            return try InternVLVideoPlan.make(
                file: file, options: options, config: processor, tools: tools)
        }
    }

    /// Sampled frames per temporal unit: 2 (Qwen2.5-VL) or 1 (InternVL: a frame is a tile).
    var framesPerUnit: Int {
        switch self {
        case .qwen(let processor): processor.temporalPatchSize
        case .internVL: 1
        }
    }

    /// Pixels per patch side (14).
    var patchSize: Int {
        switch self {
        case .qwen(let processor): processor.patchSize
        case .internVL(let processor): processor.patchSize
        }
    }

    /// Patch rows `[units·h·w, rowSize]` f32 host tensor of frames already at the tower's size, in
    /// the processor's row order (Qwen: frame pairs; InternVL: one tile per frame).
    func patchRows(_ frames: [RGBFrame]) -> Tensor {
        switch self {
        case .qwen(let processor):
            let (values, grid) = QwenPatchifier.patches(frames, config: processor)
            return Tensor(values, shape: Shape([grid.patchCount, processor.rowSize]))
        case .internVL(let processor): return InternVLImage.patchRows(frames, config: processor)
        }
    }

    /// Decodes and preprocesses an image.
    func image(_ file: URL, options: VideoOptions, tools: FFmpegTools) throws -> BatonVision.VisualInput {
        switch self {
        case .qwen(let processor): try VisionInput.image(file, options: options, processor: processor, tools: tools)
        case .internVL(let processor): try InternVLImage.preprocess(file, config: processor, tools: tools)
        }
    }
}
