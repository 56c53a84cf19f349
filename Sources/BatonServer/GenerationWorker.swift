import BatonEngine
import BatonParallel
import BatonTensor
import BatonTokenizer
import Dispatch
import Foundation

/// One request as the engine runs it: tokens in, limits, sampling, stop strings, method.
struct GenerationJob: Sendable {
    var promptIds: [Int32]
    var maxTokens: Int
    var sampling: SamplingOptions
    var stopStrings: [String]
    /// Generate past the model's end-of-sequence ids (they still add no text).
    var ignoreEOS = false
    var method: Method
    /// When the request arrived (time to first token counts from here).
    var arrival: ContinuousClock.Instant
    /// The prompt's images and videos (their pad tokens are in `promptIds`).
    var visual: VisualRequest? = nil
}

/// What a running job hands to its request's handler, in order: text pieces, then one of the rest.
enum GenerationEvent: Sendable {
    case text(String)
    case finished(FinishReason, Usage)
    /// The client went away; nothing more is sent.
    case cancelled
    case failed(APIError)
}

/// A submitted job: its events, and how its request gives it up.
struct GenerationHandle: Sendable {
    let events: AsyncStream<GenerationEvent>
    fileprivate let flag: CancellationFlag

    /// Stops the job at its next token (or before it starts); harmless once it has finished.
    func cancel() { flag.cancel() }
}

/// Runs jobs on the engine, on a thread of its own (the engine is synchronous), with at most
/// `maxQueue` jobs waiting behind the running ones.
///
/// Dense text requests decode together: each is prefilled alone when it is admitted (one
/// prefill between two decode steps, so a long prompt delays the others' next token once),
/// then every decode step runs the last token of up to `maxBatch` of them in one forward pass
/// (`Engine.decodeStep`). Parallel-method and visual requests run one at a time, whole, between
/// two steps of the batch.
final class GenerationWorker: @unchecked Sendable {
    let engine: Engine
    /// Ranks for parallel methods (--gpus N or --ranks N) and where they run.
    let ranks: Int
    let placement: RankPlacement
    let maxQueue: Int
    /// Dense requests that decode together at most.
    let maxBatch: Int
    let metrics: ServerMetrics
    /// Under torchrun (rank 0): the other processes, which parallel requests run on too.
    let torchrun: TorchrunRanks?
    /// The engine's thread: jobs run here (tests hold it to fill the queue).
    let queue = DispatchQueue(label: "baton.serve.engine")
    private let lock = NSLock()
    /// Jobs accepted and not finished: the running ones plus those waiting.
    private var admitted = 0
    private var running = 0
    /// Accepted jobs not started yet, oldest first.
    private var pending: [Submitted] = []
    /// Whether `drive` is queued or running on `queue`.
    private var driving = false

    /// A job, the flag its request sets to give it up, and where its events go.
    private struct Submitted {
        let job: GenerationJob
        let flag: CancellationFlag
        let continuation: AsyncStream<GenerationEvent>.Continuation
    }

    /// A dense request of the decode batch.
    private struct Decoding {
        let submitted: Submitted
        let decoding: DenseDecoding
        let streamer: TokenStreamer
    }

    init(
        engine: Engine, ranks: Int, placement: RankPlacement, maxQueue: Int, metrics: ServerMetrics,
        maxBatch: Int = 16, torchrun: TorchrunRanks? = nil
    ) {
        self.engine = engine
        self.ranks = ranks
        self.placement = placement
        self.maxQueue = maxQueue
        self.maxBatch = max(1, maxBatch)
        self.metrics = metrics
        self.torchrun = torchrun
    }

    /// Requests waiting behind the running ones.
    var waiting: Int { lock.withLock { admitted - running } }

    /// Requests accepted and not finished (the running ones and those waiting).
    var admittedCount: Int { lock.withLock { admitted } }

    /// Queues `job`, or throws 503 when `maxQueue` jobs already wait. The events end with
    /// `.finished`, `.cancelled` or `.failed`; `cancel()` on the handle (the client left) stops
    /// the job at its next token, or before it starts.
    func submit(_ job: GenerationJob) throws(APIError) -> GenerationHandle {
        let (stream, continuation) = AsyncStream.makeStream(of: GenerationEvent.self)
        let flag = CancellationFlag()
        let start = lock.withLock { () -> Bool? in
            guard admitted - running <= maxQueue else { return nil }
            admitted += 1
            pending.append(Submitted(job: job, flag: flag, continuation: continuation))
            defer { driving = true }
            return !driving
        }
        guard let start else { throw APIError.queueFull(maxQueue) }
        continuation.onTermination = { _ in flag.cancel() }
        updateQueueGauge()
        if start { queue.async { self.drive() } }
        return GenerationHandle(events: stream, flag: flag)
    }

    private func updateQueueGauge() { metrics.queueLength.set(Double(waiting)) }

    /// The engine's loop: admits the oldest waiting job when the batch has room (prefilling it,
    /// or running it whole when it cannot join the batch), then steps the batch; returns when
    /// nothing waits or decodes.
    private func drive() {
        var batch: [Decoding] = []
        while true {
            let next = lock.withLock { () -> Submitted?? in
                if batch.count < maxBatch, !pending.isEmpty {
                    running += 1
                    return .some(pending.removeFirst())
                }
                if batch.isEmpty {
                    driving = false
                    return .none
                }
                return .some(nil)
            }
            guard let next else { return }
            updateQueueGauge()
            if let next, let decoding = start(next) { batch.append(decoding) }
            if !batch.isEmpty { step(&batch) }
        }
    }

    /// Starts `submitted`: a dense text job is prefilled and returned to join the batch (unless
    /// it already ended); any other job runs here to its end.
    private func start(_ submitted: Submitted) -> Decoding? {
        let (job, flag, continuation) = (submitted.job, submitted.flag, submitted.continuation)
        if flag.isSet {  // the client left while waiting
            continuation.yield(.cancelled)
            return finish(submitted)
        }
        guard let streamer = streamer(for: submitted) else { return finish(submitted) }
        let options = generationOptions(job, flag: flag)
        do {
            guard job.visual == nil, job.method == .dense else {
                let result = try generate(job, options: options, flag: flag, onToken: streamer.accept)
                streamer.finish(result, promptTokens: job.promptIds.count, visualUsage: job.visual?.usage)
                return finish(submitted)
            }
            let decoding = try engine.startDecoding(
                promptIds: job.promptIds, options: options, ignoringModelStopIds: job.ignoreEOS,
                onToken: streamer.accept)
            let member = Decoding(submitted: submitted, decoding: decoding, streamer: streamer)
            return decoding.isFinished ? complete(member) : member
        } catch {
            fail(submitted, error)
            return finish(submitted)
        }
    }

    /// One decode step of every request in `batch`; those that ended leave it.
    private func step(_ batch: inout [Decoding]) {
        do {
            try engine.decodeStep(batch.map(\.decoding))
        } catch {
            for member in batch {
                fail(member.submitted, error)
                _ = finish(member.submitted)
            }
            batch = []
            return
        }
        batch = batch.compactMap { $0.decoding.isFinished ? complete($0) : $0 }
    }

    /// Hands out a finished batch member's last text and usage; nil (it leaves the batch).
    private func complete(_ member: Decoding) -> Decoding? {
        member.streamer.finish(
            member.decoding.result, promptTokens: member.submitted.job.promptIds.count, visualUsage: nil)
        return finish(member.submitted)
    }

    /// Ends `submitted`'s events and its place among the running; returns nil for its callers.
    private func finish(_ submitted: Submitted) -> Decoding? {
        lock.withLock {
            running -= 1
            admitted -= 1
        }
        submitted.continuation.finish()
        updateQueueGauge()
        return nil
    }

    private func fail(_ submitted: Submitted, _ error: any Error) {
        let event: GenerationEvent
        switch error {
        case let error as APIError: event = .failed(error)
        case let error as BatonError where error.kind == .invalidArgument:
            event = .failed(.invalidRequest(error.message))
        default: event = .failed(.engineFailure(error))
        }
        submitted.continuation.yield(event)
    }

    private func streamer(for submitted: Submitted) -> TokenStreamer? {
        guard let tokenizer = engine.tokenizer else {
            submitted.continuation.yield(.failed(.engineFailure(BatonError.invalidModel("no tokenizer"))))
            return nil
        }
        return TokenStreamer(
            decoder: tokenizer.streamingDecoder(), stops: StopStringFilter(submitted.job.stopStrings),
            modelStops: engine.stopIds(GenerationOptions()), flag: submitted.flag,
            continuation: submitted.continuation, metrics: metrics, arrival: submitted.job.arrival)
    }

    private func generationOptions(_ job: GenerationJob, flag: CancellationFlag) -> GenerationOptions {
        GenerationOptions(
            maxTokens: job.maxTokens, sampling: job.sampling,
            stopIds: job.ignoreEOS ? [] : engine.stopIds(GenerationOptions()), isCancelled: { flag.isSet })
    }
}

extension GenerationWorker {
    /// Runs `job` on the engine: a text prompt with dense attention through `generate`, anything
    /// else as a `ParallelRequest`.
    fileprivate func generate(
        _ job: GenerationJob, options: GenerationOptions, flag: CancellationFlag,
        onToken: @escaping @Sendable (Int32) -> Void
    ) throws -> GenerationResult {
        guard let visual = job.visual else {
            if job.method == .dense {
                return try engine.generate(
                    promptIds: job.promptIds, options: options, ignoringModelStopIds: job.ignoreEOS, onToken: onToken)
            }
            let (context, query) = try splitContextAndQuery(job.promptIds)
            if let torchrun {
                var request = parallelRequest(job, context: context, query: query, options: options)
                request.ranks = torchrun.worldSize
                return try torchrun.run(request, cancelled: flag, onToken: onToken)
            }
            return try engine.run(
                parallelRequest(job, context: context, query: query, options: options), onToken: onToken)
        }
        // What the vision tower encoded is cached before the client hears the answer is complete,
        // so a follow-up sent right after it finds it; a failed request keeps what it encoded too.
        defer {
            visual.storeEncoded()
            metrics.visualCacheBytes.set(Double(visual.cache.bytes))
        }
        // All images and videos are context and the question is the query, as generate splits a
        // visual prompt; dense runs the whole prompt on one rank.
        let (context, query): (context: [Int32], query: [Int32]) =
            try job.method == .dense
            ? (job.promptIds, []) : VisualPromptEncoding.splitQuery(job.promptIds, config: visual.config)
        var request = parallelRequest(job, context: context, query: query, options: options)
        request.visuals = visual.prefill
        return try engine.run(request, onToken: onToken)
    }

    private func parallelRequest(
        _ job: GenerationJob, context: [Int32], query: [Int32], options: GenerationOptions
    ) -> ParallelRequest {
        var request = ParallelRequest(
            context: context, query: query, method: job.method, ranks: job.method == .dense ? 1 : ranks,
            generation: options)
        request.placement = placement
        return request
    }
}
