import BatonEngine
import BatonParallel
import Foundation
import XCTest

@testable import BatonServer

/// The queue, cancellation, stop strings and `auto`, below HTTP.
final class GenerationWorkerTests: XCTestCase {
    func job(maxTokens: Int, stops: [String] = []) throws -> GenerationJob {
        let ids = try XCTUnwrap(ServerFixture.engine.tokenizer).encode("Once upon a time", addSpecialTokens: true)
        return GenerationJob(
            promptIds: ids, maxTokens: maxTokens, sampling: .greedy, stopStrings: stops, method: .dense,
            arrival: .now)
    }

    func testJobCancelledWhileWaitingNeverRuns() async throws {
        let metrics = ServerMetrics()
        let worker = GenerationWorker(
            engine: ServerFixture.engine, ranks: 1, placement: .sharedDevice, maxQueue: 4, metrics: metrics)
        let gate = DispatchSemaphore(value: 0)
        worker.queue.async { gate.wait() }
        let handle = try worker.submit(try job(maxTokens: 50))
        XCTAssertEqual(worker.waiting, 1)
        handle.cancel()
        gate.signal()
        var events: [String] = []
        for await event in handle.events { events.append("\(event)") }
        XCTAssertEqual(events, ["cancelled"])
        XCTAssertFalse(metrics.exposition().contains("baton_generation_tokens_total 1"), "no token was generated")
        XCTAssertEqual(worker.admittedCount, 0)
    }

    func testEngineStopsAtTheStepAfterCancellation() throws {
        let engine = ServerFixture.engine
        let ids = try XCTUnwrap(engine.tokenizer).encode("Once upon a time", addSpecialTokens: true)
        let seen = CancellationFlag()
        let counter = Counter()
        // Ignoring the model's stop ids, 40 tokens would come; cancelling on the third stops there.
        let options = GenerationOptions(maxTokens: 40, isCancelled: { seen.isSet })
        let result = try engine.generate(promptIds: ids, options: options, ignoringModelStopIds: true) { _ in
            if counter.increment() == 3 { seen.cancel() }
        }
        XCTAssertEqual(result.tokens.count, 3)
        XCTAssertEqual(result.stopReason, .cancelled)
    }

    func testCancellationStopsEveryRankOfAParallelMethodTogether() throws {
        let engine = ServerFixture.engine
        let ids = try XCTUnwrap(engine.tokenizer).encode(
            String(repeating: "Once upon a time there was a ring. ", count: 6), addSpecialTokens: true)
        let (context, query) = try splitContextAndQuery(ids)
        let seen = CancellationFlag()
        let counter = Counter()
        let options = GenerationOptions(maxTokens: 40, isCancelled: { seen.isSet })
        let request = ParallelRequest(context: context, query: query, method: .ring, ranks: 2, generation: options)
        let result = try engine.run(request) { _ in if counter.increment() == 4 { seen.cancel() } }
        XCTAssertEqual(result.tokens.count, 4)
        XCTAssertEqual(result.stopReason, .cancelled)
    }

    func testConcurrentDenseRequestsDecodingInOneBatchAnswerAsEachAlone() async throws {
        let engine = ServerFixture.engine
        let tokenizer = try XCTUnwrap(engine.tokenizer)
        let prompts = [
            "Once upon a time", "The capital of France is", "A", "Tell me a long story about a dragon and a knight",
            "1 2 3 4 5", "Hello"
        ]
        let limits = [12, 3, 20, 7, 15, 1]
        let jobs = prompts.indices.map { index in
            GenerationJob(
                promptIds: tokenizer.encode(prompts[index], addSpecialTokens: true), maxTokens: limits[index],
                sampling: .greedy, stopStrings: [], ignoreEOS: true, method: .dense, arrival: .now)
        }
        let stops = engine.stopIds(GenerationOptions())
        let expected = try jobs.map { job in
            let alone = try engine.generate(
                promptIds: job.promptIds, options: GenerationOptions(maxTokens: job.maxTokens),
                ignoringModelStopIds: true)
            return tokenizer.decode(alone.tokens.filter { !stops.contains($0) })
        }
        let worker = GenerationWorker(
            engine: engine, ranks: 1, placement: .sharedDevice, maxQueue: 8, metrics: ServerMetrics(), maxBatch: 4)
        // All six wait until the engine's thread is free, then four decode together and two join as others end.
        let gate = DispatchSemaphore(value: 0)
        worker.queue.async { gate.wait() }
        let handles = try jobs.map { try worker.submit($0) }
        gate.signal()
        for (index, handle) in handles.enumerated() {
            var text = ""
            var ending: String?
            for await event in handle.events {
                switch event {
                case .text(let piece): text += piece
                case .finished(let reason, let usage):
                    ending = "\(reason) \(usage.completionTokens)"
                default: ending = "\(event)"
                }
            }
            XCTAssertEqual(text, expected[index], "request \(index): \(prompts[index])")
            XCTAssertEqual(ending, "\(FinishReason.length) \(limits[index])", "request \(index)")
        }
        XCTAssertEqual(worker.admittedCount, 0)
    }

    func testStopStringFilterHoldsPossibleStartsAndCutsAtTheEarliestMatch() {
        var filter = StopStringFilter(["END", "xyz"])
        XCTAssertEqual(filter.push("abc E"), "abc ")  // "E" may start "END"
        XCTAssertEqual(filter.push("N"), "")  // "EN" still may
        XCTAssertEqual(filter.push("Dzzz"), "")  // matched: nothing after it
        XCTAssertTrue(filter.matched)
        XCTAssertEqual(filter.finish(), "")

        var released = StopStringFilter(["END"])
        XCTAssertEqual(released.push("tail E"), "tail ")
        XCTAssertEqual(released.push("Nx"), "ENx")  // "ENx" cannot become "END"
        XCTAssertEqual(released.push(" EN"), " ")
        XCTAssertEqual(released.finish(), "EN")  // generation ended without a match

        var earliest = StopStringFilter(["world", "lo w"])
        XCTAssertEqual(earliest.push("hello world"), "hel")

        var multibyte = StopStringFilter(["é!"])
        XCTAssertEqual(multibyte.push("caf"), "caf")
        XCTAssertEqual(multibyte.push("é"), "")
        XCTAssertEqual(multibyte.push("é!"), "é")
    }

    func testAutoFollowsTheMeasuredPlanOverSeveralRanksAndIsDenseOnOne() {
        let two = MethodPlanner(ranks: 2)
        XCTAssertEqual(two.method(for: .auto, promptTokens: 4095), .dense)
        XCTAssertEqual(two.method(for: .auto, promptTokens: 4096), .zigzag)
        XCTAssertEqual(two.method(for: .auto, promptTokens: 8191), .zigzag)
        XCTAssertEqual(two.method(for: .auto, promptTokens: 131_072), .spava)
        XCTAssertEqual(MethodPlanner(ranks: 1).method(for: .auto, promptTokens: 131_072), .dense)
        XCTAssertEqual(MethodPlanner(ranks: 1).method(for: .fixed(.spava), promptTokens: 10), .spava)
        XCTAssertEqual(try MethodChoice.named("AUTO", option: "--method"), .auto)
        XCTAssertThrowsError(try MethodChoice.named("warp", option: "--method"))
    }

    func testAutoPlanParsesTokensAndMethodsInAnyOrderAndNamesTheOptionInItsErrors() throws {
        let steps = try MethodPlanner.steps(parsing: "32768:apb, 2048:ring", option: "--auto-plan")
        let planner = MethodPlanner(ranks: 4, steps: steps)
        XCTAssertEqual(planner.summary, "2048:ring,32768:apb")
        XCTAssertEqual(planner.method(for: .auto, promptTokens: 2047), .dense)
        XCTAssertEqual(planner.method(for: .auto, promptTokens: 40_000), .apb)
        XCTAssertEqual(MethodPlanner(ranks: 2).summary, "4096:zigzag,8192:spava")
        for bad in ["4096", "x:spava", "0:spava", "4096:warp"] {
            XCTAssertThrowsError(try MethodPlanner.steps(parsing: bad, option: "--auto-plan")) { error in
                XCTAssertTrue("\(error)".contains("--auto-plan"), "\(bad): \(error)")
            }
        }
    }
}

/// A thread-safe count for onToken closures.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var value = 0

    func increment() -> Int {
        lock.withLock {
            value += 1; return value
        }
    }
}
