import BatonTensor
import Foundation

/// The reference backend: every `Backend` op on the host, in fp32, parallel over cores.
///
/// Activations are f32. Weights and tables may be bf16, f16 or f32 (checkpoints are often bf16,
/// memory-mapped); every float op accepts any float dtype and computes in fp32. Matrix products
/// go through `BLAS` (a CBLAS library found at run time, or the built-in GEMM); bf16/f16 matmul
/// weights are converted to fp32 once and cached (see `weightCacheByteLimit`). All ops are safe to
/// call from several threads at once (CPU ranks of a sequence-parallel run share one process).
public final class CPUBackend: Backend {
    public let device: Device = .cpu
    public let activationDType: DType = .f32
    /// Worker threads an op may use.
    public let threads: Int
    let weightCache: ConvertedWeightCache

    /// - Parameters:
    ///   - threads: cores an op may use; default all active processors.
    ///   - weightCacheBytes: nil (default) shares one process-wide cache of fp32 weight copies,
    ///     bounded by a quarter of physical memory, among all backends that pass nil, so CPU ranks
    ///     holding the same checkpoint convert each weight once. A number gives this backend a
    ///     private cache of that many bytes; 0 disables caching (weights convert on every call).
    public init(threads: Int? = nil, weightCacheBytes: Int? = nil) {
        self.threads = max(1, threads ?? ProcessInfo.processInfo.activeProcessorCount)
        self.weightCache =
            weightCacheBytes.map { ConvertedWeightCache(byteLimit: max(0, $0)) } ?? CPUBackend.sharedWeightCache
    }

    private static let sharedWeightCache = ConvertedWeightCache(
        byteLimit: Int(clamping: ProcessInfo.processInfo.physicalMemory / 4))

    /// Bound on the fp32 copies of bf16/f16 matmul weights, in bytes.
    public var weightCacheByteLimit: Int { weightCache.byteLimit }
    /// Bytes of fp32 weight copies held now.
    public var weightCacheBytesHeld: Int { weightCache.bytesHeld }
    /// Drops every cached fp32 weight copy (of the shared cache, for every backend using it).
    public func clearWeightCache() { weightCache.removeAll() }
    /// Weight conversions so far (cache misses); tests observe the cache through it.
    var weightConversionCount: Int { weightCache.conversionCount }

    // MARK: memory

    public func empty(_ shape: Shape, dtype: DType) throws -> Tensor {
        try require(shape.dimensions.allSatisfy { $0 >= 0 }, "empty: dimensions must be non-negative, found \(shape)")
        return try uninitializedHostTensor(shape, dtype: dtype)
    }

    public func zeros(_ shape: Shape, dtype: DType) throws -> Tensor {
        try require(shape.dimensions.allSatisfy { $0 >= 0 }, "zeros: dimensions must be non-negative, found \(shape)")
        let tensor = try uninitializedHostTensor(shape, dtype: dtype)
        tensor.hostPointer.initializeMemory(as: UInt8.self, repeating: 0, count: tensor.byteCount)
        return tensor
    }

    /// Host tensors already live on this device: returns `host` itself.
    public func upload(_ host: Tensor) throws -> Tensor {
        try requireHost(host, "upload", "tensor")
        return host
    }

    /// Returns `tensor` itself (no copy): CPU tensors are host tensors.
    public func download(_ tensor: Tensor) throws -> Tensor {
        try requireHost(tensor, "download", "tensor")
        return tensor
    }

    public func copy(_ source: Tensor, into destination: Tensor) throws {
        try requireHost(source, "copy", "source")
        try requireHost(destination, "copy", "destination")
        try require(
            source.dtype == destination.dtype,
            "copy: source and destination dtypes differ (\(source.dtype) vs \(destination.dtype))")
        try require(
            source.elementCount == destination.elementCount,
            "copy: source \(source.shape) and destination \(destination.shape) differ in element count")
        if destination.dtype != .f32 { weightCache.invalidate(destination.storage) }
        let bytes = source.byteCount
        let from = UnsafeRawPointer(source.hostPointer)
        let to = destination.hostPointer
        // Views of one storage may overlap: memmove when they do, parallel memcpy otherwise.
        let overlapping =
            source.storage === destination.storage
            && source.byteOffset < destination.byteOffset + bytes && destination.byteOffset < source.byteOffset + bytes
        if overlapping {
            to.copyMemory(from: from, byteCount: bytes)  // memmove semantics
            return
        }
        let pageCount = (bytes + 65535) / 65536
        parallelChunks(pageCount, threads: threads, workPerItem: 65536 / 8) { pages in
            let lo = pages.lowerBound * 65536
            let hi = min(bytes, pages.upperBound * 65536)
            (to + lo).copyMemory(from: from + lo, byteCount: hi - lo)
        }
    }

    /// Float<->float conversions round to nearest even; integers convert to floats (rounded to
    /// nearest even) and between i32 and i64 (range-checked). Floats to integers are unsupported.
    /// Always returns a new tensor, also when `dtype` is already `x.dtype`.
    public func cast(_ x: Tensor, to dtype: DType) throws -> Tensor {
        try requireHost(x, "cast", "x")
        let result = try uninitializedHostTensor(x.shape, dtype: dtype)
        let count = x.elementCount
        switch (x.dtype, dtype) {
        case (let from, let to) where from == to:
            result.hostPointer.copyMemory(from: x.hostPointer, byteCount: x.byteCount)
        case (.f32, _) where dtype.isFloatingPoint:
            convertFromFloat(x.floatPointer, count: count, to: dtype, into: result.hostPointer, threads: threads)
        case (_, .f32) where x.dtype.isFloatingPoint:
            convertToFloat(x.hostPointer, dtype: x.dtype, count: count, into: result.floatPointer, threads: threads)
        case (_, _) where x.dtype.isFloatingPoint && dtype.isFloatingPoint:  // bf16 <-> f16 through fp32 (exact step)
            let widened = try floatTensor(x, threads: threads)
            withExtendedLifetime(widened) {
                convertFromFloat(
                    widened.floatPointer, count: count, to: dtype, into: result.hostPointer, threads: threads)
            }
        case (.i32, _) where dtype.isFloatingPoint:
            let source = x.int32Pointer
            withFloatScratch(count) { scratch in
                for i in 0..<count { scratch[i] = Float(source[i]) }
                convertFromFloat(scratch, count: count, to: dtype, into: result.hostPointer, threads: threads)
            }
        case (.i64, _) where dtype.isFloatingPoint:
            let source = x.hostPointer.assumingMemoryBound(to: Int64.self)
            withFloatScratch(count) { scratch in
                for i in 0..<count { scratch[i] = Float(source[i]) }
                convertFromFloat(scratch, count: count, to: dtype, into: result.hostPointer, threads: threads)
            }
        case (.i32, .i64):
            let source = x.int32Pointer
            let target = result.hostPointer.assumingMemoryBound(to: Int64.self)
            for i in 0..<count { target[i] = Int64(source[i]) }
        case (.i64, .i32):
            let source = x.hostPointer.assumingMemoryBound(to: Int64.self)
            let target = result.int32Pointer
            for i in 0..<count {
                guard let narrowed = Int32(exactly: source[i]) else {
                    throw BatonError.invalidArgument("cast: element \(i) = \(source[i]) does not fit in i32")
                }
                target[i] = narrowed
            }
        default:
            throw BatonError.unsupported(
                "cast: \(x.dtype) to \(dtype) is not supported (floats do not cast to integers)")
        }
        return result
    }

    public func synchronize() throws {}  // every CPU op has finished when it returns

    private func withFloatScratch(_ count: Int, _ body: (UnsafeMutablePointer<Float>) -> Void) {
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
        defer { scratch.deallocate() }
        body(scratch)
    }
}
