import Foundation

/// A mutex with a condition variable; `wait(until:)` reports whether the deadline passed.
final class Lock: @unchecked Sendable {
    private let condition = NSCondition()

    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        condition.lock()
        defer { condition.unlock() }
        return try body()
    }

    /// Call with the lock held. Returns false when `deadline` passed without a signal.
    func wait(until deadline: Date) -> Bool { condition.wait(until: deadline) }

    /// Call with the lock held; waits without a deadline (`Date.distantFuture` overflows
    /// NSCondition's timespec on Linux).
    func wait() { condition.wait() }

    /// Call with the lock held.
    func broadcast() { condition.broadcast() }
}
