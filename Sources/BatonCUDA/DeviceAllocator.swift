import BatonTensor
import CCUDA
import Foundation

/// A caching device allocator: freed blocks go to per-size free lists and are reused by later
/// allocations of the same rounded size, so steady-state layers make no driver calls. Reuse is
/// safe because every kernel runs on the backend's one compute stream, in order.
/// Sizes round up to 512 bytes below 1 MiB and to 2 MiB above.
public final class DeviceAllocator: @unchecked Sendable {
    /// Bytes handed out and not yet released, the most ever at once, and bytes kept in free lists.
    public struct Statistics: Sendable, CustomStringConvertible {
        public var bytesInUse = 0
        public var peakBytesInUse = 0
        public var bytesCached = 0
        public var driverAllocations = 0

        public var description: String {
            func mib(_ b: Int) -> String { String(format: "%.1f MiB", Double(b) / 1_048_576) }
            return "in use \(mib(bytesInUse)), peak \(mib(peakBytesInUse)), cached \(mib(bytesCached)), "
                + "\(driverAllocations) driver allocations"
        }
    }

    private let driver: BatonCUDADriver
    private let context: CUcontext
    private let lock = NSLock()
    private var freeBlocks: [Int: [CUdeviceptr]] = [:]
    private var stats = Statistics()

    init(driver: BatonCUDADriver, context: CUcontext) {
        self.driver = driver
        self.context = context
    }

    public var statistics: Statistics { lock.withLock { stats } }

    /// Starts a new peak measurement from what is in use now (benchmarks report per-case peaks).
    public func resetPeak() { lock.withLock { stats.peakBytesInUse = stats.bytesInUse } }

    static func roundedSize(_ bytes: Int) -> Int {
        let small = 512, large = 2 << 20
        if bytes <= 1 << 20 { return max(small, (bytes + small - 1) / small * small) }
        return (bytes + large - 1) / large * large
    }

    /// A block of at least `bytes` bytes; on out-of-memory the cache is emptied and the call retried.
    func allocate(_ bytes: Int) throws -> (address: CUdeviceptr, size: Int) {
        let size = Self.roundedSize(bytes)
        let reused: CUdeviceptr? = lock.withLock {
            guard let address = freeBlocks[size]?.popLast() else { return nil }
            stats.bytesCached -= size
            return address
        }
        var address = reused ?? 0
        if reused == nil {
            _ = driver.cuCtxSetCurrent(context)
            var status = driver.cuMemAlloc(&address, size)
            if status == 2 {  // CUDA_ERROR_OUT_OF_MEMORY: give cached blocks back and retry once
                try releaseCache()
                status = driver.cuMemAlloc(&address, size)
            }
            if status != 0 {
                var free = 0, total = 0
                _ = driver.cuMemGetInfo(&free, &total)
                try driver.check(
                    status,
                    "cuMemAlloc(\(size) bytes; \(free >> 20) MiB of \(total >> 20) MiB free, "
                        + "\(statistics))")
            }
            lock.withLock { stats.driverAllocations += 1 }
        }
        lock.withLock {
            stats.bytesInUse += size
            stats.peakBytesInUse = max(stats.peakBytesInUse, stats.bytesInUse)
        }
        return (address, size)
    }

    /// Returns a block to its free list (no driver call, so it is safe from any thread).
    func release(_ address: CUdeviceptr, size: Int) {
        lock.withLock {
            freeBlocks[size, default: []].append(address)
            stats.bytesInUse -= size
            stats.bytesCached += size
        }
    }

    /// Frees every cached block back to the driver.
    public func releaseCache() throws {
        let blocks: [CUdeviceptr] = lock.withLock {
            let all = freeBlocks.values.flatMap { $0 }
            freeBlocks.removeAll()
            stats.bytesCached = 0
            return all
        }
        _ = driver.cuCtxSetCurrent(context)
        _ = driver.cuCtxSynchronize()
        for address in blocks { try driver.check(driver.cuMemFree(address), "cuMemFree") }
    }
}
