import BatonTensor
import XCTest
@testable import BatonCPU

/// Dense masked softmax attention in fp64: out `[Sq, H, d]`, lse `[H, Sq]`; the mask is applied
/// through `allows` (not `keyRange`, which the backend uses), key by key.
func referenceAttention(query: Tensor, key: Tensor, value: Tensor, mask: AttentionMask, scale: Float)
    -> (out: [Double], lse: [Double])
{
    let (sq, heads, d) = (query.shape[0], query.shape[1], query.shape[2])
    let (sk, kvHeads) = (key.shape[0], key.shape[1])
    let group = heads / kvHeads
    let q = doubles(query), k = doubles(key), v = doubles(value)
    var out = [Double](repeating: 0, count: sq * heads * d)
    var lse = [Double](repeating: -.infinity, count: heads * sq)
    var scores = [Double](repeating: 0, count: sk)
    for h in 0..<heads {
        let kvHead = h / group
        for t in 0..<sq {
            var maximum = -Double.infinity
            for j in 0..<sk {
                guard mask.allows(row: t, key: j, queryCount: sq, keyCount: sk) else {
                    scores[j] = -.infinity; continue
                }
                var dot = 0.0
                for i in 0..<d { dot += q[(t * heads + h) * d + i] * k[(j * kvHeads + kvHead) * d + i] }
                scores[j] = dot * Double(scale)
                maximum = max(maximum, scores[j])
            }
            if maximum == -.infinity { continue }
            var sum = 0.0
            for j in 0..<sk where scores[j] > -.infinity { sum += exp(scores[j] - maximum) }
            for j in 0..<sk where scores[j] > -.infinity {
                let p = exp(scores[j] - maximum) / sum
                for i in 0..<d { out[(t * heads + h) * d + i] += p * v[(j * kvHeads + kvHead) * d + i] }
            }
            lse[h * sq + t] = maximum + log(sum)
        }
    }
    return (out, lse)
}

final class AttentionTests: XCTestCase {
    let backend = CPUBackend()

    /// Runs attention on random q/k/v and compares with the fp64 reference, on the default backend
    /// and on 1 and 8 workers (other tile shapes, and the key split of few-tile problems).
    private func check(
        sq: Int, sk: Int, heads: Int, kvHeads: Int, d: Int, mask: AttentionMask, seed: UInt64,
        file: StaticString = #filePath, line: UInt = #line
    ) throws {
        var rng = SeededGenerator(seed: seed)
        let q = rng.tensor([sq, heads, d]), k = rng.tensor([sk, kvHeads, d]), v = rng.tensor([sk, kvHeads, d])
        let scale = 1 / Float(d).squareRoot()
        let expected = referenceAttention(query: q, key: k, value: v, mask: mask, scale: scale)
        for backend in [self.backend, CPUBackend(threads: 1), CPUBackend(threads: 8)] {
            let result = try backend.attention(query: q, key: k, value: v, mask: mask, scale: scale)
            XCTAssertEqual(result.out.shape, [sq, heads, d], file: file, line: line)
            XCTAssertEqual(result.logSumExp.shape, [heads, sq], file: file, line: line)
            let label =
                "attention \(mask) Sq \(sq) Sk \(sk) H \(heads) Hkv \(kvHeads) d \(d) on \(backend.threads) threads"
            // Scores carry d-term dot products; softmax and P V add a few ulps per key in fp32.
            assertClose(
                result.out.floats(), expected.out, tolerance: fp32Tolerance(terms: d + 64), label + " out",
                file: file, line: line)
            assertClose(
                result.logSumExp.floats(), expected.lse, tolerance: fp32Tolerance(terms: d + 64, magnitude: 4),
                label + " lse", file: file, line: line)
        }
    }

    func testFullMaskWithGroupedQueryHeadsMatchesDenseSoftmax() throws {
        try check(sq: 5, sk: 9, heads: 8, kvHeads: 2, d: 16, mask: .full, seed: 10)
        try check(sq: 37, sk: 50, heads: 4, kvHeads: 4, d: 8, mask: .full, seed: 11)
    }

    func testCausalSquareMatchesDenseSoftmax() throws {
        try check(sq: 37, sk: 37, heads: 8, kvHeads: 2, d: 16, mask: .causal, seed: 12)
    }

    func testCausalIsBottomRightAlignedWhenQueriesAreFewerThanKeys() throws {
        try check(sq: 7, sk: 19, heads: 8, kvHeads: 2, d: 16, mask: .causal, seed: 13)
    }

    func testSingleQueryDecodeSeesEveryKey() throws {
        try check(sq: 1, sk: 300, heads: 8, kvHeads: 2, d: 32, mask: .causal, seed: 14)
        try check(sq: 1, sk: 300, heads: 8, kvHeads: 1, d: 32, mask: .full, seed: 15)
    }

    func testDecodeWithKeysSplitAcrossWorkersEqualsDenseSoftmax() throws {
        // Two tiles on eight workers: each tile's 5000 keys are split into pieces and merged.
        try check(sq: 1, sk: 5000, heads: 8, kvHeads: 2, d: 32, mask: .causal, seed: 16)
        try check(
            sq: 3, sk: 4500, heads: 4, kvHeads: 1, d: 16, mask: .anchor(anchorLength: 2, passingLength: 4100),
            seed: 17)
    }

    func testAnchorRuleWithUnalignedLengthsMatchesDenseSoftmax() throws {
        // APB layout: keys [passing 7 | anchor 5 | local 6], queries [anchor 5 | local 6].
        try check(
            sq: 11, sk: 18, heads: 8, kvHeads: 2, d: 16, mask: .anchor(anchorLength: 5, passingLength: 7), seed: 18)
        // Passing block longer than a query tile and a key chunk boundary inside it.
        try check(
            sq: 23, sk: 1100, heads: 4, kvHeads: 2, d: 8, mask: .anchor(anchorLength: 13, passingLength: 1031), seed: 19
        )
        try check(sq: 9, sk: 9, heads: 2, kvHeads: 1, d: 4, mask: .anchor(anchorLength: 0, passingLength: 3), seed: 20)
    }

    func testRowsWithoutVisibleKeysGiveZeroOutputAndNegativeInfinityLSE() throws {
        // Causal with more queries than keys: rows 0..<3 see nothing.
        try check(sq: 6, sk: 3, heads: 4, kvHeads: 2, d: 8, mask: .causal, seed: 21)
        // Anchor rows whose whole visible range is the passing block.
        var rng = SeededGenerator(seed: 22)
        let q = rng.tensor([4, 2, 8]), k = rng.tensor([10, 1, 8]), v = rng.tensor([10, 1, 8])
        let result = try backend.attention(
            query: q, key: k, value: v, mask: .anchor(anchorLength: 4, passingLength: 10), scale: 0.3)
        XCTAssertEqual(result.out.floats(), [Float](repeating: 0, count: 64))
        XCTAssertEqual(result.logSumExp.floats(), [Float](repeating: -.infinity, count: 8))
        // No keys at all.
        let none = try backend.attention(
            query: q, key: Tensor.zeros([0, 1, 8], dtype: .f32),
            value: Tensor.zeros([0, 1, 8], dtype: .f32), mask: .full, scale: 0.3)
        XCTAssertEqual(none.out.floats(), [Float](repeating: 0, count: 64))
        XCTAssertEqual(none.logSumExp.floats(), [Float](repeating: -.infinity, count: 8))
    }

    func testMediumCausalAttentionAcrossKeyChunksMatchesDenseSoftmax() throws {
        // Sk = 2348 spans three key chunks; four query heads share one KV head.
        try check(sq: 64, sk: 2348, heads: 4, kvHeads: 1, d: 32, mask: .causal, seed: 23)
    }

    func testHalfPrecisionInputsMeanTheirExactValues() throws {
        var rng = SeededGenerator(seed: 24)
        let q = rng.tensor([6, 4, 16], dtype: .bf16), k = rng.tensor([9, 2, 16], dtype: .f16),
            v = rng.tensor([9, 2, 16], dtype: .bf16)
        let direct = try backend.attention(query: q, key: k, value: v, mask: .causal, scale: 0.25)
        let widened = try backend.attention(
            query: backend.cast(q, to: .f32), key: backend.cast(k, to: .f32),
            value: backend.cast(v, to: .f32), mask: .causal, scale: 0.25)
        XCTAssertEqual(direct.out.floats(), widened.out.floats())
        XCTAssertEqual(direct.logSumExp.floats(), widened.logSumExp.floats())
    }

    func testAttentionRejectsBadShapes() {
        let q = Tensor.zeros([2, 6, 8], dtype: .f32), k = Tensor.zeros([3, 4, 8], dtype: .f32)
        assertThrowsBatonError(["attention", "multiple of KV heads", "6", "4"]) {
            _ = try backend.attention(query: q, key: k, value: k, mask: .full, scale: 1)
        }
        let k2 = Tensor.zeros([3, 2, 8], dtype: .f32)
        assertThrowsBatonError(["attention", "value", "[3, 2, 8]", "[4, 2, 8]"]) {
            _ = try backend.attention(
                query: q, key: k2, value: Tensor.zeros([4, 2, 8], dtype: .f32), mask: .full, scale: 1)
        }
        assertThrowsBatonError(["attention", "head dim", "8", "4"]) {
            let k4 = Tensor.zeros([3, 2, 4], dtype: .f32)
            _ = try backend.attention(query: q, key: k4, value: k4, mask: .full, scale: 1)
        }
        assertThrowsBatonError(["attention", "query", "[Sq, H, d]"]) {
            _ = try backend.attention(
                query: Tensor.zeros([2, 48], dtype: .f32), key: k2, value: k2, mask: .full, scale: 1)
        }
        assertThrowsBatonError(["attention", "key", "i32"]) {
            let ki = Tensor.zeros([3, 2, 8], dtype: .i32)
            _ = try backend.attention(query: q, key: ki, value: ki, mask: .full, scale: 1)
        }
    }
}
