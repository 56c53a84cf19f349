import BatonTensor
import Foundation

/// The shared state of one group of `LocalCommunicator`s: collectives by sequence number and
/// point-to-point mailboxes, under one lock.
final class LocalGroup: @unchecked Sendable {
    let worldSize: Int
    let timeout: Double
    private let lock = Lock()
    private var collectives: [Int: Collective] = [:]
    private var mailboxes: [Route: [Tensor]] = [:]
    private var failure: (any Error)?

    private final class Collective {
        let op: String
        var contributions: [Tensor?]
        var readers = 0
        init(op: String, worldSize: Int) {
            self.op = op
            contributions = Array(repeating: nil, count: worldSize)
        }
        var complete: Bool { contributions.allSatisfy { $0 != nil } }
    }

    private struct Route: Hashable {
        let from: Int
        let to: Int
    }

    init(worldSize: Int, timeout: Double) {
        self.worldSize = worldSize
        self.timeout = timeout
    }

    func fail(_ error: any Error, from rank: Int) {
        lock.withLock {
            if failure == nil { failure = BatonError(.communication, "rank \(rank) failed: \(error)") }
            lock.broadcast()
        }
    }

    /// Deposits `contribution` for collective `sequence` and returns every rank's contribution
    /// once all have arrived.
    func collective(sequence: Int, rank: Int, op: String, contribution: Tensor) throws -> [Tensor] {
        try lock.withLock {
            let entry = collectives[sequence] ?? Collective(op: op, worldSize: worldSize)
            collectives[sequence] = entry
            guard entry.op == op else {
                throw BatonError(
                    .communication,
                    "rank \(rank): collective #\(sequence) is \(op) here but \(entry.op) on another rank (ranks must issue collectives in the same order)"
                )
            }
            entry.contributions[rank] = contribution
            lock.broadcast()
            try waitLocked(
                rank: rank, op: "\(op) #\(sequence)",
                missing: {
                    let absent = entry.contributions.indices.filter { entry.contributions[$0] == nil }
                    return absent.isEmpty ? nil : "waiting for ranks \(absent)"
                })
            entry.readers += 1
            if entry.readers == worldSize { collectives[sequence] = nil }
            return entry.contributions.map { $0! }
        }
    }

    func post(_ message: Tensor, from: Int, to: Int) {
        lock.withLock {
            mailboxes[Route(from: from, to: to), default: []].append(message)
            lock.broadcast()
        }
    }

    func take(from: Int, to: Int, op: String) throws -> Tensor {
        try lock.withLock {
            let route = Route(from: from, to: to)
            try waitLocked(
                rank: to, op: op,
                missing: {
                    (mailboxes[route]?.isEmpty ?? true) ? "no message from rank \(from)" : nil
                })
            return mailboxes[route]!.removeFirst()
        }
    }

    /// Waits (lock held) until `missing` returns nil, the group fails, or the timeout passes.
    private func waitLocked(rank: Int, op: String, missing: () -> String?) throws {
        let deadline = Date(timeIntervalSinceNow: timeout)
        while let reason = missing() {
            if let failure { throw failure }
            if !lock.wait(until: deadline), let reason = missing() {
                if let failure { throw failure }
                throw BatonError(.timeout, "rank \(rank): \(op) timed out after \(timeout) s (\(reason))")
            }
            _ = reason
        }
    }

    /// A private host copy of `tensor` (CPU ranks exchange host memory only).
    static func hostCopy(_ tensor: Tensor, rank: Int, op: String) throws -> Tensor {
        guard tensor.device == .cpu else {
            throw BatonError.unsupported(
                "LocalCommunicator rank \(rank) \(op): tensor is on \(tensor.device); CPU ranks exchange host tensors only"
            )
        }
        let copy = Tensor.zeros(tensor.shape, dtype: tensor.dtype)
        copy.hostPointer.copyMemory(from: tensor.hostPointer, byteCount: tensor.byteCount)
        return copy
    }

    static func requireSameLayout(_ parts: [Tensor], rank: Int, op: String) throws {
        let first = parts[0]
        for (peer, part) in parts.enumerated() where part.shape != first.shape || part.dtype != first.dtype {
            throw BatonError(
                .communication,
                "rank \(rank) \(op): rank 0 passed \(first.shape) \(first.dtype) but rank \(peer) passed \(part.shape) \(part.dtype)"
            )
        }
    }
}
