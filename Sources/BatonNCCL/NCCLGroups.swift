import BatonComm
import BatonCUDA
import BatonTensor
import CCUDA
import Foundation

extension NCCLCommunicator {
    /// One communicator per backend, for ranks as threads of this process (rank i on
    /// `backends[i]`, one GPU each): one unique id, then `ncclCommInitRank` for every rank inside
    /// one NCCL group call from this thread. `timeout` bounds every operation in flight.
    public static func group(backends: [CUDABackend], timeout: Double = 600) throws -> [NCCLCommunicator] {
        try validateGroup(ordinals: backends.map(\.ordinal), timeout: timeout)
        let nccl = try NCCLLibrary.load()
        var id = ncclUniqueId()
        try nccl.check(nccl.ncclGetUniqueId(&id), "ncclGetUniqueId", comm: nil)
        let worldSize = backends.count
        var comms = [ncclComm_t?](repeating: nil, count: worldSize)
        try nccl.check(nccl.ncclGroupStart(), "ncclGroupStart (communicator init)", comm: nil)
        var failure: BatonError?
        for (rank, backend) in backends.enumerated() {
            do {
                try backend.makeContextCurrent()  // NCCL takes the rank's device from the current context
                try nccl.check(
                    nccl.ncclCommInitRank(&comms[rank], Int32(worldSize), id, Int32(rank)),
                    "rank \(rank) (cuda:\(backend.ordinal)): ncclCommInitRank of \(worldSize) ranks", comm: nil)
            } catch let error as BatonError {
                if failure == nil { failure = error }
            }
        }
        let end = nccl.ncclGroupEnd()
        if failure == nil && end != 0 {
            failure = BatonError(
                .nccl,
                "ncclGroupEnd after ncclCommInitRank of \(worldSize) ranks on "
                    + "\(backends.map { "cuda:\($0.ordinal)" }.joined(separator: ", ")) failed: \(nccl.errorText(end, comm: nil))"
            )
        }
        if let failure {
            for comm in comms { if let comm { _ = nccl.ncclCommAbort(comm) } }
            throw failure
        }
        let siblings = Siblings()
        var communicators: [NCCLCommunicator] = []
        for (rank, backend) in backends.enumerated() {
            let communicator = try NCCLCommunicator(
                comm: comms[rank]!, rank: rank, worldSize: worldSize, backend: backend,
                timeout: timeout, nccl: nccl)
            communicator.siblings = siblings
            siblings.add(communicator)
            communicators.append(communicator)
        }
        return communicators
    }

    /// This process's rank of a torchrun-style job. Rank 0 makes the unique id, `Rendezvous.exchange`
    /// hands it to every rank (through torchrun's agent store on MASTER_ADDR:MASTER_PORT when
    /// `config.agentStore`, else rank 0's own TCP server there), and `ncclCommInitRank` joins them.
    /// `backend` is the rank's GPU (by convention `LOCAL_RANK`). Every wait is bounded: the
    /// rendezvous by `rendezvousTimeout`, the NCCL init (which blocks until every rank joined) and
    /// later operations by `timeout`; a missing rank ends in an error naming this rank.
    public static func connect(
        _ config: ProcessGroupConfig, backend: CUDABackend, timeout: Double = 600,
        rendezvousTimeout: Double = 120
    ) throws -> NCCLCommunicator {
        try config.validate()
        try validateGroup(ordinals: [backend.ordinal], timeout: timeout)
        let nccl = try NCCLLibrary.load()
        var payload: [UInt8]?
        if config.rank == 0 {
            var id = ncclUniqueId()
            try nccl.check(nccl.ncclGetUniqueId(&id), "rank 0: ncclGetUniqueId", comm: nil)
            payload = UniqueID.bytes(id)
        }
        let bytes = try Rendezvous.exchange(config, payload: payload, timeout: rendezvousTimeout)
        let id = try UniqueID.id(bytes, rank: config.rank)
        let comm = try initRank(config, id: id, backend: backend, timeout: timeout, nccl: nccl)
        return try NCCLCommunicator(
            comm: comm, rank: config.rank, worldSize: config.worldSize, backend: backend,
            timeout: timeout, nccl: nccl)
    }

    /// `ncclCommInitRank` on a helper thread, so the caller can give up after `timeout` (the
    /// helper then stays blocked in NCCL until the process exits).
    private static func initRank(
        _ config: ProcessGroupConfig, id: ncclUniqueId, backend: CUDABackend,
        timeout: Double, nccl: BatonNCCL
    ) throws -> ncclComm_t {
        let outcome = InitOutcome()
        let thread = Thread {
            let result = Result<ncclComm_t, any Error> {
                try backend.makeContextCurrent()
                var comm: ncclComm_t?
                try nccl.check(
                    nccl.ncclCommInitRank(&comm, Int32(config.worldSize), id, Int32(config.rank)),
                    "rank \(config.rank) (cuda:\(backend.ordinal)): ncclCommInitRank of \(config.worldSize) ranks",
                    comm: nil)
                return comm!
            }
            outcome.finish(result)
        }
        thread.name = "baton-nccl-init-\(config.rank)"
        thread.start()
        guard let result = outcome.wait(timeout: timeout) else {
            throw BatonError(
                .timeout,
                "rank \(config.rank): ncclCommInitRank (WORLD_SIZE \(config.worldSize), unique id from "
                    + "\(config.masterAddress):\(config.masterPort)) did not complete within \(formatSeconds(timeout)) s; "
                    + "a rank did not start or cannot reach this one (NCCL_DEBUG=INFO shows why; NCCL_SOCKET_IFNAME picks the interface)"
            )
        }
        return try result.get()
    }

    /// Rejects what NCCL would reject later with a less helpful message (or a hang).
    static func validateGroup(ordinals: [Int], timeout: Double) throws {
        guard !ordinals.isEmpty else { throw BatonError.invalidArgument("NCCL group: no ranks") }
        guard timeout > 0 else {
            throw BatonError.invalidArgument("NCCL group: timeout must be > 0 seconds, got \(timeout)")
        }
        var seen: [Int: Int] = [:]
        for (rank, ordinal) in ordinals.enumerated() {
            if let other = seen[ordinal] {
                throw BatonError.invalidArgument(
                    "NCCL needs one GPU per rank: ranks \(other) and \(rank) are both on cuda:\(ordinal) (NCCL rejects a duplicate GPU); "
                        + "ranks sharing one GPU use --ranks N --device cuda (host-memory exchange)")
            }
            seen[ordinal] = rank
        }
    }
}

/// The result of the init thread, awaited with a deadline.
private final class InitOutcome: @unchecked Sendable {
    private let condition = NSCondition()
    private var result: Result<ncclComm_t, any Error>?

    func finish(_ result: Result<ncclComm_t, any Error>) {
        condition.lock()
        self.result = result
        condition.broadcast()
        condition.unlock()
    }

    func wait(timeout: Double) -> Result<ncclComm_t, any Error>? {
        let deadline = Date(timeIntervalSinceNow: timeout)
        condition.lock()
        defer { condition.unlock() }
        while result == nil {
            if !condition.wait(until: deadline) { break }
        }
        return result
    }
}
