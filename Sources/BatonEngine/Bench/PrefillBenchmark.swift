import BatonCUDA
import BatonModels
import BatonParallel
import BatonTensor
import Foundation

/// One configuration of `baton bench prefill`: a method on a number of ranks at a context length.
public struct PrefillCase: Sendable, Hashable {
    public var method: Method
    public var ranks: Int
    public var tokens: Int
}

/// Timings of one case, in seconds of time to first token (context prefill + query + first
/// token's logits and argmax), device synchronised.
public struct PrefillMeasurement: Codable, Sendable {
    public var method: String
    public var ranks: Int
    public var device: String
    /// The whole prompt: context + question.
    public var tokens: Int
    /// The question's share of `tokens`.
    public var queryTokens: Int
    public var runs: [Double]
    public var median_s: Double
    public var min_s: Double
    public var max_s: Double
    /// Prompt tokens per second at the median.
    public var tokens_per_s: Double
    /// Seconds per part (projections, attention, mlp, head) of one extra run measured part by
    /// part (single-rank dense only); their sum exceeds the median by the synchronisations.
    public var breakdown_s: [String: Double]?
    /// Seconds per part on each rank (index = rank) of one extra run measured part by part on every
    /// rank, every method: the four parts of `breakdown_s` plus those inside attention
    /// (attention_compute, selection, communication; `PartTimer.Part`). nil for a rank not run by
    /// this process (never in `bench prefill`, whose ranks are all threads of one process).
    public var ranks_breakdown_s: [[String: Double]?]? = nil
    /// Peak bytes rank 0's CUDA allocator held during the case, weights included (GPU runs only;
    /// ranks sharing the device have allocators of their own, not counted here).
    public var peak_device_bytes: Int?
    /// The approximation report of one more run (`--report-approximation`; methods on several
    /// ranks): per layer, the relative error of sampled rows' attention against exact attention.
    public var approximation: ApproximationSummary? = nil
    /// Why the case did not run (more GPUs asked for than are visible, a prompt longer than the
    /// model's context, out of memory, any error of that case); timings are then 0.
    public var skipped: String?
}

/// What `baton bench prefill` runs.
public struct PrefillBenchmarkOptions: Sendable {
    public var preset: String
    public var modelDirectory: URL?
    /// Prompt lengths: context + question (so a model's full context, e.g. 131072, is a valid length).
    public var tokens: [Int]
    public var methods: [Method]
    public var ranks: [Int]
    public var device: Device
    public var runs: Int
    public var warmups: Int
    /// Question length; the reference's prefill micro-benchmark uses 50 random tokens.
    public var queryTokens: Int
    public var seed: UInt64
    public var plan: PlanOptions
    /// Where multi-rank cases run on a GPU: sharing the engine's GPU (`--ranks`) or one GPU per
    /// rank over NCCL (`--gpus`; cases needing more GPUs than are visible are reported as skipped).
    public var placement: RankPlacement
    /// Context rows per rank and layer of the approximation report, or nil for no report.
    public var approximationRows: Int?

    public init(
        preset: String = "llama-3.1-8b", modelDirectory: URL? = nil, tokens: [Int], methods: [Method],
        ranks: [Int], device: Device, runs: Int = 3, warmups: Int = 1, queryTokens: Int = 50,
        seed: UInt64 = 0, plan: PlanOptions = PlanOptions(), placement: RankPlacement = .sharedDevice
    ) {
        self.placement = placement
        self.preset = preset
        self.modelDirectory = modelDirectory
        self.tokens = tokens
        self.methods = methods
        self.ranks = ranks
        self.device = device
        self.runs = runs
        self.warmups = warmups
        self.queryTokens = queryTokens
        self.seed = seed
        self.plan = plan
    }

    /// Dense runs on one rank only; every other method on each requested rank count above 1.
    public var cases: [PrefillCase] {
        tokens.flatMap { tokens in
            methodRankPairs(methods: methods, ranks: ranks).map {
                PrefillCase(method: $0.method, ranks: $0.ranks, tokens: tokens)
            }
        }
    }
}

/// Times prefill for every case: `warmups` untimed runs, then `runs` timed ones, reporting the
/// median and spread. Inputs are random token ids (fixed seed), so any model size can be timed
/// with random weights.
public func runPrefillBenchmark(
    _ options: PrefillBenchmarkOptions,
    onResult: ((PrefillMeasurement) -> Void)? = nil
) throws -> [PrefillMeasurement] {
    guard options.runs >= 1 else { throw BatonError.invalidArgument("--runs must be at least 1") }
    let engine = try Engine.load(
        EngineOptions(
            modelDirectory: options.modelDirectory, preset: options.preset,
            device: options.device, seed: options.seed))
    var generator = SplitMix64(seed: options.seed ^ 0x5EED)
    var results: [PrefillMeasurement] = []
    let cases = options.cases
    let bar = ProgressBar(label: "bench prefill", total: cases.count * (options.runs + options.warmups))
    var done = 0
    let placement = try BenchPlacement(options.placement, device: options.device)
    for item in cases {
        // A case that cannot run (too long, too many GPUs, out of memory, a failed rank) becomes a
        // row that says why; the other cases still run.
        let measurement: PrefillMeasurement
        do {
            try placement.check(ranks: item.ranks)
            measurement = try measure(
                item, engine: engine, options: options, generator: &generator, placement: placement
            ) {
                done += 1
                bar.update(done)
            }
        } catch {
            measurement = notRun(item, options: options, placement: placement, reason: caseFailureReason(error))
            done = (results.count + 1) * (options.warmups + options.runs)
            bar.update(done)
        }
        results.append(measurement)
        onResult?(measurement)
    }
    return results
}

/// One case: `options.tokens` counts the whole prompt, so the context is the tokens before the
/// question. `onRun` is called after every run (warm-ups included).
private func measure(
    _ item: PrefillCase, engine: Engine, options: PrefillBenchmarkOptions, generator: inout SplitMix64,
    placement: BenchPlacement, onRun: () -> Void
) throws -> PrefillMeasurement {
    let total = item.tokens
    guard total > options.queryTokens else {
        throw BatonError.invalidArgument(
            "\(total) tokens leave no context before the \(options.queryTokens)-token question "
                + "(--tokens counts the whole prompt, question included)")
    }
    try engine.checkContext(promptTokens: total, maxTokens: 1)
    let ids = (0..<total).map { _ in Int32(truncatingIfNeeded: generator.next() % UInt64(engine.config.vocabSize)) }
    let context = Array(ids.prefix(total - options.queryTokens)), query = Array(ids.suffix(options.queryTokens))
    var times: [Double] = []
    let cudaBackend = engine.backend as? CUDABackend
    cudaBackend?.allocator.resetPeak()
    for run in 0..<(options.warmups + options.runs) {
        let seconds = try timeToFirstToken(
            engine: engine, item: item, context: context, query: query, plan: options.plan,
            placement: placement.placement)
        if run >= options.warmups { times.append(seconds) }
        onRun()
    }
    // The approximation report comes from a run of its own, outside the timed runs.
    var approximation: ApproximationSummary?
    if let rows = options.approximationRows, item.method != .dense {
        let report = ApproximationReport(rowsPerRank: rows)
        _ = try timeToFirstToken(
            engine: engine, item: item, context: context, query: query, plan: options.plan,
            placement: placement.placement, approximation: report)
        approximation = report.summary()
    }
    // One more run, measured part by part on every rank, outside the timed runs (its
    // synchronisations slow it down).
    let timers = RankTimers()
    _ = try timeToFirstToken(
        engine: engine, item: item, context: context, query: query, plan: options.plan,
        placement: placement.placement, rankTimers: timers)
    let rankTimers = timers.byRank(count: item.ranks)
    let breakdown = item.method == .dense ? rankTimers[0]?.secondsByName(PartTimer.Part.wholePass) : nil
    if BatonSettings.current.timingLayers { standardError(layerBreakdownTable(item, timers: rankTimers)) }
    let sorted = times.sorted()
    let median =
        sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    return PrefillMeasurement(
        method: item.method.rawValue, ranks: item.ranks,
        device: placement.deviceLabel(ranks: item.ranks, device: options.device, backend: engine.backend),
        tokens: total, queryTokens: options.queryTokens, runs: times,
        median_s: median, min_s: sorted.first!, max_s: sorted.last!,
        tokens_per_s: Double(total) / median, breakdown_s: breakdown,
        ranks_breakdown_s: rankTimers.map { $0?.secondsByName() },
        peak_device_bytes: cudaBackend?.allocator.statistics.peakBytesInUse, approximation: approximation)
}

/// The row of a case that did not run, carrying why.
private func notRun(_ item: PrefillCase, options: PrefillBenchmarkOptions, placement: BenchPlacement, reason: String)
    -> PrefillMeasurement
{
    let device = placement.onePerGPU && item.ranks > 1 ? gpusLabel(item.ranks) : options.device.description
    return PrefillMeasurement(
        method: item.method.rawValue, ranks: item.ranks, device: device, tokens: item.tokens,
        queryTokens: options.queryTokens, runs: [], median_s: 0, min_s: 0, max_s: 0, tokens_per_s: 0,
        breakdown_s: nil, peak_device_bytes: nil, skipped: reason)
}

/// Seconds to the first generated token for one case; `rankTimers` records every rank's parts.
func timeToFirstToken(
    engine: Engine, item: PrefillCase, context: [Int32], query: [Int32], plan: PlanOptions,
    placement: RankPlacement = .sharedDevice, rankTimers: RankTimers? = nil, approximation: ApproximationReport? = nil
) throws -> Double {
    var request = ParallelRequest(
        context: context, query: query, method: item.method, ranks: item.ranks, plan: plan,
        generation: GenerationOptions(maxTokens: 1))
    request.placement = placement
    request.approximation = approximation
    return try engine.run(request, rankTimers: rankTimers).prefillSeconds
}

/// The markdown table of `baton bench prefill`: one row per case, with the speedup over
/// single-rank Baton dense and over the PyTorch baseline (`torch-sdpa` rows) at the same length.
public func prefillTable(_ results: [PrefillMeasurement]) -> String {
    var lines = [
        "| method | ranks | device | tokens | median s | min s | max s | tokens/s | speedup vs dense | speedup vs PyTorch | peak device GiB |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    ]
    for r in results {
        if let reason = r.skipped {
            lines.append("| \(r.method) | \(r.ranks) | \(r.device) | \(r.tokens) | not run: \(reason) | | | | | | |")
            continue
        }
        // Rows on several GPUs compare with dense on one GPU of the same kind.
        let multiGPU = r.device.hasSuffix("NCCL)")
        let dense = results.first {
            $0.method == "dense" && $0.ranks == 1 && $0.tokens == r.tokens && $0.skipped == nil
                && ($0.device == r.device || multiGPU && $0.device.hasPrefix("cuda"))
        }
        let torch = results.first { $0.method == TorchBaseline.method && $0.tokens == r.tokens && $0.skipped == nil }
        let speedup = dense.map { String(format: "%.2fx", $0.median_s / r.median_s) } ?? "n/a"
        let versusTorch = torch.map { String(format: "%.2fx", $0.median_s / r.median_s) } ?? "n/a"
        let peak = r.peak_device_bytes.map { String(format: "%.1f", Double($0) / 1_073_741_824) } ?? "n/a"
        lines.append(
            String(
                format: "| %@ | %d | %@ | %d | %.3f | %.3f | %.3f | %.0f | %@ | %@ | %@ |", r.method, r.ranks, r.device,
                r.tokens, r.median_s, r.min_s, r.max_s, r.tokens_per_s, speedup, versusTorch, peak))
    }
    let broken = results.filter { $0.breakdown_s != nil }
    if !broken.isEmpty {
        lines += [
            "", "Breakdown of one run measured part by part (seconds; synchronised after every part):", "",
            "| method | tokens | " + PartTimer.Part.wholePass.map(\.rawValue).joined(separator: " | ") + " |",
            "| --- | ---: |" + String(repeating: " ---: |", count: PartTimer.Part.wholePass.count)
        ]
        for r in broken {
            let parts = PartTimer.Part.wholePass.map { String(format: "%.3f", r.breakdown_s?[$0.rawValue] ?? 0) }
            lines.append("| \(r.method) | \(r.tokens) | " + parts.joined(separator: " | ") + " |")
        }
    }
    lines += rankBreakdownTable(results)
    for r in results {
        guard let approximation = r.approximation else { continue }
        lines += [
            "",
            "Approximation report, \(r.method) x\(r.ranks) at \(r.tokens) tokens "
                + "(\(approximation.rowsPerRank) context rows per rank and layer; relative error against exact attention):",
            "", approximation.table()
        ]
    }
    return lines.joined(separator: "\n")
}
