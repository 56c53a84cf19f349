import BatonCPU
import BatonCUDA
import BatonModels
import BatonNCCL
import BatonParallel
import BatonTensor
import BatonTokenizer
import Foundation

/// What to load and where to run it.
public struct EngineOptions: Sendable {
    /// A Hugging Face model directory (config.json, *.safetensors, tokenizer.json).
    public var modelDirectory: URL?
    /// Or a named architecture with random weights (speed runs), e.g. "llama-3.1-8b".
    public var preset: String?
    public var device: Device
    public var seed: UInt64
    /// Show a progress bar while loading.
    public var showProgress: Bool

    public init(
        modelDirectory: URL? = nil, preset: String? = nil, device: Device = .cpu,
        seed: UInt64 = 0, showProgress: Bool = true
    ) {
        self.modelDirectory = modelDirectory
        self.preset = preset
        self.device = device
        self.seed = seed
        self.showProgress = showProgress
    }
}

/// A loaded model on one rank with its tokenizer: plans a request, prefills, decodes, streams.
public final class Engine: @unchecked Sendable {
    public let model: LlamaModel
    /// The whole Qwen2.5-VL model when this is a vision-language engine (`model` is then its
    /// language model, which text-only prompts run through unchanged: M-RoPE with one position row).
    public let visionLanguage: VisionLanguageModel?
    public let tokenizer: Tokenizer?
    public let chatTemplate: ChatTemplate?
    public let backend: any Backend
    public let options: EngineOptions
    /// Models of GPU ranks 1..<W sharing this engine's device (rank 0 uses `model`), made on first use.
    var rankModelCache: [RankModel] = []
    /// Models of one-GPU-per-rank runs by device ordinal (this engine's ordinal uses `model`).
    var gpuModelCache: [Int: RankModel] = [:]
    /// NCCL groups of one-GPU-per-rank runs by world size, and this process's communicator in a
    /// multi-process job; kept while healthy (making one costs a rendezvous and NCCL setup).
    var ncclGroupCache: [Int: [NCCLCommunicator]] = [:]
    var processCommunicator: NCCLCommunicator?
    let rankModelLock = NSLock()

    init(
        model: LlamaModel, tokenizer: Tokenizer?, chatTemplate: ChatTemplate?, backend: any Backend,
        options: EngineOptions,
        visionLanguage: VisionLanguageModel? = nil
    ) {
        self.model = model
        self.visionLanguage = visionLanguage
        self.tokenizer = tokenizer
        self.chatTemplate = chatTemplate
        self.backend = backend
        self.options = options
    }

    public var config: ModelConfig { model.config }

    /// This engine's own weights as a rank runs them.
    var ownRankModel: RankModel { RankModel(language: model, visionLanguage: visionLanguage) }

    /// Loads the model named by `options` onto its device. `tokenizer`: the directory's tokenizer
    /// when already read (`ModelPreflight`), so it is not parsed twice.
    public static func load(_ options: EngineOptions, tokenizer: Tokenizer? = nil) throws -> Engine {
        let backend = try makeBackend(options.device)
        if let directory = options.modelDirectory {
            var bar: ProgressBar?
            let progress: (Int, Int) -> Void = { done, total in
                if bar == nil {
                    bar = ProgressBar(label: "loading \(directory.lastPathComponent)", total: total, unit: .bytes)
                }
                bar?.update(done)
            }
            let tokenizer = try tokenizer ?? Tokenizer(directory: directory)
            if let config = try ModelPreflight.visionLanguageConfig(directory: directory) {
                let vl = try VisionLanguageModel(
                    config: config, weights: .directory(directory), backend: backend,
                    progress: options.showProgress ? progress : nil)
                return Engine(
                    model: vl.language, tokenizer: tokenizer, chatTemplate: tokenizer.chatTemplate,
                    backend: backend, options: options, visionLanguage: vl)
            }
            let model = try LlamaModel.load(
                directory: directory, backend: backend,
                progress: options.showProgress ? progress : nil)
            return Engine(
                model: model, tokenizer: tokenizer, chatTemplate: tokenizer.chatTemplate, backend: backend,
                options: options)
        }
        guard let name = options.preset else {
            throw BatonError.invalidArgument("give a model directory (--model DIR) or a preset (--preset NAME)")
        }
        if let config = VisionLanguagePreset.named(name) {
            let vl = try VisionLanguageModel(config: config, weights: .random(seed: options.seed), backend: backend)
            return Engine(
                model: vl.language, tokenizer: nil, chatTemplate: nil, backend: backend, options: options,
                visionLanguage: vl)
        }
        let preset = try ModelPreset.named(name)
        let model = try LlamaModel(config: preset.config, weights: .random(seed: options.seed), backend: backend)
        return Engine(model: model, tokenizer: nil, chatTemplate: nil, backend: backend, options: options)
    }

    /// Token ids for a prompt: the chat template applied when `chat` is set, special tokens added.
    public func encode(prompt: String, chat: Bool) throws -> [Int32] {
        guard let tokenizer else {
            throw BatonError.invalidArgument("this model has no tokenizer (preset with random weights): pass token ids")
        }
        return try PromptEncoding.encode(prompt, chat: chat, tokenizer: tokenizer, chatTemplate: chatTemplate)
    }

    /// Stop ids: the request's plus the model's end-of-sequence ids.
    public func stopIds(_ options: GenerationOptions) -> Set<Int32> {
        options.stopIds.union(tokenizer?.eosTokenIds ?? [])
    }

    /// Generates from `promptIds` with exact dense attention on this engine's device: a
    /// world-size-1 dense plan through the same worker loop as every other method
    /// (`run(_:timer:rankTimers:onToken:)`), calling `onToken` for every new id as soon as it is chosen.
    /// `ignoringModelStopIds` stops only on the request's own ids (reference comparisons).
    /// `timer` adds up the time of each part of the forward passes (benchmark breakdowns).
    public func generate(
        promptIds: [Int32], options: GenerationOptions, ignoringModelStopIds: Bool = false,
        timer: PartTimer? = nil, onToken: (@Sendable (Int32) -> Void)? = nil
    ) throws -> GenerationResult {
        try checkContext(promptTokens: promptIds.count, maxTokens: options.maxTokens)
        var generation = options
        if !ignoringModelStopIds { generation.stopIds = stopIds(options) }
        let request = ParallelRequest(context: promptIds, query: [], method: .dense, ranks: 1, generation: generation)
        return try run(request, timer: timer, onToken: onToken)
    }

    /// Rejects requests longer than the model's positions, naming both numbers and the config.json
    /// or preset they come from. The last new token is never fed back, so `prompt + maxTokens - 1`
    /// positions are used.
    public func checkContext(promptTokens: Int, maxTokens: Int) throws {
        let source =
            options.modelDirectory.map { "in " + $0.appendingPathComponent("config.json").path }
            ?? "of preset \(options.preset ?? "?")"
        try PromptEncoding.checkContext(
            promptTokens: promptTokens, maxTokens: maxTokens, limit: config.contextLength,
            limitOrigin: config.contextLengthOrigin, source: source)
    }
}

/// One rank's copy of an engine's weights: the language model every request runs and, on a
/// vision-language engine, the Qwen2.5-VL model it belongs to (whose tower encodes the rank's
/// share of the frames).
struct RankModel {
    let language: LlamaModel
    let visionLanguage: VisionLanguageModel?
}

/// The backend for a device. CUDA libraries are loaded at run time.
public func makeBackend(_ device: Device) throws -> any Backend {
    switch device {
    case .cpu:
        return CPUBackend()
    case .cuda(let ordinal):
        return try CUDABackend(ordinal: ordinal)
    }
}
