import BatonComm
import BatonEngine
import BatonParallel
import BatonTensor
import Foundation

/// What the other processes of a torchrun job need to join one parallel request: its tokens,
/// method, sampling, limit and stop ids (stop strings stay on rank 0: it cuts the text and
/// cancels, and cancellation reaches the ranks through the owner's broadcast).
struct SharedRequest: Codable, Equatable {
    var context: [Int32]
    var query: [Int32]
    var method: String
    var maxTokens: Int
    var temperature: Float
    var topP: Float
    var seed: UInt64
    var stopIds: [Int32]

    init(_ request: ParallelRequest) {
        context = request.context
        query = request.query
        method = request.method.rawValue
        maxTokens = request.generation.maxTokens
        temperature = request.generation.sampling.temperature
        topP = request.generation.sampling.topP
        seed = request.generation.sampling.seed
        stopIds = request.generation.stopIds.sorted()
    }

    /// The request as a follower runs it on `ranks` ranks; `isCancelled` is asked when this rank owns decoding.
    func parallelRequest(ranks: Int, isCancelled: @escaping @Sendable () -> Bool) throws -> ParallelRequest {
        let generation = GenerationOptions(
            maxTokens: maxTokens, sampling: SamplingOptions(temperature: temperature, topP: topP, seed: seed),
            stopIds: Set(stopIds), isCancelled: isCancelled)
        var request = ParallelRequest(
            context: context, query: query, method: try Method.named(method, option: "method"), ranks: ranks,
            generation: generation)
        request.placement = .onePerGPU
        return request
    }
}

/// A message of rank 0 to the other ranks, one per key `request.<n>`: run a request, or stop.
struct RankMessage: Codable {
    var request: SharedRequest?
    var stop: Bool { request == nil }
}

/// Rank 0's messages to the other processes of a torchrun job, in the job's TCPStore (the one
/// torchrun's agent serves at MASTER_ADDR:MASTER_PORT): message n under `<prefix>request.<n>`,
/// and `<prefix>cancel.<n>` once request n's client went away or a stop string matched.
public final class RequestChannel: @unchecked Sendable {
    let store: TorchStoreClient
    let prefix: String

    /// Connects to `config`'s store (waiting up to `timeout` seconds for it).
    public init(_ config: ProcessGroupConfig, timeout: Double = 600) throws {
        try config.validate()
        store = try TorchStoreClient(
            address: config.masterAddress, port: config.masterPort, timeout: timeout, who: "rank \(config.rank)")
        prefix = "baton/\(config.jobID)/serve/"
    }

    func publish(_ message: RankMessage, sequence: Int) throws {
        try store.set(prefix + "request.\(sequence)", Array(try JSONEncoder().encode(message)))
    }

    /// Message `sequence`, waiting as long as it takes (the server may be idle for hours).
    func receive(sequence: Int) throws -> RankMessage {
        while true {
            do {
                let bytes = try store.get(prefix + "request.\(sequence)", timeout: 60)
                return try JSONDecoder().decode(RankMessage.self, from: Data(bytes))
            } catch let error as BatonError where error.kind == .timeout {
                continue
            }
        }
    }

    /// Marks request `sequence` cancelled; returns once the store holds the mark (a set has no
    /// answer, the check after it on the same connection does), so a rank that asks after this
    /// rank's next collective sees it.
    func cancel(sequence: Int) throws {
        try store.set(prefix + "cancel.\(sequence)", [1])
        _ = try store.check([prefix + "cancel.\(sequence)"])
    }

    func isCancelled(sequence: Int) -> Bool { (try? store.check([prefix + "cancel.\(sequence)"])) == true }
}

/// Rank 0's side of `baton serve` under torchrun: it serves HTTP and runs dense requests alone;
/// for each parallel request it hands the other ranks the request (`RequestChannel`), then runs
/// its own rank. A request that fails in communication (a rank died, a collective timed out)
/// leaves the job without a full group: later parallel requests get 503 naming that failure at
/// once instead of waiting for a rank that will not come. Other failures (a bad argument, which
/// every rank meets alike) fail only their request.
public final class TorchrunRanks: @unchecked Sendable {
    /// Runs rank 0 of a request, streaming its tokens (the engine's `runRank`).
    public typealias RankRunner =
        @Sendable (_ request: ParallelRequest, _ onToken: (@Sendable (Int32) -> Void)?) throws -> GenerationResult

    public let worldSize: Int
    let channel: RequestChannel
    let runRank: RankRunner
    private let lock = NSLock()
    private var sequence = 0
    private var lostGroup: (any Error)?
    private var stopped = false

    public init(worldSize: Int, channel: RequestChannel, runRank: @escaping RankRunner) {
        self.worldSize = worldSize
        self.channel = channel
        self.runRank = runRank
    }

    /// Runs `request` on every rank; `cancelled` is the request's flag (checked at each token).
    func run(
        _ request: ParallelRequest, cancelled: CancellationFlag, onToken: @escaping @Sendable (Int32) -> Void
    ) throws -> GenerationResult {
        let number: Int = try lock.withLock {
            if let lostGroup {
                throw APIError.ranksUnavailable(
                    "the torchrun job lost a rank (\(lostGroup)); dense requests still run, restart the job for the others"
                )
            }
            if stopped { throw APIError.ranksUnavailable("the other ranks were told to exit") }
            defer { sequence += 1 }
            return sequence
        }
        try channel.publish(RankMessage(request: SharedRequest(request)), sequence: number)
        let told = CancellationFlag()
        let channel = self.channel
        // The owner (any rank) asks whether to stop at each step; rank 0 tells the others through
        // the store when its client went away, at the next token it streams.
        let relay: @Sendable (Int32) -> Void = { token in
            onToken(token)
            if cancelled.isSet && !told.isSet {
                told.cancel()
                try? channel.cancel(sequence: number)
            }
        }
        do {
            return try runRank(request, relay)
        } catch let error as BatonError where [.timeout, .communication, .nccl].contains(error.kind) {
            lock.withLock { lostGroup = lostGroup ?? error }
            throw error
        }
    }

    /// Tells the other ranks to exit once they finished the request they run (SIGTERM, after the
    /// server drained). Idempotent.
    public func stop() throws {
        let number: Int? = lock.withLock {
            if stopped { return nil }
            stopped = true
            return sequence
        }
        if let number { try channel.publish(RankMessage(request: nil), sequence: number) }
    }
}

/// A follower rank of `baton serve` under torchrun: runs its part of each request rank 0 hands
/// out, in order, until rank 0 says stop. A request that fails here is reported on standard error
/// and the rank waits for the next one (rank 0 fails the same request with the cause).
public func followRankZero(
    channel: RequestChannel, worldSize: Int, rank: Int,
    runRank: (ParallelRequest) throws -> GenerationResult,
    report: (String) -> Void = { FileHandle.standardError.write(Data($0.utf8)) }
) throws {
    var sequence = 0
    while true {
        let message = try channel.receive(sequence: sequence)
        guard let shared = message.request else { return }
        let number = sequence
        sequence += 1
        do {
            let request = try shared.parallelRequest(
                ranks: worldSize, isCancelled: { channel.isCancelled(sequence: number) })
            _ = try runRank(request)
        } catch {
            report("baton serve: rank \(rank): request \(number) failed: \(error)\n")
        }
    }
}
