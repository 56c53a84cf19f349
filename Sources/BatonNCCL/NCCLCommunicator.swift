#if canImport(Glibc)
    import Glibc
#endif
import BatonComm
import BatonCUDA
import BatonTensor
import CCUDA
import Foundation

/// A `Communicator` over NCCL for ranks on distinct GPUs: threads of one process
/// (`group(backends:)`) or one process per GPU (`connect(_:backend:)`, torchrun style).
///
/// Stream order, not host blocking: each operation records an event on the rank's compute stream,
/// makes the communicator's own stream wait on it, issues NCCL there and records a done event.
/// `CommHandle.wait()` makes the compute stream wait on the done event and returns at once, so
/// communication overlaps whatever the caller queues in between. Only results the host reads
/// (host tensors, `broadcast([Int32])`) block the host, by polling the done event.
///
/// Buffers: inputs and outputs stay referenced until the communication stream is done with them
/// (the caching allocator would otherwise hand them to the compute stream early). Callers must not
/// write an input tensor before `wait()` (stream-ordered after the transfer); they may drop it.
///
/// Failures: every NCCL status is checked and becomes a `BatonError` naming the rank and the
/// operation. A watchdog thread polls the done events and `ncclCommGetAsyncError`; an error, or
/// an operation in flight longer than `timeout` (a dead or stalled peer), fails the rank:
/// `ncclCommAbort` releases the device, and every later call on this rank throws that error.
///
/// Point-to-point: a lone `sendAsync` or `receiveAsync` is one NCCL call and occupies the
/// communication stream until its peer posts the matching call; exchanges in a cycle (ring
/// attention) must use `exchangeAsync`, which issues the send and the receive as one group.
public final class NCCLCommunicator: Communicator, @unchecked Sendable {
    public let rank: Int
    public let worldSize: Int
    public let backend: CUDABackend
    /// Seconds an operation may be in flight before the rank fails with a timeout.
    public let timeout: Double

    let nccl: BatonNCCL
    /// The communication stream (one per communicator).
    let stream: CUstream
    let inFlight: InFlightOperations<CUDAEvent>
    private let stateLock = NSLock()
    /// nil once aborted.
    private var comm: ncclComm_t?
    private var watchdogStopped = false
    private var nextOperation = 0
    /// The communicators of one `group(backends:)`: aborting one aborts all, as ranks of one
    /// process share the fate of a request.
    var siblings: Siblings?

    init(comm: ncclComm_t, rank: Int, worldSize: Int, backend: CUDABackend, timeout: Double, nccl: BatonNCCL) throws {
        self.rank = rank
        self.worldSize = worldSize
        self.backend = backend
        self.timeout = timeout
        self.nccl = nccl
        self.comm = comm
        do {
            stream = try backend.createStream()
        } catch {
            _ = nccl.ncclCommAbort(comm)
            throw error
        }
        let relay = WeakRelay()
        inFlight = InFlightOperations(
            rank: rank, timeout: timeout, isComplete: { try $0.isComplete() },
            onFailure: { _ in relay.target?.abortCommunicator() })
        relay.target = self
        startWatchdog(relay)
    }

    deinit {
        stateLock.withLock { watchdogStopped = true }
        // Abort, not destroy: it is local (no peer must take part) and cannot hang on a dead peer.
        abortCommunicator()
        backend.destroyStream(stream)
    }

    /// The rank's failure (a timeout, an NCCL error, an abort), if it has one.
    public var failure: BatonError? { inFlight.failed }

    /// Operations issued and not yet seen complete (the watchdog drops completed ones).
    public var operationsInFlight: Int { inFlight.count }

    public func abort(_ error: any Error) {
        inFlight.fail(BatonError(.communication, "rank \(rank) gave up: \(error)"))
        siblings?.abortAll(because: rank, error)
    }

    // MARK: - collectives

    public func allGatherAsync(_ tensor: Tensor) throws -> CommHandle<[Tensor]> {
        let op = name("allGather", tensor)
        let (input, onHost) = try onDevice(tensor, op)
        let bytes = input.byteCount
        let out = try backend.empty(Shape([worldSize * input.elementCount]), dtype: input.dtype)
        let issued = try issue(op, keepAlive: [input, out], empty: bytes == 0) { comm, stream in
            try nccl.check(
                nccl.ncclAllGather(pointer(input), pointer(out), bytes, Int32(BATON_NCCL_UINT8), comm, stream),
                "rank \(rank) \(op): ncclAllGather", comm: comm)
        }
        return handle(issued, op, onHost: onHost) { [worldSize] in
            let gathered = onHost ? try self.backend.download(out) : out
            return (0..<worldSize).map { r in
                Tensor(
                    storage: gathered.storage, byteOffset: gathered.byteOffset + r * bytes, shape: tensor.shape,
                    dtype: tensor.dtype)
            }
        }
    }

    public func allReduceSumAsync(_ tensor: Tensor) throws -> CommHandle<Tensor> {
        guard tensor.dtype.isFloatingPoint else {
            throw BatonError.invalidArgument(
                "allReduceSum on rank \(rank): expected a float tensor, got \(tensor.dtype)")
        }
        let op = name("allReduceSum", tensor)
        let (input, onHost) = try onDevice(tensor, op)
        // fp32 accumulation: other float types are summed as fp32 and cast back when waited for.
        let isF32 = input.dtype == .f32
        let sum = isF32 ? try backend.empty(input.shape, dtype: .f32) : try backend.cast(input, to: .f32)
        let count = input.elementCount
        let issued = try issue(op, keepAlive: [input, sum], empty: count == 0) { comm, stream in
            try nccl.check(
                nccl.ncclAllReduce(
                    pointer(isF32 ? input : sum), pointer(sum), count, Int32(BATON_NCCL_FLOAT32),
                    Int32(BATON_NCCL_SUM), comm, stream),
                "rank \(rank) \(op): ncclAllReduce", comm: comm)
        }
        return handle(issued, op, onHost: onHost) {
            if count == 0 && isF32 { return onHost ? tensor : input }
            let result = isF32 ? sum : try self.backend.cast(sum, to: input.dtype)
            return onHost ? try self.backend.download(result) : result
        }
    }

    public func broadcastAsync(_ tensor: Tensor, root: Int) throws -> CommHandle<Tensor> {
        try requirePeer(root, "broadcast")
        let op = name("broadcast", tensor) + " from rank \(root)"
        let (input, onHost) = try onDevice(tensor, op)
        let bytes = input.byteCount
        let out = try backend.empty(input.shape, dtype: input.dtype)
        let issued = try issue(op, keepAlive: [input, out], empty: bytes == 0) { comm, stream in
            try nccl.check(
                nccl.ncclBroadcast(
                    pointer(input), pointer(out), bytes, Int32(BATON_NCCL_UINT8), Int32(root), comm, stream),
                "rank \(rank) \(op): ncclBroadcast", comm: comm)
        }
        return handle(issued, op, onHost: onHost) { onHost ? try self.backend.download(out) : out }
    }

    /// Token ids and flags: staged through device memory; the host waits (polling, bounded by the
    /// timeout) because it reads the result.
    public func broadcast(_ values: [Int32], root: Int) throws -> [Int32] {
        try broadcast(Tensor(int32: values), root: root).int32s()
    }

    // MARK: - point-to-point

    public func sendAsync(_ tensor: Tensor, to peer: Int) throws -> CommHandle<Void> {
        try requirePeer(peer, "send")
        let op = name("send", tensor) + " to rank \(peer)"
        let (input, _) = try onDevice(tensor, op)
        let issued = try issue(op, keepAlive: [input], empty: input.byteCount == 0) { comm, stream in
            try nccl.check(
                nccl.ncclSend(pointer(input), input.byteCount, Int32(BATON_NCCL_UINT8), Int32(peer), comm, stream),
                "rank \(rank) \(op): ncclSend", comm: comm)
        }
        return handle(issued, op, onHost: false) { () }
    }

    public func receiveAsync(from peer: Int, shape: Shape, dtype: DType) throws -> CommHandle<Tensor> {
        try requirePeer(peer, "receive")
        let op = "receive #\(nextOperation) \(dtype) \(shape) from rank \(peer)"
        nextOperation += 1
        let out = try backend.empty(shape, dtype: dtype)
        let issued = try issue(op, keepAlive: [out], empty: out.byteCount == 0) { comm, stream in
            try nccl.check(
                nccl.ncclRecv(pointer(out), out.byteCount, Int32(BATON_NCCL_UINT8), Int32(peer), comm, stream),
                "rank \(rank) \(op): ncclRecv", comm: comm)
        }
        return handle(issued, op, onHost: false) { out }
    }

    /// The send and the receive as one NCCL group, so a ring of exchanges cannot deadlock.
    public func exchangeAsync(
        sending tensor: Tensor, to destination: Int, receivingFrom source: Int,
        shape: Shape, dtype: DType
    ) throws -> (sent: CommHandle<Void>, received: CommHandle<Tensor>) {
        try requirePeer(destination, "exchange")
        try requirePeer(source, "exchange")
        let op = name("exchange", tensor) + " to rank \(destination), \(dtype) \(shape) from rank \(source)"
        let (input, _) = try onDevice(tensor, op)
        let out = try backend.empty(shape, dtype: dtype)
        let issued = try issue(op, keepAlive: [input, out], empty: input.byteCount == 0 && out.byteCount == 0) {
            comm, stream in
            try nccl.check(nccl.ncclGroupStart(), "rank \(rank) \(op): ncclGroupStart", comm: comm)
            var first: BatonError?
            do {
                if input.byteCount > 0 {
                    try nccl.check(
                        nccl.ncclSend(
                            pointer(input), input.byteCount, Int32(BATON_NCCL_UINT8), Int32(destination), comm, stream),
                        "rank \(rank) \(op): ncclSend", comm: comm)
                }
                if out.byteCount > 0 {
                    try nccl.check(
                        nccl.ncclRecv(
                            pointer(out), out.byteCount, Int32(BATON_NCCL_UINT8), Int32(source), comm, stream),
                        "rank \(rank) \(op): ncclRecv", comm: comm)
                }
            } catch let error as BatonError { first = error }
            // The group must be closed even after a failed call inside it.
            let end = nccl.ncclGroupEnd()
            if let first { throw first }
            try nccl.check(end, "rank \(rank) \(op): ncclGroupEnd", comm: comm)
        }
        return (handle(issued, op, onHost: false) { () }, handle(issued, op, onHost: false) { out })
    }

    // MARK: - internals

    private func name(_ kind: String, _ tensor: Tensor) -> String {
        defer { nextOperation += 1 }
        return "\(kind) #\(nextOperation) \(tensor.dtype) \(tensor.shape)"
    }

    private func requirePeer(_ peer: Int, _ op: String) throws {
        guard (0..<worldSize).contains(peer) else {
            throw BatonError.invalidArgument("\(op) on rank \(rank): peer rank \(peer) is outside 0..<\(worldSize)")
        }
    }

    /// `tensor` on this rank's GPU (uploaded when on the host), and whether it came from the host.
    private func onDevice(_ tensor: Tensor, _ op: String) throws -> (Tensor, Bool) {
        if tensor.device == backend.device { return (tensor, false) }
        guard tensor.device == .cpu else {
            throw BatonError.invalidArgument(
                "rank \(rank) \(op): tensor is on \(tensor.device), this rank's communicator is on \(backend.device)")
        }
        try inFlight.checkHealthy()
        return (try backend.upload(tensor), true)
    }

    struct Issued {
        let done: CUDAEvent?
        let id: Int
    }

    /// Orders the communication stream after the compute stream's work so far, runs `enqueue`
    /// there and records the done event; `keepAlive` stays referenced until that event completes.
    /// An empty transfer issues nothing.
    private func issue(
        _ op: String, keepAlive: [Tensor], empty: Bool,
        _ enqueue: (ncclComm_t, CUstream) throws -> Void
    ) throws -> Issued {
        try inFlight.checkHealthy()
        inFlight.poll()
        if empty { return Issued(done: nil, id: -1) }
        try backend.makeContextCurrent()
        let ready = try backend.createEvent()
        try ready.record(on: backend.stream)
        try ready.makeWait(stream)
        guard let comm = stateLock.withLock({ self.comm }) else {
            throw inFlight.failed ?? BatonError(.communication, "rank \(rank) \(op): the NCCL communicator was aborted")
        }
        do {
            try enqueue(comm, stream)
        } catch let error as BatonError {
            inFlight.fail(error)
            throw error
        }
        let done = try backend.createEvent()
        try done.record(on: stream)
        let id = try inFlight.add(op: op, marker: done, keepAlive: keepAlive + [ready])
        return Issued(done: done, id: id)
    }

    /// The handle of an issued operation: device results are stream-ordered (the compute stream
    /// waits on the done event; no host block), host results wait on the host by polling.
    private func handle<Value>(
        _ issued: Issued, _ op: String, onHost: Bool,
        _ result: @escaping () throws -> Value
    ) -> CommHandle<Value> {
        CommHandle { [self] in
            if onHost && issued.done != nil {
                try inFlight.waitForCompletion(of: issued.id, op: op, asyncError: { self.asyncError() })
            } else {
                try inFlight.checkHealthy()
            }
            try backend.makeContextCurrent()
            try issued.done?.makeWait(backend.stream)
            return try result()
        }
    }

    /// NCCL's asynchronous error for this communicator as a `BatonError` naming the rank and what
    /// was in flight, or nil.
    func asyncError() -> BatonError? {
        let status: (call: ncclResult_t, error: ncclResult_t)? = stateLock.withLock {
            guard let comm else { return nil }
            var error: ncclResult_t = 0
            let call = nccl.ncclCommGetAsyncError(comm, &error)
            return (call, error)
        }
        guard let status else { return nil }
        if status.call != 0 {
            return BatonError(
                .nccl, "rank \(rank): ncclCommGetAsyncError failed: \(nccl.errorText(status.call, comm: nil))")
        }
        if status.error == 0 || status.error == 7 { return nil }  // ncclSuccess, ncclInProgress
        let pending = inFlight.pendingOperations
        return BatonError(
            .nccl,
            "rank \(rank): NCCL reported \(nccl.errorText(status.error, comm: nil))"
                + (pending.isEmpty ? "" : " during \(pending.first!)") + " (a peer rank may have died)")
    }

    /// Takes the communicator out of service with `ncclCommAbort` (which stops its kernels). Safe
    /// to call more than once and from any thread.
    func abortCommunicator() {
        let comm: ncclComm_t? = stateLock.withLock {
            let c = self.comm
            self.comm = nil
            return c
        }
        guard let comm else { return }
        try? backend.makeContextCurrent()
        _ = nccl.ncclCommAbort(comm)
    }

    /// Polls in flight operations and NCCL's asynchronous error every 20 ms while anything is in
    /// flight (every 100 ms otherwise), until the communicator goes away.
    private func startWatchdog(_ relay: WeakRelay) {
        let thread = Thread {
            try? relay.target?.backend.makeContextCurrent()
            while let pause = NCCLCommunicator.watchdogTick(relay) { usleep(pause) }
        }
        thread.name = "baton-nccl-watchdog-\(rank)"
        thread.stackSize = 256 << 10
        thread.start()
    }

    /// One watchdog round; the pause before the next in microseconds, nil to stop.
    private static func watchdogTick(_ relay: WeakRelay) -> UInt32? {
        guard let communicator = relay.target else { return nil }
        if communicator.stateLock.withLock({ communicator.watchdogStopped }) { return nil }
        if communicator.inFlight.failed != nil { return 100_000 }
        communicator.inFlight.poll(asyncError: communicator.asyncError())
        return communicator.inFlight.count > 0 ? 20_000 : 100_000
    }
}

/// A weak reference the watchdog and the failure callback hold, so neither keeps the communicator alive.
final class WeakRelay: @unchecked Sendable {
    weak var target: NCCLCommunicator?
}

/// The communicators of one `group(backends:)`.
final class Siblings: @unchecked Sendable {
    private let lock = NSLock()
    private var members: [WeakRelay] = []

    func add(_ communicator: NCCLCommunicator) {
        let relay = WeakRelay()
        relay.target = communicator
        lock.withLock { members.append(relay) }
    }

    func abortAll(because rank: Int, _ error: any Error) {
        let all = lock.withLock { members.compactMap(\.target) }
        for member in all where member.rank != rank {
            member.inFlight.fail(
                BatonError(.communication, "rank \(member.rank): stopped because rank \(rank) failed: \(error)"))
        }
    }
}

/// A tensor's device address as the pointer NCCL takes.
func pointer(_ tensor: Tensor) -> UnsafeMutableRawPointer? {
    UnsafeMutableRawPointer(bitPattern: tensor.address)
}
