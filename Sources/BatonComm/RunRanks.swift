import BatonTensor
import Foundation

/// Runs `body(rank, communicator)` for every rank of a new `LocalCommunicator` group, each on its
/// own thread, and waits for all. If a rank throws, the group is aborted (the other ranks' waits
/// throw instead of hanging) and the first error is rethrown; results come back in rank order.
public func runRanks<Result: Sendable>(
    _ worldSize: Int, timeout: Double = 120,
    _ body: @escaping @Sendable (Int, LocalCommunicator) throws -> Result
) throws -> [Result] {
    let communicators = try LocalCommunicator.group(worldSize: worldSize, timeout: timeout)
    return try runRanks(on: communicators) { rank, _ in try body(rank, communicators[rank]) }
}

/// Runs `body(rank, communicators[rank])` for every rank on its own thread (ranks of one process:
/// CPU ranks, or one GPU per thread), aborting the group when a rank throws; the first error is
/// rethrown, results come back in rank order.
public func runRanks<Result: Sendable>(
    on communicators: [any Communicator], _ body: @escaping @Sendable (Int, any Communicator) throws -> Result
) throws -> [Result] {
    let worldSize = communicators.count
    let outcomes = RankOutcomes<Result>(worldSize)
    let done = DispatchGroup()
    for (rank, communicator) in communicators.enumerated() {
        done.enter()
        let thread = Thread {
            let outcome = Swift.Result { try body(rank, communicator) }
            outcomes.set(rank, outcome)
            if case .failure(let error) = outcome { communicator.abort(error) }
            done.leave()
        }
        thread.name = "baton-rank-\(rank)"
        thread.stackSize = 8 << 20
        thread.start()
    }
    done.wait()
    return try outcomes.results()
}

/// Per-rank outcomes written by the rank threads; the first failure (in time) wins.
private final class RankOutcomes<Value: Sendable>: @unchecked Sendable {
    private let lock = Lock()
    private var outcomes: [Result<Value, any Error>?]
    private var firstFailure: (any Error)?

    init(_ count: Int) { outcomes = Array(repeating: nil, count: count) }

    func set(_ rank: Int, _ outcome: Result<Value, any Error>) {
        lock.withLock {
            outcomes[rank] = outcome
            if case .failure(let error) = outcome, firstFailure == nil { firstFailure = error }
        }
    }

    func results() throws -> [Value] {
        try lock.withLock {
            if let firstFailure { throw firstFailure }
            return try outcomes.map { try $0!.get() }
        }
    }
}
