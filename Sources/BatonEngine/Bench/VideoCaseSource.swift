import BatonModels
import BatonTensor
import BatonVision
import Foundation

/// One case's frames: random frames of the resolution (sized on the image path, as the papers'
/// drivers hand Qwen lists of frames: fps 2, so `second_per_grid_ts` 1) or a clip's sampled ones.
/// `eval video-niah` takes its haystack from here too.
struct VideoCaseSource: Sendable {
    let frames: Int
    let resolution: VideoResolution
    let processor: VisualProcessor
    let plan: (any VideoPlanning)?
    let size: (height: Int, width: Int)
    let seed: UInt64

    init(
        options: VideoBenchmarkOptions, frames: Int, resolution: VideoResolution,
        processor: VisualProcessor
    ) throws {
        try self.init(
            frames: frames, resolution: resolution, processor: processor, video: options.video, seed: options.seed)
    }

    /// `frames` frames at `resolution`: `video`'s, sampled to exactly that count and sized to the
    /// resolution's pixels (Qwen) or the tile (InternVL), or (no video) random ones made from `seed`.
    init(frames: Int, resolution: VideoResolution, processor: VisualProcessor, video: URL?, seed: UInt64) throws {
        self.frames = frames
        self.resolution = resolution
        self.processor = processor
        self.seed = seed &+ UInt64(frames)
        switch processor {
        case .qwen(let qwen):
            guard frames >= 2, frames % 2 == 0 else {
                throw BatonError.invalidArgument("--frames: \(frames) is not an even count of at least 2")
            }
            if let video {
                let pixels = resolution.width * resolution.height
                let videoOptions = VideoOptions(
                    minFrames: frames, maxFrames: frames, minPixels: pixels, maxPixels: pixels)
                let plan = try VideoPlan.make(
                    file: video, options: videoOptions, processor: qwen, tools: try FFmpegTools.locate())
                guard plan.frameIndices.count == frames else {
                    throw BatonError.invalidArgument(
                        "\(video.path) has \(plan.stream.frameCount) frames; \(frames) asked for")
                }
                self.plan = plan
                size = (plan.height, plan.width)
            } else {
                plan = nil
                size = try QwenSampling.smartResize(
                    height: resolution.height, width: resolution.width,
                    minPixels: Double(QwenSampling.imageMinPixels),
                    maxPixels: Double(QwenSampling.imageMaxPixels), file: resolution.name)
            }
        case .internVL(let intern):
            guard frames >= 1 else { throw BatonError.invalidArgument("--frames: \(frames) is not a positive count") }
            plan = try video.map {
                try InternVLVideoPlan.make(file: $0, frames: frames, config: intern, tools: try FFmpegTools.locate())
            }
            size = (intern.tileSize, intern.tileSize)
        }
    }

    var framesPerUnit: Int { processor.framesPerUnit }

    var grid: VisionGrid {
        let patch = processor.patchSize
        return VisionGrid(t: frames / framesPerUnit, h: size.height / patch, w: size.width / patch)
    }

    /// What the positions need of the video: a clip's seconds per temporal unit, 1 for frames at fps 2.
    var item: VisualItem {
        VisualItem(kind: .video, grid: grid, secondsPerGrid: plan?.secondsPerTemporalUnit ?? 1)
    }

    /// Made-up frames are not timed; resizing and patchifying them is.
    func randomFrames() -> [RGBFrame] {
        var generator = SplitMix64(seed: seed)
        return (0..<frames).map { _ in
            let count = resolution.width * resolution.height * 3
            var bytes = [UInt8](repeating: 0, count: count)
            bytes.withUnsafeMutableBytes { raw in
                let words = raw.bindMemory(to: UInt64.self)
                for index in words.indices { words[index] = generator.next() }
                for index in words.count * 8..<count { raw[index] = UInt8(truncatingIfNeeded: generator.next()) }
            }
            return RGBFrame(width: resolution.width, height: resolution.height, pixels: bytes)
        }
    }

    /// The clip's sampled frames at the size the tower sees (nil for random frames).
    func decodedFrames() throws -> [RGBFrame]? {
        try plan.map { plan in try plan.decodeFrames(temporalUnits: 0..<plan.temporalUnits).map(plan.resize) }
    }

    /// `frames` (random frames; nil for a clip) -> pixel rows `[t·h·w, 1176]` f32 host tensor.
    func preprocess(_ frames: [RGBFrame]?) throws -> Tensor {
        if let plan { return try plan.preprocess().pixelValues }
        let source = frames ?? []
        let resized = ResizedFrames(count: source.count)
        let size = size
        DispatchQueue.concurrentPerform(iterations: source.count) { index in
            resized.set(
                index,
                BicubicResampler.resize(
                    source[index], height: size.height, width: size.width,
                    precision: .pillow))
        }
        return processor.patchRows(resized.frames)
    }

    /// The video as several ranks read it: each rank decodes (a clip) or resizes (`random`) and
    /// patchifies the frames of its own temporal units only.
    func visualPrefill(_ random: [RGBFrame]?) -> VisualPrefill {
        if let plan { return VisualPrefill(sources: [.video(plan)]) }
        let frames = random ?? [], perUnit = framesPerUnit
        return VisualPrefill(
            items: [item],
            unitPixels: [
                { units in
                    try preprocess(Array(frames[units.lowerBound * perUnit..<units.upperBound * perUnit]))
                }
            ])
    }
}
