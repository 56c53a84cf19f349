import BatonTensor

/// Moves tensors between the ranks of one sequence-parallel group. Tensors live on the
/// caller's device (host tensors for CPU ranks). Every rank calls the collectives in the same
/// order; sizes must agree across ranks (a mismatch throws on every rank).
///
/// Each operation has an async form returning a `CommHandle`: the transfer runs beside the
/// caller's compute (a communication thread for CPU ranks, a second stream ordered by events
/// for NCCL) and `wait()` returns its result. The blocking forms are `async` + `wait()`. For a
/// device communicator (NCCL) `wait()` is stream-ordered: it orders the caller's compute stream
/// after the transfer and returns without blocking the host, so a caller must not write an input
/// tensor before waiting (it may drop it: the communicator keeps it alive).
/// A wait that does not complete within the communicator's timeout throws `BatonError(.timeout)`
/// naming the rank and the operation.
public protocol Communicator: AnyObject, Sendable {
    var rank: Int { get }
    var worldSize: Int { get }

    /// Every rank's `tensor` (same shape and dtype on all ranks), in rank order.
    func allGatherAsync(_ tensor: Tensor) throws -> CommHandle<[Tensor]>
    /// The element-wise sum over ranks (float dtypes, same shape on all ranks), accumulated in fp32.
    func allReduceSumAsync(_ tensor: Tensor) throws -> CommHandle<Tensor>
    /// Rank `root`'s `tensor` on every rank (every rank passes a tensor of the same shape and dtype;
    /// non-roots' contents are ignored).
    func broadcastAsync(_ tensor: Tensor, root: Int) throws -> CommHandle<Tensor>
    /// Sends `tensor` to rank `peer`, which receives it with `receiveAsync(from:shape:dtype:)`.
    /// Messages between one pair of ranks arrive in the order they were sent.
    func sendAsync(_ tensor: Tensor, to peer: Int) throws -> CommHandle<Void>
    /// The next tensor sent by rank `peer` to this rank; it must have `shape` and `dtype`.
    func receiveAsync(from peer: Int, shape: Shape, dtype: DType) throws -> CommHandle<Tensor>
    /// Sends `tensor` to `destination` and receives the next tensor from `source` (`shape`,
    /// `dtype`) as one operation. A ring of ranks each sending to the next and receiving from the
    /// previous must use this: NCCL runs a lone send only once its receiver posted the receive, so
    /// separate sends and receives in a cycle would wait on each other; here the pair is one group.
    /// The default issues `sendAsync` then `receiveAsync`.
    func exchangeAsync(
        sending tensor: Tensor, to destination: Int, receivingFrom source: Int,
        shape: Shape, dtype: DType
    ) throws -> (sent: CommHandle<Void>, received: CommHandle<Tensor>)
    /// Rank `root`'s few integers (token ids, stop flags) on every rank. The default goes through
    /// a host i32 tensor; a device communicator stages it through device memory.
    func broadcast(_ values: [Int32], root: Int) throws -> [Int32]
    /// Marks the group failed because of `error` (this rank gave up): every pending and future
    /// operation of every rank throws instead of waiting for this one (`ncclCommAbort` for NCCL).
    func abort(_ error: any Error)
}

extension Communicator {
    public func allGather(_ tensor: Tensor) throws -> [Tensor] { try allGatherAsync(tensor).wait() }
    public func allReduceSum(_ tensor: Tensor) throws -> Tensor { try allReduceSumAsync(tensor).wait() }
    public func broadcast(_ tensor: Tensor, root: Int) throws -> Tensor {
        try broadcastAsync(tensor, root: root).wait()
    }
    public func send(_ tensor: Tensor, to peer: Int) throws { try sendAsync(tensor, to: peer).wait() }
    public func receive(from peer: Int, shape: Shape, dtype: DType) throws -> Tensor {
        try receiveAsync(from: peer, shape: shape, dtype: dtype).wait()
    }

    public func broadcast(_ values: [Int32], root: Int) throws -> [Int32] {
        if worldSize == 1 { return values }  // one rank: nothing to send (a decode step's token)
        let result = try broadcast(Tensor(int32: values), root: root)
        return result.int32s()
    }

    public func exchangeAsync(
        sending tensor: Tensor, to destination: Int, receivingFrom source: Int,
        shape: Shape, dtype: DType
    ) throws -> (sent: CommHandle<Void>, received: CommHandle<Tensor>) {
        (try sendAsync(tensor, to: destination), try receiveAsync(from: source, shape: shape, dtype: dtype))
    }
}

/// An operation in flight. `wait()` blocks until it completes (or its timeout passes) and returns
/// its result; waiting again returns the same result.
public final class CommHandle<Value>: @unchecked Sendable {
    private let body: () throws -> Value
    private let lock = Lock()
    private var result: Result<Value, any Error>?

    /// `body` blocks until the operation is done (an NCCL event synchronise, a condition wait).
    public init(_ body: @escaping () throws -> Value) {
        self.body = body
    }

    /// A handle for an operation that already completed.
    public static func completed(_ value: Value) -> CommHandle<Value> {
        CommHandle { value }
    }

    public func wait() throws -> Value {
        try lock.withLock {
            if result == nil { result = Result { try body() } }
            return try result!.get()
        }
    }
}
