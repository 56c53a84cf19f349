import BatonTensor
import Foundation

/// The ranks of a torchrun job meeting in the agent's TCPStore (torchrun serves it on
/// MASTER_ADDR:MASTER_PORT; every rank, rank 0 included, is a client, as PyTorch workers are).
///
/// Keys live under `baton/<run id>.<restart>/<name>.<n>/`, where n counts the rendezvous of that
/// name this rank made (in this process): every rank makes them in the same order (one per
/// communicator), so the n-th communicator of every rank meets under the same keys, and a second
/// communicator, a second job in the same store or a restarted attempt cannot read stale ones.
///
/// A rank that never arrives (not started, dead, another job) ends every other rank's wait after
/// the timeout with an error that names the missing ranks; torchrun's agent also stops the whole
/// job when a worker process exits with an error.
public final class StoreRendezvous: @unchecked Sendable {
    public let config: ProcessGroupConfig
    public let store: TorchStoreClient
    /// This rendezvous' key prefix, ending in "/".
    public let prefix: String

    /// Connects to the store at MASTER_ADDR:MASTER_PORT (waiting up to `timeout` for it).
    public init(_ config: ProcessGroupConfig, name: String, timeout: Double) throws {
        try config.validate()
        self.config = config
        store = try TorchStoreClient(
            address: config.masterAddress, port: config.masterPort, timeout: timeout,
            who: "rank \(config.rank)")
        prefix = "baton/\(config.jobID)/\(name).\(Self.sequence.next("\(config.jobID)/\(name)/\(config.rank)"))/"
    }

    /// Rank 0's `payload` on every rank (rank 0 passes it, the others nil), after every rank arrived.
    public func broadcast(_ payload: [UInt8]?, timeout: Double) throws -> [UInt8] {
        let key = prefix + "payload"
        if config.rank == 0 {
            guard let payload else { throw BatonError.invalidArgument("rendezvous: rank 0 must provide the payload") }
            try store.set(key, payload)
        }
        try barrier("broadcast", timeout: timeout)
        if config.rank == 0 { return payload! }
        return try store.get(key, timeout: timeout)
    }

    /// Returns once every rank called `barrier` with this `tag`; after `timeout` seconds throws a
    /// `.timeout` error naming the ranks that did not arrive. Each rank also checks that the
    /// others report the same WORLD_SIZE.
    public func barrier(_ tag: String, timeout: Double) throws {
        let keys = (0..<config.worldSize).map { "\(prefix)\(tag)/arrived/\($0)" }
        try store.set(keys[config.rank], Array("\(config.worldSize)".utf8))
        do {
            try store.wait(keys, timeout: timeout)
        } catch let error as BatonError where error.kind == .timeout {
            let missing = try (0..<config.worldSize).filter { try !store.check([keys[$0]]) }
            throw BatonError(
                .timeout,
                "rank \(config.rank): \(missing.count == 1 ? "rank" : "ranks") "
                    + missing.map(String.init).joined(separator: ", ")
                    + " of \(config.worldSize) did not reach '\(prefix)\(tag)' "
                    + "in torchrun's store at \(config.masterAddress):\(config.masterPort) within \(String(format: "%g", timeout)) s "
                    + "(not started, dead, or started with other arguments)")
        }
        for (rank, key) in keys.enumerated() where rank != config.rank {
            let reported = String(decoding: try store.get(key, timeout: timeout), as: UTF8.self)
            guard reported == "\(config.worldSize)" else {
                throw BatonError(
                    .communication,
                    "rendezvous: rank \(rank) says WORLD_SIZE \(reported), rank \(config.rank) has \(config.worldSize)")
            }
        }
    }

    /// Counters of this process's rendezvous per job, name and rank (ranks as threads of one
    /// process, as in tests, count on their own).
    private static let sequence = Sequence()

    private final class Sequence: @unchecked Sendable {
        private let lock = Lock()
        private var counts: [String: Int] = [:]

        func next(_ name: String) -> Int {
            lock.withLock {
                defer { counts[name, default: 0] += 1 }
                return counts[name, default: 0]
            }
        }
    }
}
