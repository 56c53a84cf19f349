import BatonComm
import BatonCUDA
import BatonModels
import BatonNCCL
import BatonParallel
import BatonTensor

extension Engine {
    /// Generates from `promptIds` with a sequence-parallel `method` over `ranks` ranks placed by
    /// `placement` (threads sharing this engine's device, or one GPU each), streaming each new id
    /// to `onToken`.
    ///
    /// The prompt is split into the context (spread over the ranks) and the query, its last
    /// `queryLength` tokens (default 32, at most half the prompt): the question and the assistant
    /// prefix of a chat prompt, which APB inserts into its anchor and Spava scores against.
    /// `.dense` runs on one rank only (`generate(promptIds:...)`). `approximation` records the
    /// approximation report of the prefill.
    public func generateParallel(
        promptIds: [Int32], method: Method, ranks: Int, queryLength: Int? = nil,
        plan: PlanOptions = PlanOptions(), options: GenerationOptions,
        placement: RankPlacement = .sharedDevice, ignoringModelStopIds: Bool = false,
        approximation: ApproximationReport? = nil, onToken: (@Sendable (Int32) -> Void)? = nil
    ) throws -> GenerationResult {
        try checkContext(promptTokens: promptIds.count, maxTokens: options.maxTokens)
        guard ranks >= 1 else { throw BatonError.invalidArgument("--ranks must be at least 1, got \(ranks)") }
        let (context, query) = try splitContextAndQuery(promptIds, queryLength: queryLength)
        var generation = options
        if !ignoringModelStopIds { generation.stopIds = stopIds(options) }
        var request = ParallelRequest(
            context: context, query: query, method: method, ranks: ranks, plan: plan, generation: generation)
        request.placement = placement
        request.approximation = approximation
        return try run(request, onToken: onToken)
    }

    /// Runs a sequence-parallel request. CPU ranks are threads sharing this engine's model.
    ///
    /// GPU ranks, by `request.placement`:
    /// - `.sharedDevice`: each rank gets its own backend (stream, allocator) and its own copy of the
    ///   weights on this engine's device, and ranks exchange tensors through host memory
    ///   (`LocalCommunicator`). That mode checks GPU results against their CPU twins on a machine
    ///   with one GPU; it is not a speed mode.
    /// - `.onePerGPU`: rank i runs on cuda:(this engine's ordinal + i) with its own weights (rank 0
    ///   uses this engine's model), one thread per GPU, over NCCL (`NCCLCommunicator.group`).
    ///
    /// `timer`, when given, records rank 0's parts (benchmark breakdowns); `rankTimers` records
    /// every rank's, each on its rank's backend; `stageTimes` every rank's stages of a visual request.
    public func run(
        _ request: ParallelRequest, timer: PartTimer? = nil, rankTimers: RankTimers? = nil,
        stageTimes: VisualStageTimes? = nil, onToken: (@Sendable (Int32) -> Void)? = nil
    ) throws -> GenerationResult {
        let request = prepared(request)
        if request.visuals != nil && visionLanguage == nil {
            throw BatonError.invalidArgument(
                "images and videos need a Qwen2.5-VL model; this engine's model is "
                    + "text-only")
        }
        if backend.device == .cpu {
            guard request.placement == .sharedDevice else {
                throw BatonError.invalidArgument(
                    "ranks on separate GPUs (--gpus) need a CUDA engine; this engine runs on the CPU")
            }
            let shared = ownRankModel
            return try BatonEngine.generateParallel(
                request, model: { _ in shared.language },
                visionLanguage: Self.rankVisionLanguage { _ in shared },
                timer: timer, rankTimers: rankTimers, stageTimes: stageTimes, onToken: onToken)
        }
        // One rank exchanges nothing, so it runs on this engine's device whatever the placement.
        let models: [RankModel], communicators: [any Communicator]
        switch request.ranks == 1 ? .sharedDevice : request.placement {
        case .sharedDevice:
            models = try rankModels(request.ranks)
            communicators = try LocalCommunicator.group(
                worldSize: request.ranks, timeout: request.communicationTimeout,
                backends: models.map(\.language.backend))
        case .onePerGPU:
            models = try gpuRankModels(request.ranks)
            communicators = try ncclGroup(models.map(\.language), timeout: request.communicationTimeout)
        }
        return try BatonEngine.generateParallel(
            request, model: { models[$0].language },
            visionLanguage: Self.rankVisionLanguage { models[$0] },
            communicators: communicators, timer: timer, rankTimers: rankTimers,
            stageTimes: stageTimes, onToken: onToken)
    }

    /// Each rank's Qwen2.5-VL model from its `RankModel` (text-only ranks have none).
    private static func rankVisionLanguage(_ model: @escaping @Sendable (Int) -> RankModel)
        -> @Sendable (Int) throws -> VisionLanguageModel
    {
        { rank in
            guard let vl = model(rank).visionLanguage else {
                throw BatonError.invalidArgument("rank \(rank) has no vision tower: the engine's model is text-only")
            }
            return vl
        }
    }

    /// Runs this process's rank of a multi-process job (torchrun: one process per GPU). This
    /// engine's device is the rank's GPU (`LOCAL_RANK`); the NCCL communicator is made on first use
    /// (rank 0's unique id travels over the TCP rendezvous on MASTER_ADDR:MASTER_PORT) and kept.
    /// Every rank learns every token; `onToken` is called on rank 0 only.
    public func runRank(
        _ request: ParallelRequest, process config: ProcessGroupConfig,
        onToken: (@Sendable (Int32) -> Void)? = nil
    ) throws -> GenerationResult {
        let request = prepared(request)
        guard request.ranks == config.worldSize else {
            throw BatonError.invalidArgument(
                "the request has \(request.ranks) ranks, but WORLD_SIZE is \(config.worldSize)")
        }
        guard let cuda = backend as? CUDABackend else {
            throw BatonError.invalidArgument(
                "a multi-process job (WORLD_SIZE \(config.worldSize)) needs a CUDA engine; this one runs on \(backend.device)"
            )
        }
        let communicator = try rankModelLock.withLock { () throws -> NCCLCommunicator in
            if let existing = processCommunicator, existing.failure == nil { return existing }
            let made = try NCCLCommunicator.connect(config, backend: cuda, timeout: request.communicationTimeout)
            processCommunicator = made
            return made
        }
        return try generateParallelRank(
            request, rank: config.rank, communicator: communicator, model: model,
            visionLanguage: visionLanguage, streamingRank: 0, onToken: onToken)
    }

    /// The request with what the tokenizer knows that a method may use: its end-of-turn ids
    /// (APB cuts the question it inserts into the anchor at the first one).
    func prepared(_ request: ParallelRequest) -> ParallelRequest {
        var request = request
        if request.plan.endOfTurnTokenIDs.isEmpty { request.plan.endOfTurnTokenIDs = tokenizer?.eosTokenIds ?? [] }
        return request
    }

    /// This engine's model for rank 0 and a copy on a backend of its own for every other rank.
    func rankModels(_ count: Int) throws -> [RankModel] {
        rankModelLock.lock()
        defer { rankModelLock.unlock() }
        if rankModelCache.isEmpty { rankModelCache = [ownRankModel] }
        while rankModelCache.count < count {
            rankModelCache.append(try loadModelCopy(on: options.device))
        }
        return Array(rankModelCache.prefix(count))
    }

    /// Rank i's model on cuda:(ordinal + i), this engine's model for rank 0. Asking for more GPUs
    /// than are visible is an error naming how many are.
    func gpuRankModels(_ count: Int) throws -> [RankModel] {
        guard let cuda = backend as? CUDABackend else {
            throw BatonError.invalidArgument(
                "ranks on separate GPUs need a CUDA engine; this one runs on \(backend.device)")
        }
        let visible = try CUDABackend.visibleDeviceCount()
        try LaunchMode.requireVisibleGPUs(first: cuda.ordinal, count: count, visible: visible)
        return try rankModelLock.withLock {
            gpuModelCache[cuda.ordinal] = ownRankModel
            return try (cuda.ordinal..<cuda.ordinal + count).map { ordinal in
                if let cached = gpuModelCache[ordinal] { return cached }
                let copy = try loadModelCopy(on: .cuda(ordinal: ordinal))
                gpuModelCache[ordinal] = copy
                return copy
            }
        }
    }

    /// The NCCL group over these models' GPUs, made once per world size and remade after a failure.
    func ncclGroup(_ models: [LlamaModel], timeout: Double) throws -> [NCCLCommunicator] {
        try rankModelLock.withLock {
            if let cached = ncclGroupCache[models.count],
                cached.allSatisfy({ $0.failure == nil && $0.timeout == timeout })
            {
                return cached
            }
            ncclGroupCache[models.count] = nil
            let backends = models.map { $0.backend as! CUDABackend }
            let group = try NCCLCommunicator.group(backends: backends, timeout: timeout)
            ncclGroupCache[models.count] = group
            return group
        }
    }

    /// This engine's weights (its checkpoint, or the same random weights) on another backend.
    private func loadModelCopy(on device: Device) throws -> RankModel {
        let rankBackend = try makeBackend(device)
        if let vl = visionLanguage {
            // A vision-language rank: its tower encodes the rank's share of the frames, and text
            // runs through its language model (M-RoPE or 1-D positions).
            let weights =
                try options.modelDirectory.map { try WeightSource.directory($0) } ?? .random(seed: options.seed)
            let copy = try VisionLanguageModel(config: vl.config, weights: weights, backend: rankBackend)
            return RankModel(language: copy.language, visionLanguage: copy)
        }
        if let directory = options.modelDirectory {
            let language = try LlamaModel.load(directory: directory, backend: rankBackend)
            return RankModel(language: language, visionLanguage: nil)
        }
        let language = try LlamaModel(config: config, weights: .random(seed: options.seed), backend: rankBackend)
        return RankModel(language: language, visionLanguage: nil)
    }
}

/// A prompt without a separate question: its last `queryLength` tokens (default 32, at most
/// half the prompt) serve as the query that APB puts into the anchor and Spava scores against.
public func splitContextAndQuery(_ promptIds: [Int32], queryLength: Int? = nil) throws -> (
    context: [Int32], query: [Int32]
) {
    let q = min(queryLength ?? 32, promptIds.count / 2)
    guard q >= 0 else { throw BatonError.invalidArgument("query length must be >= 0, got \(q)") }
    return (Array(promptIds.dropLast(q)), Array(promptIds.suffix(q)))
}
