import BatonTensor
import COpenBLAS

extension CPUBackend {
    /// x `[M, K]` any float, weight `[N, K]` any float (Hugging Face layout), bias `[N]` any float
    /// -> `[M, N]` f32 = x W^T + bias, through `cblas_sgemm` with the weight transposed. bf16/f16
    /// weights are converted to fp32 once and cached (see `CPUBackend.init`).
    public func matmul(_ x: Tensor, weight: Tensor, bias: Tensor?) throws -> Tensor {
        let op = "matmul"
        try requireFloat(x, op, "x")
        try requireFloat(weight, op, "weight")
        try requireRank(x, 2, op, "x", "[M, K]")
        try requireRank(weight, 2, op, "weight", "[N, K]")
        let (m, k, n) = (x.shape[0], x.shape[1], weight.shape[0])
        try require(weight.shape[1] == k, "matmul: weight must be [N, \(k)] to match x \(x.shape), found \(weight.shape)")
        if let bias {
            try requireFloat(bias, op, "bias")
            try require(bias.shape == Shape([n]), "matmul: bias must be [\(n)], found \(bias.shape)")
        }
        let out = uninitializedHostTensor(Shape([m, n]), dtype: .f32)
        if m == 0 || n == 0 { return out }

        let xFloat = floatTensor(x, threads: threads)
        let weightFloat = weight.dtype == .f32 ? weight : weightCache.floatWeight(weight, threads: threads)
        let biasFloat = bias.map { floatTensor($0, threads: threads) }
        withExtendedLifetime((xFloat, weightFloat, biasFloat)) {
            let a = UnsafePointer(xFloat.floatPointer)
            let w = UnsafePointer(weightFloat.floatPointer)
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

            // Split the larger output dimension across cores; each piece is one single-threaded
            // sgemm on contiguous weight rows (N split) or contiguous x rows (M split).
            let work = m * n * k
            let splitColumns = n >= m
            let splitLength = splitColumns ? n : m
            let pieces = work < (1 << 18) ? 1 : max(1, min(threads, splitLength / 16))
            parallelItems(pieces, threads: threads) { piece in
                let lo = splitLength * piece / pieces
                let hi = splitLength * (piece + 1) / pieces
                if lo >= hi { return }
                if splitColumns {
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(hi - lo), Int32(k),
                                1, a, Int32(k), w + lo * k, Int32(k), beta, c + lo, Int32(n))
                } else {
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(hi - lo), Int32(n), Int32(k),
                                1, a + lo * k, Int32(k), w, Int32(k), beta, c + lo * n, Int32(n))
                }
            }
        }
        return out
    }
}
