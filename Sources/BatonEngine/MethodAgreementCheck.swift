import BatonModels
import BatonParallel
import BatonTensor
import Foundation

/// Every sequence-parallel method on a device's ranks against the same method on CPU ranks and
/// against single-rank dense on that device: greedy tokens equal before the first difference.
/// `baton selftest --model DIR --ranks N` runs it on the GPU (ranks sharing one GPU).
public struct MethodAgreementCheck {
    public struct Row: Sendable {
        public var method: Method
        /// Tokens equal to the same method on CPU ranks, before the first difference.
        public var matchesCPU: Int
        /// Tokens equal to single-rank dense on the same device, before the first difference.
        public var matchesDense: Int
        public var total: Int
    }

    public let directory: URL
    public let device: Device
    public let ranks: Int

    public init(directory: URL, device: Device, ranks: Int) {
        self.directory = directory
        self.device = device
        self.ranks = ranks
    }

    /// `promptIds` is split into context and query as `baton generate` splits it. With `visuals`
    /// (a Qwen2.5-VL model; pixels on the host) the prompt's pad tokens take them, and the methods
    /// run frame-parallel encoding as `baton generate --video` does.
    public func run(
        promptIds: [Int32], maxTokens: Int, methods: [Method] = [.ring, .zigzag, .star, .apb, .spava],
        visuals: [VisualInput]? = nil
    ) throws -> [Row] {
        let onDevice = try Engine.load(EngineOptions(modelDirectory: directory, device: device, showProgress: false))
        let onCPU = try Engine.load(EngineOptions(modelDirectory: directory, device: .cpu, showProgress: false))
        let options = GenerationOptions(maxTokens: maxTokens)
        let dense = try greedy(onDevice, .dense, ranks: 1, promptIds: promptIds, visuals: visuals, options: options)
        return try methods.map { method in
            let gpu = try greedy(
                onDevice, method, ranks: ranks, promptIds: promptIds, visuals: visuals,
                options: options)
            let cpu = try greedy(onCPU, method, ranks: ranks, promptIds: promptIds, visuals: visuals, options: options)
            return Row(
                method: method, matchesCPU: commonPrefix(gpu, cpu), matchesDense: commonPrefix(gpu, dense),
                total: maxTokens)
        }
    }

    /// Greedy tokens of `method` on `ranks` ranks of `engine`, ignoring the model's stop ids.
    func greedy(
        _ engine: Engine, _ method: Method, ranks: Int, promptIds: [Int32], visuals: [VisualInput]?,
        options: GenerationOptions
    ) throws -> [Int32] {
        guard let visuals, let config = engine.visionLanguage?.config else {
            if method == .dense {
                return try engine.generate(promptIds: promptIds, options: options, ignoringModelStopIds: true).tokens
            }
            return try engine.generateParallel(
                promptIds: promptIds, method: method, ranks: ranks, options: options,
                ignoringModelStopIds: true
            ).tokens
        }
        let (context, query) =
            method == .dense
            ? (promptIds, []) : try VisualPromptEncoding.splitQuery(promptIds, config: config)
        var request = ParallelRequest(context: context, query: query, method: method, ranks: ranks, generation: options)
        request.visuals = VisualPrefill(visuals: visuals)
        return try engine.run(request).tokens
    }

    func commonPrefix(_ a: [Int32], _ b: [Int32]) -> Int { zip(a, b).prefix { $0 == $1 }.count }
}
