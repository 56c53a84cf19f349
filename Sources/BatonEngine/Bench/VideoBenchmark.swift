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

/// What `baton bench video` runs: every frame count at every resolution, with each method on
/// each rank count (dense on one rank only, as `bench prefill`).
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
    /// Methods and rank counts; the default, dense on one rank, is the single-GPU speed test.
    public var methods: [Method]
    public var ranks: [Int]
    /// Multi-rank cases on a GPU: sharing the engine's GPU (`--ranks`) or one GPU per rank (`--gpus`).
    public var placement: RankPlacement
    public var plan: PlanOptions

    public init(
        preset: String = "qwen2.5-vl-3b", modelDirectory: URL? = nil, frames: [Int],
        resolutions: [VideoResolution], video: URL? = nil, device: Device = .cpu, runs: Int = 1, warmups: Int = 0,
        seed: UInt64 = 0, methods: [Method] = [.dense], ranks: [Int] = [1],
        placement: RankPlacement = .sharedDevice, plan: PlanOptions = PlanOptions()
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
        self.methods = methods
        self.ranks = ranks
        self.placement = placement
        self.plan = plan
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
    /// patchifying; the vision tower (upload included); language-model prefill + first token. On
    /// several ranks each part is its slowest rank's (`ranks_stages_s` has every rank's).
    public var preprocess_s: Double
    public var vision_s: Double
    public var prefill_s: Double
    public var peak_device_bytes: Int?
    public var skipped: String?
    /// Ranks the case ran on: 1 for dense and for the PyTorch baseline.
    public var ranks: Int = 1
    /// The exchange of visual embeddings between ranks, waiting for the other ranks' towers
    /// included (slowest rank; 0 on one rank).
    public var exchange_s: Double = 0
    /// The median run's stages on each rank (index = rank) by `VisualStageTimes.Stage` name:
    /// decode_preprocess, vision_tower, exchange, lm_prefill. nil for the PyTorch baseline.
    public var ranks_stages_s: [[String: Double]?]? = nil
}

/// Runs every case on one engine (loaded once), calling `onResult` as each finishes. A case that
/// cannot run (too many tokens for the model's context, more GPUs than are visible, out of memory,
/// a bad clip) becomes a row saying why.
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
            "bench video needs a vision-language model (--preset "
                + VisionLanguagePreset.names.joined(separator: ", ")
                + " or --model DIR); \(options.modelDirectory?.path ?? options.preset) is text-only")
    }
    let processor = try VisualProcessor.load(modelDirectory: options.modelDirectory, config: model.config)
    let placement = try BenchPlacement(options.placement, device: options.device)
    var results: [VideoMeasurement] = []
    for resolution in options.resolutions {
        for frames in options.frames {
            let source = Result {
                try VideoCaseSource(options: options, frames: frames, resolution: resolution, processor: processor)
            }
            // Random frames are made once per case, untimed, when a method gets to run, and shared.
            var madeFrames: [RGBFrame]?
            func randomFrames(_ source: VideoCaseSource) -> [RGBFrame]? {
                guard source.plan == nil else { return nil }
                if madeFrames == nil { madeFrames = source.randomFrames() }
                return madeFrames
            }
            for (method, ranks) in methodRankPairs(methods: options.methods, ranks: options.ranks) {
                var row = VideoMeasurement(
                    method: method.rawValue,
                    device: placement.deviceLabel(ranks: ranks, device: options.device, backend: engine.backend),
                    frames: frames, resolution: resolution.name, resized: "", grid: [], visual_tokens: 0,
                    prompt_tokens: 0, runs: [], median_s: 0, preprocess_s: 0, vision_s: 0, prefill_s: 0,
                    peak_device_bytes: nil, skipped: nil, ranks: ranks)
                do {
                    try placement.check(ranks: ranks)
                    let source = try source.get()
                    let tokens = try describePrompt(source, config: model.config, row: &row)
                    let random = randomFrames(source)
                    if method == .dense {
                        try measureOneRank(
                            source, random: random, tokens: tokens, model: model, options: options, row: &row)
                    } else {
                        let request = VideoRanksRequest(
                            method: method, ranks: ranks, tokens: tokens, visuals: source.visualPrefill(random),
                            placement: placement.placement)
                        try measureRanks(request, engine: engine, options: options, row: &row)
                    }
                } catch {
                    row.skipped = caseFailureReason(error)
                }
                onResult(row)
                results.append(row)
            }
        }
    }
    return results
}

/// Synthetic prompt ids of the chat layout (VIDEO.md section 6) for a video of `item`'s grid: 14
/// system/user ids, the video's block, a 12-token question and assistant prefix. Qwen2.5-VL's block
/// is `<|vision_start|>`, the pads, `<|vision_end|>`; InternVL's is one `<img>`, 256 `<IMG_CONTEXT>`,
/// `</img>` per frame, each after a 4-token `FrameK: ` and before a line break.
func videoPromptIds(config: VisionLanguageConfig, item: VisualItem) -> [Int32] {
    let filler = (0..<14).map { Int32(100 + $0) }
    let question = (0..<12).map { Int32(200 + $0) }
    switch config {
    case .qwen2VL(let qwen):
        return filler + [Int32(qwen.visionStartTokenId)]
            + [Int32](repeating: Int32(qwen.videoTokenId), count: item.grid.tokenCount)
            + [Int32(qwen.visionEndTokenId)] + question
    case .internVL(let intern):
        let frame =
            [300, 301, 302, 303] + [Int32(intern.imageStartTokenId)]
            + [Int32](repeating: Int32(intern.imageTokenId), count: intern.tokensPerTile)
            + [Int32(intern.imageEndTokenId), 198]
        return filler + (0..<item.grid.t).flatMap { _ in frame } + question
    }
}

/// Fills the case's sizes into `row` and returns its prompt ids, checked against the model's positions.
private func describePrompt(_ source: VideoCaseSource, config: VisionLanguageConfig, row: inout VideoMeasurement)
    throws -> [Int32]
{
    let grid = source.grid
    row.grid = [grid.t, grid.h, grid.w]
    row.resized = "\(source.size.width)x\(source.size.height)"
    row.visual_tokens = grid.tokenCount
    let tokens = videoPromptIds(config: config, item: source.item)
    row.prompt_tokens = tokens.count
    try checkPositions(tokens, items: [source.item], config: config)
    return tokens
}

/// Throws unless the prompt and `newTokens` generated tokens fit the model's positions. M-RoPE: the
/// limit is on the highest position (decoded token c sits at c + ropeDelta), not on the token count;
/// a model whose RoPE extends itself (dynamic NTK) has no limit.
func checkPositions(_ tokens: [Int32], items: [VisualItem], config: VisionLanguageConfig, newTokens: Int = 1) throws {
    guard let limit = config.positionLimit else { return }
    let positions = try VisualPromptEncoding.promptPositions(tokens, items: items, config: config) + newTokens - 1
    guard positions <= limit else {
        throw BatonError.invalidArgument(
            "\(tokens.count) prompt tokens reach \(config.mropeSection == nil ? "" : "M-RoPE ")position \(positions), "
                + "beyond the model's \(limit) positions")
    }
}

/// Dense on one rank, straight through the model (no ranks, no exchange), each stage timed in
/// every run; its parts add up to the total.
private func measureOneRank(
    _ source: VideoCaseSource, random: [RGBFrame]?, tokens: [Int32], model: VisionLanguageModel,
    options: VideoBenchmarkOptions, row: inout VideoMeasurement
) throws {
    let item = source.item
    let backend = model.backend
    let cuda = backend as? CUDABackend
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
    let median = medianRun(parts, by: \.total)
    row.runs = parts.map(\.total)
    (row.median_s, row.preprocess_s, row.vision_s, row.prefill_s) = median
    row.ranks_stages_s = [
        stageNames(preprocess: median.preprocess, vision: median.vision, exchange: 0, prefill: median.prefill)
    ]
    row.peak_device_bytes = cuda?.allocator.statistics.peakBytesInUse
}

/// One rank's stages by their JSON names.
func stageNames(preprocess: Double, vision: Double, exchange: Double, prefill: Double) -> [String: Double] {
    [
        VisualStageTimes.Stage.preprocess.rawValue: preprocess, VisualStageTimes.Stage.vision.rawValue: vision,
        VisualStageTimes.Stage.exchange.rawValue: exchange, VisualStageTimes.Stage.prefill.rawValue: prefill
    ]
}
