import BatonTensor
import Foundation

extension CPUBackend {
    /// q `[Sq, H, d]`, k/v `[Sk, Hkv, d]` any float (GQA: query head `h` uses KV head `h / (H/Hkv)`),
    /// scores scaled by `scale`, masked by `mask` -> out `[Sq, H, d]` f32 and lse `[H, Sq]` f32
    /// (natural log). A row that sees no key gets out 0 and lse -inf.
    ///
    /// Tiles of (KV head, block of query rows) run in parallel, each a flash-style loop over key
    /// chunks with sgemm for Q K^T and P V (`AttentionProblem`). When there are fewer tiles than
    /// cores (decode), each tile's keys are also split and the pieces merged by log-sum-exp.
    public func attention(query: Tensor, key: Tensor, value: Tensor, mask: AttentionMask, scale: Float) throws
        -> AttentionOutput
    {
        try requireHost(["query": query, "key": key, "value": value], "attention")
        let (queryCount, keyCount, heads, kvHeads, headDim) = try OpShapes.attention(
            query: query, key: key, value: value,
            mask: mask)
        let out = try uninitializedHostTensor(query.shape, dtype: .f32)
        let logSumExp = try uninitializedHostTensor(Shape([heads, queryCount]), dtype: .f32)
        if queryCount == 0 || heads == 0 { return AttentionOutput(out: out, logSumExp: logSumExp) }

        let queryFloat = try floatTensor(query, threads: threads)
        let keyFloat = try floatTensor(key, threads: threads)
        let valueFloat = try floatTensor(value, threads: threads)
        withExtendedLifetime((queryFloat, keyFloat, valueFloat)) {
            let problem = AttentionProblem(
                query: queryFloat.floatPointer, key: keyFloat.floatPointer, value: valueFloat.floatPointer,
                queryCount: queryCount, keyCount: keyCount, heads: heads, kvHeads: kvHeads, headDim: headDim,
                mask: mask, scale: scale)
            solve(problem, out: out.floatPointer, logSumExp: logSumExp.floatPointer)
        }
        return AttentionOutput(out: out, logSumExp: logSumExp)
    }

    private func solve(
        _ problem: AttentionProblem, out: UnsafeMutablePointer<Float>, logSumExp: UnsafeMutablePointer<Float>
    ) {
        let group = problem.group, kvHeads = problem.kvHeads, queryCount = problem.queryCount
        // Small problems (decode over a short cache) run inline: thread hand-off would dominate.
        let work = queryCount * problem.keyCount * problem.heads * problem.headDim
        let threads = work < (1 << 17) ? 1 : self.threads
        // About 128 packed rows per sgemm (amortises sgemm's packing of each key chunk), fewer
        // when that would leave cores idle.
        var blockRows = max(1, 128 / group)
        blockRows = min(blockRows, max(1, (queryCount * kvHeads + 2 * threads - 1) / (2 * threads)))
        let blocks = (queryCount + blockRows - 1) / blockRows
        let tiles = blocks * kvHeads
        let rowsOf = { (block: Int) in block * blockRows..<min(queryCount, (block + 1) * blockRows) }

        let splits = tiles >= threads ? 1 : max(1, min((threads + tiles - 1) / tiles, problem.keyCount / 2048))
        if splits == 1 {
            parallelItems(tiles, threads: threads) { tile in
                let (block, kvHead) = tile.quotientAndRemainder(dividingBy: kvHeads)
                let rows = rowsOf(block)
                let state = AttentionTileState(
                    maxRows: blockRows * group, headDim: problem.headDim, keyCount: problem.keyCount)
                problem.runTile(kvHead: kvHead, rows: rows, keys: problem.visibleKeys(rows: rows), state: state)
                problem.store(state, kvHead: kvHead, rows: rows, out: out, logSumExp: logSumExp)
            }
            return
        }

        // Few tiles (decode): split each tile's keys into `splits` pieces, then merge the pieces.
        let partials = (0..<tiles * splits).map { _ in
            AttentionTileState(maxRows: blockRows * group, headDim: problem.headDim, keyCount: problem.keyCount)
        }
        parallelItems(tiles * splits, threads: threads) { item in
            let (tile, piece) = item.quotientAndRemainder(dividingBy: splits)
            let (block, kvHead) = tile.quotientAndRemainder(dividingBy: kvHeads)
            let rows = rowsOf(block)
            let keys = problem.visibleKeys(rows: rows)
            let lo = keys.lowerBound + keys.count * piece / splits
            let hi = keys.lowerBound + keys.count * (piece + 1) / splits
            problem.runTile(kvHead: kvHead, rows: rows, keys: lo..<hi, state: partials[item])
        }
        parallelItems(tiles, threads: threads) { tile in
            let (block, kvHead) = tile.quotientAndRemainder(dividingBy: kvHeads)
            let rows = rowsOf(block)
            let target = partials[tile * splits]
            for packed in 0..<rows.count * group {
                var largest = -Float.infinity
                for piece in 0..<splits { largest = max(largest, partials[tile * splits + piece].rowMax[packed]) }
                if largest == -.infinity { continue }  // no key anywhere: rowSum stays 0
                let o = target.output + packed * problem.headDim
                let firstWeight = exp(target.rowMax[packed] - largest)
                var sum = target.rowSum[packed] * firstWeight
                for i in 0..<problem.headDim { o[i] *= firstWeight }
                for piece in 1..<splits {
                    let part = partials[tile * splits + piece]
                    if part.rowSum[packed] == 0 { continue }
                    let weight = exp(part.rowMax[packed] - largest)
                    sum += part.rowSum[packed] * weight
                    let po = part.output + packed * problem.headDim
                    for i in 0..<problem.headDim { o[i] += po[i] * weight }
                }
                target.rowMax[packed] = largest
                target.rowSum[packed] = sum
            }
            problem.store(target, kvHead: kvHead, rows: rows, out: out, logSumExp: logSumExp)
        }
    }

    /// Exact merge of partial results over disjoint key sets, in fp32, applied in array order with
    /// the stable form `out -= sigmoid(lse_b - lse) * (out - out_b)`, `lse -= logsigmoid(lse - lse_b)`.
    /// A part whose lse is -inf contributes nothing (its out is ignored); if every part is -inf the
    /// row is out 0, lse -inf. -> out `[Sq, H, d]` f32, lse `[H, Sq]` f32.
    public func mergeAttention(_ parts: [AttentionOutput]) throws -> AttentionOutput {
        for (i, part) in parts.enumerated() {
            try requireHost(["part \(i) out": part.out, "part \(i) lse": part.logSumExp], "mergeAttention")
        }
        let (queryCount, heads, headDim) = try OpShapes.mergeAttention(parts)
        let shape = parts[0].out.shape
        let outs = try parts.map { try floatTensor($0.out, threads: threads) }
        let lses = try parts.map { try floatTensor($0.logSumExp, threads: threads) }
        let out = try uninitializedHostTensor(shape, dtype: .f32)
        let logSumExp = try uninitializedHostTensor(Shape([heads, queryCount]), dtype: .f32)
        withExtendedLifetime((outs, lses)) {
            let outPointers = outs.map { UnsafePointer($0.floatPointer) }
            let lsePointers = lses.map { UnsafePointer($0.floatPointer) }
            let merged = out.floatPointer, mergedLSE = logSumExp.floatPointer
            parallelChunks(queryCount * heads, threads: threads, workPerItem: headDim * parts.count * 3) { pairs in
                for pair in pairs {
                    let (row, head) = pair.quotientAndRemainder(dividingBy: heads)
                    let o = merged + pair * headDim
                    var lse = -Float.infinity
                    o.update(repeating: 0, count: headDim)
                    for p in outPointers.indices {
                        let partLSE = lsePointers[p][head * queryCount + row]
                        if partLSE == -.infinity { continue }
                        let partOut = outPointers[p] + pair * headDim
                        if lse == -.infinity {
                            o.update(from: partOut, count: headDim)
                            lse = partLSE
                            continue
                        }
                        let weight = CPUBackend.sigmoid(partLSE - lse)
                        for i in 0..<headDim { o[i] -= weight * (o[i] - partOut[i]) }
                        lse -= CPUBackend.logSigmoid(lse - partLSE)
                    }
                    mergedLSE[head * queryCount + row] = lse
                }
            }
        }
        return AttentionOutput(out: out, logSumExp: logSumExp)
    }

    /// 1 / (1 + e^-x) without overflow for large |x|.
    @inline(__always)
    static func sigmoid(_ x: Float) -> Float {
        if x >= 0 { return 1 / (1 + exp(-x)) }
        let e = exp(x)
        return e / (1 + e)
    }

    /// log(sigmoid(x)) = -log(1 + e^-x), without overflow for large |x|.
    @inline(__always)
    static func logSigmoid(_ x: Float) -> Float {
        x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x))
    }
}
