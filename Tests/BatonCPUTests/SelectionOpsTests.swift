import BatonTensor
import XCTest
@testable import BatonCPU

final class SelectionOpsTests: XCTestCase {
    let backend = CPUBackend()

    func testQueryAwareScoresAreMeanDotProductsOverTheGroup() throws {
        var rng = SeededGenerator(seed: 50)
        let (queries, heads, kvHeads, keys, d) = (5, 8, 2, 40, 16)
        let q = rng.tensor([queries, heads, d]), k = rng.tensor([keys, kvHeads, d], dtype: .bf16)
        let scores = try backend.queryAwareScores(query: q, key: k)
        XCTAssertEqual(scores.shape, [keys, kvHeads])
        let qs = doubles(q), ks = doubles(k), group = heads / kvHeads
        var expected = [Double](repeating: 0, count: keys * kvHeads)
        for j in 0..<keys {
            for h in 0..<kvHeads {
                var sum = 0.0
                for t in 0..<queries {
                    for g in 0..<group {
                        for i in 0..<d {
                            sum += qs[(t * heads + h * group + g) * d + i] * ks[(j * kvHeads + h) * d + i]
                        }
                    }
                }
                expected[j * kvHeads + h] = sum / Double(queries * group)
            }
        }
        assertClose(scores.floats(), expected, tolerance: fp32Tolerance(terms: d), "queryAwareScores")
        assertThrowsBatonError(["queryAwareScores", "multiple of KV heads"]) {
            _ = try backend.queryAwareScores(query: rng.tensor([2, 6, 16]), key: rng.tensor([3, 4, 16]))
        }
    }

    func testMaxPool1DIsTheMaximumOverTheCentredWindow() throws {
        var rng = SeededGenerator(seed: 51)
        let (rows, columns) = (37, 3)
        let x = rng.tensor([rows, columns], dtype: .bf16)
        let xs = x.floats()
        for window in [1, 3, 7, 101] {
            let pooled = try backend.maxPool1D(x, window: window)
            var expected = [Float](repeating: 0, count: rows * columns)
            for r in 0..<rows {
                for c in 0..<columns {
                    let lo = max(0, r - window / 2), hi = min(rows - 1, r + window / 2)
                    expected[r * columns + c] = (lo...hi).map { xs[$0 * columns + c] }.max()!
                }
            }
            XCTAssertEqual(pooled.floats(), expected, "window \(window)")
        }
        assertThrowsBatonError(["maxPool1D", "odd", "4"]) { _ = try backend.maxPool1D(x, window: 4) }
        // NaN propagates through every window that holds it, wherever it sits.
        let withNaN = try backend.maxPool1D(Tensor([1, .nan, 3, 0, 5], shape: [5, 1]), window: 3).floats()
        XCTAssertEqual(withNaN.map(\.isNaN), [true, true, true, false, false])
        XCTAssertEqual(withNaN[3...], [5, 5])
    }

    func testTopKPerHeadPicksLargestWithTiesToLowerIndexSortedAscending() throws {
        // Column 0 has ties at 5.0 (rows 1, 3, 6); column 1 is increasing.
        let scores = Tensor(
            [
                0, 0,
                5, 1,
                1, 2,
                5, 3,
                2, 4,
                4, 5,
                5, 6
            ], shape: [7, 2])
        XCTAssertEqual(try backend.topKPerHead(scores, k: 2, rows: 0..<7).int32s(), [1, 3, 5, 6])
        XCTAssertEqual(try backend.topKPerHead(scores, k: 4, rows: 0..<7).int32s(), [1, 3, 5, 6, 3, 4, 5, 6])
        // Restricted rows: absolute indices within them.
        XCTAssertEqual(try backend.topKPerHead(scores, k: 2, rows: 4..<7).int32s(), [5, 6, 5, 6])
        XCTAssertEqual(try backend.topKPerHead(scores, k: 0, rows: 4..<7).shape, [2, 0])
        assertThrowsBatonError(["topKPerHead", "k", "3", "4"]) {
            _ = try backend.topKPerHead(scores, k: 4, rows: 4..<7)
        }
        assertThrowsBatonError(["topKPerHead", "rows", "0..<7"]) {
            _ = try backend.topKPerHead(scores, k: 1, rows: 5..<9)
        }
    }

    func testTopKPerHeadMatchesSortingOnRandomScoresWithManyTies() throws {
        var rng = SeededGenerator(seed: 52)
        let (rows, columns) = (500, 4)
        // Scores on a coarse grid so ties are common.
        let values = (0..<rows * columns).map { _ in Float(Int.random(in: 0..<20, using: &rng)) }
        let scores = Tensor(values, shape: [rows, columns])
        for (k, range) in [(1, 0..<rows), (37, 100..<450), (350, 100..<450)] {
            let picked = try backend.topKPerHead(scores, k: k, rows: range).int32s()
            for c in 0..<columns {
                let expected = range.sorted { a, b in
                    let (sa, sb) = (values[a * columns + c], values[b * columns + c])
                    return sa != sb ? sa > sb : a < b
                }.prefix(k).sorted().map(Int32.init)
                XCTAssertEqual(Array(picked[c * k..<(c + 1) * k]), expected, "k \(k) rows \(range) column \(c)")
            }
        }
    }

    func testGatherRowsPerHeadTakesEachHeadsOwnRows() throws {
        var rng = SeededGenerator(seed: 53)
        let (rows, columns, d) = (9, 3, 5)
        let x = rng.tensor([rows, columns, d], dtype: .bf16)
        let indices: [Int32] = [
            0, 4, 8, 8,
            1, 1, 2, 3,
            7, 6, 5, 0
        ]
        let gathered = try backend.gatherRowsPerHead(x, indices: Tensor(int32: indices, shape: [columns, 4]))
        XCTAssertEqual(gathered.shape, [4, columns, d])
        XCTAssertEqual(gathered.dtype, .bf16)
        let xs = x.floats(), out = gathered.floats()
        for i in 0..<4 {
            for c in 0..<columns {
                let source = Int(indices[c * 4 + i])
                XCTAssertEqual(
                    Array(out[(i * columns + c) * d..<(i * columns + c + 1) * d]),
                    Array(xs[(source * columns + c) * d..<(source * columns + c + 1) * d]))
            }
        }
        assertThrowsBatonError(["gatherRowsPerHead", "index 9", "0..<9"]) {
            _ = try backend.gatherRowsPerHead(x, indices: Tensor(int32: [0, 9, 0], shape: [3, 1]))
        }
        assertThrowsBatonError(["gatherRowsPerHead", "[3, k]"]) {
            _ = try backend.gatherRowsPerHead(x, indices: Tensor(int32: [0, 1], shape: [2, 1]))
        }
    }

    func testArgmaxTakesTheLowerIndexOnTies() throws {
        let logits = Tensor(
            [
                1, 3, 3, 2,
                -1, -5, -1, -2,
                0, 0, 0, 7
            ], shape: [3, 4], dtype: .bf16)
        XCTAssertEqual(try backend.argmax(logits), [1, 0, 3])
        var rng = SeededGenerator(seed: 54)
        let wide = rng.tensor([2, 50_000])
        let values = wide.floats()
        var expected: [Int32] = []
        for r in 0..<2 {
            var best = 0
            for i in 0..<50_000 where values[r * 50_000 + i] > values[r * 50_000 + best] { best = i }
            expected.append(Int32(best))
        }
        XCTAssertEqual(try backend.argmax(wide), expected)
        assertThrowsBatonError(["argmax", "[R, V]"]) { _ = try backend.argmax(Tensor([1, 2], shape: [2])) }
    }
}
