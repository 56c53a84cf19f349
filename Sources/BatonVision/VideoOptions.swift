import BatonTensor

/// How videos are sampled and how large frames and images may be: the CLI's `--fps`,
/// `--max-frames`, `--min-pixels` and `--max-pixels`, and qwen-vl-utils' per-element keys of the
/// same names (`fps`, `min_frames`, `max_frames`, `min_pixels`, `max_pixels`, `total_pixels`).
/// nil means qwen-vl-utils' default; `validated()` checks every field once.
public struct VideoOptions: Sendable, Hashable {
    /// Frames sampled per second of video (default 2).
    public var fps: Double
    /// At least this many frames are sampled (rounded up to even; default 4).
    public var minFrames: Int
    /// At most this many frames are sampled (rounded down to even; default min(768, frames in file)).
    public var maxFrames: Int?
    /// Lower bound on pixels per frame or image (video default 128·28², image default 4·28²).
    public var minPixels: Int?
    /// Upper bound on pixels per frame or image (video default 768·28² within the total budget,
    /// image default 16384·28²); it can only lower the video budget, never raise it.
    public var maxPixels: Int?
    /// Pixels of all frames of one video together (default 128000·28²·0.9).
    public var totalPixels: Int?

    public init(
        fps: Double = QwenSampling.defaultFPS, minFrames: Int = QwenSampling.minFrames,
        maxFrames: Int? = nil, minPixels: Int? = nil, maxPixels: Int? = nil, totalPixels: Int? = nil
    ) {
        self.fps = fps
        self.minFrames = minFrames
        self.maxFrames = maxFrames
        self.minPixels = minPixels
        self.maxPixels = maxPixels
        self.totalPixels = totalPixels
    }

    /// Self, or one error line naming the flag that is out of range.
    public func validated() throws -> VideoOptions {
        let patch = QwenSampling.sizeFactor * QwenSampling.sizeFactor
        guard fps.isFinite, fps > 0 else {
            throw BatonError.invalidArgument("--fps must be a positive number, got \(fps)")
        }
        guard minFrames >= 1 else {
            throw BatonError.invalidArgument("min frames must be at least 1, got \(minFrames)")
        }
        if let maxFrames {
            guard maxFrames >= QwenSampling.frameFactor else {
                throw BatonError.invalidArgument(
                    "--max-frames must be at least \(QwenSampling.frameFactor), got \(maxFrames)")
            }
            guard maxFrames >= minFrames else {
                throw BatonError.invalidArgument(
                    "--max-frames \(maxFrames) is below the minimum frame count \(minFrames)")
            }
        }
        if let minPixels, minPixels < patch {
            throw BatonError.invalidArgument(
                "--min-pixels must be at least \(patch) (one 28x28 unit), got \(minPixels)")
        }
        if let maxPixels {
            guard maxPixels >= patch else {
                throw BatonError.invalidArgument(
                    "--max-pixels must be at least \(patch) (one 28x28 unit), got \(maxPixels)")
            }
            if let minPixels, maxPixels < minPixels {
                throw BatonError.invalidArgument("--max-pixels \(maxPixels) is below --min-pixels \(minPixels)")
            }
        }
        if let totalPixels, totalPixels < patch * QwenSampling.frameFactor {
            throw BatonError.invalidArgument(
                "total pixels must be at least \(patch * QwenSampling.frameFactor), got \(totalPixels)")
        }
        return self
    }
}
