import BatonTensor
import CCUDA
import Foundation

/// Baton's GPU backend: one device, its primary context, a compute stream (and a second stream
/// for communication), a caching allocator, and kernels compiled by NVRTC on first use.
/// Activations are bf16; every kernel accumulates in fp32. GEMMs run through cuBLASLt.
/// Weights may arrive in any float dtype: `matmul` casts a non-bf16 weight to bf16 on each call
/// (a cast kernel), so models should upload their weights as bf16 once.
public final class CUDABackend: Backend, @unchecked Sendable {
    public let device: Device
    public var activationDType: DType { .bf16 }
    public let ordinal: Int
    public let deviceName: String
    /// NVRTC target, e.g. "sm_90a" on Hopper.
    public let architecture: String
    public let multiprocessorCount: Int
    /// Kernels and copies run here, in order.
    public let stream: CUstream
    /// For communication that overlaps compute (NCCL), ordered against `stream` with events.
    public let communicationStream: CUstream
    public let allocator: DeviceAllocator
    /// Fill every new tensor with 0xFF bytes (NaN in every float type), so unwritten outputs show.
    public var poisonAllocations = false
    /// Synchronize after each launch, so a failing kernel is named by the error (self-checks).
    public var synchronizeAfterLaunch = false

    let driver: BatonCUDADriver
    let context: CUcontext
    let compiler: KernelCompiler
    private let moduleLock = NSLock()
    private var modules: [String: KernelModule] = [:]
    lazy var gemm = Result { try LtMatmul(backend: self) }
    /// Device time per launch (`BATON_PROFILE=1`), else nil.
    let profile: LaunchProfile? = BatonSettings.current.profile ? LaunchProfile() : nil

    /// Opens device `ordinal`. Throws `BatonError(.notAvailable)` with a clear message when the
    /// driver or a device is missing.
    public init(ordinal: Int = 0) throws {
        let driver = try CUDALibraries.driver()
        try driver.check(driver.cuInit(0), "cuInit")
        var count: Int32 = 0
        try driver.check(driver.cuDeviceGetCount(&count), "cuDeviceGetCount")
        guard ordinal >= 0 && ordinal < Int(count) else {
            throw BatonError(.notAvailable, "CUDA device \(ordinal) requested, \(count) device(s) present")
        }
        var cuDevice: CUdevice = 0
        try driver.check(driver.cuDeviceGet(&cuDevice, Int32(ordinal)), "cuDeviceGet(\(ordinal))")
        var nameBytes = [CChar](repeating: 0, count: 256)
        try driver.check(driver.cuDeviceGetName(&nameBytes, 255, cuDevice), "cuDeviceGetName")
        func attribute(_ a: Int32) throws -> Int {
            var value: Int32 = 0
            try driver.check(driver.cuDeviceGetAttribute(&value, a, cuDevice), "cuDeviceGetAttribute(\(a))")
            return Int(value)
        }
        let major = try attribute(Int32(BATON_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR))
        let minor = try attribute(Int32(BATON_CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR))
        guard major >= 8 else {
            throw BatonError(
                .unsupported,
                "CUDA device \(ordinal) has compute capability \(major).\(minor); "
                    + "Baton's kernels need 8.0 or newer (bf16 tensor cores)")
        }
        multiprocessorCount = try attribute(Int32(BATON_CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT))
        var context: CUcontext?
        try driver.check(driver.cuDevicePrimaryCtxRetain(&context, cuDevice), "cuDevicePrimaryCtxRetain")
        try driver.check(driver.cuCtxSetCurrent(context), "cuCtxSetCurrent")
        var stream: CUstream?, communication: CUstream?
        try driver.check(driver.cuStreamCreate(&stream, UInt32(BATON_CU_STREAM_NON_BLOCKING)), "cuStreamCreate")
        try driver.check(driver.cuStreamCreate(&communication, UInt32(BATON_CU_STREAM_NON_BLOCKING)), "cuStreamCreate")
        self.driver = driver
        self.context = context!
        self.stream = stream!
        self.communicationStream = communication!
        self.ordinal = ordinal
        self.device = .cuda(ordinal: ordinal)
        self.deviceName = String(decoding: nameBytes.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        self.architecture = major == 9 && minor == 0 ? "sm_90a" : "sm_\(major)\(minor)"
        self.compiler = KernelCompiler(architecture: architecture)
        self.allocator = DeviceAllocator(driver: driver, context: context!)
    }

    /// Makes this backend's context current on the calling thread (cheap; every entry point calls it).
    func makeCurrent() throws { try driver.check(driver.cuCtxSetCurrent(context), "cuCtxSetCurrent") }

    /// The module compiled from `Kernels/<name>`, loaded once.
    func module(_ name: String) throws -> KernelModule {
        try moduleLock.withLock {
            if let module = modules[name] { return module }
            let cubin = try compiler.cubin(for: name, fastMath: name.hasPrefix("attention"))
            let module = try KernelModule(name: name, cubin: cubin, driver: driver)
            modules[name] = module
            return module
        }
    }

    /// Compiles and loads every kernel module now (so timings exclude compilation).
    public func loadAllKernels() throws {
        try makeCurrent()
        for name in KernelSources.all.keys.sorted() { _ = try module(name) }
    }

    func launch(
        _ file: String, _ kernel: String, grid: (Int, Int, Int), block: Int, sharedBytes: Int = 0,
        _ arguments: [KernelArgument]
    ) throws {
        let module = try module(file)
        try profiled(kernel) {
            try module.launch(kernel, grid: grid, block: block, sharedBytes: sharedBytes, stream: stream, arguments)
        }
        if synchronizeAfterLaunch {
            try driver.check(driver.cuStreamSynchronize(stream), "kernel \(kernel) (synchronize after launch)")
        }
    }

    /// A 1-D grid-stride launch over `count` elements.
    func launchElementwise(_ file: String, _ kernel: String, count: Int, _ arguments: [KernelArgument]) throws {
        if count == 0 { return }
        let blocks = min((count + 255) / 256, multiprocessorCount * 16)
        try launch(file, kernel, grid: (blocks, 1, 1), block: 256, arguments)
    }

    // MARK: memory

    public func empty(_ shape: Shape, dtype: DType) throws -> Tensor {
        try makeCurrent()
        let bytes = shape.elementCount * dtype.byteSize
        let (address, size) = try allocator.allocate(bytes)
        let allocator = self.allocator
        let storage = Storage(device: device, address: UInt(address), byteCount: size) { address in
            allocator.release(CUdeviceptr(address), size: size)
        }
        if poisonAllocations {
            try driver.check(driver.cuMemsetD8Async(address, 0xFF, size, stream), "cuMemsetD8Async(poison)")
        }
        return Tensor(storage: storage, shape: shape, dtype: dtype)
    }

    public func zeros(_ shape: Shape, dtype: DType) throws -> Tensor {
        let tensor = try empty(shape, dtype: dtype)
        try driver.check(
            driver.cuMemsetD8Async(CUdeviceptr(tensor.address), 0, tensor.byteCount, stream), "cuMemsetD8Async")
        return tensor
    }

    public func upload(_ host: Tensor) throws -> Tensor {
        if host.device == device { return host }
        try require(host.device == .cpu, "upload: expected a host tensor, got one on \(host.device)")
        let tensor = try empty(host.shape, dtype: host.dtype)
        if host.byteCount > 0 {
            // Pageable host memory: the copy is staged, and the call returns once the source was read.
            try profiled("upload (host to device copy)") {
                try driver.check(
                    driver.cuMemcpyHtoDAsync(
                        CUdeviceptr(tensor.address), host.hostPointer, host.byteCount,
                        stream), "cuMemcpyHtoDAsync(\(host.byteCount) bytes)")
            }
            try synchronize()
        }
        return tensor
    }

    public func download(_ tensor: Tensor) throws -> Tensor {
        if tensor.device == .cpu { return tensor }
        try checkOnDevice(tensor, "download")
        let host = Tensor.zeros(tensor.shape, dtype: tensor.dtype)
        if tensor.byteCount > 0 {
            try driver.check(
                driver.cuMemcpyDtoHAsync(host.hostPointer, CUdeviceptr(tensor.address), tensor.byteCount, stream),
                "cuMemcpyDtoHAsync(\(tensor.byteCount) bytes)")
        }
        try synchronize()
        return host
    }

    public func copy(_ source: Tensor, into destination: Tensor) throws {
        try require(
            source.elementCount == destination.elementCount && source.dtype == destination.dtype,
            "copy: \(source) into \(destination) (need equal element count and dtype)")
        try makeCurrent()
        let bytes = source.byteCount
        if bytes == 0 { return }
        switch (source.device, destination.device) {
        case (.cpu, .cpu):
            destination.hostPointer.copyMemory(from: source.hostPointer, byteCount: bytes)
        case (.cpu, device):
            try driver.check(
                driver.cuMemcpyHtoDAsync(CUdeviceptr(destination.address), source.hostPointer, bytes, stream),
                "cuMemcpyHtoDAsync")
            try synchronize()
        case (device, .cpu):
            try driver.check(
                driver.cuMemcpyDtoHAsync(destination.hostPointer, CUdeviceptr(source.address), bytes, stream),
                "cuMemcpyDtoHAsync")
            try synchronize()
        case (device, device):
            try driver.check(
                driver.cuMemcpyDtoDAsync(CUdeviceptr(destination.address), CUdeviceptr(source.address), bytes, stream),
                "cuMemcpyDtoDAsync")
        default:
            throw BatonError.invalidArgument(
                "copy: \(source.device) -> \(destination.device) is not this backend's (\(device))")
        }
    }

    public func cast(_ x: Tensor, to dtype: DType) throws -> Tensor {
        try checkOnDevice(x, "cast")
        try checkFloat(x, "cast")
        guard dtype.isFloatingPoint else { throw BatonError.unsupported("cast to \(dtype) on CUDA (float types only)") }
        let out = try empty(x.shape, dtype: dtype)
        try launchElementwise(
            "ops.cu", "cast_values", count: x.elementCount,
            [.tensor(x), .int(x.dtype.kernelCode), .tensor(out), .int(dtype.kernelCode), .int64(x.elementCount)])
        return out
    }

    public func synchronize() throws {
        try makeCurrent()
        try driver.check(driver.cuStreamSynchronize(stream), "cuStreamSynchronize")
    }

    /// Device memory the driver reports free and total, in bytes.
    public func memoryInfo() throws -> (free: Int, total: Int) {
        try makeCurrent()
        var free = 0, total = 0
        try driver.check(driver.cuMemGetInfo(&free, &total), "cuMemGetInfo")
        return (free, total)
    }

    // MARK: checks

    func checkOnDevice(_ t: Tensor, _ op: String) throws {
        guard t.device == device else {
            throw BatonError.invalidArgument("\(op): tensor \(t) is on \(t.device), expected \(device)")
        }
    }

    func checkFloat(_ t: Tensor, _ op: String) throws {
        guard t.dtype.isFloatingPoint else {
            throw BatonError.invalidArgument("\(op): expected a float tensor, got \(t.dtype)")
        }
    }

    /// `t` as bf16 on this device (cast when it is another float type).
    func asActivation(_ t: Tensor, _ op: String) throws -> Tensor {
        try checkOnDevice(t, op)
        try checkFloat(t, op)
        return t.dtype == .bf16 ? t : try cast(t, to: .bf16)
    }
}

extension DType {
    /// The dtype code the kernels' `load_as_float`/`store_float` read: 0 f32, 1 bf16, 2 f16.
    var kernelCode: Int {
        switch self {
        case .bf16: 1
        case .f16: 2
        default: 0
        }
    }
}
