import BatonEngine
import Foundation
import XCTest

/// Dense requests decoding together (`startDecoding` + `decodeStep`, the server's batch) against
/// each request generated alone.
final class DecodeBatchTests: XCTestCase {
    static let engine: Engine = {
        let directory = EngineGenerationTests.fixtures.appendingPathComponent("tiny-llama")
        do {
            return try Engine.load(EngineOptions(modelDirectory: directory, showProgress: false))
        } catch {
            fatalError("loading \(directory.path): \(error)")
        }
    }()

    /// Prompts of different lengths, each with its own limit; the model's EOS is no stop, so
    /// every request runs to its limit and requests leave the batch at different steps.
    static let requests: [(prompt: [Int32], maxTokens: Int)] = [
        (prompt(length: 7, stride: 31), 12), (prompt(length: 30, stride: 17), 5), (prompt(length: 2, stride: 1), 20),
        (prompt(length: 51, stride: 7), 9), (prompt(length: 13, stride: 13), 1)
    ]

    /// `length` ids in 3..<203, spread by `stride`.
    static func prompt(length: Int, stride: Int) -> [Int32] {
        (0..<length).map { Int32(($0 * stride + length) % 200 + 3) }
    }

    func testGreedyRequestsDecodingTogetherGiveEachTheTokensItGetsAlone() throws {
        let engine = Self.engine
        let alone = try Self.requests.map {
            try engine.generate(
                promptIds: $0.prompt, options: GenerationOptions(maxTokens: $0.maxTokens), ignoringModelStopIds: true)
        }
        // Requests join while others decode: two first, then one more per step, as the server admits them.
        var batch: [DenseDecoding] = []
        var waiting = Self.requests
        var steps = 0
        while !waiting.isEmpty || batch.contains(where: { !$0.isFinished }) {
            let joining = batch.isEmpty ? 2 : 1
            for request in waiting.prefix(joining) {
                batch.append(
                    try engine.startDecoding(
                        promptIds: request.prompt, options: GenerationOptions(maxTokens: request.maxTokens),
                        ignoringModelStopIds: true))
            }
            waiting.removeFirst(min(joining, waiting.count))
            try engine.decodeStep(batch)
            steps += 1
        }
        for (index, decoding) in batch.enumerated() {
            XCTAssertEqual(decoding.tokens, alone[index].tokens, "request \(index)")
            XCTAssertEqual(decoding.result.stopReason, .maxTokens, "request \(index)")
            XCTAssertEqual(decoding.result.promptTokens, Self.requests[index].prompt.count)
        }
        XCTAssertLessThan(steps, Self.requests.map(\.maxTokens).reduce(0, +), "steps were shared")
    }

    func testSampledCancelledAndStoppedRequestsKeepTheirOwnRulesInABatch() throws {
        let engine = Self.engine
        let prompt = Self.requests[0].prompt
        let sampled = GenerationOptions(maxTokens: 10, sampling: SamplingOptions(temperature: 1.3, topP: 0.9, seed: 11))
        let sampledAlone = try engine.generate(promptIds: prompt, options: sampled, ignoringModelStopIds: true)
        let greedyAlone = try engine.generate(
            promptIds: prompt, options: GenerationOptions(maxTokens: 10), ignoringModelStopIds: true)
        // A stop id: the greedy continuation's fourth token ends the request there.
        let stopping = GenerationOptions(maxTokens: 10, stopIds: [greedyAlone.tokens[3]])
        let cancel = Flag()
        let cancelled = GenerationOptions(maxTokens: 10, isCancelled: { cancel.isSet })
        let streamed = Flag()
        let batch = [
            try engine.startDecoding(promptIds: prompt, options: sampled, ignoringModelStopIds: true),
            try engine.startDecoding(promptIds: prompt, options: stopping, ignoringModelStopIds: true),
            try engine.startDecoding(
                promptIds: prompt, options: cancelled, ignoringModelStopIds: true,
                onToken: { _ in if streamed.countUp() == 2 { cancel.set() } })
        ]
        while batch.contains(where: { !$0.isFinished }) { try engine.decodeStep(batch) }
        XCTAssertEqual(batch[0].tokens, sampledAlone.tokens, "sampling with its own seed")
        let firstStop = greedyAlone.tokens.firstIndex(of: greedyAlone.tokens[3])!
        XCTAssertEqual(batch[1].tokens, Array(greedyAlone.tokens[...firstStop]))
        XCTAssertEqual(batch[1].result.stopReason, .stopToken)
        XCTAssertEqual(batch[2].tokens, Array(greedyAlone.tokens.prefix(2)), "cancelled after its second token")
        XCTAssertEqual(batch[2].result.stopReason, .cancelled)
    }

    final class Flag: @unchecked Sendable {
        private let lock = NSLock()
        private var value = false
        private var count = 0
        var isSet: Bool { lock.withLock { value } }
        func set() { lock.withLock { value = true } }
        func countUp() -> Int {
            lock.withLock {
                count += 1
                return count
            }
        }
    }
}
