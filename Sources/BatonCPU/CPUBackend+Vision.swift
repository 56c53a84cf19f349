import BatonTensor
import Foundation

/// The vision-language ops (Qwen2.5-VL): sectioned rotary (M-RoPE, the vision 2-D rotary),
/// attention within variable-length segments, exact GELU. CUDA twins: CUDABackend+Vision.
extension CPUBackend {
    /// x `[T, heads, d]` any float, positions `[R, T]` i32, inverseFrequencies `[d/2]` any float,
    /// sections R counts summing to d/2 -> f32. Frequency `i` of token `t` turns by
    /// positions[r(i), t] * inverseFrequencies[i] (fp32 product, as transformers computes it), with
    /// r(i) the section holding `i`; rotate-half pairs (i, i + d/2) share the angle.
    public func sectionedRotary(
        _ x: Tensor, positions: Tensor, inverseFrequencies: Tensor,
        sections: [Int]
    ) throws -> Tensor {
        try requireHost(["x": x, "positions": positions, "inverseFrequencies": inverseFrequencies], "sectionedRotary")
        let (count, heads, dim) = try OpShapes.sectionedRotary(
            x, positions: positions,
            inverseFrequencies: inverseFrequencies, sections: sections)
        let rowOfFrequency = sections.enumerated().flatMap { row, size in [Int](repeating: row, count: size) }
        return try rotateHalf(
            x, positions: positions, rowOfFrequency: rowOfFrequency, inverseFrequencies: inverseFrequencies)
    }

    /// Hugging Face's rotate-half, shared by `rotary` (one position row) and `sectionedRotary` (a
    /// row per section): frequency `i` of token `t` turns by
    /// positions[rowOfFrequency[i] * T + t] * inverseFrequencies[i] (the fp32 product).
    func rotateHalf(_ x: Tensor, positions: Tensor, rowOfFrequency: [Int], inverseFrequencies: Tensor) throws -> Tensor
    {
        let (count, heads, dim) = (x.shape[0], x.shape[1], x.shape[2])
        let half = dim / 2
        let out = try uninitializedHostTensor(x.shape, dtype: .f32)
        let xFloat = try floatTensor(x, threads: threads)
        let frequencies = try floatTensor(inverseFrequencies, threads: threads)
        withExtendedLifetime((xFloat, frequencies)) {
            let source = xFloat.floatPointer, destination = out.floatPointer
            let inverseFrequency = frequencies.floatPointer, position = positions.int32Pointer
            parallelChunks(count, threads: threads, workPerItem: heads * dim * 2 + half * 40) { tokens in
                let table = UnsafeMutablePointer<Float>.allocate(capacity: max(dim, 1))  // cos | sin of one token
                defer { table.deallocate() }
                for t in tokens {
                    for i in 0..<half {
                        let angle = Float(position[rowOfFrequency[i] * count + t]) * inverseFrequency[i]
                        table[i] = cos(angle)
                        table[half + i] = sin(angle)
                    }
                    for h in 0..<heads {
                        let input = source + (t * heads + h) * dim, output = destination + (t * heads + h) * dim
                        for i in 0..<half {
                            let (first, second, c, s) = (input[i], input[half + i], table[i], table[half + i])
                            output[i] = first * c - second * s
                            output[half + i] = second * c + first * s
                        }
                    }
                }
            }
        }
        return out
    }

    /// q, k, v `[N, H, d]` any float, segments `[S + 1]` i32 cumulative offsets -> `[N, H, d]` f32:
    /// each segment is an independent full (non-causal) attention, solved with the same tiles as
    /// `attention`, segments in parallel.
    public func attentionSegments(
        query: Tensor, key: Tensor, value: Tensor, segments: Tensor,
        scale: Float
    ) throws -> Tensor {
        try requireHost(["query": query, "key": key, "value": value, "segments": segments], "attentionSegments")
        let (rows, heads, headDim) = try OpShapes.attentionSegments(
            query: query, key: key, value: value,
            segments: segments)
        let offsets = segments.int32s().map(Int.init)
        let rising = zip(offsets, offsets.dropFirst()).allSatisfy { $0 <= $1 }
        try require(
            offsets.first == 0 && offsets.last == rows && rising,
            "attentionSegments: segments must rise from 0 to N = \(rows), found \(offsets.prefix(8))"
                + (offsets.count > 8 ? "... (\(offsets.count) offsets)" : ""))
        let out = try uninitializedHostTensor(query.shape, dtype: .f32)
        if rows == 0 || heads == 0 || headDim == 0 { return out }
        let queryFloat = try floatTensor(query, threads: threads)
        let keyFloat = try floatTensor(key, threads: threads)
        let valueFloat = try floatTensor(value, threads: threads)
        let ranges = zip(offsets, offsets.dropFirst()).map { $0..<$1 }.filter { !$0.isEmpty }
        // Work items: (segment, head, block of query rows); a long segment (a whole frame) splits by rows.
        let blockRows = 128
        let items = ranges.flatMap { range in
            stride(from: range.lowerBound, to: range.upperBound, by: blockRows).flatMap { start in
                (0..<heads).map { (segment: range, head: $0, rows: start..<min(start + blockRows, range.upperBound)) }
            }
        }
        let rowStride = heads * headDim
        withExtendedLifetime((queryFloat, keyFloat, valueFloat)) {
            parallelItems(items.count, threads: threads) { index in
                let item = items[index]
                let base = item.segment.lowerBound * rowStride
                // The segment as its own problem: queries, keys and values start at its first row.
                let problem = AttentionProblem(
                    query: queryFloat.floatPointer + base, key: keyFloat.floatPointer + base,
                    value: valueFloat.floatPointer + base, queryCount: item.segment.count, keyCount: item.segment.count,
                    heads: heads, kvHeads: heads, headDim: headDim, mask: .full, scale: scale)
                let first = item.segment.lowerBound
                let local = (item.rows.lowerBound - first)..<(item.rows.upperBound - first)
                let state = AttentionTileState(maxRows: local.count, headDim: headDim, keyCount: item.segment.count)
                problem.runTile(kvHead: item.head, rows: local, keys: 0..<item.segment.count, state: state)
                // `store` writes lse at head * queryCount + row: give each item scratch of its own.
                let scratch = UnsafeMutablePointer<Float>.allocate(capacity: heads * item.segment.count)
                defer { scratch.deallocate() }
                problem.store(state, kvHead: item.head, rows: local, out: out.floatPointer + base, logSumExp: scratch)
            }
        }
        return out
    }

    /// x / 2 * (1 + erf(x / sqrt 2)) element-wise; any float -> f32 (fp32 erf, as torch's GELU).
    public func gelu(_ x: Tensor) throws -> Tensor {
        try requireHost(x, "gelu", "x")
        try OpShapes.requireFloat(x, "gelu", "x")
        let out = try uninitializedHostTensor(x.shape, dtype: .f32)
        let xFloat = try floatTensor(x, threads: threads)
        withExtendedLifetime(xFloat) {
            let source = xFloat.floatPointer, destination = out.floatPointer
            parallelChunks(x.elementCount, threads: threads, workPerItem: 20) { range in
                for i in range { destination[i] = source[i] * 0.5 * (1 + erf(source[i] * Float(M_SQRT1_2))) }
            }
        }
        return out
    }
}
