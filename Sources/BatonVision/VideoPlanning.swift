import BatonTensor
import Foundation

/// A video sampled and sized for one model family's processor, nothing decoded yet: the prompt's
/// length is known from it, and each rank of frame-parallel encoding decodes and preprocesses only
/// the frames of its own temporal units. `VideoPlan` is Qwen2.5-VL's (a unit is two frames);
/// `InternVLVideoPlan` is InternVL3's (a unit is one frame, one tile).
public protocol VideoPlanning: Sendable {
    var file: URL { get }
    /// The patch grid of the whole video: `t` temporal units of `h` x `w` patches.
    var grid: VisionGrid { get }
    /// Sampled frame numbers (presentation order) and their times in seconds.
    var frameIndices: [Int] { get }
    var timestamps: [Double] { get }
    /// Seconds per temporal unit where the model's positions read it (Qwen2.5-VL's M-RoPE), else nil.
    var secondsPerTemporalUnit: Double? { get }
    /// Patch rows of temporal units `units`: the rows the whole video's `pixelValues` holds at
    /// `units.lowerBound · h · w ..< units.upperBound · h · w`.
    func preprocess(temporalUnits units: Range<Int>) throws -> Tensor
    /// The whole video.
    func preprocess() throws -> VisualInput
    /// The sampled frames of temporal units `units` as decoded (native size).
    func decodeFrames(temporalUnits units: Range<Int>) throws -> [RGBFrame]
    /// A decoded frame at the size the tower sees, resized as the model's processor does.
    func resize(_ frame: RGBFrame) -> RGBFrame
}

extension VideoPlanning {
    public var temporalUnits: Int { grid.t }
}

extension VideoPlan: VideoPlanning {
    public var secondsPerTemporalUnit: Double? { secondPerGridT }
}
