import BatonTensor
import Foundation

/// One attention problem in fp32 host memory, and the flash-style tile that solves a piece of it:
/// the query rows `rows` of every query head of one KV head, over the keys `keys`, with an
/// online softmax across key chunks so no `Sq x Sk` matrix exists (Sk may be ~100K).
///
/// A tile packs its `rows x G` query vectors (G = H / Hkv query heads share the KV head) into one
/// `[M, d]` matrix, M = rows * G, row `m = r * G + g`. Per key chunk: scores `[M, chunk]` =
/// scale * Q K^T by sgemm (the KV head's key rows are strided by Hkv * d), mask, running
/// max/sum update, then O += P V by sgemm. The result is unnormalised: `output / rowSum`, with
/// `lse = rowMax + log(rowSum)`, so tiles over disjoint keys can be combined exactly.
struct AttentionProblem {
    let query: UnsafePointer<Float>  // [Sq, H, d]
    let key: UnsafePointer<Float>  // [Sk, Hkv, d]
    let value: UnsafePointer<Float>  // [Sk, Hkv, d]
    let queryCount: Int
    let keyCount: Int
    let heads: Int
    let kvHeads: Int
    let headDim: Int
    let mask: AttentionMask
    let scale: Float

    var group: Int { heads / kvHeads }
    /// Keys per sgemm: a `[M, keyChunk]` fp32 score tile stays in cache.
    static let keyChunk = 1024

    /// Keys row `row` may see, clipped to `keys`.
    @inline(__always)
    func visibleKeys(row: Int, within keys: Range<Int>) -> Range<Int> {
        let range = mask.keyRange(row: row, queryCount: queryCount, keyCount: keyCount)
        let lo = max(range.lowerBound, keys.lowerBound), hi = min(range.upperBound, keys.upperBound)
        return lo < hi ? lo..<hi : keys.lowerBound..<keys.lowerBound
    }

    /// Keys some row of `rows` may see (masks give each row one range, so the union's hull is exact
    /// enough: rows outside their own range get zero weight).
    func visibleKeys(rows: Range<Int>) -> Range<Int> {
        var lo = keyCount, hi = 0
        for row in rows {
            let range = mask.keyRange(row: row, queryCount: queryCount, keyCount: keyCount)
            if range.isEmpty { continue }
            lo = min(lo, range.lowerBound)
            hi = max(hi, range.upperBound)
        }
        return lo < hi ? lo..<hi : 0..<0
    }

    /// Runs the tile of `kvHead`, `rows`, `keys` into `state` (unnormalised output, running max
    /// and sum per packed row).
    func runTile(kvHead: Int, rows: Range<Int>, keys: Range<Int>, state: AttentionTileState) {
        let g = group, d = headDim
        let m = rows.count * g
        state.reset(rowCount: m, headDim: d)
        if keys.isEmpty || m == 0 || d == 0 { return }
        for (r, row) in rows.enumerated() {  // the G query heads of one row are contiguous
            (state.packedQuery + r * g * d).update(from: query + (row * heads + kvHead * g) * d, count: g * d)
        }
        let keyStride = kvHeads * d
        var chunkStart = keys.lowerBound
        while chunkStart < keys.upperBound {
            let chunk = chunkStart..<min(chunkStart + AttentionProblem.keyChunk, keys.upperBound)
            let n = chunk.count
            let scores = state.scores
            BLAS.shared.gemm(
                transposeB: true, m: m, n: n, k: d, alpha: scale, a: state.packedQuery, lda: d,
                b: key + (chunk.lowerBound * kvHeads + kvHead) * d, ldb: keyStride,
                beta: 0, c: scores, ldc: n)
            for (r, row) in rows.enumerated() {
                let visible = visibleKeys(row: row, within: chunk)
                let a = visible.lowerBound - chunk.lowerBound, b = visible.upperBound - chunk.lowerBound
                for packed in r * g..<(r + 1) * g {
                    let s = scores + packed * n
                    if a >= b {
                        s.update(repeating: 0, count: n)
                        continue
                    }
                    let chunkMax = maximum(s + a, count: b - a)
                    let previousMax = state.rowMax[packed]
                    let newMax = max(previousMax, chunkMax)
                    if newMax == -.infinity {  // every visible score is -inf: no weight yet
                        s.update(repeating: 0, count: n)
                        continue
                    }
                    s.update(repeating: 0, count: a)
                    let sum = exponentiateAndSum(s + a, count: b - a, subtracting: newMax)
                    (s + b).update(repeating: 0, count: n - b)
                    if previousMax != newMax {
                        let rescale = exp(previousMax - newMax)  // 0 when previousMax is -inf
                        state.rowSum[packed] *= rescale
                        let o = state.output + packed * d
                        for i in 0..<d { o[i] *= rescale }
                    }
                    state.rowSum[packed] += sum
                    state.rowMax[packed] = newMax
                }
            }
            BLAS.shared.gemm(
                transposeB: false, m: m, n: d, k: n, alpha: 1, a: scores, lda: n,
                b: value + (chunk.lowerBound * kvHeads + kvHead) * d, ldb: keyStride,
                beta: 1, c: state.output, ldc: d)
            chunkStart = chunk.upperBound
        }
    }

    /// Writes a finished tile's rows to out `[Sq, H, d]` and lse `[H, Sq]`.
    func store(
        _ state: AttentionTileState, kvHead: Int, rows: Range<Int>,
        out: UnsafeMutablePointer<Float>, logSumExp: UnsafeMutablePointer<Float>
    ) {
        let g = group, d = headDim
        for (r, row) in rows.enumerated() {
            for j in 0..<g {
                let packed = r * g + j, head = kvHead * g + j
                let destination = out + (row * heads + head) * d
                let sum = state.rowSum[packed]
                if sum > 0 {
                    let inverse = 1 / sum
                    let o = state.output + packed * d
                    for i in 0..<d { destination[i] = o[i] * inverse }
                    logSumExp[head * queryCount + row] = state.rowMax[packed] + log(sum)
                } else {
                    destination.update(repeating: 0, count: d)
                    logSumExp[head * queryCount + row] = -.infinity
                }
            }
        }
    }
}

/// Scratch of one attention tile: packed queries, a score chunk, and the running output, max and
/// sum per packed row. Owned by one worker at a time.
final class AttentionTileState {
    let capacity: Int
    let packedQuery: UnsafeMutablePointer<Float>
    let scores: UnsafeMutablePointer<Float>
    let output: UnsafeMutablePointer<Float>
    let rowMax: UnsafeMutablePointer<Float>
    let rowSum: UnsafeMutablePointer<Float>

    /// Scratch for tiles of up to `maxRows` packed rows over up to `keyCount` keys.
    init(maxRows: Int, headDim: Int, keyCount: Int) {
        capacity = max(maxRows, 1)
        let d = max(headDim, 1)
        packedQuery = .allocate(capacity: capacity * d)
        scores = .allocate(capacity: capacity * max(1, min(AttentionProblem.keyChunk, keyCount)))
        output = .allocate(capacity: capacity * d)
        rowMax = .allocate(capacity: capacity)
        rowSum = .allocate(capacity: capacity)
    }

    func reset(rowCount: Int, headDim: Int) {
        precondition(rowCount <= capacity, "attention tile of \(rowCount) rows exceeds its scratch of \(capacity)")
        output.update(repeating: 0, count: rowCount * headDim)
        rowMax.update(repeating: -.infinity, count: rowCount)
        rowSum.update(repeating: 0, count: rowCount)
    }

    deinit {
        packedQuery.deallocate()
        scores.deallocate()
        output.deallocate()
        rowMax.deallocate()
        rowSum.deallocate()
    }
}
