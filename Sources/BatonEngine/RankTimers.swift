import BatonTensor
import Foundation

/// The part timers of every rank of one run whose ranks are threads of this process
/// (`--ranks N`, `--gpus N`): each rank's thread makes its own timer on its own backend, so a
/// measurement synchronises that rank's device only. A process running one rank of a torchrun
/// job sees only that rank.
public final class RankTimers: @unchecked Sendable {
    private let lock = NSLock()
    private var timers: [Int: PartTimer] = [:]

    public init() {}

    /// Rank `rank`'s timer, made on `backend` on first use (called from the rank's thread).
    public func timer(rank: Int, backend: any Backend) -> PartTimer {
        lock.withLock {
            if let existing = timers[rank] { return existing }
            let made = PartTimer(backend: backend)
            timers[rank] = made
            return made
        }
    }

    /// The timers of ranks `0..<count`, nil for a rank that did not run in this process. Read
    /// after the run: a timer is not safe to read while its rank still measures.
    public func byRank(count: Int) -> [PartTimer?] {
        lock.withLock { (0..<count).map { timers[$0] } }
    }
}
