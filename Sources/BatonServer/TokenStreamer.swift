import BatonEngine
import BatonTokenizer
import Foundation

/// Turns one job's token ids into text events on the engine's thread: skips end-of-sequence ids,
/// decodes incrementally, cuts at stop strings (then cancels the job), records latencies.
final class TokenStreamer: @unchecked Sendable {
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
