import BatonComm
import BatonTensor

/// The selected KV entries every (virtual) host sends, and the passing block a host assembles
/// from the messages of the hosts before it. Messages travel in one AllGather (the reference's
/// replicated all-to-all). Senders may pass different counts (a short block has fewer
/// candidates); every rank knows all counts from the plan, so each message is padded to the
/// largest count and trimmed on arrival — an AllGather of equal sizes, as NCCL requires.
struct PassingMessages {
    /// Entries each rank sent, in rank order.
    let counts: [Int]
    let capacity: Int
    private let handle: CommHandle<[Tensor]>

    /// Packs `[K ; V]` (`[k, Hkv, d]` each, `k = counts[rank]`) into `[2*capacity, Hkv, d]` and
    /// starts the AllGather.
    init(key: Tensor, value: Tensor, counts: [Int], communicator: any Communicator, backend: any Backend) throws {
        let rank = communicator.rank
        try require(
            key.shape[0] == counts[rank] && value.shape == key.shape,
            "passing message on rank \(rank): expected \(counts[rank]) selected rows, got keys \(key.shape), values \(value.shape)"
        )
        self.counts = counts
        capacity = counts.max() ?? 0
        let message = try backend.zeros(key.shape.withRows(2 * capacity), dtype: key.dtype)
        if counts[rank] > 0 {
            try backend.copy(key, into: message.rows(0..<counts[rank]))
            try backend.copy(value, into: message.rows(capacity..<capacity + counts[rank]))
        }
        handle = try communicator.allGatherAsync(message)
    }

    /// Waits for the messages and returns the selected keys and values of `senders`, in order.
    func entries(of senders: [Int]) throws -> [(key: Tensor, value: Tensor)] {
        let messages = try handle.wait()
        return senders.map { sender in
            let n = counts[sender]
            return (messages[sender].rows(0..<n), messages[sender].rows(capacity..<capacity + n))
        }
    }
}

enum PassingBlock {
    /// The passing block `[P_K, P_V]`, `[sum k, Hkv, d]` each, concatenated in sender order
    /// (empty if no sender passed anything); `like` gives the row shape and dtype.
    static func assemble(
        _ parts: [(key: Tensor, value: Tensor)], like: Tensor,
        backend: any Backend
    ) throws -> (key: Tensor, value: Tensor) {
        let nonEmpty = parts.filter { $0.key.shape[0] > 0 }
        if nonEmpty.isEmpty {
            let empty = try backend.empty(like.shape.withRows(0), dtype: like.dtype)
            return (empty, empty)
        }
        return (try backend.concatRows(nonEmpty.map(\.key)), try backend.concatRows(nonEmpty.map(\.value)))
    }

    /// Keys or values `[passing ; local rows...]` for one attention call.
    static func keysBefore(_ passing: Tensor, _ local: [Tensor], backend: any Backend) throws -> Tensor {
        let parts = ([passing] + local).filter { $0.shape[0] > 0 }
        return parts.count == 1 ? parts[0] : try backend.concatRows(parts)
    }
}

/// Keeps the passing blocks of the last prefill layer (keys, one per virtual host) when
/// `recordsPassing` is set, so tests can check what was carried.
protocol PassingRecorder: AnyObject {
    var recordsPassing: Bool { get set }
    var lastPassing: [Tensor] { get }
}
