import BatonTensor
import Foundation

/// Ranks as threads of one process, exchanging tensors through shared host memory. Every rank
/// has its own `LocalCommunicator`; `group(worldSize:timeout:backends:)` makes the set. Host
/// tensors are exchanged directly; device tensors are staged through the host with the rank's
/// backend (downloaded when issued, uploaded in `wait()` on the caller's thread), so GPU ranks
/// of one process can run before a device communicator exists. Async operations
/// run on the rank's communication thread (in issue order, like a stream), so waiting for peers
/// overlaps the caller's compute. Contributions are copied when the operation is issued, so the
/// caller may reuse its tensor at once.
public final class LocalCommunicator: Communicator, @unchecked Sendable {
    public let rank: Int
    public var worldSize: Int { group.worldSize }
    /// How long any wait may block before it throws `BatonError(.timeout)`.
    public var timeout: Double { group.timeout }

    /// The rank's backend, for staging device tensors; nil for host tensors only.
    public let stagingBackend: (any Backend)?
    let group: LocalGroup
    private let stream: CommThread
    private var nextCollective = 0
    private var nextSend: [Int]
    private var nextReceive: [Int]

    init(rank: Int, group: LocalGroup, stagingBackend: (any Backend)?) {
        self.rank = rank
        self.group = group
        self.stagingBackend = stagingBackend
        self.stream = CommThread(name: "baton-comm-\(rank)")
        nextSend = Array(repeating: 0, count: group.worldSize)
        nextReceive = Array(repeating: 0, count: group.worldSize)
    }

    deinit { stream.stop() }

    /// One communicator per rank of a new group. `timeout` (seconds) bounds every wait;
    /// `backends` (one per rank) lets ranks pass tensors of their devices.
    public static func group(
        worldSize: Int, timeout: Double = 120,
        backends: [any Backend]? = nil
    ) throws -> [LocalCommunicator] {
        guard worldSize >= 1 else {
            throw BatonError.invalidArgument("LocalCommunicator.group: worldSize must be >= 1, got \(worldSize)")
        }
        guard timeout > 0 else {
            throw BatonError.invalidArgument("LocalCommunicator.group: timeout must be > 0 seconds, got \(timeout)")
        }
        if let backends, backends.count != worldSize {
            throw BatonError.invalidArgument(
                "LocalCommunicator.group: \(backends.count) backends for \(worldSize) ranks")
        }
        let group = LocalGroup(worldSize: worldSize, timeout: timeout)
        return (0..<worldSize).map { LocalCommunicator(rank: $0, group: group, stagingBackend: backends?[$0]) }
    }

    public func abort(_ error: any Error) { group.fail(error, from: rank) }

    public func allGatherAsync(_ tensor: Tensor) throws -> CommHandle<[Tensor]> {
        let (sequence, contribution) = try issueCollective(tensor)
        let device = tensor.device
        return run("allGather #\(sequence)", deliver: { try $0.map { try self.deliver($0, to: device) } }) {
            [group, rank] in
            let all = try group.collective(sequence: sequence, rank: rank, op: "allGather", contribution: contribution)
            try LocalGroup.requireSameLayout(all, rank: rank, op: "allGather #\(sequence)")
            return all
        }
    }

    public func allReduceSumAsync(_ tensor: Tensor) throws -> CommHandle<Tensor> {
        guard tensor.dtype.isFloatingPoint else {
            throw BatonError.invalidArgument(
                "allReduceSum on rank \(rank): expected a float tensor, got \(tensor.dtype)")
        }
        let (sequence, contribution) = try issueCollective(tensor)
        let device = tensor.device
        return run("allReduceSum #\(sequence)", deliver: { try self.deliver($0, to: device) }) { [group, rank] in
            let all = try group.collective(
                sequence: sequence, rank: rank, op: "allReduceSum", contribution: contribution)
            try LocalGroup.requireSameLayout(all, rank: rank, op: "allReduceSum #\(sequence)")
            var sum = [Float](repeating: 0, count: tensor.elementCount)
            for part in all {
                for (i, x) in part.floats().enumerated() { sum[i] += x }
            }
            return Tensor(sum, shape: tensor.shape, dtype: tensor.dtype)
        }
    }

    public func broadcastAsync(_ tensor: Tensor, root: Int) throws -> CommHandle<Tensor> {
        try requirePeer(root, op: "broadcast")
        let (sequence, contribution) = try issueCollective(tensor)
        let device = tensor.device
        return run("broadcast #\(sequence) from \(root)", deliver: { try self.deliver($0, to: device) }) {
            [group, rank] in
            let all = try group.collective(sequence: sequence, rank: rank, op: "broadcast", contribution: contribution)
            try LocalGroup.requireSameLayout(all, rank: rank, op: "broadcast #\(sequence)")
            return all[root]
        }
    }

    public func sendAsync(_ tensor: Tensor, to peer: Int) throws -> CommHandle<Void> {
        try requirePeer(peer, op: "send")
        let message = try stage(tensor, op: "send")
        let sequence = nextSend[peer]
        nextSend[peer] += 1
        return run("send #\(sequence) to \(peer)") { [group, rank] in
            group.post(message, from: rank, to: peer)
        }
    }

    public func receiveAsync(from peer: Int, shape: Shape, dtype: DType) throws -> CommHandle<Tensor> {
        try requirePeer(peer, op: "receive")
        let sequence = nextReceive[peer]
        nextReceive[peer] += 1
        let op = "receive #\(sequence) from \(peer)"
        return run(op, deliver: deliver) { [group, rank] in
            let message = try group.take(from: peer, to: rank, op: op)
            guard message.shape == shape && message.dtype == dtype else {
                throw BatonError(
                    .communication,
                    "rank \(rank) \(op): expected \(shape) \(dtype), peer sent \(message.shape) \(message.dtype)")
            }
            return message
        }
    }

    // MARK: - internals

    /// Numbers the collective and copies the contribution on the caller's thread, so the
    /// caller's later writes to `tensor` cannot race with the transfer.
    private func issueCollective(_ tensor: Tensor) throws -> (Int, Tensor) {
        let sequence = nextCollective
        nextCollective += 1
        return (sequence, try stage(tensor, op: "collective #\(sequence)"))
    }

    /// A private host copy of `tensor`: copied if on the host, downloaded if on the staging
    /// backend's device.
    private func stage(_ tensor: Tensor, op: String) throws -> Tensor {
        if tensor.device == .cpu { return try LocalGroup.hostCopy(tensor, rank: rank, op: op) }
        guard let stagingBackend, stagingBackend.device == tensor.device else {
            throw BatonError.unsupported(
                "LocalCommunicator rank \(rank) \(op): tensor is on \(tensor.device) but the communicator stages through \(stagingBackend.map { "\($0.device)" } ?? "no backend"); pass the ranks' backends to LocalCommunicator.group"
            )
        }
        return try stagingBackend.download(tensor)
    }

    /// A received host tensor on the caller's device (uploaded on the waiting thread, which
    /// owns the device context).
    private func deliver(_ host: Tensor) throws -> Tensor {
        try deliver(host, to: stagingBackend?.device ?? .cpu)
    }

    /// A collective's result where its input was: host inputs (token ids, say) stay on the host
    /// even when the rank computes on a GPU.
    private func deliver(_ host: Tensor, to device: Device) throws -> Tensor {
        guard device != .cpu, let stagingBackend, stagingBackend.device == device else { return host }
        return try stagingBackend.upload(host)
    }

    private func requirePeer(_ peer: Int, op: String) throws {
        guard (0..<worldSize).contains(peer) else {
            throw BatonError.invalidArgument("\(op) on rank \(rank): peer rank \(peer) is outside 0..<\(worldSize)")
        }
    }

    /// Queues `body` on the communication thread; the handle waits for it with the group timeout.
    private func run<Value>(
        _ op: String, deliver: @escaping (Value) throws -> Value = { $0 },
        _ body: @escaping @Sendable () throws -> Value
    ) -> CommHandle<Value> {
        let pending = Pending<Value>()
        stream.enqueue { pending.finish(Result { try body() }) }
        let timeout = group.timeout
        let rank = rank
        return CommHandle { try deliver(pending.wait(timeout: timeout + 1, rank: rank, op: op)) }
    }
}

/// A result that one thread finishes and another waits for.
final class Pending<Value>: @unchecked Sendable {
    private let lock = Lock()
    private var result: Result<Value, any Error>?

    func finish(_ result: Result<Value, any Error>) {
        lock.withLock {
            self.result = result
            lock.broadcast()
        }
    }

    func wait(timeout: Double, rank: Int, op: String) throws -> Value {
        let deadline = Date(timeIntervalSinceNow: timeout)
        return try lock.withLock {
            while result == nil {
                if !lock.wait(until: deadline) && result == nil {
                    throw BatonError(.timeout, "rank \(rank): \(op) did not complete within \(timeout) s")
                }
            }
            return try result!.get()
        }
    }
}

/// A serial queue served by one dedicated thread (not the shared Dispatch pool, whose width
/// is the core count: W blocked ranks on 2 cores would starve it).
final class CommThread: @unchecked Sendable {
    private let lock = Lock()
    private var queue: [() -> Void] = []
    private var stopped = false

    init(name: String) {
        let thread = Thread { [self] in serve() }
        thread.name = name
        thread.stackSize = 1 << 20
        thread.start()
    }

    func enqueue(_ work: @escaping () -> Void) {
        lock.withLock {
            queue.append(work)
            lock.broadcast()
        }
    }

    func stop() {
        lock.withLock {
            stopped = true
            lock.broadcast()
        }
    }

    private func serve() {
        while true {
            let work: (() -> Void)? = lock.withLock {
                while queue.isEmpty && !stopped { lock.wait() }
                return queue.isEmpty ? nil : queue.removeFirst()
            }
            guard let work else { return }
            work()
        }
    }
}
