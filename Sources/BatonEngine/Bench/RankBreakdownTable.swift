import BatonTensor
import Foundation

// The per-rank tables of `baton bench prefill`: where each rank's time goes, so a method short of
// its speedup shows whether its ranks compute, select, or wait for each other.

/// The columns of the per-rank table: the parts of a pass, the parts inside attention, then what
/// is left of attention (cache writes, assembling the passing block, concatenating keys).
private let rankColumns = PartTimer.Part.wholePass + PartTimer.Part.insideAttention

/// The markdown lines of the per-rank breakdown (empty if no row has one): one row per rank of
/// every case, in seconds.
func rankBreakdownTable(_ results: [PrefillMeasurement]) -> [String] {
    let broken = results.filter { $0.ranks_breakdown_s != nil && $0.skipped == nil }
    guard !broken.isEmpty else { return [] }
    let note =
        "Per rank, one more run measured part by part on every rank (seconds; attention_compute, selection and "
        + "communication are inside attention, communication includes the wait for the other ranks; "
        + "attention other is the rest of attention: cache writes, assembling keys):"
    let header =
        "| method | ranks | tokens | rank | " + rankColumns.map(\.rawValue).joined(separator: " | ")
        + " | attention other |"
    var lines = [
        "", note, "", header,
        "| --- | ---: | ---: | ---: |" + String(repeating: " ---: |", count: rankColumns.count + 1)
    ]
    for r in broken {
        for (rank, parts) in (r.ranks_breakdown_s ?? []).enumerated() {
            let prefix = "| \(r.method) | \(r.ranks) | \(r.tokens) | \(rank) |"
            guard let parts else {
                let blanks = String(repeating: " |", count: rankColumns.count)
                lines.append(prefix + " not timed: this rank ran in another process |" + blanks)
                continue
            }
            let seconds = rankColumns.map { parts[$0.rawValue] ?? 0 }
            let cells = (seconds + [attentionRemainder(parts)]).map { String(format: "%.3f", $0) }
            lines.append(prefix + " " + cells.joined(separator: " | ") + " |")
        }
    }
    return lines
}

/// Attention minus the parts measured inside it (never below 0: each part is measured on its
/// own, so their sum may exceed attention by the clock's rounding).
func attentionRemainder(_ parts: [String: Double]) -> Double {
    let inside = PartTimer.Part.insideAttention.reduce(0) { $0 + (parts[$1.rawValue] ?? 0) }
    return max(0, (parts[PartTimer.Part.attention.rawValue] ?? 0) - inside)
}

/// The per-layer attention parts of one case on every rank (`BATON_TIMING_LAYERS=1`), a markdown
/// table for standard error. Layers are summed over the passes of the measured run (prefill and,
/// for APB and Star, the query pass).
func layerBreakdownTable(_ item: PrefillCase, timers: [PartTimer?]) -> String {
    let columns = [PartTimer.Part.attention] + PartTimer.Part.insideAttention
    let title =
        "bench prefill: \(item.method.rawValue) x\(item.ranks), \(item.tokens) tokens: attention per layer and rank (seconds)"
    var lines = [
        "", title,
        "| layer | rank | " + columns.map(\.rawValue).joined(separator: " | ") + " |",
        "| ---: | ---: |" + String(repeating: " ---: |", count: columns.count)
    ]
    let layers = Set(timers.flatMap { $0?.layerSeconds.keys.map { $0 } ?? [] }).sorted()
    for layer in layers {
        for (rank, timer) in timers.enumerated() {
            guard let parts = timer?.layerSeconds[layer] else { continue }
            let cells = columns.map { String(format: "%.4f", parts[$0] ?? 0) }
            lines.append("| \(layer) | \(rank) | " + cells.joined(separator: " | ") + " |")
        }
    }
    return lines.joined(separator: "\n") + "\n"
}
