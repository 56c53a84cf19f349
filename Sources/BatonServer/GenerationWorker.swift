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

/// Runs jobs one at a time on the engine, on a thread of its own (the engine is synchronous and
/// not re-entrant across requests), with at most `maxQueue` jobs waiting behind the running one.
///
/// The current engine runs one request's prefill and decode at a time, so requests are not
/// batched: a request waits for the ones before it to finish.
final class GenerationWorker: @unchecked Sendable {
    let engine: Engine
    /// Ranks for parallel methods (--gpus N or --ranks N) and where they run.
    let ranks: Int
    let placement: RankPlacement
    let maxQueue: Int
    let metrics: ServerMetrics
    /// The engine's thread: jobs run here in order (tests hold it to fill the queue).
    let queue = DispatchQueue(label: "baton.serve.engine")
    private let lock = NSLock()
    /// Jobs accepted and not finished: the running one plus those waiting.
    private var admitted = 0
    private var running = 0

    init(engine: Engine, ranks: Int, placement: RankPlacement, maxQueue: Int, metrics: ServerMetrics) {
        self.engine = engine
        self.ranks = ranks
        self.placement = placement
        self.maxQueue = maxQueue
        self.metrics = metrics
    }

    /// Requests waiting behind the running one.
    var waiting: Int { lock.withLock { admitted - running } }

    /// Requests accepted and not finished (the running one and those waiting).
    var admittedCount: Int { lock.withLock { admitted } }

    /// Queues `job`, or throws 503 when `maxQueue` jobs already wait. The events end with
    /// `.finished`, `.cancelled` or `.failed`; `cancel()` on the handle (the client left) stops
    /// the job at its next token, or before it starts.
    func submit(_ job: GenerationJob) throws(APIError) -> GenerationHandle {
        let accepted = lock.withLock {
            guard admitted <= maxQueue else { return false }
            admitted += 1
            return true
        }
        guard accepted else { throw APIError.queueFull(maxQueue) }
        updateQueueGauge()
        let (stream, continuation) = AsyncStream.makeStream(of: GenerationEvent.self)
        let flag = CancellationFlag()
        continuation.onTermination = { _ in flag.cancel() }
        queue.async {
            self.lock.withLock { self.running += 1 }
            self.updateQueueGauge()
            self.run(job, flag: flag, continuation: continuation)
            continuation.finish()
            self.lock.withLock {
                self.running -= 1
                self.admitted -= 1
            }
            self.updateQueueGauge()
        }
        return GenerationHandle(events: stream, flag: flag)
    }

    private func updateQueueGauge() { metrics.queueLength.set(Double(waiting)) }

    private func run(
        _ job: GenerationJob, flag: CancellationFlag, continuation: AsyncStream<GenerationEvent>.Continuation
    ) {
        if flag.isSet {  // the client left while waiting
            continuation.yield(.cancelled)
            return
        }
        guard let tokenizer = engine.tokenizer else {
            continuation.yield(.failed(.engineFailure(BatonError.invalidModel("no tokenizer"))))
            return
        }
        let modelStops = engine.stopIds(GenerationOptions())
        let streamer = TokenStreamer(
            decoder: tokenizer.streamingDecoder(), stops: StopStringFilter(job.stopStrings),
            modelStops: modelStops, flag: flag, continuation: continuation,
            metrics: metrics, arrival: job.arrival)
        let options = GenerationOptions(
            maxTokens: job.maxTokens, sampling: job.sampling, stopIds: job.ignoreEOS ? [] : modelStops,
            isCancelled: { flag.isSet })
        do {
            let result = try generate(job, options: options, onToken: streamer.accept)
            streamer.finish(result, promptTokens: job.promptIds.count, visualUsage: job.visual?.usage)
        } catch let error as BatonError where error.kind == .invalidArgument {
            continuation.yield(.failed(.invalidRequest(error.message)))
        } catch {
            continuation.yield(.failed(.engineFailure(error)))
        }
    }
}

extension GenerationWorker {
    /// Runs `job` on the engine: a text prompt with dense attention through `generate`, anything
    /// else as a `ParallelRequest`.
    fileprivate func generate(
        _ job: GenerationJob, options: GenerationOptions, onToken: @escaping @Sendable (Int32) -> Void
    ) throws -> GenerationResult {
        guard let visual = job.visual else {
            if job.method == .dense {
                return try engine.generate(
                    promptIds: job.promptIds, options: options, ignoringModelStopIds: job.ignoreEOS, onToken: onToken)
            }
            let (context, query) = try splitContextAndQuery(job.promptIds)
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

/// Turns one job's token ids into text events on the engine's thread: skips end-of-sequence ids,
/// decodes incrementally, cuts at stop strings (then cancels the job), records latencies.
private final class TokenStreamer: @unchecked Sendable {
    private var decoder: StreamingDecoder
    private var stops: StopStringFilter
    private let modelStops: Set<Int32>
    private let flag: CancellationFlag
    private let continuation: AsyncStream<GenerationEvent>.Continuation
    private let metrics: ServerMetrics
    private let arrival: ContinuousClock.Instant
    private var lastToken: ContinuousClock.Instant?

    init(
        decoder: StreamingDecoder, stops: StopStringFilter, modelStops: Set<Int32>, flag: CancellationFlag,
        continuation: AsyncStream<GenerationEvent>.Continuation, metrics: ServerMetrics,
        arrival: ContinuousClock.Instant
    ) {
        self.decoder = decoder
        self.stops = stops
        self.modelStops = modelStops
        self.flag = flag
        self.continuation = continuation
        self.metrics = metrics
        self.arrival = arrival
    }

    /// Called by the engine with each new id, on one thread at a time.
    func accept(_ id: Int32) {
        let now = ContinuousClock.now
        let since = now - (lastToken ?? arrival)
        let seconds = Double(since.components.seconds) + Double(since.components.attoseconds) * 1e-18
        (lastToken == nil ? metrics.timeToFirstToken : metrics.timePerOutputToken).record(seconds)
        lastToken = now
        metrics.generatedTokens.increment()
        guard !modelStops.contains(id), !stops.matched else { return }
        emit(stops.push(decoder.next(id)))
        if stops.matched { flag.cancel() }
    }

    /// Hands out the rest of the text and how the request ended.
    func finish(_ result: GenerationResult, promptTokens: Int, visualUsage: VisualUsage?) {
        metrics.promptTokens.increment(by: Int64(promptTokens))
        if !stops.matched {
            emit(stops.push(decoder.finish()))
            emit(stops.finish())
        }
        let usage = Usage(promptTokens: promptTokens, completionTokens: result.tokens.count, baton: visualUsage)
        switch (stops.matched, result.stopReason) {
        case (true, _), (false, .stopToken): continuation.yield(.finished(.stop, usage))
        case (false, .maxTokens): continuation.yield(.finished(.length, usage))
        case (false, .cancelled): continuation.yield(.cancelled)
        }
    }

    private func emit(_ text: String) {
        if !text.isEmpty { continuation.yield(.text(text)) }
    }
}
