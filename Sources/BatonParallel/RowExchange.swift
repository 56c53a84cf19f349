import BatonComm
import BatonTensor

/// Moves the rows of one table, held in contiguous ranges by the ranks, to the ranks that need
/// them: frame-parallel vision encoding leaves rank `r` with the embeddings of its own share of
/// temporal units, while its part of the sequence (anchor, block, chunks) needs others.
///
/// Only needed rows travel: in step `s` (1..<W) rank `r` sends rank `r+s` the rows of its range
/// that `r+s` needs and receives from rank `r-s` the rows of that rank's range it needs, one
/// grouped exchange per step (NCCL send+receive in one group, so the cycle cannot deadlock). Every
/// rank knows every rank's ranges and needs (they follow from the plan), so sizes agree without a
/// handshake; a step with nothing to move on either side sends zero bytes.
public struct RowExchange: Sendable, Equatable {
    /// Rows each rank holds, in rank order: contiguous, ascending, back to back.
    public let owned: [Range<Int>]
    /// Rows each rank needs: sorted, distinct.
    public let needs: [[Int]]

    public init(owned: [Range<Int>], needs: [[Int]]) throws {
        try require(owned.count == needs.count, "row exchange: \(owned.count) owned ranges for \(needs.count) ranks")
        for r in owned.indices.dropFirst() {
            try require(
                owned[r].lowerBound == owned[r - 1].upperBound,
                "row exchange: rank \(r) holds \(owned[r]), not the rows after rank \(r - 1)'s \(owned[r - 1])")
        }
        let total = (owned.first?.lowerBound ?? 0)..<(owned.last?.upperBound ?? 0)
        for (r, rows) in needs.enumerated() {
            try require(
                zip(rows, rows.dropFirst()).allSatisfy { $0 < $1 } && rows.allSatisfy(total.contains),
                "row exchange: rank \(r)'s needed rows must be sorted, distinct and within \(total)")
        }
        self.owned = owned
        self.needs = needs
    }

    /// The rows `receiver` needs from `sender`'s range, in order.
    public func rows(from sender: Int, to receiver: Int) -> ArraySlice<Int> {
        let range = owned[sender], wanted = needs[receiver]
        let start = wanted.partitioningIndex { $0 >= range.lowerBound }
        let end = wanted.partitioningIndex { $0 >= range.upperBound }
        return wanted[start..<end]
    }

    /// Rows sent from each rank to each other rank, `[sender][receiver]` (0 on the diagonal).
    public var transfers: [[Int]] {
        owned.indices.map { sender in
            owned.indices.map { $0 == sender ? 0 : rows(from: sender, to: $0).count }
        }
    }

    /// Runs the exchange on this rank. local: `[owned[rank].count, D]` (dtype `dtype`) -> the rows
    /// `needs[rank]` in that order, `[needs[rank].count, D]` `dtype`.
    public func run(
        local: Tensor, width: Int, dtype: DType, communicator: any Communicator,
        backend: any Backend
    ) throws -> Tensor {
        let rank = communicator.rank, w = communicator.worldSize
        try require(w == owned.count, "row exchange: \(owned.count) ranks planned, the communicator has \(w)")
        try require(
            local.shape == Shape([owned[rank].count, width]) || owned[rank].isEmpty,
            "row exchange on rank \(rank): local rows must be [\(owned[rank].count), \(width)], "
                + "got \(local.shape)")
        func localRows(_ rows: ArraySlice<Int>) throws -> Tensor {
            let offsets = rows.map { Int32($0 - owned[rank].lowerBound) }
            if offsets.isEmpty { return try backend.empty(Shape([0, width]), dtype: dtype) }
            if offsets.count == local.shape.rows && offsets.first == 0 && offsets.last == Int32(offsets.count - 1) {
                return local  // all of them, in order (one rank, or a rank needing just its own share)
            }
            return try backend.embedding(table: local, ids: backend.int32Tensor(offsets))
        }
        var received: [Int: CommHandle<Tensor>] = [:], sent: [CommHandle<Void>] = []
        for step in 1..<max(w, 1) {
            let destination = (rank + step) % w, source = (rank - step + w) % w
            let transfer = try communicator.exchangeAsync(
                sending: localRows(rows(from: rank, to: destination)), to: destination, receivingFrom: source,
                shape: Shape([rows(from: source, to: rank).count, width]), dtype: dtype)
            sent.append(transfer.sent)
            received[source] = transfer.received
        }
        // needs[rank] is sorted and the ranges ascend with the rank, so the parts concatenate in rank order.
        let parts = try (0..<w).map { owner in
            owner == rank ? try localRows(rows(from: rank, to: rank)) : try received[owner]!.wait()
        }.filter { $0.shape.rows > 0 }
        for handle in sent { try handle.wait() }
        if parts.isEmpty { return try backend.empty(Shape([0, width]), dtype: dtype) }
        return parts.count == 1 ? parts[0] : try backend.concatRows(parts)
    }
}

extension Array {
    /// The first index whose element satisfies `predicate`, which must be false then true along the
    /// array (binary search); `endIndex` when none does.
    func partitioningIndex(where predicate: (Element) -> Bool) -> Int {
        var low = startIndex, high = endIndex
        while low < high {
            let middle = (low + high) / 2
            if predicate(self[middle]) { high = middle } else { low = middle + 1 }
        }
        return low
    }
}
