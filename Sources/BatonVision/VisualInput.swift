import BatonTensor
import Foundation

/// One video or image, preprocessed as Qwen2-VL's processor outputs it, or as InternVL3's loader
/// does (`InternVLImage`, `InternVLVideoPlan`: a temporal unit is one 448x448 tile, rows of 588).
public struct VisualInput: Sendable {
    public enum Kind: String, Sendable { case video, image }

    public var kind: Kind
    /// `pixel_values(_videos)`: [grid.t·grid.h·grid.w, 1176] f32 host tensor, rows (t, bh, bw, dy, dx),
    /// each row (c, tt, py, px); InternVL: [tiles·1024, 588], each row (c, ky, kx).
    public var pixelValues: Tensor
    /// `video_grid_thw` / `image_grid_thw`.
    public var grid: VisionGrid
    /// temporal_patch_size / sampled fps: seconds per temporal patch (Qwen videos; nil for images and
    /// InternVL).
    public var secondPerGridT: Double?
    /// Sampled frame numbers (presentation order) and their times in seconds; [0] and [0] for an image.
    public var frameIndices: [Int]
    public var timestamps: [Double]

    /// `<|video_pad|>` / `<|image_pad|>` (InternVL: `<IMG_CONTEXT>`) tokens this item expands to: t·h·w/4.
    public var tokenCount: Int { grid.tokenCount }
}

/// A video's sampling and size, decided from the stream alone; nothing decoded yet. A rank of a
/// frame-parallel encoder calls `preprocess(temporalUnits:)` for its contiguous share of temporal
/// units (pairs of sampled frames) and decodes only those frames.
public struct VideoPlan: Sendable {
    public let file: URL
    public let stream: VideoStreamInfo
    /// Sampled frame numbers, even in count: temporal unit u is frames 2u and 2u + 1.
    public let frameIndices: [Int]
    /// Presentation times of the sampled frames, seconds from the first frame.
    public let timestamps: [Double]
    /// frames sampled / frames in stream · stream fps (qwen-vl-utils' `sample_fps`).
    public let sampledFPS: Double
    /// Frame size after qwen-vl-utils' budget and the processor's bounds: multiples of 28.
    public let height: Int
    public let width: Int
    public let processor: QwenProcessorConfig
    public let tools: FFmpegTools
    /// The size qwen-vl-utils resizes to, before the processor's bounds.
    let budgetHeight: Int
    let budgetWidth: Int

    public var grid: VisionGrid {
        VisionGrid(
            t: (frameIndices.count + 1) / processor.temporalPatchSize,
            h: height / processor.patchSize, w: width / processor.patchSize)
    }

    public var secondPerGridT: Double { Double(processor.temporalPatchSize) / sampledFPS }
    public var temporalUnits: Int { grid.t }

    /// Probes `file`, samples as qwen-vl-utils `fetch_video` does, sizes frames within the budget.
    public static func make(
        file: URL, options: VideoOptions = VideoOptions(),
        processor: QwenProcessorConfig = QwenProcessorConfig(), tools: FFmpegTools
    ) throws -> VideoPlan {
        let options = try options.validated()
        let stream = try VideoProbe.probe(file, tools: tools)
        let count = try QwenSampling.frameCount(
            totalFrames: stream.frameCount, videoFPS: stream.averageFPS,
            options: options, file: file.path)
        let indices = QwenSampling.frameIndices(totalFrames: stream.frameCount, count: count)
        let bounds = QwenSampling.videoPixelBounds(frames: count, options: options)
        let budget = try QwenSampling.smartResize(
            height: stream.height, width: stream.width,
            minPixels: bounds.min, maxPixels: bounds.max, file: file.path)
        // The processor applies its own bounds afterwards; for released checkpoints they contain every
        // size the budget gives, so this is the identity.
        let size = try QwenSampling.smartResize(
            height: budget.height, width: budget.width,
            minPixels: Double(processor.minPixels),
            maxPixels: Double(processor.maxPixels), file: file.path)
        return VideoPlan(
            file: file, stream: stream, frameIndices: indices,
            timestamps: indices.map { stream.frameTimestamps[$0] },
            sampledFPS: Double(count) / Double(stream.frameCount) * stream.averageFPS,
            height: size.height, width: size.width, processor: processor, tools: tools,
            budgetHeight: budget.height, budgetWidth: budget.width)
    }

    /// Positions in `frameIndices` of temporal units `units` (the last frame repeats when odd).
    public func framePositions(temporalUnits units: Range<Int>) -> [Int] {
        precondition(units.lowerBound >= 0 && units.upperBound <= temporalUnits, "units \(units) of \(temporalUnits)")
        let tp = processor.temporalPatchSize
        return (units.lowerBound * tp..<units.upperBound * tp).map { min($0, frameIndices.count - 1) }
    }

    /// The sampled frames of temporal units `units` as decoded (native size): 2 per unit.
    public func decodeFrames(temporalUnits units: Range<Int>) throws -> [RGBFrame] {
        try FrameDecoder.decode(
            file, frameIndices: framePositions(temporalUnits: units).map { frameIndices[$0] },
            tools: tools)
    }

    /// A decoded frame resized as qwen-vl-utils does (torchvision v1: float32 bicubic with antialias,
    /// rounded to uint8). When a checkpoint's processor bounds are tighter than the video budget the
    /// processor resizes again; transformers does that in float32 on qwen-vl-utils' float frames,
    /// Baton on uint8 (torchvision v2's path), so such frames can differ by under one level.
    public func resize(_ frame: RGBFrame) -> RGBFrame {
        var frame = BicubicResampler.resize(frame, height: budgetHeight, width: budgetWidth, precision: .float32)
        if budgetHeight != height || budgetWidth != width {
            frame = BicubicResampler.resize(frame, height: height, width: width, precision: .torchvision)
        }
        return frame
    }

    /// Patch rows of temporal units `units`: [units.count · h · w, 1176] f32, the rows the whole
    /// video's `pixelValues` holds at `units.lowerBound · h · w ..< units.upperBound · h · w`.
    /// Frames are resized on all cores as they arrive from the decoder.
    public func preprocess(temporalUnits units: Range<Int>) throws -> Tensor {
        let wanted = framePositions(temporalUnits: units).map { frameIndices[$0] }
        let frames = try FrameDecoder.decodeResized(file, frameIndices: wanted, tools: tools) { resize($0) }
        let (values, unitGrid) = QwenPatchifier.patches(frames, config: processor)
        return Tensor(values, shape: Shape([unitGrid.patchCount, processor.rowSize]))
    }

    /// The whole video.
    public func preprocess() throws -> VisualInput {
        VisualInput(
            kind: .video, pixelValues: try preprocess(temporalUnits: 0..<temporalUnits), grid: grid,
            secondPerGridT: secondPerGridT, frameIndices: frameIndices, timestamps: timestamps)
    }
}

/// Qwen2-VL input from files: the entry points the CLI uses.
public enum VisionInput {
    /// A video file: probe, sample, decode, resize, patchify.
    public static func video(
        _ file: URL, options: VideoOptions = VideoOptions(),
        processor: QwenProcessorConfig = QwenProcessorConfig(), tools: FFmpegTools? = nil
    ) throws -> VisualInput {
        let tools = try tools ?? FFmpegTools.locate()
        return try VideoPlan.make(file: file, options: options, processor: processor, tools: tools).preprocess()
    }

    /// An image file (png, jpeg, anything ffmpeg reads): resized as qwen-vl-utils `fetch_image` does
    /// (Pillow bicubic within the image bounds, or `options`' min/max pixels), then the processor's
    /// bounds; doubled in time, so grid t = 1.
    public static func image(
        _ file: URL, options: VideoOptions = VideoOptions(),
        processor: QwenProcessorConfig = QwenProcessorConfig(), tools: FFmpegTools? = nil
    ) throws -> VisualInput {
        let options = try options.validated()
        let tools = try tools ?? FFmpegTools.locate()
        let decoded = try FrameDecoder.decodeFirstFrame(file, tools: tools)
        let budget = try QwenSampling.smartResize(
            height: decoded.height, width: decoded.width,
            minPixels: Double(options.minPixels ?? QwenSampling.imageMinPixels),
            maxPixels: Double(options.maxPixels ?? QwenSampling.imageMaxPixels), file: file.path)
        var frame = BicubicResampler.resize(decoded, height: budget.height, width: budget.width, precision: .pillow)
        let size = try QwenSampling.smartResize(
            height: budget.height, width: budget.width,
            minPixels: Double(processor.minPixels),
            maxPixels: Double(processor.maxPixels), file: file.path)
        frame = BicubicResampler.resize(frame, height: size.height, width: size.width, precision: .torchvision)
        let (values, grid) = QwenPatchifier.patches([frame, frame], config: processor)
        return VisualInput(
            kind: .image, pixelValues: Tensor(values, shape: Shape([grid.patchCount, processor.rowSize])),
            grid: grid, secondPerGridT: nil, frameIndices: [0], timestamps: [0])
    }

    /// Several images, in order.
    public static func images(
        _ files: [URL], options: VideoOptions = VideoOptions(),
        processor: QwenProcessorConfig = QwenProcessorConfig(), tools: FFmpegTools? = nil
    ) throws -> [VisualInput] {
        let tools = try tools ?? FFmpegTools.locate()
        return try files.map { try image($0, options: options, processor: processor, tools: tools) }
    }
}
