import Foundation

/// Collects the approximation report of one or more prefills (`--report-approximation`): for each
/// layer and rank, every sampled row's relative error `||o_method - o_exact|| / ||o_exact||` (the
/// attention output before the output projection, all heads) and the share of the exact softmax
/// mass on the keys the method's row saw, `exp(lse_method - lse_exact)` averaged over heads (above 1
/// where the method's keys are not the sequence's, as APB's anchor with the question inserted). Ranks
/// (threads) record concurrently; several requests may record into one report (eval aggregates
/// its samples per method and length).
public final class ApproximationReport: @unchecked Sendable {
    /// Context rows sampled per rank and layer.
    public let rowsPerRank: Int
    private let lock = NSLock()
    private var rows: [Key: (errors: [Double], visibleMass: [Double])] = [:]
    /// Tests set it to keep the exact attention of every sampled row: `[H*d]` by layer, then position.
    var recordsExactRows = false
    private(set) var exactRows: [Int: [Int: [Float]]] = [:]

    struct Key: Hashable {
        let layer: Int
        let rank: Int
    }

    public init(rowsPerRank: Int = 64) {
        self.rowsPerRank = rowsPerRank
    }

    func record(layer: Int, rank: Int, errors: [Double], visibleMass: [Double]) {
        lock.lock()
        defer { lock.unlock() }
        rows[Key(layer: layer, rank: rank), default: ([], [])].errors += errors
        rows[Key(layer: layer, rank: rank), default: ([], [])].visibleMass += visibleMass
    }

    /// Keeps the exact attention `[H*d]` of the row at global `position` (when `recordsExactRows`).
    func recordExact(layer: Int, position: Int, values: [Float]) {
        lock.lock()
        defer { lock.unlock() }
        exactRows[layer, default: [:]][position] = values
    }

    /// Mean and max per layer over the sampled rows of all ranks, and per rank.
    public func summary() -> ApproximationSummary {
        lock.lock()
        defer { lock.unlock() }
        let layers = Set(rows.keys.map(\.layer)).sorted().map { layer in
            let ranks = rows.keys.filter { $0.layer == layer }.map(\.rank).sorted().map { rank in
                let measured = rows[Key(layer: layer, rank: rank)]!
                return RankApproximation(
                    rank: rank, rows: measured.errors.count, meanError: mean(measured.errors),
                    maxError: measured.errors.max() ?? 0, meanVisibleMass: mean(measured.visibleMass))
            }
            let all = rows.filter { $0.key.layer == layer }.values
            let errors = all.flatMap(\.errors), masses = all.flatMap(\.visibleMass)
            return LayerApproximation(
                layer: layer, rows: errors.count, meanError: mean(errors), maxError: errors.max() ?? 0,
                meanVisibleMass: mean(masses), minVisibleMass: masses.min() ?? 0, ranks: ranks)
        }
        let errors = rows.values.flatMap(\.errors)
        return ApproximationSummary(
            rowsPerRank: rowsPerRank, layers: layers, meanError: mean(errors), maxError: errors.max() ?? 0,
            meanVisibleMass: mean(rows.values.flatMap(\.visibleMass)))
    }
}

private func mean(_ values: [Double]) -> Double { values.isEmpty ? 0 : values.reduce(0, +) / Double(values.count) }

/// What `ApproximationReport.summary` returns; written into bench and eval results as JSON.
public struct ApproximationSummary: Sendable, Codable, Equatable {
    /// Context rows sampled per rank and layer.
    public var rowsPerRank: Int
    public var layers: [LayerApproximation]
    /// Over every sampled row of every layer and rank.
    public var meanError: Double
    public var maxError: Double
    public var meanVisibleMass: Double

    /// A markdown table: one row per layer, then the mean over layers.
    public func table() -> String {
        let rankIDs = layers.flatMap { $0.ranks.map(\.rank) }.uniquedSorted()
        var lines = [
            "| layer | rows | mean rel. error | max rel. error | visible mass (mean) | visible mass (min) | "
                + rankIDs.map { "rank \($0) mean" }.joined(separator: " | ") + " |",
            "| ---: | ---: | ---: | ---: | ---: | ---: |" + String(repeating: " ---: |", count: rankIDs.count)
        ]
        for layer in layers {
            let byRank = rankIDs.map { id in
                layer.ranks.first { $0.rank == id }.map { scientific($0.meanError) } ?? "-"
            }
            lines.append(
                "| \(layer.layer) | \(layer.rows) | \(scientific(layer.meanError)) | \(scientific(layer.maxError)) | "
                    + String(format: "%.4f | %.4f | ", layer.meanVisibleMass, layer.minVisibleMass)
                    + byRank.joined(separator: " | ") + " |")
        }
        lines.append(
            "| all | \(layers.reduce(0) { $0 + $1.rows }) | \(scientific(meanError)) | \(scientific(maxError)) | "
                + String(format: "%.4f", meanVisibleMass) + " | |" + String(repeating: " |", count: rankIDs.count))
        return lines.joined(separator: "\n")
    }
}

/// One layer of the report: over the sampled rows of all ranks, and per rank.
public struct LayerApproximation: Sendable, Codable, Equatable {
    public var layer: Int
    public var rows: Int
    public var meanError: Double
    public var maxError: Double
    public var meanVisibleMass: Double
    public var minVisibleMass: Double
    public var ranks: [RankApproximation]
}

/// One rank's sampled rows of one layer.
public struct RankApproximation: Sendable, Codable, Equatable {
    public var rank: Int
    public var rows: Int
    public var meanError: Double
    public var maxError: Double
    public var meanVisibleMass: Double
}

/// `1.23e-04`: errors span many orders of magnitude (rounding to tens of percent).
func scientific(_ value: Double) -> String { String(format: "%.2e", value) }

extension Array where Element == Int {
    fileprivate func uniquedSorted() -> [Int] { Set(self).sorted() }
}
