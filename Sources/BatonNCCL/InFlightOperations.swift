#if canImport(Glibc)
    import Glibc
#endif
import BatonTensor
import Foundation

/// What the host knows about one rank's operations on a device stream: each operation in flight
/// with a completion marker (a CUDA event) and the buffers it reads or writes, and the rank's first
/// failure. Pure host logic, so it is tested without a GPU (markers are then plain flags).
///
/// - Buffers stay referenced until their operation's marker completes: the caching allocator
///   hands a released block to the next allocation on the compute stream at once, which must not
///   happen while the communication stream still reads or writes it.
/// - `poll` (called by the watchdog thread and on each new operation) drops completed
///   operations and turns a failed marker, an asynchronous error or an operation older than the
///   timeout into the rank's failure, naming the rank and the operation.
/// - `waitForCompletion` is the host-side wait for results the host reads (token ids): it polls
///   instead of blocking in the driver, so a dead peer ends in a timeout, never a hang.
/// - The first failure is kept; every later call throws it, and `onFailure` (abort the NCCL
///   communicator) runs once, outside the lock.
final class InFlightOperations<Marker>: @unchecked Sendable {
    struct Entry {
        let id: Int
        let op: String
        let issuedAt: Double
        let marker: Marker
        let keepAlive: [Any]
    }

    let rank: Int
    /// Seconds an operation may stay in flight before the rank fails with a timeout.
    let timeout: Double
    private let isComplete: (Marker) throws -> Bool
    private let now: () -> Double
    private let onFailure: (BatonError) -> Void
    private let lock = NSLock()
    private var entries: [Entry] = []
    private var nextID = 0
    private var failure: BatonError?

    init(
        rank: Int, timeout: Double, now: @escaping () -> Double = MonotonicClock.now,
        isComplete: @escaping (Marker) throws -> Bool, onFailure: @escaping (BatonError) -> Void = { _ in }
    ) {
        self.rank = rank
        self.timeout = timeout
        self.now = now
        self.isComplete = isComplete
        self.onFailure = onFailure
    }

    /// The rank's first failure, if any.
    var failed: BatonError? { lock.withLock { failure } }

    /// Operations not yet seen complete.
    var count: Int { lock.withLock { entries.count } }

    /// Names of the operations in flight, oldest first.
    var pendingOperations: [String] { lock.withLock { entries.map(\.op) } }

    /// Throws the rank's failure, if any.
    func checkHealthy() throws {
        if let failure = failed { throw failure }
    }

    /// Records `error` as the rank's failure unless one is recorded already; returns whether it was
    /// the first (then `onFailure` ran). Pending operations' buffers are kept: after an abort the
    /// device may still touch them.
    @discardableResult
    func fail(_ error: BatonError) -> Bool {
        let first: Bool = lock.withLock {
            guard failure == nil else { return false }
            failure = error
            return true
        }
        if first { onFailure(error) }
        return first
    }

    /// Registers an operation issued on the stream; its buffers stay alive until `marker`
    /// completes. Throws the rank's failure instead when it has one.
    @discardableResult
    func add(op: String, marker: Marker, keepAlive: [Any]) throws -> Int {
        try lock.withLock {
            if let failure { throw failure }
            let id = nextID
            nextID += 1
            entries.append(Entry(id: id, op: op, issuedAt: now(), marker: marker, keepAlive: keepAlive))
            return id
        }
    }

    /// Drops completed operations (releasing their buffers) and checks the rest: a marker that
    /// reports an error, `asyncError` (NCCL's asynchronous error) and the oldest operation's age.
    /// Returns the failure this call recorded, if any (so a watchdog aborts once).
    @discardableResult
    func poll(asyncError: BatonError? = nil) -> BatonError? {
        var released: [Entry] = []
        var found: BatonError?
        lock.withLock {
            guard failure == nil else { return }
            var remaining: [Entry] = []
            for entry in entries {
                do {
                    if try isComplete(entry.marker) { released.append(entry) } else { remaining.append(entry) }
                } catch {
                    remaining.append(entry)
                    if found == nil {
                        found = BatonError(.communication, "rank \(rank): \(entry.op) failed on the device: \(error)")
                    }
                }
            }
            entries = remaining
            if found == nil, let asyncError { found = asyncError }
            if found == nil, let oldest = remaining.first, now() - oldest.issuedAt > timeout {
                found = timeoutError(oldest.op)
            }
        }
        released.removeAll()  // buffers go back to the allocator here, outside the lock
        if let found, fail(found) { return found }
        return nil
    }

    /// Blocks the calling thread until operation `id` completes, polling (a short spin, then
    /// sleeps of up to 1 ms) and checking `asyncError` and the timeout between polls. Throws the
    /// rank's failure, or a timeout naming the rank and `op`.
    func waitForCompletion(of id: Int, op: String, asyncError: () -> BatonError? = { nil }) throws {
        var spins = 0
        while true {
            let (failure, entry) = lock.withLock { (self.failure, entries.first { $0.id == id }) }
            if let failure { throw failure }
            guard let entry else { return }  // polled complete already
            let done: Bool
            do {
                done = try isComplete(entry.marker)
            } catch {
                let error = BatonError(.communication, "rank \(rank): \(entry.op) failed on the device: \(error)")
                fail(error)
                throw failed ?? error
            }
            if done { return }
            if let error = asyncError() {
                fail(error)
                throw failed ?? error
            }
            if now() - entry.issuedAt > timeout {
                fail(timeoutError(op))
                throw failed ?? timeoutError(op)
            }
            spins += 1
            if spins < 200 { sched_yield() } else { usleep(UInt32(min(1000, 10 * (spins - 199)))) }
        }
    }

    func timeoutError(_ op: String) -> BatonError {
        BatonError(
            .timeout,
            "rank \(rank): \(op) did not complete within \(formatSeconds(timeout)) s "
                + "(a peer rank died, stalled or issued different collectives)")
    }
}

func formatSeconds(_ seconds: Double) -> String {
    seconds == seconds.rounded() ? String(Int(seconds)) : String(format: "%.2f", seconds)
}
