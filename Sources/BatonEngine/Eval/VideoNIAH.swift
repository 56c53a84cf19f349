import BatonModels
import BatonParallel
import BatonTensor
import BatonTokenizer
import BatonVision
import Foundation

/// What `baton eval video-niah` asks: VNBench-style retrieval. A needle (a number or a word drawn
/// into two frames) is inserted at a depth of a long video, and the question asks what it says.
/// The grid is video length (frames, the needle's included) x depth, as `eval niah`'s is context
/// length x depth.
public struct VideoNIAHOptions: Sendable {
    public enum Needle: String, Sendable, CaseIterable {
        /// A number of `digits` digits.
        case numbers
        /// A noun of Baton's eval vocabulary, drawn in capitals.
        case words
    }

    public var frames: [Int]
    public var depths: [Double]
    /// Samples (different needles) per frames x depth cell.
    public var samples: Int
    /// The size of made-up frames, or the pixels a clip's frames are sized to.
    public var resolution: VideoResolution
    /// A real clip as the haystack (sampled to each frame count less the needle's two frames).
    public var video: URL?
    public var needle: Needle
    public var digits: Int
    public var seed: UInt64
    public var maxNewTokens: Int

    public init(
        frames: [Int], depths: [Double], samples: Int = 1, resolution: VideoResolution, video: URL? = nil,
        needle: Needle = .numbers, digits: Int = 4, seed: UInt64 = 42, maxNewTokens: Int = 12
    ) {
        self.frames = frames
        self.depths = depths
        self.samples = samples
        self.resolution = resolution
        self.video = video
        self.needle = needle
        self.digits = digits
        self.seed = seed
        self.maxNewTokens = maxNewTokens
    }

    /// Throws one line naming the option that cannot make a grid.
    public func check() throws {
        for count in frames where count < 4 || count % 2 != 0 {
            throw BatonError.invalidArgument(
                "--frames: \(count) is not an even count of at least 4 (the needle takes 2 frames)")
        }
        guard depths.allSatisfy({ (0...1).contains($0) }) else {
            throw BatonError.invalidArgument("--depths: expected fractions in [0, 1], found \(depths)")
        }
        guard samples >= 1, digits >= 1, maxNewTokens >= 1 else {
            throw BatonError.invalidArgument("--samples and --digits must be at least 1")
        }
    }

    /// The question after the video in the chat prompt.
    public var question: String {
        let thing = needle == .numbers ? "number" : "word"
        return "One frame of this video shows a \(thing) on a white panel. What is the \(thing)? "
            + "Answer with the \(thing) only."
    }
}

/// One sample of the grid: its video's length, where the needle goes and what it says.
public struct VideoNeedleSample: Sendable, Equatable {
    public var frames: Int
    public var depth: Double
    public var index: Int
    public var value: String

    public init(frames: Int, depth: Double, index: Int, value: String) {
        self.frames = frames
        self.depth = depth
        self.index = index
        self.value = value
    }

    /// The needle unit's place among the video's `frames / 2` temporal units: 0 = first, 1 = last.
    public var unit: Int { Int((depth * Double(frames / 2 - 1)).rounded()) }
}

/// How one method of the eval runs: on how many ranks, where, and with which plan lengths.
public struct VideoNIAHMethod: Sendable {
    public var method: Method
    public var ranks: Int
    public var plan: PlanOptions
    public var placement: RankPlacement

    public init(method: Method, ranks: Int, plan: PlanOptions = PlanOptions(), placement: RankPlacement = .sharedDevice)
    {
        self.method = method
        self.ranks = method == .dense ? 1 : ranks
        self.plan = plan
        self.placement = placement
    }
}

/// `eval video-niah` on a Qwen2.5-VL engine: every sample's video and prompt built once and asked
/// of every method, scored with RULER's `string_match_all` (the needle's text in the answer).
public struct VideoNIAH {
    public let engine: Engine
    public let options: VideoNIAHOptions
    let model: VisionLanguageModel
    let tokenizer: Tokenizer
    let processor: VisualProcessor

    /// Throws unless the engine is a vision-language model with a tokenizer and the options make sense.
    public init(engine: Engine, options: VideoNIAHOptions, modelDirectory: URL?) throws {
        guard let model = engine.visionLanguage, let tokenizer = engine.tokenizer else {
            throw BatonError.invalidArgument(
                "eval video-niah needs a vision-language checkpoint with its tokenizer; this model is "
                    + (engine.visionLanguage == nil ? "text-only" : "without a tokenizer"))
        }
        try options.check()
        self.engine = engine
        self.options = options
        self.model = model
        self.tokenizer = tokenizer
        processor = try VisualProcessor.load(modelDirectory: modelDirectory, config: model.config)
    }

    /// Every frames x depth x sample cell, each with its own needle drawn from the seed.
    public var samples: [VideoNeedleSample] {
        options.frames.flatMap { frames in
            options.depths.flatMap { depth in
                (0..<options.samples).map { index in
                    var random = EvalRandom(seed: options.seed, "video needle", "\(frames)", "\(depth)", "\(index)")
                    let value =
                        options.needle == .numbers
                        ? random.number(digits: options.digits) : random.pick(EvalWords.nouns).uppercased()
                    return VideoNeedleSample(frames: frames, depth: depth, index: index, value: value)
                }
            }
        }
    }

    /// Asks every method every sample (a sample's video is made once, for all methods); `progress`
    /// gets the number of answers so far. Predictions come grouped by method, in `methods` order.
    public func run(methods: [VideoNIAHMethod], progress: ((Int) -> Void)? = nil) throws -> [EvalPrediction] {
        var byMethod = [[EvalPrediction]](repeating: [], count: methods.count)
        var done = 0
        for frames in options.frames {
            let haystack = try VideoHaystack(
                count: frames - processor.framesPerUnit, resolution: options.resolution, video: options.video,
                processor: processor, seed: options.seed)
            for sample in samples where sample.frames == frames {
                let video = try haystack.video(needle: sample.value, unit: sample.unit)
                let prompt = try VisualPromptEncoding.encode(
                    question: options.question, items: [video.item], tokenizer: tokenizer, config: model.config)
                try checkPositions(
                    prompt, items: [video.item], config: model.config, newTokens: options.maxNewTokens)
                for (slot, method) in methods.enumerated() {
                    let answer: String
                    do {
                        answer = try self.answer(prompt, video: video, method: method)
                    } catch let error as BatonError {
                        // Say which method and sample (a method's default plan may not fit a short prompt).
                        throw BatonError(
                            error.kind,
                            "\(method.method.rawValue) on \(method.ranks) ranks, \(frames) frames with the needle "
                                + "at depth \(sample.depth): \(error.message)")
                    }
                    byMethod[slot].append(
                        EvalPrediction(
                            method: method.method.rawValue, task: "video-niah", length: frames, depth: sample.depth,
                            index: sample.index, promptTokens: prompt.count, references: [sample.value],
                            prediction: answer,
                            score: RulerScore.stringMatchAll(prediction: answer, references: [sample.value])))
                    done += 1
                    progress?(done)
                }
            }
        }
        return byMethod.flatMap { $0 }
    }

    /// `method`'s greedy answer, as `baton generate --video` runs it: dense takes the prompt as one
    /// block; the other methods take the video as context and the question after it as the query,
    /// each rank encoding its share of the frames.
    func answer(_ prompt: [Int32], video: BatonModels.VisualInput, method: VideoNIAHMethod) throws -> String {
        let (context, query) =
            method.method == .dense ? (prompt, []) : try VisualPromptEncoding.splitQuery(prompt, config: model.config)
        return try engine.answer(ids: prompt, maxNewTokens: options.maxNewTokens) { _, generation in
            var request = ParallelRequest(
                context: context, query: query, method: method.method, ranks: method.ranks, plan: method.plan,
                generation: generation)
            request.generation.stopIds = engine.stopIds(generation)
            request.placement = method.placement
            request.visuals = VisualPrefill(visuals: [video])
            return try engine.run(request)
        }
    }
}
