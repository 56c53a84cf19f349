import BatonParallel
import Foundation

/// The approximation report of one method at one length of `baton eval`
/// (`--report-approximation`): every sample's prefill recorded into one report, so each layer's
/// figures are over the sampled rows of all ranks and all samples.
public struct EvalApproximation: Sendable, Codable, Equatable {
    public var method: String
    public var length: Int
    public var samples: Int
    public var summary: ApproximationSummary

    public init(method: String, length: Int, samples: Int, summary: ApproximationSummary) {
        self.method = method
        self.length = length
        self.samples = samples
        self.summary = summary
    }
}

extension EvalReport {
    /// The approximation section of the markdown: one line per method and length beside its
    /// accuracy, then each one's per-layer table (empty without reports).
    func approximationMarkdown() -> String {
        guard let approximation, !approximation.isEmpty else { return "" }
        var text =
            "\n## Approximation report\n\nRelative error of the attention output of sampled context rows "
            + "against exact attention over every earlier key, over all layers, ranks and samples; visible mass: "
            + "the share of the exact softmax mass on the keys the method saw.\n\n"
            + "| method | length | samples | accuracy % | mean rel. error | max rel. error | visible mass |\n"
            + "| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n"
        for a in approximation {
            let accuracy = cells.filter { $0.method == a.method && $0.length == a.length }.map(\.accuracy)
            let mean = accuracy.isEmpty ? "-" : Self.percent(accuracy.reduce(0, +) / Double(accuracy.count))
            text +=
                "| \(a.method) | \(Self.lengthLabel(a.length)) | \(a.samples) | \(mean) | "
                + "\(scientificLabel(a.summary.meanError)) | \(scientificLabel(a.summary.maxError)) | "
                + "\(format4(a.summary.meanVisibleMass)) |\n"
        }
        for a in approximation {
            text +=
                "\n### \(a.method), \(Self.lengthLabel(a.length)) (\(a.summary.rowsPerRank) rows per rank and layer)\n\n"
                + a.summary.table() + "\n"
        }
        return text
    }
}

private func scientificLabel(_ value: Double) -> String { String(format: "%.2e", value) }
private func format4(_ value: Double) -> String { String(format: "%.4f", value) }
