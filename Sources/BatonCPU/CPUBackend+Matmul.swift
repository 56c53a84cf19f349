import BatonTensor

extension CPUBackend {
    /// x `[M, K]` any float, weight `[N, K]` any float (Hugging Face layout), bias `[N]` any float
    /// -> `[M, N]` f32 = x W^T + bias, through `BLAS.gemm` with the weight transposed. bf16/f16
    /// weights are converted to fp32 once and cached (see `CPUBackend.init`).
    public func matmul(_ x: Tensor, weight: Tensor, bias: Tensor?) throws -> Tensor {
        try requireHost(["x": x, "weight": weight], "matmul")
        if let bias { try requireHost(bias, "matmul", "bias") }
        let (m, k, n) = try OpShapes.matmul(x, weight: weight, bias: bias)
        let out = try uninitializedHostTensor(Shape([m, n]), dtype: .f32)
        if m == 0 || n == 0 { return out }

        let xFloat = try floatTensor(x, threads: threads)
        let weightFloat = weight.dtype == .f32 ? weight : try weightCache.floatWeight(weight, threads: threads)
        let biasFloat = try bias.map { try floatTensor($0, threads: threads) }
        withExtendedLifetime((xFloat, weightFloat, biasFloat)) {
            let a = UnsafePointer(xFloat.floatPointer)
            let c = out.floatPointer
            // C starts as the bias rows (beta = 1) or is overwritten (beta = 0).
            if let biasFloat {
                let b = biasFloat.floatPointer
                for row in 0..<m { (c + row * n).update(from: b, count: n) }
            } else if k == 0 {
                c.update(repeating: 0, count: m * n)
            }
            if k == 0 { return }
            let beta: Float = biasFloat == nil ? 0 : 1
            if let weightFloat {
                multiply(a, UnsafePointer(weightFloat.floatPointer), into: c, m: m, n: n, k: k, beta: beta)
            } else {
                multiplyConvertingBlocks(a, weight: weight, into: c, m: m, n: n, k: k, beta: beta)
            }
        }
        return out
    }

    /// C[m, n] = A[m, k] W[n, k]^T + beta C. The larger output dimension is split across cores;
    /// each piece is one single-threaded sgemm on contiguous weight rows (N split) or x rows (M split).
    private func multiply(
        _ a: UnsafePointer<Float>, _ w: UnsafePointer<Float>, into c: UnsafeMutablePointer<Float>,
        m: Int, n: Int, k: Int, beta: Float
    ) {
        let splitColumns = n >= m
        let splitLength = splitColumns ? n : m
        let pieces = m * n * k < (1 << 18) ? 1 : max(1, min(threads, splitLength / 16))
        parallelItems(pieces, threads: threads) { piece in
            let lo = splitLength * piece / pieces
            let hi = splitLength * (piece + 1) / pieces
            if lo >= hi { return }
            if m == 1 {  // decode: a matrix-vector product (OpenBLAS's sgemm path is slower for one row)
                BLAS.shared.gemv(
                    m: hi - lo, n: k, alpha: 1, a: w + lo * k, lda: k, x: a, beta: beta, y: c + lo, incY: 1)
            } else if splitColumns {
                BLAS.shared.gemm(
                    transposeB: true, m: m, n: hi - lo, k: k, alpha: 1, a: a, lda: k,
                    b: w + lo * k, ldb: k, beta: beta, c: c + lo, ldc: n)
            } else {
                BLAS.shared.gemm(
                    transposeB: true, m: hi - lo, n: n, k: k, alpha: 1, a: a + lo * k, lda: k,
                    b: w, ldb: k, beta: beta, c: c + lo * n, ldc: n)
            }
        }
    }

    /// The same product for a bf16/f16 weight the cache has no room for: each core converts its
    /// weight rows a cache-sized block at a time and multiplies the block, so no fp32 copy of
    /// the whole weight is ever made.
    private func multiplyConvertingBlocks(
        _ a: UnsafePointer<Float>, weight: Tensor, into c: UnsafeMutablePointer<Float>,
        m: Int, n: Int, k: Int, beta: Float
    ) {
        let pieces = m * n * k < (1 << 18) ? 1 : max(1, min(threads, n / 16))
        // One row streams best through a cache-sized block (256 KiB); several rows need larger
        // blocks (4 MiB) so sgemm's packing of x is amortised over many weight rows.
        let blockRows = max(1, (m == 1 ? 1 << 16 : 1 << 20) / k)
        let source = UnsafeRawPointer(weight.hostPointer), elementBytes = weight.dtype.byteSize
        parallelItems(pieces, threads: threads) { piece in
            let lo = n * piece / pieces, hi = n * (piece + 1) / pieces
            if lo >= hi { return }
            let block = UnsafeMutablePointer<Float>.allocate(capacity: min(blockRows, hi - lo) * k)
            defer { block.deallocate() }
            var first = lo
            while first < hi {
                let rows = min(blockRows, hi - first)
                convertToFloat(
                    source + first * k * elementBytes, dtype: weight.dtype, count: rows * k, into: block, threads: 1)
                if m == 1 {
                    BLAS.shared.gemv(m: rows, n: k, alpha: 1, a: block, lda: k, x: a, beta: beta, y: c + first, incY: 1)
                } else {
                    BLAS.shared.gemm(
                        transposeB: true, m: m, n: rows, k: k, alpha: 1, a: a, lda: k,
                        b: block, ldb: k, beta: beta, c: c + first, ldc: n)
                }
                first += rows
            }
        }
    }
}

extension CPUBackend {
    /// residual + x W^T (+ bias): `add(residual, matmul(x, weight, bias))`, exactly.
    public func matmulAdd(_ x: Tensor, weight: Tensor, bias: Tensor?, residual: Tensor) throws -> Tensor {
        try add(residual, matmul(x, weight: weight, bias: bias))
    }

    /// accumulator += x W^T (+ bias), in place, rounded to the accumulator's dtype.
    public func matmulAccumulate(_ x: Tensor, weight: Tensor, bias: Tensor?, into accumulator: Tensor) throws {
        let sum = try matmulAdd(x, weight: weight, bias: bias, residual: accumulator)  // `add` checks the shapes
        try copy(sum.dtype == accumulator.dtype ? sum : cast(sum, to: accumulator.dtype), into: accumulator)
    }
}
