import BatonTensor
#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

// Host allocation, dtype conversion and input validation shared by the CPU ops.

/// A host tensor with undefined contents (64-byte aligned; no zero fill, unlike `Tensor.zeros`).
/// Throws `outOfMemory` when the allocation fails or its size overflows.
func uninitializedHostTensor(_ shape: Shape, dtype: DType) throws -> Tensor {
    var byteCount = dtype.byteSize
    for dimension in shape.dimensions {
        let (product, overflow) = byteCount.multipliedReportingOverflow(by: dimension)
        guard !overflow else { throw BatonError(.outOfMemory, "host tensor \(shape) \(dtype): size overflows") }
        byteCount = product
    }
    var pointer: UnsafeMutableRawPointer?
    guard posix_memalign(&pointer, 64, max(byteCount, 64)) == 0, let pointer else {
        throw BatonError(.outOfMemory, "host allocation of \(byteCount) bytes for \(shape) \(dtype) failed")
    }
    let storage = Storage(device: .cpu, address: UInt(bitPattern: pointer), byteCount: byteCount) { address in
        free(UnsafeMutableRawPointer(bitPattern: address))
    }
    return Tensor(storage: storage, shape: shape, dtype: dtype)
}

extension Tensor {
    /// fp32 elements of a host f32 tensor.
    var floatPointer: UnsafeMutablePointer<Float> { hostPointer.assumingMemoryBound(to: Float.self) }
    /// i32 elements of a host i32 tensor.
    var int32Pointer: UnsafeMutablePointer<Int32> { hostPointer.assumingMemoryBound(to: Int32.self) }
}

/// Converts `count` floats stored as `dtype` (bf16, f16 or f32) to fp32, exactly.
func convertToFloat(
    _ source: UnsafeRawPointer, dtype: DType, count: Int,
    into destination: UnsafeMutablePointer<Float>, threads: Int
) {
    switch dtype {
    case .f32:
        destination.update(from: source.assumingMemoryBound(to: Float.self), count: count)
    case .bf16:
        convertElements(source.assumingMemoryBound(to: UInt16.self), into: destination, count: count, threads: threads)
        {
            FloatBits.float(fromBF16: $0)
        }
    case .f16:
        convertElements(source.assumingMemoryBound(to: UInt16.self), into: destination, count: count, threads: threads)
        {
            FloatBits.float(fromF16: $0)
        }
    case .i32, .i64:
        preconditionFailure("convertToFloat on \(dtype); callers validate float dtypes")
    }
}

/// Converts `count` fp32 values to `dtype` (bf16, f16 or f32), rounding to nearest even.
func convertFromFloat(
    _ source: UnsafePointer<Float>, count: Int, to dtype: DType,
    into destination: UnsafeMutableRawPointer, threads: Int
) {
    switch dtype {
    case .f32:
        destination.assumingMemoryBound(to: Float.self).update(from: source, count: count)
    case .bf16:
        convertElements(source, into: destination.assumingMemoryBound(to: UInt16.self), count: count, threads: threads)
        {
            FloatBits.bf16(fromFloat: $0)
        }
    case .f16:
        convertElements(source, into: destination.assumingMemoryBound(to: UInt16.self), count: count, threads: threads)
        {
            FloatBits.f16(fromFloat: $0)
        }
    case .i32, .i64:
        preconditionFailure("convertFromFloat to \(dtype); callers validate float dtypes")
    }
}

/// `destination[i] = convert(source[i])` for every i below `count`, split over `threads`: the loop
/// of every dtype conversion (inlined, so each call site compiles to its own tight loop).
@inline(__always)
private func convertElements<Source, Destination>(
    _ source: UnsafePointer<Source>,
    into destination: UnsafeMutablePointer<Destination>,
    count: Int, threads: Int, _ convert: (Source) -> Destination
) {
    parallelChunks(count, threads: threads) { range in
        for i in range { destination[i] = convert(source[i]) }
    }
}

/// The tensor itself when it is f32, else a new f32 host copy. Callers keep the result alive
/// (`withExtendedLifetime`) while they use its pointer.
func floatTensor(_ x: Tensor, threads: Int) throws -> Tensor {
    if x.dtype == .f32 { return x }
    let result = try uninitializedHostTensor(x.shape, dtype: .f32)
    convertToFloat(x.hostPointer, dtype: x.dtype, count: x.elementCount, into: result.floatPointer, threads: threads)
    return result
}

// MARK: - Validation

/// Throws unless `x` is a host tensor (the CPU backend cannot read device memory).
func requireHost(_ x: Tensor, _ op: String, _ name: String) throws {
    guard x.device == .cpu else {
        throw BatonError.invalidArgument("\(op): \(name) must be a CPU tensor, found one on \(x.device)")
    }
}

/// Throws unless every named tensor is a host tensor (names sorted for a stable message).
func requireHost(_ tensors: KeyValuePairs<String, Tensor>, _ op: String) throws {
    for (name, x) in tensors { try requireHost(x, op, name) }
}

/// Throws unless `x` is a host tensor of a floating-point dtype.
func requireFloat(_ x: Tensor, _ op: String, _ name: String) throws {
    try requireHost(x, op, name)
    try OpShapes.requireFloat(x, op, name)
}
