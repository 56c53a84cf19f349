import BatonTensor
import CCUDA

/// Benchmark helpers (not part of `Backend`): device-made random inputs and event timing.
extension CUDABackend {
    /// A tensor of uniform values in [-1, 1), made on the device from `seed`.
    public func randomUniform(_ shape: Shape, dtype: DType, seed: UInt64) throws -> Tensor {
        guard dtype.isFloatingPoint else {
            throw BatonError.unsupported("randomUniform: float types only, got \(dtype)")
        }
        let out = try empty(shape, dtype: dtype)
        try launchElementwise(
            "ops.cu", "fill_uniform", count: out.elementCount,
            [.tensor(out), .int(dtype.kernelCode), .int64(out.elementCount), .int64(Int(bitPattern: UInt(seed)))])
        return out
    }

    /// Milliseconds of device time `body` queues on the compute stream, measured with events.
    public func measureMilliseconds(_ body: () throws -> Void) throws -> Double {
        try makeCurrent()
        var start: CUevent?, end: CUevent?
        try driver.check(driver.cuEventCreate(&start, UInt32(BATON_CU_EVENT_DEFAULT)), "cuEventCreate")
        try driver.check(driver.cuEventCreate(&end, UInt32(BATON_CU_EVENT_DEFAULT)), "cuEventCreate")
        defer { _ = driver.cuEventDestroy(start); _ = driver.cuEventDestroy(end) }
        try driver.check(driver.cuEventRecord(start, stream), "cuEventRecord")
        try body()
        try driver.check(driver.cuEventRecord(end, stream), "cuEventRecord")
        try driver.check(driver.cuEventSynchronize(end), "cuEventSynchronize")
        var milliseconds: Float = 0
        try driver.check(driver.cuEventElapsedTime(&milliseconds, start, end), "cuEventElapsedTime")
        return Double(milliseconds)
    }
}

extension CUDABackend {
    /// Turns cuBLASLt autotuning on or off and forgets every chosen algorithm (GEMM benchmarks).
    public func setGEMMAutotune(_ on: Bool) throws {
        let gemm = try gemm.get()
        gemm.autotune = on
        gemm.resetAlgorithms()
    }
}
