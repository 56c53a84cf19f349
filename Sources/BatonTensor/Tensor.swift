#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Where a tensor's bytes live, and where a backend (and the engine on it) computes.
public enum Device: Hashable, Sendable, CustomStringConvertible {
    case cpu
    case cuda(ordinal: Int)

    public var description: String {
        switch self {
        case .cpu: "cpu"
        case .cuda(let ordinal): "cuda:\(ordinal)"
        }
    }

    /// The device called `name`: `cpu`, `cuda` (alias `gpu`, both cuda:0) or `cuda:N`, any case;
    /// else an error naming `option` and the accepted names.
    public static func named(_ name: String, option: String = "--device") throws -> Device {
        let lowered = name.lowercased()
        switch lowered {
        case "cpu": return .cpu
        case "cuda", "gpu": return .cuda(ordinal: 0)
        default:
            if lowered.hasPrefix("cuda:"), let ordinal = Int(lowered.dropFirst(5)), ordinal >= 0 {
                return .cuda(ordinal: ordinal)
            }
            throw BatonError.invalidArgument("\(option) must be cpu, cuda (alias gpu) or cuda:N, got '\(name)'")
        }
    }
}

/// A block of memory on one device. Host storage owns malloc'd memory or keeps a mapped
/// file alive through `owner`; device storage is created by a backend, which frees it in
/// `release`. `address` is the host pointer's or the device pointer's bit pattern.
public final class Storage: @unchecked Sendable {
    public let device: Device
    public let address: UInt
    public let byteCount: Int
    private let owner: AnyObject?
    private let release: (@Sendable (UInt) -> Void)?

    public init(
        device: Device, address: UInt, byteCount: Int, owner: AnyObject? = nil,
        release: (@Sendable (UInt) -> Void)? = nil
    ) {
        self.device = device
        self.address = address
        self.byteCount = byteCount
        self.owner = owner
        self.release = release
    }

    /// Zero-filled host memory, 64-byte aligned.
    public static func host(byteCount: Int) -> Storage {
        var pointer: UnsafeMutableRawPointer?
        let size = max(byteCount, 64)
        guard posix_memalign(&pointer, 64, size) == 0, let pointer else {
            fatalError("host allocation of \(byteCount) bytes failed")
        }
        memset(pointer, 0, size)
        return Storage(device: .cpu, address: UInt(bitPattern: pointer), byteCount: byteCount) { address in
            free(UnsafeMutableRawPointer(bitPattern: address))
        }
    }

    deinit { release?(address) }

    /// Host memory only.
    public var hostPointer: UnsafeMutableRawPointer {
        precondition(device == .cpu, "hostPointer on \(device) storage")
        return UnsafeMutableRawPointer(bitPattern: address)!
    }
}

/// A contiguous, row-major tensor: storage + byte offset + shape + dtype. Views along the
/// first dimension (`rows(_:)`) and reshapes share storage and cost nothing.
public struct Tensor: @unchecked Sendable, CustomStringConvertible {
    public let storage: Storage
    public let byteOffset: Int
    public let shape: Shape
    public let dtype: DType

    public init(storage: Storage, byteOffset: Int = 0, shape: Shape, dtype: DType) {
        precondition(
            byteOffset + shape.elementCount * dtype.byteSize <= storage.byteCount,
            "tensor \(shape) \(dtype) at offset \(byteOffset) exceeds storage of \(storage.byteCount) bytes")
        self.storage = storage
        self.byteOffset = byteOffset
        self.shape = shape
        self.dtype = dtype
    }

    public var device: Device { storage.device }
    public var elementCount: Int { shape.elementCount }
    public var byteCount: Int { elementCount * dtype.byteSize }
    /// Address of the first element (host pointer or device pointer bits).
    public var address: UInt { storage.address + UInt(byteOffset) }

    public var description: String { "Tensor(\(shape), \(dtype), \(device))" }

    /// Rows `range` of the first dimension, sharing storage.
    public func rows(_ range: Range<Int>) -> Tensor {
        precondition(
            range.lowerBound >= 0 && range.upperBound <= shape.rows,
            "rows \(range) out of \(shape.rows)")
        return Tensor(
            storage: storage, byteOffset: byteOffset + range.lowerBound * shape.rowSize * dtype.byteSize,
            shape: shape.withRows(range.count), dtype: dtype)
    }

    /// The same elements under another shape with the same element count.
    public func reshaped(_ newShape: Shape) -> Tensor {
        precondition(newShape.elementCount == elementCount, "cannot reshape \(shape) to \(newShape)")
        return Tensor(storage: storage, byteOffset: byteOffset, shape: newShape, dtype: dtype)
    }

    public func reshaped(_ dimensions: Int...) -> Tensor { reshaped(Shape(dimensions)) }
}

// MARK: - Host tensors

extension Tensor {
    /// A zero-filled host tensor.
    public static func zeros(_ shape: Shape, dtype: DType) -> Tensor {
        Tensor(storage: .host(byteCount: shape.elementCount * dtype.byteSize), shape: shape, dtype: dtype)
    }

    /// A host tensor holding `values` converted to `dtype` (round to nearest even).
    public init(_ values: [Float], shape: Shape, dtype: DType = .f32) {
        precondition(values.count == shape.elementCount, "\(values.count) values for shape \(shape)")
        self = .zeros(shape, dtype: dtype)
        let base = storage.hostPointer
        switch dtype {
        case .f32:
            values.withUnsafeBytes { base.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        case .bf16:
            let out = base.assumingMemoryBound(to: UInt16.self)
            for i in values.indices { out[i] = FloatBits.bf16(fromFloat: values[i]) }
        case .f16:
            let out = base.assumingMemoryBound(to: UInt16.self)
            for i in values.indices { out[i] = FloatBits.f16(fromFloat: values[i]) }
        case .i32:
            let out = base.assumingMemoryBound(to: Int32.self)
            for i in values.indices { out[i] = Int32(values[i]) }
        case .i64:
            let out = base.assumingMemoryBound(to: Int64.self)
            for i in values.indices { out[i] = Int64(values[i]) }
        }
    }

    /// A host i32 tensor.
    public init(int32 values: [Int32], shape: Shape? = nil) {
        let shape = shape ?? Shape([values.count])
        precondition(values.count == shape.elementCount)
        self = .zeros(shape, dtype: .i32)
        let base = storage.hostPointer
        values.withUnsafeBytes { base.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
    }

    /// Host pointer to the first element; host tensors only.
    public var hostPointer: UnsafeMutableRawPointer { storage.hostPointer + byteOffset }

    /// The elements as fp32 (exact for bf16/f16); host tensors only.
    public func floats() -> [Float] {
        precondition(device == .cpu, "floats() needs a host tensor; download it first")
        let n = elementCount
        let base = hostPointer
        switch dtype {
        case .f32:
            return Array(UnsafeBufferPointer(start: base.assumingMemoryBound(to: Float.self), count: n))
        case .bf16:
            let p = base.assumingMemoryBound(to: UInt16.self)
            return (0..<n).map { FloatBits.float(fromBF16: p[$0]) }
        case .f16:
            let p = base.assumingMemoryBound(to: UInt16.self)
            return (0..<n).map { FloatBits.float(fromF16: p[$0]) }
        case .i32:
            let p = base.assumingMemoryBound(to: Int32.self)
            return (0..<n).map { Float(p[$0]) }
        case .i64:
            let p = base.assumingMemoryBound(to: Int64.self)
            return (0..<n).map { Float(p[$0]) }
        }
    }

    /// The elements of an i32 host tensor.
    public func int32s() -> [Int32] {
        precondition(device == .cpu && dtype == .i32, "int32s() needs a host i32 tensor")
        return Array(UnsafeBufferPointer(start: hostPointer.assumingMemoryBound(to: Int32.self), count: elementCount))
    }
}
