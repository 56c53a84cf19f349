import BatonTensor
import Foundation

/// An InternVL3 video as OpenGVLab's README loader (`load_video`, used by Spava's drivers) reads it:
/// `frames` segment-middle frames, each squashed to one 448x448 tile (no thumbnail), 256 tokens per
/// frame. A temporal unit is one frame, so a rank of a frame-parallel encoder decodes and
/// preprocesses only its own frames. No time enters the positions (1-D RoPE), hence no seconds per unit.
///
/// Of `VideoOptions` only `maxFrames` applies (`make(file:options:...)`: the frame count, default 32
/// as in `load_video`, at most the frames in the stream); `fps`, `minFrames` and the pixel bounds do
/// not, since the loader samples a fixed count and every frame becomes exactly one tile.
public struct InternVLVideoPlan: VideoPlanning {
    /// `load_video`'s default `num_segments`.
    public static let defaultFrames = 32

    public let file: URL
    public let stream: VideoStreamInfo
    /// Sampled frame numbers in presentation order: temporal unit u is frame `frameIndices[u]`.
    public let frameIndices: [Int]
    /// Presentation times of the sampled frames, seconds from the first frame.
    public let timestamps: [Double]
    public let config: InternVLProcessorConfig
    public let tools: FFmpegTools

    /// (frames, 32, 32): one tile per frame.
    public var grid: VisionGrid { config.grid(tiles: frameIndices.count) }
    public var secondsPerTemporalUnit: Double? { nil }

    /// Probes `file` and samples `frames` frames. Throws one line when `frames` is below 1 or above the
    /// frames in the stream (the loader would repeat frames there; Baton asks for fewer instead).
    public static func make(
        file: URL, frames: Int, config: InternVLProcessorConfig = InternVLProcessorConfig(), tools: FFmpegTools
    ) throws -> InternVLVideoPlan {
        guard frames >= 1 else { throw BatonError.invalidArgument("--frames must be at least 1, got \(frames)") }
        let config = try config.validated()
        let stream = try VideoProbe.probe(file, tools: tools)
        guard frames <= stream.frameCount else {
            throw BatonError.invalidArgument(
                "\(file.path): the video has \(stream.frameCount) frames, fewer than the \(frames) asked for; "
                    + "ask for at most \(stream.frameCount)")
        }
        let indices = frameIndices(totalFrames: stream.frameCount, count: frames)
        return InternVLVideoPlan(
            file: file, stream: stream, frameIndices: indices, timestamps: indices.map { stream.frameTimestamps[$0] },
            config: config, tools: tools)
    }

    /// `make(file:frames:)` with the frame count from `options.maxFrames` (default 32), capped at the
    /// frames in the stream so a short clip gives all its frames rather than an error.
    public static func make(
        file: URL, options: VideoOptions, config: InternVLProcessorConfig = InternVLProcessorConfig(),
        tools: FFmpegTools
    ) throws -> InternVLVideoPlan {
        // Not `options.validated()`: its frame checks are Qwen's (pairs of frames, at least minFrames).
        if let maxFrames = options.maxFrames, maxFrames < 1 {
            throw BatonError.invalidArgument("--max-frames must be at least 1, got \(maxFrames)")
        }
        let stream = try VideoProbe.probe(file, tools: tools)
        let frames = min(options.maxFrames ?? defaultFrames, stream.frameCount)
        let indices = frameIndices(totalFrames: stream.frameCount, count: frames)
        return InternVLVideoPlan(
            file: file, stream: stream, frameIndices: indices, timestamps: indices.map { stream.frameTimestamps[$0] },
            config: try config.validated(), tools: tools)
    }

    /// `get_index` without a time bound: `count` segments of length s = (total − 1)/count over frames
    /// [0, total − 1], frame k = ⌊s/2 + round(s·k)⌋ with numpy's round (ties to even), in Double like
    /// Python. Never decreasing; when count is close to total a frame can repeat (96 of 96 frames
    /// takes frame 48 twice and never 95), as in the original loader, and the decoder hands a repeated
    /// frame to each position that asks for it.
    public static func frameIndices(totalFrames: Int, count: Int) -> [Int] {
        precondition(totalFrames >= 1 && count >= 0, "\(count) of \(totalFrames) frames")
        let segment = Double(totalFrames - 1) / Double(count)
        return (0..<count).map { k in Int(segment / 2 + (segment * Double(k)).rounded(.toNearestOrEven)) }
    }

    /// A decoded frame as the loader turns it into a tile: squashed to tileSize x tileSize with Pillow's
    /// bicubic filter (`dynamic_preprocess` with `max_num=1`: one tile, no thumbnail).
    public func tile(_ frame: RGBFrame) -> RGBFrame {
        InternVLImage.tiles(of: frame, config: config, maxTiles: 1)[0]
    }

    /// `tile`: the size the tower sees.
    public func resize(_ frame: RGBFrame) -> RGBFrame { tile(frame) }

    /// The sampled frames of temporal units (frames) `units` as decoded (native size).
    public func decodeFrames(temporalUnits units: Range<Int>) throws -> [RGBFrame] {
        try FrameDecoder.decode(file, frameIndices: Array(frameIndices[units]), tools: tools)
    }

    /// Patch rows of temporal units (frames) `units`: [units.count · 1024, 588] f32, the rows the whole
    /// video's `pixelValues` holds at `units.lowerBound · 1024 ..< units.upperBound · 1024`. Only those
    /// frames are decoded; they are resized on all cores as they arrive from the decoder.
    public func preprocess(temporalUnits units: Range<Int>) throws -> Tensor {
        precondition(units.lowerBound >= 0 && units.upperBound <= temporalUnits, "units \(units) of \(temporalUnits)")
        let tiles = try FrameDecoder.decodeResized(
            file, frameIndices: Array(frameIndices[units]), tools: tools
        ) { tile($0) }
        return InternVLImage.patchRows(tiles, config: config)
    }

    /// The whole video.
    public func preprocess() throws -> VisualInput {
        VisualInput(
            kind: .video, pixelValues: try preprocess(temporalUnits: 0..<temporalUnits), grid: grid,
            secondPerGridT: nil, frameIndices: frameIndices, timestamps: timestamps)
    }
}
