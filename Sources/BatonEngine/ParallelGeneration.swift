import BatonComm
import BatonModels
import BatonParallel
import BatonTensor
import Foundation

/// One request for sequence-parallel generation: the context (split across ranks) and the
/// query (the question plus the assistant prefix; the first token is sampled after it).
public struct ParallelRequest: Sendable {
    public var context: [Int32]
    public var query: [Int32]
    public var method: Method
    public var ranks: Int
    public var plan: PlanOptions
    public var generation: GenerationOptions
    /// Seconds any rank may wait for another (a collective, a KV block) before the request fails
    /// with a timeout naming the rank and operation. Long CPU prefills need a generous value.
    public var communicationTimeout: Double = 600
    /// Where GPU ranks run: sharing the engine's GPU (host-memory exchange) or one GPU each (NCCL).
    public var placement: RankPlacement = .sharedDevice
    /// Images/videos whose pad tokens are in the prompt (a vision-language engine; any method):
    /// each rank encodes its share of their temporal units and receives the embeddings its rows
    /// need, every pass takes M-RoPE positions, and decoding carries the rope delta.
    public var visuals: VisualPrefill?
    /// When set, every rank measures sampled prefill rows of every layer against exact attention
    /// and records them here (`--report-approximation`); nil costs nothing.
    public var approximation: ApproximationReport?

    public init(
        context: [Int32], query: [Int32], method: Method, ranks: Int,
        plan: PlanOptions = PlanOptions(), generation: GenerationOptions = GenerationOptions()
    ) {
        self.context = context
        self.query = query
        self.method = method
        self.ranks = ranks
        self.plan = plan
        self.generation = generation
    }
}

/// Where the GPU ranks of a request run.
public enum RankPlacement: String, Sendable, Equatable {
    /// Threads sharing the engine's device: CPU ranks, or GPU ranks with their own backend and
    /// weights on one GPU exchanging through host memory (a correctness mode).
    case sharedDevice
    /// One GPU per rank (`--gpus N`), each with its own weights, exchanging over NCCL.
    case onePerGPU
}

/// Generates with `request.ranks` ranks as threads of this process. Every rank runs the whole model
/// over its local input from the plan, with its own KV cache and strategy; only the owner computes
/// logits and samples, and the token is broadcast to all. One rank (dense) is the same path with a
/// world size of 1.
///
/// - Parameters:
///   - model: the rank's model (its backend is the rank's). CPU ranks may share one instance:
///     the CPU backend and the weights are safe to use from several threads.
///   - retainingHeads: APB's scorer per rank; `nil` means query-aware scores.
///   - visionLanguage: the rank's Qwen2.5-VL model, needed when `request.visuals` is set; its
///     language model must be `model(rank)`.
///   - communicators: one per rank (e.g. NCCL, one GPU per thread); default a new
///     `LocalCommunicator` group with `request.communicationTimeout`.
///   - timer: records rank 0's parts (one timer serves one rank).
///   - rankTimers: records every rank's parts, each on its rank's backend (rank 0 then uses its
///     timer from there, not `timer`).
///   - stageTimes: records every rank's stages of a visual request (preprocessing, vision tower,
///     exchange, prefill) without timing inside the language model.
///   - onToken: called on the owner's thread with each new token as it is chosen.
/// Generation stops on `request.generation.stopIds` only (the caller adds the model's EOS ids).
public func generateParallel(
    _ request: ParallelRequest, model: @escaping @Sendable (_ rank: Int) throws -> LlamaModel,
    retainingHeads: (@Sendable (_ rank: Int) throws -> RetainingHeads)? = nil,
    visionLanguage: (@Sendable (_ rank: Int) throws -> VisionLanguageModel)? = nil,
    communicators: [any Communicator]? = nil, timer: PartTimer? = nil, rankTimers: RankTimers? = nil,
    stageTimes: VisualStageTimes? = nil, onToken: (@Sendable (Int32) -> Void)? = nil
) throws -> GenerationResult {
    var options = request.plan
    if retainingHeads != nil { options.appendQueryProbe = false }
    let plan = try Plan.make(
        method: request.method, context: request.context, query: request.query,
        worldSize: request.ranks, options: options)
    let generation = request.generation
    let group =
        try communicators ?? LocalCommunicator.group(worldSize: request.ranks, timeout: request.communicationTimeout)
    guard group.count == request.ranks else {
        throw BatonError.invalidArgument("generateParallel: \(group.count) communicators for \(request.ranks) ranks")
    }
    let results = try runRanks(on: group) { (rank: Int, communicator: any Communicator) throws -> GenerationResult in
        try runWorker(
            plan: plan, rank: rank, communicator: communicator, model: model, retainingHeads: retainingHeads,
            generation: generation,
            visuals: visualRequest(request, rank: rank, visionLanguage: visionLanguage),
            approximation: request.approximation,
            timer: rank == 0 ? timer : nil, rankTimers: rankTimers, stageTimes: stageTimes, onToken: onToken)
    }
    return results[plan.owner]
}

/// Runs one rank of `request` in this process, the others being in other processes (torchrun:
/// one process per GPU, `communicator` an NCCL communicator joined through the rendezvous).
/// Every rank learns every token (the owner broadcasts each), so `streamingRank` (default the
/// owner) may be any rank: the one whose process prints. If this rank fails, the communicator is
/// aborted (peers then fail instead of waiting) and the error rethrown.
public func generateParallelRank(
    _ request: ParallelRequest, rank: Int, communicator: any Communicator, model: LlamaModel,
    retainingHeads: RetainingHeads? = nil, visionLanguage: VisionLanguageModel? = nil, streamingRank: Int? = nil,
    onToken: (@Sendable (Int32) -> Void)? = nil
) throws -> GenerationResult {
    guard communicator.worldSize == request.ranks && communicator.rank == rank else {
        throw BatonError.invalidArgument(
            "generateParallelRank: rank \(rank) of \(request.ranks), but the communicator is rank \(communicator.rank) of \(communicator.worldSize)"
        )
    }
    do {
        var options = request.plan
        if retainingHeads != nil { options.appendQueryProbe = false }
        let plan = try Plan.make(
            method: request.method, context: request.context, query: request.query,
            worldSize: request.ranks, options: options)
        let visuals = try visualRequest(request, rank: rank, visionLanguage: visionLanguage.map { vl in { _ in vl } })
        return try runWorker(
            plan: plan, rank: rank, communicator: communicator, model: { _ in model },
            retainingHeads: retainingHeads.map { heads in { _ in heads } }, generation: request.generation,
            visuals: visuals, approximation: request.approximation, streamingRank: streamingRank ?? plan.owner,
            onToken: onToken)
    } catch {
        communicator.abort(error)
        throw error
    }
}

/// Rank `rank`'s view of `request`'s images and videos, or nil for a text request.
private func visualRequest(
    _ request: ParallelRequest, rank: Int,
    visionLanguage: ((Int) throws -> VisionLanguageModel)?
) throws -> RankVisualRequest? {
    guard let visuals = request.visuals else { return nil }
    guard let visionLanguage else {
        throw BatonError.invalidArgument("a request with images or videos needs each rank's Qwen2.5-VL model")
    }
    return RankVisualRequest(visuals: visuals, prompt: request.context + request.query, model: try visionLanguage(rank))
}

private func runWorker(
    plan: Plan, rank: Int, communicator: any Communicator,
    model: (Int) throws -> LlamaModel, retainingHeads: ((Int) throws -> RetainingHeads)?,
    generation: GenerationOptions, visuals: RankVisualRequest? = nil, approximation: ApproximationReport? = nil,
    streamingRank: Int? = nil,
    timer: PartTimer? = nil, rankTimers: RankTimers? = nil, stageTimes: VisualStageTimes? = nil,
    onToken: ((Int32) -> Void)?
) throws -> GenerationResult {
    let heads = try retainingHeads.map { try $0(rank) }
    let language = try model(rank)
    if let visuals {
        try require(
            visuals.model.language === language,
            "rank \(rank): the language model it runs must be its Qwen2.5-VL model's")
    }
    let worker = try ParallelWorker(
        plan: plan, rank: rank, communicator: communicator, model: language,
        retainingHeads: heads, approximation: approximation,
        timer: rankTimers?.timer(rank: rank, backend: language.backend) ?? timer)
    worker.visualRequest = visuals
    worker.stageTimes = stageTimes
    return try worker.generate(generation, onToken: rank == (streamingRank ?? plan.owner) ? onToken : nil)
}

/// One rank: model, KV cache, strategy, and the generation loop that every request runs, on any
/// number of ranks (prefill, the query pass where the plan has one, decode, stop rules, streaming,
/// timing).
final class ParallelWorker {
    let plan: Plan
    let rank: Int
    let communicator: any Communicator
    let model: LlamaModel
    let strategy: any ParallelStrategy
    let cache: KVCache
    /// Records the prefill's parts when given (benchmark breakdowns); decoding is not timed.
    let timer: PartTimer?
    /// The prompt's images/videos (vision-language prefill), if any.
    var visualRequest: RankVisualRequest?
    /// Made by `generate` from `visualRequest`: this rank's M-RoPE positions and visual rows.
    private var visualInput: RankVisualInput?
    /// Records this rank's stages of a visual request, when given (`bench video`).
    var stageTimes: VisualStageTimes?
    var backend: any Backend { model.backend }
    var isOwner: Bool { rank == plan.owner }

    init(
        plan: Plan, rank: Int, communicator: any Communicator, model: LlamaModel, retainingHeads: RetainingHeads?,
        approximation: ApproximationReport? = nil, timer: PartTimer? = nil
    ) throws {
        self.plan = plan
        self.rank = rank
        self.communicator = communicator
        self.model = model
        self.timer = timer
        strategy = try makeStrategy(
            plan: plan, communicator: communicator, headDim: model.config.headDim,
            scorer: retainingHeads.map(RetainingHeadScorer.init), approximation: approximation)
        cache = model.makeCache(backend: model.backend)
    }

    /// Hidden states `[T, D]` of `tokens` at `positions` in `phase`. With `promptIndices` (where
    /// the tokens come from in the prompt) a visual request's pass takes M-RoPE positions and the
    /// visual rows at its pad tokens; decoding passes none and runs at 1-D positions. `ropeLength`:
    /// the whole request's largest position + 1 (`ForwardPass.ropeLength`), never this rank's rows'.
    func forward(
        _ tokens: [Int32], positions: [Int32], promptIndices: [Int32]? = nil, ropeLength: Int, phase: Phase
    ) throws -> Tensor {
        strategy.phase = phase
        let timer = phase == .decode ? nil : self.timer
        guard let visualInput, let promptIndices else {
            let pass = try ForwardPass(
                backend: backend, positions: positions, strategy: strategy, cache: cache,
                timer: timer, ropeLength: ropeLength)
            return try model.forward(tokens: backend.int32Tensor(tokens), pass)
        }
        let pass = ForwardPass(
            backend: backend, positions: try visualInput.positions(positions), strategy: strategy,
            cache: cache, timer: timer, ropeLength: ropeLength)
        return try model.forward(embeddings: visualInput.embeddings(tokens: tokens, promptIndices: promptIndices), pass)
    }

    func generate(_ options: GenerationOptions, onToken: ((Int32) -> Void)?) throws -> GenerationResult {
        let start = MonotonicClock.now()
        var sampler = Sampler(options.sampling)
        // Prefill, then the query pass (Star, APB); the owner keeps the row that predicts token 1.
        let layout = plan.ranks[rank]
        visualInput = try visualRequest.map {
            try RankVisualInput($0, plan: plan, communicator: communicator, stages: stageTimes)
        }
        // M-RoPE: decoded token c sits at position c + ropeDelta (0 without visuals).
        let ropeDelta = visualInput?.ropeDelta ?? 0
        // Every rank's prefill and query pass see the whole prompt's length: its last token, text
        // after any visuals, holds the largest position.
        let promptRopeLength = plan.firstDecodePosition + ropeDelta
        var hidden = try forward(
            layout.tokenIDs, positions: layout.positions, promptIndices: layout.promptIndices,
            ropeLength: promptRopeLength, phase: .prefill)
        var lastRow = layout.rowCount - layout.probeOnlyRows.count - 1
        if plan.needsQueryPass && plan.queryLength > 0 {
            hidden = try forward(
                plan.queryTokenIDs, positions: plan.queryPositions, promptIndices: plan.queryPositions,
                ropeLength: promptRopeLength, phase: .query)
            lastRow = plan.queryLength - 1
        }
        var tokens: [Int32] = []
        var prefillSeconds = 0.0
        var position = plan.firstDecodePosition
        var stopReason = StopReason.maxTokens
        while true {
            // The owner's next token and whether the request was cancelled (checked once per step on
            // the owner and broadcast with the token, so that every rank stops at the same step).
            var step: [Int32] = [0, 0]
            if isOwner {
                let row = hidden.rows(lastRow..<lastRow + 1)
                let logitsTimer = tokens.isEmpty ? timer : nil
                step[0] = try timed(logitsTimer, .head) {
                    try sampler.next(logits: model.logits(row), backend: backend)
                }
                step[1] = options.isCancelled?() == true ? 1 : 0
            }
            step = try communicator.broadcast(step, root: plan.owner)
            if tokens.isEmpty {
                try backend.synchronize()
                prefillSeconds = MonotonicClock.now() - start
                stageTimes?.recordFirstToken(rank: rank, seconds: prefillSeconds)
            }
            if step[1] != 0 {
                stopReason = .cancelled
                break
            }
            let next = step[0]
            tokens.append(next)
            onToken?(next)
            if let reason = options.stopReason(after: next, count: tokens.count) {
                stopReason = reason
                break
            }
            hidden = try forward(
                [next], positions: [Int32(position + ropeDelta)], ropeLength: position + ropeDelta + 1, phase: .decode)
            lastRow = 0
            position += 1
        }
        try backend.synchronize()
        return GenerationResult(
            promptTokens: plan.contextLength + plan.queryLength, tokens: tokens, stopReason: stopReason,
            prefillSeconds: prefillSeconds,
            decodeSeconds: MonotonicClock.now() - start - prefillSeconds)
    }
}

/// APB's passing scorer from Locret retaining heads (module BatonModels), which read the
/// projections before RoPE.
final class RetainingHeadScorer: PassingScorer {
    let heads: RetainingHeads

    init(_ heads: RetainingHeads) { self.heads = heads }

    var readsPreRotaryProjections: Bool { true }

    func scores(
        _ input: AttentionInput, keyRows: Range<Int>, probeRows: Range<Int>,
        backend: any Backend
    ) throws -> Tensor {
        guard let preRotary = input.preRotary else {
            throw BatonError.invalidArgument(
                "retaining heads on layer \(input.layer): the model passed no pre-RoPE projections")
        }
        return try heads.scores(layer: input.layer, preRotary: preRotary).rows(keyRows)
    }
}
