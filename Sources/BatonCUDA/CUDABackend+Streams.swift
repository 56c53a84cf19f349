import BatonTensor
import CCUDA

/// Streams and events for code outside this module that orders work against the compute stream
/// (the NCCL communicator): a stream of its own, events to record on either stream, stream waits
/// and host-side polling that never blocks in the driver.
extension CUDABackend {
    /// How many CUDA devices this process sees (after `CUDA_VISIBLE_DEVICES`); throws
    /// `BatonError(.notAvailable)` naming the library and paths tried when the driver is missing.
    public static func visibleDeviceCount() throws -> Int {
        let driver = try CUDALibraries.driver()
        try driver.check(driver.cuInit(0), "cuInit")
        var count: Int32 = 0
        try driver.check(driver.cuDeviceGetCount(&count), "cuDeviceGetCount")
        return Int(count)
    }

    /// Makes this backend's context current on the calling thread (NCCL takes the device from it).
    public func makeContextCurrent() throws { try makeCurrent() }

    /// A new non-blocking stream on this device; destroy it with `destroyStream`.
    public func createStream() throws -> CUstream {
        try makeCurrent()
        var stream: CUstream?
        try driver.check(driver.cuStreamCreate(&stream, UInt32(BATON_CU_STREAM_NON_BLOCKING)), "cuStreamCreate")
        return stream!
    }

    public func destroyStream(_ stream: CUstream) {
        _ = driver.cuCtxSetCurrent(context)
        _ = driver.cuStreamDestroy(stream)
    }

    /// A new event without timing (the cheap kind), for ordering and completion polling.
    public func createEvent() throws -> CUDAEvent {
        try makeCurrent()
        var event: CUevent?
        try driver.check(driver.cuEventCreate(&event, 2 /* CU_EVENT_DISABLE_TIMING */), "cuEventCreate")
        return CUDAEvent(event!, driver: driver, context: context)
    }

    /// Throws `BatonError(.cuda)` naming `call` unless `status` is success (for callers issuing work on their own streams).
    public func checkDriver(_ status: CUresult, _ call: @autoclosure () -> String) throws {
        try driver.check(status, call())
    }
}

/// A CUDA event of one backend's context. `record(on:)` marks the point a stream has reached;
/// `makeWait(_:)` orders another stream after it; `isComplete()` polls from the host.
public final class CUDAEvent: @unchecked Sendable {
    public let event: CUevent
    let driver: BatonCUDADriver
    let context: CUcontext

    init(_ event: CUevent, driver: BatonCUDADriver, context: CUcontext) {
        self.event = event
        self.driver = driver
        self.context = context
    }

    deinit {
        _ = driver.cuCtxSetCurrent(context)
        _ = driver.cuEventDestroy(event)
    }

    public func record(on stream: CUstream) throws {
        try driver.check(driver.cuEventRecord(event, stream), "cuEventRecord")
    }

    /// Work queued on `stream` after this call runs after the event's point (no host block).
    public func makeWait(_ stream: CUstream) throws {
        try driver.check(driver.cuStreamWaitEvent(stream, event, 0), "cuStreamWaitEvent")
    }

    /// True once the work before the recorded point finished; throws the error a failed kernel
    /// left (e.g. an illegal address), naming the event query. Safe from any thread.
    public func isComplete() throws -> Bool {
        _ = driver.cuCtxSetCurrent(context)
        let status = driver.cuEventQuery(event)
        if status == 600 { return false }  // CUDA_ERROR_NOT_READY
        try driver.check(status, "cuEventQuery")
        return true
    }
}
