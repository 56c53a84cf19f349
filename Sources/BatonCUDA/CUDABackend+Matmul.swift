import BatonTensor
import CCUDA

/// Matrix products through cuBLASLt (`LtMatmul`), bias and residual in the epilogue or one kernel
/// of Kernels/ops.cu (the CPU twins are in CPUBackend+Matmul).
extension CUDABackend {
    public func matmul(_ x: Tensor, weight: Tensor, bias: Tensor?) throws -> Tensor {
        try matmul(x, weight: weight, bias: bias, residual: nil, into: nil)
    }

    /// residual + x W^T + bias, the residual added in the GEMM (cuBLASLt's C, beta 1), so in fp32
    /// before the output's one rounding.
    public func matmulAdd(_ x: Tensor, weight: Tensor, bias: Tensor?, residual: Tensor) throws -> Tensor {
        try matmul(x, weight: weight, bias: bias, residual: residual, into: nil)
    }

    /// The same with the accumulator as C and D (cuBLASLt computes in place when both have one layout).
    public func matmulAccumulate(_ x: Tensor, weight: Tensor, bias: Tensor?, into accumulator: Tensor) throws {
        try checkOnDevice(accumulator, "matmulAccumulate accumulator")
        try require(
            accumulator.dtype == activationDType,
            "matmulAccumulate: the accumulator must be \(activationDType), found \(accumulator.dtype)")
        _ = try matmul(x, weight: weight, bias: bias, residual: accumulator, into: accumulator)
    }

    /// y = residual + x W^T + bias into `destination` (a new tensor if nil; it may be the residual).
    private func matmul(_ x: Tensor, weight: Tensor, bias: Tensor?, residual: Tensor?, into destination: Tensor?) throws
        -> Tensor
    {
        let (M, K, N) = try OpShapes.matmul(x, weight: weight, bias: bias, residual: residual)
        let xb = try asActivation(x, "matmul x"), wb = try asActivation(weight, "matmul weight")
        let rb = try residual.map { try asActivation($0, "matmulAdd residual") }
        if M == 0 || N == 0 { return try destination ?? empty(Shape([M, N]), dtype: activationDType) }
        let y = try destination ?? empty(Shape([M, N]), dtype: activationDType)
        var appliedBias = false
        if K == 0 {  // x W^T is zero: y is the residual (or zeros), plus the bias below
            let source = try rb ?? zeros(Shape([M, N]), dtype: activationDType)
            if source.address != y.address { try copy(source, into: y) }
        } else {
            let gemm = try gemm.get()
            // A bf16 bias rides in the GEMM's epilogue; another dtype, or K == 0, takes the bias kernel.
            let epilogueBias = bias.flatMap { $0.dtype == .bf16 && $0.device == device ? $0 : nil }
            try profiled("gemm N \(N) K \(K)\(rb == nil ? "" : " + residual")\(epilogueBias == nil ? "" : " + bias")") {
                try gemm.run(x: xb, weight: wb, into: y, residual: rb, bias: epilogueBias, M: M, N: N, K: K)
            }
            if epilogueBias != nil { appliedBias = true }
        }
        if synchronizeAfterLaunch { try synchronize() }
        if let bias, !appliedBias {
            try checkOnDevice(bias, "matmul bias")
            try launchElementwise(
                "ops.cu", "add_bias_rows", count: M * N,
                [
                    .tensor(y), .int(y.dtype.kernelCode), .tensor(bias), .int(bias.dtype.kernelCode),
                    .int64(M), .int64(N)
                ])
        }
        return y
    }
}
