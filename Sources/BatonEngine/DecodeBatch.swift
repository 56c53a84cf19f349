import BatonComm
import BatonModels
import BatonParallel
import BatonTensor
import Foundation

/// One dense text request decoding among others on this engine's device (a server's batch): its
/// own KV cache, strategy, sampler, position and stop rules. `Engine.startDecoding` prefills it
/// alone and picks its first token; `Engine.decodeStep` then advances every unfinished request of
/// a batch by one token in one forward pass. The tokens are those `Engine.generate` picks for the
/// same request (the same passes, with the decode rows of several requests stacked).
public final class DenseDecoding: @unchecked Sendable {
    /// The request's one dense rank: its cache and strategy (`ParallelWorker.forward` ran its prefill).
    let worker: ParallelWorker
    let options: GenerationOptions
    let onToken: (@Sendable (Int32) -> Void)?
    var sampler: Sampler
    /// Where the next token fed back sits.
    var position: Int
    let promptTokens: Int
    let start = MonotonicClock.now()
    var prefillSeconds = 0.0
    public private(set) var tokens: [Int32] = []
    /// Set once the request ended (a stop id, max tokens, or cancelled); it then leaves the batch.
    public private(set) var stopReason: StopReason?

    init(worker: ParallelWorker, options: GenerationOptions, onToken: (@Sendable (Int32) -> Void)?) {
        self.worker = worker
        self.options = options
        self.onToken = onToken
        sampler = Sampler(options.sampling)
        position = worker.plan.firstDecodePosition
        promptTokens = worker.plan.contextLength + worker.plan.queryLength
    }

    public var isFinished: Bool { stopReason != nil }

    /// The request's output once finished (its cache is freed with this object).
    public var result: GenerationResult {
        GenerationResult(
            promptTokens: promptTokens, tokens: tokens, stopReason: stopReason ?? .maxTokens,
            prefillSeconds: prefillSeconds, decodeSeconds: MonotonicClock.now() - start - prefillSeconds)
    }

    /// Picks the next token from `logits` `[1, V]` and applies the stop rules as
    /// `ParallelWorker.generate` does: cancellation first (the token is dropped), then the token
    /// is kept and streamed, then a stop id or the limit ends the request.
    func accept(logits: Tensor) throws {
        let next = try sampler.next(logits: logits, backend: worker.backend)
        if tokens.isEmpty {
            try worker.backend.synchronize()
            prefillSeconds = MonotonicClock.now() - start
        }
        if options.isCancelled?() == true {
            stopReason = .cancelled
            return
        }
        tokens.append(next)
        onToken?(next)
        stopReason = options.stopReason(after: next, count: tokens.count)
    }
}

extension Engine {
    /// Prefills `promptIds` alone with dense attention and picks the first token (streamed to
    /// `onToken`), as `generate` does; the request then decodes in `decodeStep` batches. Only text
    /// prompts: visual and parallel requests run through `run`.
    public func startDecoding(
        promptIds: [Int32], options: GenerationOptions, ignoringModelStopIds: Bool = false,
        onToken: (@Sendable (Int32) -> Void)? = nil
    ) throws -> DenseDecoding {
        try checkContext(promptTokens: promptIds.count, maxTokens: options.maxTokens)
        var generation = options
        if !ignoringModelStopIds { generation.stopIds = stopIds(options) }
        let request = prepared(ParallelRequest(context: promptIds, query: [], method: .dense, ranks: 1))
        let plan = try Plan.make(
            method: .dense, context: request.context, query: [], worldSize: 1, options: request.plan)
        let worker = try ParallelWorker(
            plan: plan, rank: 0, communicator: LocalCommunicator.group(worldSize: 1)[0], model: model,
            retainingHeads: nil)
        let decoding = DenseDecoding(worker: worker, options: generation, onToken: onToken)
        let layout = plan.ranks[0]
        let hidden = try worker.forward(
            layout.tokenIDs, positions: layout.positions, ropeLength: plan.firstDecodePosition, phase: .prefill)
        let lastRow = layout.rowCount - layout.probeOnlyRows.count - 1
        try decoding.accept(logits: model.logits(hidden.rows(lastRow..<lastRow + 1)))
        return decoding
    }

    /// Advances every unfinished request of `batch` by one token: their last tokens go through
    /// the model as the rows of one pass (one GEMM per projection for all of them, RoPE at each
    /// request's own position), each row attending through its own request's cache. A model
    /// whose RoPE depends on the request's length (dynamic scaling) steps each request alone.
    public func decodeStep(_ batch: [DenseDecoding]) throws {
        let active = batch.filter { !$0.isFinished }
        if active.isEmpty { return }
        let groups = config.hasLengthDependentRope ? active.map { [$0] } : [active]
        for group in groups {
            let attention = StackedRequestsAttention(group.map { ($0.worker.strategy, $0.worker.cache) })
            for decoding in group { decoding.worker.strategy.phase = .decode }
            let pass = try ForwardPass(
                backend: backend, positions: group.map { Int32($0.position) }, strategy: attention,
                cache: group[0].worker.cache, ropeLength: group.map(\.position).max()! + 1)
            let hidden = try model.forward(tokens: backend.int32Tensor(group.map { $0.tokens.last! }), pass)
            let logits = try model.logits(hidden)
            for (row, decoding) in group.enumerated() {
                decoding.position += 1
                try decoding.accept(logits: logits.rows(row..<row + 1))
            }
        }
    }
}

/// Attention for one decoding step of several requests stacked as rows: row i is request i's
/// new token, attending through request i's own strategy against its own cache (the pass's
/// `cache` argument is not used).
final class StackedRequestsAttention: AttentionStrategy {
    let requests: [(strategy: any AttentionStrategy, cache: KVCache)]

    init(_ requests: [(strategy: any AttentionStrategy, cache: KVCache)]) { self.requests = requests }

    /// input: `[N, H, d]` queries, `[N, Hkv, d]` keys and values, one row per request -> `[N, H, d]`.
    func attend(_ input: AttentionInput, cache _: KVCache, backend: any Backend) throws -> Tensor {
        var stacked: Tensor?
        for (row, request) in requests.enumerated() {
            let own = row..<row + 1
            let out = try request.strategy.attend(
                AttentionInput(
                    layer: input.layer, query: input.query.rows(own), key: input.key.rows(own),
                    value: input.value.rows(own)),
                cache: request.cache, backend: backend)
            if requests.count == 1 { return out }
            let into =
                try stacked
                ?? backend.empty(Shape([requests.count] + Array(out.shape.dimensions.dropFirst())), dtype: out.dtype)
            stacked = into
            try backend.copy(out, into: into.rows(own))
        }
        return stacked!
    }
}
