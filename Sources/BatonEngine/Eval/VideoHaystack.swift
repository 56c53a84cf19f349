import BatonModels
import BatonTensor
import BatonVision
import Foundation

/// The videos of `eval video-niah`: a haystack of frames (a real clip's sampled frames, or made-up
/// scenes) with one needle unit inserted, two identical frames that show the needle's text on a
/// white panel over the haystack frame there. The needle fills one temporal unit (two frames for
/// Qwen2.5-VL, one tile for InternVL), so it never shares a unit with haystack frames.
struct VideoHaystack {
    /// Haystack frames at the tower's size, in order.
    let frames: [RGBFrame]
    let processor: VisualProcessor
    /// Frames per temporal unit.
    let perUnit: Int
    /// Seconds per temporal unit (M-RoPE's time axis): the clip's, 1 for made-up frames (fps 2).
    let secondsPerUnit: Double

    /// `count` haystack frames: sampled from `video` and sized to the resolution's pixels, or
    /// made-up scenes of the resolution (rounded to multiples of 28) from `seed`.
    init(count: Int, resolution: VideoResolution, video: URL?, processor: VisualProcessor, seed: UInt64) throws {
        let source = try VideoCaseSource(
            frames: count, resolution: resolution, processor: processor, video: video, seed: seed)
        frames =
            try source.decodedFrames()
            ?? Self.scenes(count: count, height: source.size.height, width: source.size.width, seed: source.seed)
        self.processor = processor
        perUnit = source.framesPerUnit
        secondsPerUnit = source.plan?.secondsPerTemporalUnit ?? 1
    }

    /// The haystack with the needle unit (two frames showing `text`) inserted before haystack
    /// unit `unit` (`unit` = the haystack's units: after the last one).
    func video(needle text: String, unit: Int) throws -> BatonModels.VisualInput {
        let at = min(unit * perUnit, frames.count)
        let needle = try BitmapText.draw(text, on: frames[min(at, frames.count - 1)])
        let all = Array(frames[..<at]) + Array(repeating: needle, count: perUnit) + Array(frames[at...])
        let rows = processor.patchRows(all)
        let grid = VisionGrid(
            t: all.count / perUnit, h: all[0].height / processor.patchSize, w: all[0].width / processor.patchSize)
        return BatonModels.VisualInput(
            item: VisualItem(kind: .video, grid: grid, secondsPerGrid: secondsPerUnit), pixels: rows)
    }

    /// Made-up scenes that change slowly, as a video does: a colour gradient drifting from frame to
    /// frame with three coloured boxes moving across it. Deterministic in `seed`.
    static func scenes(count: Int, height: Int, width: Int, seed: UInt64) -> [RGBFrame] {
        var random = EvalRandom(seed: seed, "video haystack")
        let colours = (0..<4).map { _ in (0..<3).map { _ in UInt8(random.int(in: 40...215)) } }
        let boxes = (0..<3).map { _ in (x: random.unit(), y: random.unit(), dx: random.unit() - 0.5) }
        return (0..<count).map { index in
            let t = Double(index) / Double(max(count - 1, 1))
            var pixels = [UInt8](repeating: 0, count: width * height * 3)
            for y in 0..<height {
                let v = Double(y) / Double(max(height - 1, 1))
                for channel in 0..<3 {
                    let top = Double(colours[0][channel]) * (1 - t) + Double(colours[1][channel]) * t
                    let value = UInt8(top * (1 - v) + Double(colours[2][channel]) * v)
                    for x in 0..<width { pixels[(y * width + x) * 3 + channel] = value }
                }
            }
            var frame = RGBFrame(width: width, height: height, pixels: pixels)
            let side = max(1, min(width, height) / 5)
            for box in boxes {
                let x = Int((box.x + box.dx * t).truncatingRemainder(dividingBy: 1).magnitude * Double(width - side))
                frame.fill(x: x, y: Int(box.y * Double(height - side)), width: side, height: side, colour: colours[3])
            }
            return frame
        }
    }
}
