import BatonComm
import BatonTensor
import Foundation

/// A method's prefill attention of one rank: out `[T, H, d]` and the log-sum-exp of its rows in
/// parts `[H, T_i]`, in row order. The parts are joined only when the approximation report reads
/// them, so a prefill without the report does no extra work.
struct PrefillAttention {
    let out: Tensor
    let logSumExpParts: [Tensor]

    init(_ result: AttentionOutput) {
        out = result.out
        logSumExpParts = [result.logSumExp]
    }

    init(out: Tensor, logSumExpParts: [Tensor]) {
        self.out = out
        self.logSumExpParts = logSumExpParts
    }
}

/// The approximation report's measurement on one rank (`--report-approximation`). In every
/// prefill layer each rank's sampled context rows (`ApproximationSamples`) get their exact causal
/// attention over every earlier key of the whole sequence, from this layer's keys and values where
/// their owners hold them, and are compared with the output the method produced:
/// 1. the sampled queries are all-gathered (`W x capacity` rows, padded) and sorted by position;
/// 2. each rank attends them over the key runs it owns: rows after a run see all of it (one call),
///    rows inside it their own prefix (one row each; only the rank's own samples fall inside), rows
///    before it nothing (out 0, lse -inf); the partials are merged exactly by log-sum-exp;
/// 3. the partials of all ranks are all-gathered and merged in rank order, as exact attention
///    over several ranks is (`LSEMerge`).
/// Work is samples x keys, never keys x keys, and nothing larger than the samples travels. The
/// reference takes this layer's q, k and v as the method computed them, so it measures the error
/// the method's attention adds in this layer, given its inputs.
final class ApproximationProbe {
    let context: RankContext
    let samples: ApproximationSamples
    let report: ApproximationReport

    init(context: RankContext, report: ApproximationReport) {
        self.context = context
        self.report = report
        samples = ApproximationSamples(plan: context.plan, rowsPerRank: report.rowsPerRank)
    }

    /// Measures this rank's samples of `input`'s layer against the method's `result` and records
    /// them in the report. Every rank must call it in every prefill layer (it communicates).
    func measure(_ input: AttentionInput, result: PrefillAttention, backend: any Backend) throws {
        let heads = input.query.shape[1], rank = context.rank
        let own = samples.rows[rank]
        let sortedQuery = try gatheredQueries(input.query, backend: backend)
        let partial = try exactPartial(sortedQuery, key: input.key, value: input.value, backend: backend)
        let exact = try LSEMerge.gatherAsync(partial, communicator: context.communicator)
            .merged(timing: input, backend: backend)
        guard !own.isEmpty else {
            report.record(layer: input.layer, rank: rank, errors: [], visibleMass: [])
            return
        }
        // Host copies of the sampled rows only: [n, H, d] and [H, n] values.
        let methodOut = try backend.floats(
            backend.gatherRowsPerHead(result.out, indices: perHead(own, heads: heads, backend: backend)))
        let methodLSE = try sampledLogSumExp(result.logSumExpParts, rows: own, heads: heads, backend: backend)
        let exactOut = try backend.floats(exact.out), exactLSE = try backend.floats(exact.logSumExp)
        let width = input.query.shape[2] * heads, total = samples.order.count
        var errors: [Double] = [], visibleMass: [Double] = []
        for (i, sorted) in samples.sortedIndex(rank: rank).enumerated() {
            if report.recordsExactRows {
                report.recordExact(
                    layer: input.layer, position: samples.sortedPositions[sorted],
                    values: Array(exactOut[sorted * width..<(sorted + 1) * width]))
            }
            var difference = 0.0, norm = 0.0
            for j in 0..<width {
                let e = Double(exactOut[sorted * width + j]), m = Double(methodOut[i * width + j])
                difference += (m - e) * (m - e)
                norm += e * e
            }
            errors.append(norm > 0 ? (difference / norm).squareRoot() : difference.squareRoot())
            let mass = (0..<heads).map { h in
                exp(Double(methodLSE[h * own.count + i]) - Double(exactLSE[h * total + sorted]))
            }
            visibleMass.append(mass.reduce(0, +) / Double(heads))
        }
        report.record(layer: input.layer, rank: rank, errors: errors, visibleMass: visibleMass)
    }

    /// Every rank's sampled queries, `[samples, H, d]` in order of position.
    func gatheredQueries(_ query: Tensor, backend: any Backend) throws -> Tensor {
        let heads = query.shape[1], own = samples.rows[context.rank], capacity = samples.capacity
        let message = try backend.zeros(query.shape.withRows(capacity), dtype: query.dtype)
        if !own.isEmpty {
            let rows = try backend.gatherRowsPerHead(query, indices: perHead(own, heads: heads, backend: backend))
            try backend.copy(rows, into: message.rows(0..<own.count))
        }
        let all = try backend.concatRows(context.communicator.allGather(message))
        let order = samples.order.map { $0.rank * capacity + $0.index }
        return try backend.gatherRowsPerHead(all, indices: perHead(order, heads: heads, backend: backend))
    }

    /// This rank's share of the exact attention of `sortedQuery` (`[S, H, d]`, increasing
    /// positions): over the key runs it owns, merged -> out `[S, H, d]`, lse `[H, S]`.
    func exactPartial(_ sortedQuery: Tensor, key: Tensor, value: Tensor, backend: any Backend) throws
        -> AttentionOutput
    {
        let positions = samples.sortedPositions, total = positions.count, scale = context.scale
        var runs: [AttentionOutput] = []
        for run in samples.keyRuns[context.rank] {
            let start = run.firstPosition, end = start + run.rows.count
            let before = positions.prefix { $0 < start }.count
            let after = positions.firstIndex { $0 >= end } ?? total
            var parts: [AttentionOutput] = []
            if before > 0 { parts.append(try unseen(sortedQuery.rows(0..<before), backend: backend)) }
            for row in before..<after {
                let visible = run.rows.lowerBound..<(run.rows.lowerBound + positions[row] - start + 1)
                parts.append(
                    try backend.attention(
                        query: sortedQuery.rows(row..<row + 1), key: key.rows(visible), value: value.rows(visible),
                        mask: .full, scale: scale))
            }
            if after < total {
                parts.append(
                    try backend.attention(
                        query: sortedQuery.rows(after..<total), key: key.rows(run.rows),
                        value: value.rows(run.rows), mask: .full, scale: scale))
            }
            runs.append(try stacked(parts, backend: backend))
        }
        return try LSEMerge.merge(runs, backend: backend)
    }

    /// Rows that see no key of a run: out 0, lse -inf (they drop out of every merge).
    func unseen(_ query: Tensor, backend: any Backend) throws -> AttentionOutput {
        let rows = query.shape[0], heads = query.shape[1]
        return AttentionOutput(
            out: try backend.zeros(query.shape, dtype: backend.activationDType),
            logSumExp: try backend.tensor(
                Array(repeating: -Float.infinity, count: heads * rows), shape: Shape([heads, rows]), dtype: .f32))
    }

    /// Partial results of consecutive row ranges as one: outs stacked by rows, lses by columns.
    func stacked(_ parts: [AttentionOutput], backend: any Backend) throws -> AttentionOutput {
        guard parts.count > 1 else { return parts[0] }
        return AttentionOutput(
            out: try backend.concatRows(parts.map(\.out)),
            logSumExp: try backend.concatColumns(parts.map(\.logSumExp)))
    }

    /// The method's lse at local `rows`, `[H, rows]` on the host (row-major by head), read from
    /// the parts that hold them.
    func sampledLogSumExp(_ parts: [Tensor], rows: [Int], heads: Int, backend: any Backend) throws -> [Float] {
        var result = [Float](repeating: 0, count: heads * rows.count)
        var start = 0
        for part in parts {
            let count = part.shape[1], range = start..<start + count
            defer { start += count }
            let inside = rows.enumerated().filter { range.contains($0.element) }
            guard !inside.isEmpty else { continue }
            let values = try backend.floats(part)
            for (i, row) in inside {
                for h in 0..<heads { result[h * rows.count + i] = values[h * count + row - start] }
            }
        }
        return result
    }

    /// The same row indices for every head: `[heads, rows.count]` i32, as `gatherRowsPerHead` takes.
    func perHead(_ rows: [Int], heads: Int, backend: any Backend) throws -> Tensor {
        let values = (0..<heads).flatMap { _ in rows.map { Int32($0) } }
        return try backend.upload(Tensor(int32: values, shape: Shape([heads, rows.count])))
    }
}
