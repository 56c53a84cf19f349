import BatonTensor

extension CPUBackend {
    /// Spava's query-aware score: `scores[j, h]` = mean over query rows t and the G query heads of
    /// group h of `<q[t, h*G+g], k[j, h]>`. q `[Q, H, d]`, k `[S, Hkv, d]` any float -> `[S, Hkv]` f32.
    /// By linearity this is `<mean_{t,g} q[t, h*G+g], k[j, h]>`: the mean query of each group is
    /// formed first (accumulated in fp64), then one sgemv per KV head.
    public func queryAwareScores(query: Tensor, key: Tensor) throws -> Tensor {
        try requireHost(["query": query, "key": key], "queryAwareScores")
        let (queryCount, keyCount, heads, kvHeads, headDim) = try OpShapes.queryAwareScores(query: query, key: key)
        let group = heads / kvHeads
        let out = try uninitializedHostTensor(Shape([keyCount, kvHeads]), dtype: .f32)
        if keyCount == 0 { return out }
        let queryFloat = try floatTensor(query, threads: threads)
        let keyFloat = try floatTensor(key, threads: threads)
        withExtendedLifetime((queryFloat, keyFloat)) {
            let q = queryFloat.floatPointer, k = keyFloat.floatPointer, scores = out.floatPointer
            let meanQuery = UnsafeMutablePointer<Float>.allocate(capacity: max(kvHeads * headDim, 1))
            let accumulator = UnsafeMutablePointer<Double>.allocate(capacity: max(headDim, 1))
            defer { meanQuery.deallocate(); accumulator.deallocate() }
            let count = Double(queryCount * group)
            for h in 0..<kvHeads {
                accumulator.update(repeating: 0, count: headDim)
                for t in 0..<queryCount {
                    let base = q + (t * heads + h * group) * headDim  // the group's G heads are contiguous
                    for i in 0..<group * headDim { accumulator[i % headDim] += Double(base[i]) }
                }
                for i in 0..<headDim { meanQuery[h * headDim + i] = Float(accumulator[i] / count) }
            }
            let rowStride = kvHeads * headDim
            parallelChunks(keyCount, threads: threads, workPerItem: rowStride) { rows in
                for h in 0..<kvHeads {
                    BLAS.shared.gemv(
                        m: rows.count, n: headDim, alpha: 1, a: k + rows.lowerBound * rowStride + h * headDim,
                        lda: rowStride, x: meanQuery + h * headDim, beta: 0,
                        y: scores + rows.lowerBound * kvHeads + h, incY: kvHeads)
                }
            }
        }
        return out
    }

    /// Max pooling along the first dimension of `[S, C]` any float, odd `window`, stride 1, padding
    /// `window / 2` with -inf -> `[S, C]` f32. A NaN in a window makes its maximum NaN.
    public func maxPool1D(_ scores: Tensor, window: Int) throws -> Tensor {
        try requireHost(scores, "maxPool1D", "scores")
        let (rowCount, columns) = try OpShapes.maxPool1D(scores, window: window)
        let out = try uninitializedHostTensor(scores.shape, dtype: .f32)
        let input = try floatTensor(scores, threads: threads)
        let radius = window / 2
        withExtendedLifetime(input) {
            let x = input.floatPointer, y = out.floatPointer
            parallelChunks(rowCount, threads: threads, workPerItem: columns * window) { rows in
                for row in rows {
                    let lo = max(0, row - radius), hi = min(rowCount - 1, row + radius)
                    let output = y + row * columns
                    output.update(from: x + lo * columns, count: columns)
                    if lo == hi { continue }
                    for other in lo + 1...hi {
                        let candidate = x + other * columns
                        for c in 0..<columns where candidate[c] > output[c] || candidate[c].isNaN {
                            output[c] = candidate[c]
                        }
                    }
                }
            }
        }
        return out
    }

    /// For each column `c` of scores `[S, C]` any float, the `k` rows of `rows` with the largest
    /// scores (ties to the lower index; NaN ranks below every number), sorted ascending as absolute
    /// row indices -> `[C, k]` i32. Throws if `k > rows.count` or `rows` is outside `0..<S`.
    public func topKPerHead(_ scores: Tensor, k: Int, rows: Range<Int>) throws -> Tensor {
        try requireHost(scores, "topKPerHead", "scores")
        let (_, columns) = try OpShapes.topKPerHead(scores, k: k, rows: rows)
        let out = try uninitializedHostTensor(Shape([columns, k]), dtype: .i32)
        if k == 0 || columns == 0 { return out }
        let input = try floatTensor(scores, threads: threads)
        withExtendedLifetime(input) {
            let x = input.floatPointer, indices = out.int32Pointer
            parallelChunks(columns, threads: threads, workPerItem: rows.count * 4) { columnRange in
                var heap = TopKHeap(capacity: k)
                defer { heap.deallocate() }
                for c in columnRange {
                    heap.removeAll()
                    for row in rows {
                        let value = x[row * columns + c]
                        heap.offer(score: value.isNaN ? -.infinity : value, index: Int32(row), nan: value.isNaN)
                    }
                    heap.writeSortedIndices(to: indices + c * k)
                }
            }
        }
        return out
    }

    /// x `[S, C, d]` any dtype, indices `[C, k]` i32 -> `[k, C, d]` of x's dtype with
    /// out[i, c] = x[indices[c, i], c]. An index outside `0..<S` throws.
    public func gatherRowsPerHead(_ x: Tensor, indices: Tensor) throws -> Tensor {
        try requireHost(["x": x, "indices": indices], "gatherRowsPerHead")
        let (rowCount, columns, width, k) = try OpShapes.gatherRowsPerHead(x, indices: indices)
        let index = indices.int32Pointer
        for i in 0..<columns * k where index[i] < 0 || Int(index[i]) >= rowCount {
            throw BatonError.invalidArgument(
                "gatherRowsPerHead: index \(index[i]) at [\(i / max(k, 1)), \(i % max(k, 1))] is outside 0..<\(rowCount)"
            )
        }
        let out = try uninitializedHostTensor(Shape([k, columns, width]), dtype: x.dtype)
        let vectorBytes = width * x.dtype.byteSize
        let source = x.hostPointer, destination = out.hostPointer
        parallelChunks(k, threads: threads, workPerItem: columns * (vectorBytes / 8 + 1)) { selected in
            for i in selected {
                for c in 0..<columns {
                    (destination + (i * columns + c) * vectorBytes)
                        .copyMemory(
                            from: source + (Int(index[c * k + i]) * columns + c) * vectorBytes, byteCount: vectorBytes)
                }
            }
        }
        return out
    }

    /// Index of the largest value of each row of `[R, V]` any float (ties to the lower index; NaN
    /// is never chosen over a number) -> R ids.
    public func argmax(_ logits: Tensor) throws -> [Int32] {
        try requireHost(logits, "argmax", "logits")
        let (rowCount, vocabulary) = try OpShapes.argmax(logits)
        let input = try floatTensor(logits, threads: threads)
        var result = [Int32](repeating: 0, count: rowCount)
        withExtendedLifetime(input) {
            let x = input.floatPointer
            result.withUnsafeMutableBufferPointer { ids in
                let idPointer = ids.baseAddress!
                parallelChunks(rowCount, threads: threads, workPerItem: vocabulary) { rows in
                    for row in rows {
                        let values = x + row * vocabulary
                        var best = 0
                        for i in 1..<vocabulary
                        where values[i] > values[best] || (values[best].isNaN && !values[i].isNaN) {
                            best = i
                        }
                        idPointer[row] = Int32(best)
                    }
                }
            }
        }
        return result
    }
}

/// A bounded min-heap of (score, index) keeping the `capacity` best candidates, where better means
/// a higher score, or an equal score and a lower index. The root is the worst kept candidate.
private struct TopKHeap {
    let capacity: Int
    private let scores: UnsafeMutablePointer<Float>
    private let indices: UnsafeMutablePointer<Int32>
    private let isNaN: UnsafeMutablePointer<Bool>
    private var count = 0

    init(capacity: Int) {
        self.capacity = capacity
        scores = .allocate(capacity: capacity)
        indices = .allocate(capacity: capacity)
        isNaN = .allocate(capacity: capacity)
    }

    func deallocate() {
        scores.deallocate()
        indices.deallocate()
        isNaN.deallocate()
    }

    mutating func removeAll() { count = 0 }

    /// Whether candidate a ranks below candidate b (NaN below -inf, then by score, then higher index).
    @inline(__always)
    private func worse(_ a: Int, than b: Int) -> Bool {
        if isNaN[a] != isNaN[b] { return isNaN[a] }
        if scores[a] != scores[b] { return scores[a] < scores[b] }
        return indices[a] > indices[b]
    }

    mutating func offer(score: Float, index: Int32, nan: Bool) {
        if count < capacity {
            scores[count] = score; indices[count] = index; isNaN[count] = nan
            count += 1
            siftUp(count - 1)
            return
        }
        // Candidates arrive in increasing index order, so an equal score never displaces the root.
        let beatsRoot = isNaN[0] != nan ? isNaN[0] : score > scores[0]
        if !beatsRoot { return }
        scores[0] = score; indices[0] = index; isNaN[0] = nan
        siftDown(0)
    }

    private mutating func swapAt(_ a: Int, _ b: Int) {
        (scores[a], scores[b]) = (scores[b], scores[a])
        (indices[a], indices[b]) = (indices[b], indices[a])
        (isNaN[a], isNaN[b]) = (isNaN[b], isNaN[a])
    }

    private mutating func siftUp(_ start: Int) {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            if !worse(child, than: parent) { return }
            swapAt(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        while true {
            let left = 2 * parent + 1, right = left + 1
            var worst = parent
            if left < count && worse(left, than: worst) { worst = left }
            if right < count && worse(right, than: worst) { worst = right }
            if worst == parent { return }
            swapAt(parent, worst)
            parent = worst
        }
    }

    /// The kept indices in ascending order.
    func writeSortedIndices(to destination: UnsafeMutablePointer<Int32>) {
        destination.update(from: indices, count: count)
        var sorted = UnsafeMutableBufferPointer(start: destination, count: count)
        sorted.sort()
    }
}
