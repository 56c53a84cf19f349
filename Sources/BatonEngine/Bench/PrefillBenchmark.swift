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
    public var tokens: Int
    public var queryTokens: Int
    public var runs: [Double]
    public var median_s: Double
    public var min_s: Double
    public var max_s: Double
    /// Context + query tokens per second at the median.
    public var tokens_per_s: Double
    /// Seconds per part (projections, attention, mlp, head) of one extra run measured part by
    /// part (single-rank dense only); their sum exceeds the median by the synchronisations.
    public var breakdown_s: [String: Double]?
    /// Peak bytes rank 0's CUDA allocator held during the case, weights included (GPU runs only;
    /// ranks sharing the device have allocators of their own, not counted here).
    public var peak_device_bytes: Int?
    /// Why the case did not run (e.g. more GPUs asked for than are visible); timings are then 0.
    public var skipped: String?
}

/// What `baton bench prefill` runs.
public struct PrefillBenchmarkOptions: Sendable {
    public var preset: String
    public var modelDirectory: URL?
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

    public init(preset: String = "llama-3.1-8b", modelDirectory: URL? = nil, tokens: [Int], methods: [Method],
                ranks: [Int], device: Device, runs: Int = 3, warmups: Int = 1, queryTokens: Int = 50,
                seed: UInt64 = 0, plan: PlanOptions = PlanOptions(), placement: RankPlacement = .sharedDevice) {
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
        var cases: [PrefillCase] = []
        for tokens in self.tokens {
            for method in methods {
                let counts = method == .dense ? [1] : ranks.filter { $0 > 1 }
                for ranks in counts { cases.append(PrefillCase(method: method, ranks: ranks, tokens: tokens)) }
            }
        }
        return cases
    }
}

/// Times prefill for every case: `warmups` untimed runs, then `runs` timed ones, reporting the
/// median and spread. Inputs are random token ids (fixed seed), so any model size can be timed
/// with random weights.
public func runPrefillBenchmark(_ options: PrefillBenchmarkOptions,
                                onResult: ((PrefillMeasurement) -> Void)? = nil) throws -> [PrefillMeasurement] {
    guard options.runs >= 1 else { throw BatonError.invalidArgument("--runs must be at least 1") }
    let engine = try Engine.load(EngineOptions(modelDirectory: options.modelDirectory, preset: options.preset,
                                               device: options.device, seed: options.seed))
    let config = engine.config
    var generator = SplitMix64(seed: options.seed ^ 0x5EED)
    var results: [PrefillMeasurement] = []
    let cases = options.cases
    let bar = ProgressBar(label: "bench prefill", total: cases.count * (options.runs + options.warmups))
    var done = 0
    let onePerGPU = options.placement == .onePerGPU && options.device != .cpu
    let visibleGPUs = onePerGPU ? try CUDABackend.visibleDeviceCount() : 0
    for item in cases {
        let total = item.tokens + options.queryTokens
        if onePerGPU && item.ranks > visibleGPUs {
            let reason = "needs \(item.ranks) GPUs, \(visibleGPUs) visible"
            let skipped = PrefillMeasurement(method: item.method.rawValue, ranks: item.ranks, device: gpusLabel(item.ranks),
                                             tokens: item.tokens, queryTokens: options.queryTokens, runs: [], median_s: 0, min_s: 0,
                                             max_s: 0, tokens_per_s: 0, breakdown_s: nil, peak_device_bytes: nil, skipped: reason)
            results.append(skipped)
            onResult?(skipped)
            done += options.warmups + options.runs
            bar.update(done)
            continue
        }
        try engine.checkContext(promptTokens: total, maxTokens: 1)
        let ids = (0..<total).map { _ in Int32(truncatingIfNeeded: generator.next() % UInt64(config.vocabSize)) }
        let context = Array(ids.prefix(item.tokens)), query = Array(ids.suffix(options.queryTokens))
        var times: [Double] = []
        let cudaBackend = engine.backend as? CUDABackend
        cudaBackend?.allocator.resetPeak()
        for run in 0..<(options.warmups + options.runs) {
            let seconds = try timeToFirstToken(engine: engine, item: item, context: context, query: query, plan: options.plan,
                                               placement: onePerGPU ? .onePerGPU : .sharedDevice)
            if run >= options.warmups { times.append(seconds) }
            done += 1
            bar.update(done)
        }
        var breakdown: [String: Double]?
        if item.method == .dense && item.ranks == 1 {
            let timer = PartTimer(backend: engine.backend)
            _ = try engine.generate(promptIds: context + query, options: GenerationOptions(maxTokens: 1),
                                    ignoringModelStopIds: true, timer: timer)
            breakdown = Dictionary(uniqueKeysWithValues: timer.seconds.map { ($0.key.rawValue, $0.value) })
        }
        let sorted = times.sorted()
        let median = sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        // GPU ranks sharing the engine's one device (`--ranks`) show that a method runs on GPU
        // backends, not how fast it would be on several GPUs; the label says so.
        let sharedDevice = options.device != .cpu && item.ranks > 1 && !onePerGPU
        let named = cudaBackend.map { "\(options.device) (\($0.deviceName))" } ?? options.device.description
        let device = sharedDevice ? "\(named) shared by \(item.ranks) ranks"
            : onePerGPU && item.ranks > 1 ? gpusLabel(item.ranks) : named
        let measurement = PrefillMeasurement(method: item.method.rawValue, ranks: item.ranks, device: device,
                                             tokens: item.tokens, queryTokens: options.queryTokens, runs: times,
                                             median_s: median, min_s: sorted.first!, max_s: sorted.last!,
                                             tokens_per_s: Double(total) / median, breakdown_s: breakdown,
                                             peak_device_bytes: cudaBackend?.allocator.statistics.peakBytesInUse)
        results.append(measurement)
        onResult?(measurement)
    }
    return results
}

/// Seconds to the first generated token for one case.
func timeToFirstToken(engine: Engine, item: PrefillCase, context: [Int32], query: [Int32], plan: PlanOptions,
                      placement: RankPlacement = .sharedDevice) throws -> Double {
    let options = GenerationOptions(maxTokens: 1)
    if item.method == .dense && item.ranks == 1 {
        return try engine.generate(promptIds: context + query, options: options, ignoringModelStopIds: true).prefillSeconds
    }
    var request = ParallelRequest(context: context, query: query, method: item.method, ranks: item.ranks, plan: plan, generation: options)
    request.placement = placement
    return try engine.run(request).prefillSeconds
}

/// The device column of a row whose ranks run one per GPU over NCCL.
func gpusLabel(_ gpus: Int) -> String { "cuda:0-\(gpus - 1) (\(gpus) GPUs, NCCL)" }

/// The markdown table of `baton bench prefill`: one row per case, with the speedup over
/// single-rank Baton dense and over the PyTorch baseline (`torch-sdpa` rows) at the same length.
public func prefillTable(_ results: [PrefillMeasurement]) -> String {
    var lines = ["| method | ranks | device | tokens | median s | min s | max s | tokens/s | speedup vs dense | speedup vs PyTorch | peak device GiB |",
                 "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in results {
        if let reason = r.skipped {
            lines.append("| \(r.method) | \(r.ranks) | \(r.device) | \(r.tokens) | skipped: \(reason) | | | | | | |")
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
        lines.append(String(format: "| %@ | %d | %@ | %d | %.3f | %.3f | %.3f | %.0f | %@ | %@ | %@ |", r.method, r.ranks, r.device,
                            r.tokens, r.median_s, r.min_s, r.max_s, r.tokens_per_s, speedup, versusTorch, peak))
    }
    let broken = results.filter { $0.breakdown_s != nil }
    if !broken.isEmpty {
        lines += ["", "Breakdown of one run measured part by part (seconds; synchronised after every part):", "",
                  "| method | tokens | " + PartTimer.Part.allCases.map(\.rawValue).joined(separator: " | ") + " |",
                  "| --- | ---: |" + String(repeating: " ---: |", count: PartTimer.Part.allCases.count)]
        for r in broken {
            let parts = PartTimer.Part.allCases.map { String(format: "%.3f", r.breakdown_s?[$0.rawValue] ?? 0) }
            lines.append("| \(r.method) | \(r.tokens) | " + parts.joined(separator: " | ") + " |")
        }
    }
    return lines.joined(separator: "\n")
}
