import BatonCUDA
import BatonModels
import BatonParallel
import BatonTensor
import BatonVision
import Foundation

/// A frame size of the papers' speed test (VIDEO.md section 8): the native size of the random
/// frames, and the size they are resized to on the image path (native rounded to multiples of 28).
public struct VideoResolution: Sendable, Hashable {
    public var name: String
    public var width: Int
    public var height: Int

    /// 360p, 720p, 1080p, 1440p (16:9), or WIDTHxHEIGHT.
    public static func named(_ name: String) throws -> VideoResolution {
        let known = ["360p": (640, 360), "720p": (1280, 720), "1080p": (1920, 1080), "1440p": (2560, 1440)]
        if let (width, height) = known[name.lowercased()] {
            return VideoResolution(name: name, width: width, height: height)
        }
        let parts = name.lowercased().split(separator: "x").compactMap { Int($0) }
        guard parts.count == 2, parts.allSatisfy({ $0 >= 28 }) else {
            throw BatonError.invalidArgument(
                "--resolution: cannot read '\(name)'; expected 360p, 720p, 1080p, 1440p "
                    + "or WIDTHxHEIGHT (each at least 28)")
        }
        return VideoResolution(name: name, width: parts[0], height: parts[1])
    }
}

/// What `baton bench video` runs: every frame count at every resolution.
public struct VideoBenchmarkOptions: Sendable {
    public var preset: String
    public var modelDirectory: URL?
    public var frames: [Int]
    public var resolutions: [VideoResolution]
    /// A real clip (sampled to each frame count, sized to each resolution's pixels) instead of random frames.
    public var video: URL?
    public var device: Device
    public var runs: Int
    public var warmups: Int
    public var seed: UInt64

    public init(
        preset: String = "qwen2.5-vl-3b", modelDirectory: URL? = nil, frames: [Int],
        resolutions: [VideoResolution], video: URL? = nil, device: Device = .cpu, runs: Int = 1, warmups: Int = 0,
        seed: UInt64 = 0
    ) {
        self.preset = preset
        self.modelDirectory = modelDirectory
        self.frames = frames
        self.resolutions = resolutions
        self.video = video
        self.device = device
        self.runs = runs
        self.warmups = warmups
        self.seed = seed
    }
}

/// Time to first token of one video case (median run), split into its parts, device synchronised.
public struct VideoMeasurement: Codable, Sendable {
    public var method: String
    public var device: String
    public var frames: Int
    public var resolution: String
    /// Frame size the tower sees, "WIDTHxHEIGHT".
    public var resized: String
    /// `video_grid_thw`.
    public var grid: [Int]
    public var visual_tokens: Int
    public var prompt_tokens: Int
    /// Whole time to first token of each timed run.
    public var runs: [Double]
    public var median_s: Double
    /// Parts of the median run: decoding the clip (random frames are made untimed) + resizing +
    /// patchifying; the vision tower (upload included); language-model prefill + first token.
    public var preprocess_s: Double
    public var vision_s: Double
    public var prefill_s: Double
    public var peak_device_bytes: Int?
    public var skipped: String?
}

/// Runs every case on one engine (loaded once), calling `onResult` as each finishes. A case that
/// cannot run (too many tokens for the model's context, out of memory, a bad clip) becomes a row
/// saying why.
public func runVideoBenchmark(
    _ options: VideoBenchmarkOptions,
    onResult: (VideoMeasurement) -> Void = { _ in }
) throws -> [VideoMeasurement] {
    let engine = try Engine.load(
        EngineOptions(
            modelDirectory: options.modelDirectory, preset: options.preset,
            device: options.device, seed: options.seed, showProgress: false))
    guard let model = engine.visionLanguage else {
        throw BatonError.invalidArgument(
            "bench video needs a Qwen2.5-VL model (--preset qwen2.5-vl-3b, qwen2.5-vl-7b "
                + "or --model DIR); \(options.modelDirectory?.path ?? options.preset) "
                + "is text-only")
    }
    let processor =
        try options.modelDirectory.map { try QwenProcessorConfig.load(modelDirectory: $0) }
        ?? QwenProcessorConfig()
    let device =
        (engine.backend as? CUDABackend).map { "\(options.device) (\($0.deviceName))" }
        ?? options.device.description
    var results: [VideoMeasurement] = []
    for resolution in options.resolutions {
        for frames in options.frames {
            var row = VideoMeasurement(
                method: "dense", device: device, frames: frames, resolution: resolution.name,
                resized: "", grid: [], visual_tokens: 0, prompt_tokens: 0, runs: [], median_s: 0,
                preprocess_s: 0, vision_s: 0, prefill_s: 0, peak_device_bytes: nil, skipped: nil)
            do {
                let source = try VideoCaseSource(
                    options: options, frames: frames, resolution: resolution,
                    processor: processor)
                try measure(source, model: model, options: options, row: &row)
            } catch {
                row.skipped = (error as? BatonError)?.message ?? "\(error)"
            }
            onResult(row)
            results.append(row)
        }
    }
    return results
}

/// One case's frames: random frames of the resolution (sized on the image path, as the papers'
/// drivers hand Qwen lists of frames: fps 2, so `second_per_grid_ts` 1) or a clip's sampled ones.
struct VideoCaseSource {
    let frames: Int
    let resolution: VideoResolution
    let processor: QwenProcessorConfig
    let plan: VideoPlan?
    let size: (height: Int, width: Int)
    let seed: UInt64

    init(
        options: VideoBenchmarkOptions, frames: Int, resolution: VideoResolution,
        processor: QwenProcessorConfig
    ) throws {
        self.frames = frames
        self.resolution = resolution
        self.processor = processor
        seed = options.seed &+ UInt64(frames)
        guard frames >= 2, frames % 2 == 0 else {
            throw BatonError.invalidArgument("--frames: \(frames) is not an even count of at least 2")
        }
        if let video = options.video {
            let pixels = resolution.width * resolution.height
            let videoOptions = VideoOptions(minFrames: frames, maxFrames: frames, minPixels: pixels, maxPixels: pixels)
            let plan = try VideoPlan.make(
                file: video, options: videoOptions, processor: processor,
                tools: try FFmpegTools.locate())
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
    }

    var grid: VisionGrid {
        VisionGrid(
            t: frames / processor.temporalPatchSize, h: size.height / processor.patchSize,
            w: size.width / processor.patchSize)
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
        let (values, grid) = QwenPatchifier.patches(resized.frames, config: processor)
        return Tensor(values, shape: Shape([grid.patchCount, processor.rowSize]))
    }
}

/// Synthetic prompt ids of the chat layout (VIDEO.md section 6): 14 system/user tokens,
/// `<|vision_start|>`, the pads, `<|vision_end|>`, a 12-token question and assistant prefix.
func videoPromptIds(config: Qwen2VLConfig, padCount: Int) -> [Int32] {
    let filler = (0..<14).map { Int32(100 + $0) }
    let question = (0..<12).map { Int32(200 + $0) }
    return filler + [Int32(config.visionStartTokenId)] + [Int32](repeating: Int32(config.videoTokenId), count: padCount)
        + [Int32(config.visionEndTokenId)] + question
}

private func measure(
    _ source: VideoCaseSource, model: Qwen2VLModel, options: VideoBenchmarkOptions,
    row: inout VideoMeasurement
) throws {
    let grid = source.grid
    row.grid = [grid.t, grid.h, grid.w]
    row.resized = "\(source.size.width)x\(source.size.height)"
    row.visual_tokens = grid.tokenCount
    let tokens = videoPromptIds(config: model.config, padCount: grid.tokenCount)
    row.prompt_tokens = tokens.count
    let item = VisualItem(
        kind: .video, grid: grid,
        secondsPerGrid: source.plan?.secondPerGridT ?? 1)
    // M-RoPE: the limit is on the highest position (the first new token's), not on the token count.
    let limit = model.config.text.maxPositionEmbeddings
    let positions = try tokens.count + model.config.ropePositions(tokens: tokens, items: [item]).ropeDelta
    guard positions <= limit else {
        throw BatonError.invalidArgument(
            "\(tokens.count) prompt tokens reach M-RoPE position \(positions), beyond the "
                + "model's \(limit) positions")
    }
    let backend = model.backend
    let cuda = backend as? CUDABackend
    let random = source.plan == nil ? source.randomFrames() : nil
    var parts: [(total: Double, preprocess: Double, vision: Double, prefill: Double)] = []
    cuda?.allocator.resetPeak()
    for run in 0..<(options.warmups + options.runs) {
        let start = MonotonicClock.now()
        let pixels = try source.preprocess(random)
        let preprocessed = MonotonicClock.now()
        let visualRows = try model.visualEmbeddings([VisualInput(item: item, pixels: backend.upload(pixels))])
        try backend.synchronize()
        let encoded = MonotonicClock.now()
        // BATON_PROFILE=1: each stage's device time per launch, printed for the last run (the
        // report's synchronisation and bookkeeping fall outside the timed stages).
        let label = "\(source.frames) frames \(source.resolution.name)"
        let visionProfile = try cuda?.profileReport(title: label + ", vision tower")
        let prefillStart = MonotonicClock.now()
        let cache = model.language.makeCache(backend: backend)
        let (hidden, _) = try model.prefill(
            tokens: tokens, items: [item], visualRows: visualRows,
            strategy: Dense(headDim: model.config.text.headDim), cache: cache)
        let logits = try backend.floats(model.language.logits(hidden.rows(tokens.count - 1..<tokens.count)))
        _ = logits.indices.max { logits[$0] < logits[$1] }
        let end = MonotonicClock.now()
        let prefillProfile = try cuda?.profileReport(title: label + ", LM prefill")
        if run >= options.warmups {
            let prefill = end - prefillStart
            parts.append((encoded - start + prefill, preprocessed - start, encoded - preprocessed, prefill))
        }
        if run == options.warmups + options.runs - 1, let visionProfile, let prefillProfile {
            standardError(visionProfile + "\n\n" + prefillProfile + "\n\n")
        }
    }
    let sorted = parts.sorted { $0.total < $1.total }
    let median = sorted[(sorted.count - 1) / 2]
    row.runs = parts.map(\.total)
    (row.median_s, row.preprocess_s, row.vision_s, row.prefill_s) = median
    row.peak_device_bytes = cuda?.allocator.statistics.peakBytesInUse
}

/// The markdown table of `baton bench video`, with the speedups over the PyTorch rows
/// (`torch-sdpa`) of the same frames and resolution. PyTorch's rows start from random pixel rows
/// (no decoding or preprocessing), so the speedups compare like with like: vision tower + LM
/// prefill, and the vision tower alone. TTFT includes Baton's decoding and preprocessing.
public func videoTable(_ rows: [VideoMeasurement]) -> String {
    var lines = [
        "| method | device | frames | resolution | resized | visual tokens | TTFT s | decode+preprocess s | "
            + "vision tower s | LM prefill s | speedup vs PyTorch (vision + prefill) | vision speedup | "
            + "peak device GiB |",
        "| --- | --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    ]
    for r in rows {
        let head = "| \(r.method) | \(r.device) | \(r.frames) | \(r.resolution) | \(r.resized) | \(r.visual_tokens) |"
        if let reason = r.skipped {
            lines.append(head + " not run: \(reason) | | | | | | |")
            continue
        }
        let torch = rows.first {
            $0.method == TorchBaseline.method && $0.frames == r.frames && $0.resolution == r.resolution
                && $0.skipped == nil
        }
        let isTorch = r.method == TorchBaseline.method
        func ratio(_ part: (VideoMeasurement) -> Double) -> String {
            isTorch ? "" : torch.map { String(format: "%.2fx", part($0) / part(r)) } ?? "n/a"
        }
        let peak = r.peak_device_bytes.map { String(format: "%.1f", Double($0) / 1_073_741_824) } ?? "n/a"
        let preprocess = isTorch ? "n/a" : String(format: "%.3f", r.preprocess_s)
        lines.append(
            head
                + String(
                    format: " %.3f | %@ | %.3f | %.3f | %@ | %@ | %@ |", r.median_s, preprocess,
                    r.vision_s, r.prefill_s, ratio { $0.vision_s + $0.prefill_s }, ratio(\.vision_s),
                    peak))
    }
    return lines.joined(separator: "\n")
}
