import BatonTensor
import CCUDA

/// One kernel argument, passed by value to cuLaunchKernel.
enum KernelArgument {
    case address(UInt)
    case int32(Int32)
    case int64(Int)
    case float(Float)
    /// A by-value struct (e.g. a 128-byte CUtensorMap for a `__grid_constant__` parameter); its
    /// bytes are passed from 64-byte aligned host storage.
    case bytes([UInt8])

    static func int(_ value: Int) -> KernelArgument { .int32(Int32(truncatingIfNeeded: value)) }
    static func tensor(_ t: Tensor) -> KernelArgument { .address(t.address) }
}

/// A loaded cubin and its functions, looked up by name once.
final class KernelModule: @unchecked Sendable {
    let name: String
    private let driver: BatonCUDADriver
    private let module: CUmodule
    private var functions: [String: CUfunction] = [:]
    private var sharedLimits: [String: Int] = [:]

    init(name: String, cubin: [UInt8], driver: BatonCUDADriver) throws {
        self.name = name
        self.driver = driver
        var module: CUmodule?
        try cubin.withUnsafeBytes {
            try driver.check(driver.cuModuleLoadData(&module, $0.baseAddress), "cuModuleLoadData(\(name))")
        }
        self.module = module!
    }

    func function(_ kernel: String, sharedBytes: Int) throws -> CUfunction {
        let function: CUfunction
        if let known = functions[kernel] {
            function = known
        } else {
            var found: CUfunction?
            try driver.check(
                driver.cuModuleGetFunction(&found, module, kernel), "cuModuleGetFunction(\(name): \(kernel))")
            function = found!
            functions[kernel] = function
        }
        // Above 48 KB a kernel must opt in to its dynamic shared memory.
        if sharedBytes > 48 * 1024 && (sharedLimits[kernel] ?? 0) < sharedBytes {
            try driver.check(
                driver.cuFuncSetAttribute(
                    function, Int32(BATON_CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES),
                    Int32(sharedBytes)),
                "cuFuncSetAttribute(\(kernel), max dynamic shared memory \(sharedBytes))")
            sharedLimits[kernel] = sharedBytes
        }
        return function
    }

    /// Queues `kernel` on `stream`.
    func launch(
        _ kernel: String, grid: (Int, Int, Int), block: Int, sharedBytes: Int = 0, stream: CUstream,
        _ arguments: [KernelArgument]
    ) throws {
        let function = try function(kernel, sharedBytes: sharedBytes)
        // One slot per argument: 8 bytes, or the struct's size rounded up to 64 and 64-byte aligned.
        var offsets: [Int] = [], size = 0
        for argument in arguments {
            if case .bytes(let b) = argument {
                size = (size + 63) / 64 * 64
                offsets.append(size)
                size += (b.count + 63) / 64 * 64
            } else {
                offsets.append(size)
                size += 8
            }
        }
        let storage = UnsafeMutableRawPointer.allocate(byteCount: max(8, size), alignment: 64)
        defer { storage.deallocate() }
        var pointers: [UnsafeMutableRawPointer?] = []
        for (i, argument) in arguments.enumerated() {
            let slot = storage + offsets[i]
            switch argument {
            case .address(let a): slot.storeBytes(of: UInt64(a), as: UInt64.self)
            case .int32(let v): slot.storeBytes(of: v, as: Int32.self)
            case .int64(let v): slot.storeBytes(of: Int64(v), as: Int64.self)
            case .float(let v): slot.storeBytes(of: v, as: Float.self)
            case .bytes(let b):
                b.withUnsafeBytes {
                    if let source = $0.baseAddress { slot.copyMemory(from: source, byteCount: b.count) }
                }
            }
            pointers.append(slot)
        }
        try pointers.withUnsafeMutableBufferPointer { buffer in
            try driver.check(
                driver.cuLaunchKernel(
                    function, UInt32(grid.0), UInt32(grid.1), UInt32(grid.2),
                    UInt32(block), 1, 1, UInt32(sharedBytes), stream,
                    buffer.baseAddress, nil),
                "cuLaunchKernel(\(kernel), grid \(grid), block \(block), shared \(sharedBytes))")
        }
    }
}
