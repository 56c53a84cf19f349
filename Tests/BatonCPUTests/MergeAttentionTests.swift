import BatonTensor
import XCTest
@testable import BatonCPU

final class MergeAttentionTests: XCTestCase {
    let backend = CPUBackend()

    /// Rows `indices` of a `[S, Hkv, d]` tensor, in that order.
    private func gatherRows(_ x: Tensor, _ indices: [Int]) -> Tensor {
        let values = x.floats(), rowSize = x.shape.rowSize
        return Tensor(
            indices.flatMap { values[$0 * rowSize..<($0 + 1) * rowSize] }, shape: x.shape.withRows(indices.count))
    }

    func testMergingDisjointKeySetsEqualsAttentionOverAllKeys() throws {
        var rng = SeededGenerator(seed: 30)
        let (sq, sk, heads, kvHeads, d) = (6, 40, 8, 2, 16)
        let q = rng.tensor([sq, heads, d], in: -2...2), k = rng.tensor([sk, kvHeads, d], in: -2...2),
            v = rng.tensor([sk, kvHeads, d])
        let whole = try backend.attention(query: q, key: k, value: v, mask: .full, scale: 0.25)
        for pieceCount in 2...4 {
            // Keys dealt to pieces at random (a permutation cut into pieceCount sets).
            var order = Array(0..<sk)
            order.shuffle(using: &rng)
            let parts = try (0..<pieceCount).map { piece in
                let keys = Array(order[sk * piece / pieceCount..<sk * (piece + 1) / pieceCount])
                return try backend.attention(
                    query: q, key: gatherRows(k, keys), value: gatherRows(v, keys), mask: .full, scale: 0.25)
            }
            let merged = try backend.mergeAttention(parts)
            assertClose(
                merged.out.floats(), doubles(whole.out), tolerance: fp32Tolerance(terms: 64),
                "merge of \(pieceCount) out")
            assertClose(
                merged.logSumExp.floats(), doubles(whole.logSumExp), tolerance: fp32Tolerance(terms: 64, magnitude: 4),
                "merge of \(pieceCount) lse")
        }
    }

    func testMergingRingStepsWithCausalDiagonalEqualsCausalAttention() throws {
        // Rank 2 of a 3-rank ring: its 8 queries sit at positions 16..<24; the blocks of ranks 0
        // and 1 are fully visible, its own block causally.
        var rng = SeededGenerator(seed: 31)
        let (block, heads, kvHeads, d) = (8, 4, 2, 8)
        let q = rng.tensor([block, heads, d]), k = rng.tensor([3 * block, kvHeads, d]),
            v = rng.tensor([3 * block, kvHeads, d])
        let steps = try (0..<3).map { source in
            try backend.attention(
                query: q, key: k.rows(source * block..<(source + 1) * block),
                value: v.rows(source * block..<(source + 1) * block),
                mask: source == 2 ? .causal : .full, scale: 0.35)
        }
        let merged = try backend.mergeAttention([steps[2], steps[0], steps[1]])
        let expected = referenceAttention(query: q, key: k, value: v, mask: .causal, scale: 0.35)
        assertClose(merged.out.floats(), expected.out, tolerance: fp32Tolerance(terms: 64), "ring merge out")
        assertClose(
            merged.logSumExp.floats(), expected.lse, tolerance: fp32Tolerance(terms: 64, magnitude: 4), "ring merge lse"
        )
    }

    func testMergeMatchesFloat64LogSumExpFormula() throws {
        var rng = SeededGenerator(seed: 32)
        let (sq, heads, d) = (3, 2, 5)
        // Comparable parts, then parts so far apart that exp of their difference underflows fp32.
        for offsets: [Float] in [[0, 2.5, -3, 1.5], [0, 60, -60, 95]] {
            let parts = offsets.map { offset in
                AttentionOutput(
                    out: rng.tensor([sq, heads, d]),
                    logSumExp: Tensor(rng.floats(heads * sq).map { $0 + offset }, shape: [heads, sq]))
            }
            let merged = try backend.mergeAttention(parts)
            var expectedOut = [Double](repeating: 0, count: sq * heads * d)
            var expectedLSE = [Double](repeating: 0, count: heads * sq)
            let outs = parts.map { doubles($0.out) }, lses = parts.map { doubles($0.logSumExp) }
            for t in 0..<sq {
                for h in 0..<heads {
                    let l = lses.map { $0[h * sq + t] }
                    let m = l.max()!
                    let total = m + log(l.reduce(0) { $0 + exp($1 - m) })
                    expectedLSE[h * sq + t] = total
                    for i in 0..<d {
                        let index = (t * heads + h) * d + i
                        expectedOut[index] = zip(outs, l).reduce(0) { $0 + exp($1.1 - total) * $1.0[index] }
                    }
                }
            }
            let magnitude = Double(offsets.map(abs).max()! + 1)
            assertClose(merged.out.floats(), expectedOut, tolerance: fp32Tolerance(terms: 16), "merge \(offsets) out")
            assertClose(
                merged.logSumExp.floats(), expectedLSE, tolerance: fp32Tolerance(terms: 16, magnitude: magnitude),
                "merge \(offsets) lse")
        }
    }

    func testPartsWithNegativeInfinityLSEContributeNothing() throws {
        let garbage = AttentionOutput(
            out: Tensor([Float](repeating: .nan, count: 4), shape: [1, 2, 2]),
            logSumExp: Tensor([-.infinity, -.infinity], shape: [2, 1]))
        let real = AttentionOutput(
            out: Tensor([1, 2, 3, 4], shape: [1, 2, 2]), logSumExp: Tensor([0.5, -.infinity], shape: [2, 1]))
        for order in [[garbage, real], [real, garbage], [garbage, real, garbage]] {
            let merged = try backend.mergeAttention(order)
            // Head 0 is the real part; head 1 saw no key anywhere: out 0, lse -inf.
            XCTAssertEqual(merged.out.floats(), [1, 2, 0, 0])
            XCTAssertEqual(merged.logSumExp.floats(), [0.5, -.infinity])
        }
        let allEmpty = try backend.mergeAttention([garbage, garbage])
        XCTAssertEqual(allEmpty.out.floats(), [0, 0, 0, 0])
        XCTAssertEqual(allEmpty.logSumExp.floats(), [-.infinity, -.infinity])
    }

    func testMergeOfOnePartIsThatPart() throws {
        var rng = SeededGenerator(seed: 33)
        let part = AttentionOutput(out: rng.tensor([2, 3, 4], dtype: .bf16), logSumExp: rng.tensor([3, 2]))
        let merged = try backend.mergeAttention([part])
        XCTAssertEqual(merged.out.floats(), part.out.floats())
        XCTAssertEqual(merged.out.dtype, .f32)
        XCTAssertEqual(merged.logSumExp.floats(), part.logSumExp.floats())
    }

    func testMergeRejectsMismatchedParts() {
        let a = AttentionOutput(out: Tensor.zeros([2, 3, 4], dtype: .f32), logSumExp: Tensor.zeros([3, 2], dtype: .f32))
        let b = AttentionOutput(out: Tensor.zeros([2, 3, 5], dtype: .f32), logSumExp: Tensor.zeros([3, 2], dtype: .f32))
        let c = AttentionOutput(out: Tensor.zeros([2, 3, 4], dtype: .f32), logSumExp: Tensor.zeros([2, 3], dtype: .f32))
        assertThrowsBatonError(["mergeAttention", "part 1", "[2, 3, 5]"]) { _ = try backend.mergeAttention([a, b]) }
        assertThrowsBatonError(["mergeAttention", "lse", "[3, 2]", "[2, 3]"]) { _ = try backend.mergeAttention([a, c]) }
        assertThrowsBatonError(["mergeAttention", "at least one"]) { _ = try backend.mergeAttention([]) }
    }
}
