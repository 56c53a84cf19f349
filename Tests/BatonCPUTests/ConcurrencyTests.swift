import BatonTensor
import Dispatch
import Foundation
import XCTest
@testable import BatonCPU

/// Per-rank results written by concurrent ranks.
private final class RankResults<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [Int: Value] = [:]

    subscript(rank: Int) -> Value? {
        get { lock.withLock { values[rank] } }
        set { lock.withLock { values[rank] = newValue } }
    }
}

final class ConcurrencyTests: XCTestCase {
    /// Results of one "rank": a bf16-weight matmul and an attention call.
    private struct RankResult: Sendable {
        let product: [Float]
        let attention: [Float]
    }

    func testRankThreadsSharingOneBackendGetTheSerialResults() throws {
        var rng = SeededGenerator(seed: 70)
        let backend = CPUBackend(weightCacheBytes: 16 << 20)
        let weight = rng.tensor([256, 128], dtype: .bf16)
        let inputs = (0..<4).map { _ in rng.tensor([8, 128]) }
        let queries = (0..<4).map { _ in rng.tensor([16, 4, 32]) }
        let key = rng.tensor([300, 2, 32]), value = rng.tensor([300, 2, 32])

        let rank: @Sendable (Int) throws -> RankResult = { r in
            RankResult(
                product: try backend.matmul(inputs[r], weight: weight, bias: nil).floats(),
                attention: try backend.attention(query: queries[r], key: key, value: value, mask: .causal, scale: 0.2)
                    .out.floats())
        }
        // All ranks at once (the weight's first conversion races), then one after another on a fresh cache.
        let results = RankResults<RankResult>()
        DispatchQueue.concurrentPerform(iterations: 4) { r in results[r] = try? rank(r) }
        XCTAssertEqual(backend.weightCacheBytesHeld, 256 * 128 * 4, "one cached copy however the ranks raced")
        backend.clearWeightCache()
        for r in 0..<4 {
            let serial = try rank(r)
            XCTAssertEqual(results[r]?.product, serial.product, "rank \(r) matmul")
            XCTAssertEqual(results[r]?.attention, serial.attention, "rank \(r) attention")
        }
    }
}
