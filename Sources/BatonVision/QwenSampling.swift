import BatonTensor
import Foundation

/// qwen-vl-utils' frame sampling and resize arithmetic (`smart_nframes`, `smart_resize`, the
/// per-frame pixel budget of `fetch_video`), with Python's rounding: `round` ties to even.
public enum QwenSampling {
    /// Patch (14) x merge (2): both sides of a resized frame are multiples of it.
    public static let sizeFactor = 28
    /// Frames are sampled in pairs (the temporal patch).
    public static let frameFactor = 2
    public static let defaultFPS = 2.0
    public static let minFrames = 4
    public static let maxFrames = 768
    /// Per-frame pixel bounds of a video: 128·28² and 768·28².
    public static let videoMinPixels = 128 * 28 * 28
    public static let videoMaxPixels = 768 * 28 * 28
    /// All frames of one video together: 128000·28²·0.9 (≈ 115,200 visual tokens).
    public static let videoTotalPixels = 128_000.0 * 28 * 28 * 0.9
    /// Image pixel bounds: 4·28² and 16384·28².
    public static let imageMinPixels = 4 * 28 * 28
    public static let imageMaxPixels = 16384 * 28 * 28
    /// Longest side over shortest side above this is refused.
    public static let maxAspectRatio = 200.0

    /// `smart_nframes`: how many frames to sample from `totalFrames` at `videoFPS`.
    /// Throws when fewer than 2 frames would remain (`file` names the video in the message).
    public static func frameCount(totalFrames: Int, videoFPS: Double, options: VideoOptions, file: String) throws -> Int
    {
        let lower = ceilBy(Double(options.minFrames), frameFactor)
        let upper = floorBy(Double(options.maxFrames ?? min(maxFrames, totalFrames)), frameFactor)
        let wanted = Double(totalFrames) / videoFPS * options.fps
        let clamped = min(min(max(wanted, Double(lower)), Double(upper)), Double(totalFrames))
        let count = floorBy(clamped, frameFactor)
        guard count >= frameFactor, count <= totalFrames else {
            throw BatonError(
                .invalidArgument,
                "\(file): zero frames after sampling (\(totalFrames) frames in the "
                    + "stream, \(count) sampled at --fps \(options.fps); at least \(frameFactor) are needed)")
        }
        return count
    }

    /// `torch.linspace(0, total - 1, count).round()`: linspace in float32 as torch computes it
    /// (the first half counted up from the start, the second half down from the end), then
    /// rounded to the nearest integer, ties to even.
    public static func frameIndices(totalFrames: Int, count: Int) -> [Int] {
        let start: Float = 0, end = Float(totalFrames - 1)
        guard count > 1 else { return count == 1 ? [0] : [] }
        let step = (end - start) / Float(count - 1)
        let halfway = count / 2
        return (0..<count).map { i in
            let value = i < halfway ? start + step * Float(i) : end - step * Float(count - i - 1)
            return Int(value.rounded(.toNearestOrEven))
        }
    }

    /// `smart_resize`: the frame size (height, width), both multiples of `factor`, nearest to
    /// (`height`, `width`) with `minPixels <= h·w <= maxPixels`.
    public static func smartResize(
        height: Int, width: Int, factor: Int = sizeFactor,
        minPixels: Double, maxPixels: Double, file: String
    ) throws -> (height: Int, width: Int) {
        let longest = Double(max(height, width)), shortest = Double(min(height, width))
        guard shortest > 0, longest / shortest <= maxAspectRatio else {
            throw BatonError(
                .invalidArgument, "\(file): aspect ratio of \(width)x\(height) exceeds \(Int(maxAspectRatio)):1")
        }
        var h = max(factor, roundBy(Double(height), factor))
        var w = max(factor, roundBy(Double(width), factor))
        if Double(h * w) > maxPixels {
            let beta = (Double(height * width) / maxPixels).squareRoot()
            h = max(factor, floorBy(Double(height) / beta, factor))
            w = max(factor, floorBy(Double(width) / beta, factor))
        } else if Double(h * w) < minPixels {
            let beta = (minPixels / Double(height * width)).squareRoot()
            h = ceilBy(Double(height) * beta, factor)
            w = ceilBy(Double(width) * beta, factor)
        }
        return (h, w)
    }

    /// `fetch_video`'s per-frame bounds for `frames` sampled frames: the minimum, and a maximum of
    /// max(min(768·28², total / frames · 2), ⌊1.05 · min⌋) that a user's `maxPixels` can only lower.
    public static func videoPixelBounds(frames: Int, options: VideoOptions) -> (min: Double, max: Double) {
        let minPixels = Double(options.minPixels ?? videoMinPixels)
        let total = options.totalPixels.map(Double.init) ?? videoTotalPixels
        var maxPixels = max(
            min(Double(videoMaxPixels), total / Double(frames) * Double(frameFactor)),
            (minPixels * 1.05).rounded(.towardZero))
        if let requested = options.maxPixels { maxPixels = min(Double(requested), maxPixels) }
        return (minPixels, maxPixels)
    }

    /// Python's `round(x / f) * f` (ties to even).
    static func roundBy(_ x: Double, _ factor: Int) -> Int {
        Int((x / Double(factor)).rounded(.toNearestOrEven)) * factor
    }

    static func ceilBy(_ x: Double, _ factor: Int) -> Int { Int((x / Double(factor)).rounded(.up)) * factor }

    static func floorBy(_ x: Double, _ factor: Int) -> Int { Int((x / Double(factor)).rounded(.down)) * factor }
}
