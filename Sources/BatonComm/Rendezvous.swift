#if canImport(Glibc)
    import Glibc
#endif
import BatonTensor
import Foundation

/// Where a process sits in a multi-process job, from torchrun's environment variables.
public struct ProcessGroupConfig: Sendable, Equatable {
    public var rank: Int
    public var worldSize: Int
    public var localRank: Int
    public var masterAddress: String
    public var masterPort: Int
    /// Whether torchrun's agent serves a PyTorch TCPStore on MASTER_ADDR:MASTER_PORT that workers
    /// join as clients (`TORCHELASTIC_USE_AGENT_STORE=True`, set by torchrun's static and c10d
    /// rendezvous). Then the ranks meet in that store (`StoreRendezvous`); otherwise nothing listens
    /// there and rank 0 serves the rendezvous itself, as PyTorch's rank 0 then starts its own store.
    public var agentStore: Bool
    /// What makes this job's keys in a shared store unique: torchrun's `TORCHELASTIC_RUN_ID` and
    /// `TORCHELASTIC_RESTART_COUNT` (a restarted job must not read the keys of the attempt before).
    public var jobID: String

    public init(
        rank: Int, worldSize: Int, localRank: Int, masterAddress: String, masterPort: Int,
        agentStore: Bool = false, jobID: String = "none.0"
    ) {
        self.rank = rank
        self.worldSize = worldSize
        self.localRank = localRank
        self.masterAddress = masterAddress
        self.masterPort = masterPort
        self.agentStore = agentStore
        self.jobID = jobID
    }

    /// Reads `RANK`, `WORLD_SIZE`, `LOCAL_RANK` (default: `RANK`), `MASTER_ADDR` (default
    /// 127.0.0.1) and `MASTER_PORT`, as torchrun sets them, and whether torchrun's agent serves a
    /// store there (`TORCHELASTIC_USE_AGENT_STORE`); a missing or malformed one is an error naming
    /// the variable.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws
        -> ProcessGroupConfig
    {
        func integer(_ name: String, default value: Int? = nil) throws -> Int {
            guard let text = environment[name] else {
                if let value { return value }
                throw BatonError.invalidArgument(
                    "environment variable \(name) is not set (torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT)"
                )
            }
            guard let number = Int(text), number >= 0 else {
                throw BatonError.invalidArgument("environment variable \(name)='\(text)' is not a non-negative integer")
            }
            return number
        }
        let rank = try integer("RANK")
        let config = ProcessGroupConfig(
            rank: rank, worldSize: try integer("WORLD_SIZE"), localRank: try integer("LOCAL_RANK", default: rank),
            masterAddress: environment["MASTER_ADDR"] ?? "127.0.0.1", masterPort: try integer("MASTER_PORT"),
            agentStore: environment["TORCHELASTIC_USE_AGENT_STORE"]?.lowercased() == "true",
            jobID: "\(environment["TORCHELASTIC_RUN_ID"] ?? "none").\(environment["TORCHELASTIC_RESTART_COUNT"] ?? "0")"
        )
        try config.validate()
        return config
    }

    public func validate() throws {
        guard worldSize >= 1 else {
            throw BatonError.invalidArgument("WORLD_SIZE must be at least 1, got \(worldSize)")
        }
        guard rank < worldSize else {
            throw BatonError.invalidArgument("RANK \(rank) is outside 0..<WORLD_SIZE (\(worldSize))")
        }
        guard (0...65535).contains(masterPort) else {
            throw BatonError.invalidArgument("MASTER_PORT \(masterPort) is not a TCP port")
        }
    }
}

/// The rendezvous that starts a multi-process group: rank 0 hands every rank the same payload
/// (the NCCL unique id). Under torchrun's agent (`config.agentStore`) the ranks meet in the
/// agent's TCPStore (`StoreRendezvous`). Otherwise rank 0 listens on MASTER_ADDR:MASTER_PORT
/// itself, every other rank connects and says who it is, and rank 0 sends the payload. Both check
/// that all processes agree on the world size and that no rank is missing or doubled; every wait
/// is bounded by `timeout`, and a failure names the rank.
public enum Rendezvous {
    /// Rank 0 passes `payload` and receives it back; other ranks pass nil and receive rank 0's.
    /// `onListening` tells rank 0's caller the bound port (useful with port 0; own server only).
    public static func exchange(
        _ config: ProcessGroupConfig, payload: [UInt8]?, timeout: Double = 60,
        onListening: ((Int) -> Void)? = nil
    ) throws -> [UInt8] {
        try config.validate()
        if config.agentStore {
            let rendezvous = try StoreRendezvous(config, name: "nccl-id", timeout: timeout)
            return try rendezvous.broadcast(payload, timeout: timeout)
        }
        if config.rank == 0 {
            guard let payload else { throw BatonError.invalidArgument("rendezvous: rank 0 must provide the payload") }
            try serve(config, payload: payload, timeout: timeout, onListening: onListening)
            return payload
        }
        return try join(config, timeout: timeout)
    }

    static func serve(_ config: ProcessGroupConfig, payload: [UInt8], timeout: Double, onListening: ((Int) -> Void)?)
        throws
    {
        let listener = try Socket.listen(address: config.masterAddress, port: config.masterPort)
        defer { listener.close() }
        onListening?(try listener.boundPort())
        let deadline = Date().addingTimeInterval(timeout)
        var peers: [Int: Socket] = [:]
        defer { peers.values.forEach { $0.close() } }
        while peers.count < config.worldSize - 1 {
            guard let peer = try listener.accept(until: deadline) else {
                let missing = (1..<config.worldSize).filter { peers[$0] == nil }
                throw BatonError(
                    .timeout,
                    "rendezvous on \(config.masterAddress):\(config.masterPort): ranks \(missing) did not connect within \(timeout) s"
                )
            }
            let hello = try peer.readIntegers(2, until: deadline)  // [rank, worldSize]
            let (rank, worldSize) = (hello[0], hello[1])
            guard worldSize == config.worldSize else {
                peer.close()
                throw BatonError(
                    .communication,
                    "rendezvous: rank \(rank) says WORLD_SIZE \(worldSize), rank 0 has \(config.worldSize)")
            }
            guard (1..<config.worldSize).contains(rank), peers[rank] == nil else {
                peer.close()
                throw BatonError(
                    .communication, "rendezvous: a second process claims rank \(rank) (or it is out of range)")
            }
            peers[rank] = peer
        }
        for peer in peers.values {
            try peer.writeIntegers([payload.count])
            try peer.write(payload)
        }
    }

    static func join(_ config: ProcessGroupConfig, timeout: Double) throws -> [UInt8] {
        let deadline = Date().addingTimeInterval(timeout)
        let socket = try Socket.connect(
            address: config.masterAddress, port: config.masterPort, until: deadline,
            who: "rendezvous: rank \(config.rank) could not connect to rank 0")
        defer { socket.close() }
        try socket.writeIntegers([config.rank, config.worldSize])
        let length = try socket.readIntegers(1, until: deadline)[0]
        guard (0...(1 << 20)).contains(length) else {
            throw BatonError(
                .communication, "rendezvous: rank \(config.rank) got a payload length of \(length) from rank 0")
        }
        return try socket.read(length, until: deadline)
    }
}
