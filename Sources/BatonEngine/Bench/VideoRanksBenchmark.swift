import BatonCUDA
import BatonModels
import BatonParallel
import BatonTensor

/// One multi-rank case of `bench video`: the request `baton generate --video` makes (the video is
/// context, the question after `<|vision_end|>` the query), run with frame-parallel encoding.
struct VideoRanksRequest {
    let method: Method
    let ranks: Int
    let tokens: [Int32]
    /// Every rank preprocesses (decodes, for a clip) the frames of its own temporal units.
    let visuals: VisualPrefill
    let placement: RankPlacement
}

/// Times a method on several ranks through the engine, as a user's request runs: each rank
/// decodes and encodes its share of the frames, the ranks exchange the visual embeddings their
/// rows need, then the method's prefill. Every run records each rank's stages
/// (`VisualStageTimes`: one synchronisation per stage, none inside the language model); the row
/// keeps the median run's, each part its slowest rank's.
func measureRanks(
    _ request: VideoRanksRequest, engine: Engine, options: VideoBenchmarkOptions, row: inout VideoMeasurement
) throws {
    guard let config = engine.visionLanguage?.config else {
        throw BatonError.invalidArgument("bench video needs a Qwen2.5-VL model")
    }
    let (context, query) = try VisualPromptEncoding.splitQuery(request.tokens, config: config)
    let cuda = engine.backend as? CUDABackend
    var runs: [(seconds: Double, stages: [[String: Double]?])] = []
    cuda?.allocator.resetPeak()
    for run in 0..<(options.warmups + options.runs) {
        var parallel = ParallelRequest(
            context: context, query: query, method: request.method, ranks: request.ranks, plan: options.plan,
            generation: GenerationOptions(maxTokens: 1))
        parallel.placement = request.placement
        parallel.visuals = request.visuals
        let stages = VisualStageTimes()
        let result = try engine.run(parallel, stageTimes: stages)
        if run >= options.warmups { runs.append((result.prefillSeconds, stages.byRank(count: request.ranks))) }
    }
    let median = medianRun(runs, by: \.seconds)
    row.runs = runs.map(\.seconds)
    row.median_s = median.seconds
    func slowest(_ stage: VisualStageTimes.Stage) -> Double {
        median.stages.compactMap { $0?[stage.rawValue] }.max() ?? 0
    }
    row.preprocess_s = slowest(.preprocess)
    row.vision_s = slowest(.vision)
    row.exchange_s = slowest(.exchange)
    row.prefill_s = slowest(.prefill)
    row.ranks_stages_s = median.stages
    row.peak_device_bytes = cuda?.allocator.statistics.peakBytesInUse
}
