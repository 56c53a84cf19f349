import BatonTensor
import Foundation

/// Everything one `baton eval` run produced: what was asked, the per-cell accuracy and every
/// answer. Written as JSON (read by `bench/plot.py`) and as a markdown table.
public struct EvalReport: Sendable, Codable {
    /// "niah", "ruler" or "video-niah".
    public var benchmark: String
    public var model: String
    public var seed: UInt64
    /// Context lengths in tokens; for video-niah, video lengths in frames.
    public var lengths: [Int]
    public var depths: [Double]?
    public var cells: [EvalCell]
    public var predictions: [EvalPrediction]
    /// Per method and length, with `--report-approximation` (nil otherwise).
    public var approximation: [EvalApproximation]?
    /// APB/Spava's `--anchor-length` and `--passing-length` when given (nil: the defaults).
    public var anchorLength: Int?
    public var passingLength: Int?

    public init(
        benchmark: String, model: String, seed: UInt64, lengths: [Int], depths: [Double]?,
        predictions: [EvalPrediction]
    ) {
        self.benchmark = benchmark
        self.model = model
        self.seed = seed
        self.lengths = lengths
        self.depths = depths
        self.predictions = predictions
        self.cells = EvalRunner.cells(predictions)
    }

    var methods: [String] { cells.map(\.method).uniqued() }

    /// The budgets given on the command line, said once under the title.
    var planLine: String {
        let given = [anchorLength.map { "anchor length \($0)" }, passingLength.map { "passing length \($0)" }]
            .compactMap { $0 }
        return given.isEmpty ? "" : "APB/Spava " + given.joined(separator: ", ") + " tokens.\n"
    }

    /// Video NIAH's columns are frames, the others' tokens.
    var lengthsAreFrames: Bool { benchmark == "video-niah" }

    /// One table per method: rows are tasks (RULER) or depths (NIAH), columns lengths, cells
    /// accuracy in percent; the last row averages each column. With dense and other methods, how
    /// many answers of each equal dense's follows (exact methods must give them all).
    public func markdown() -> String {
        var text =
            "# baton eval \(benchmark): \(model)\n\nAccuracy in % (RULER's string_match_all), "
            + "\(cells.first?.samples ?? 0) sample(s) per cell, seed \(seed)"
            + (lengthsAreFrames ? "; columns are video lengths in frames.\n" : ".\n")
            + planLine
        for method in methods {
            let mine = cells.filter { $0.method == method }
            let isNIAH = depths != nil
            let rows: [String] =
                isNIAH
                ? mine.compactMap(\.depth).uniqued().map { Self.depthLabel($0) }
                : mine.map(\.task).uniqued()
            func rowKey(_ cell: EvalCell) -> String { isNIAH ? Self.depthLabel(cell.depth ?? 0) : cell.task }
            text +=
                "\n## \(method)\n\n| \(isNIAH ? "depth" : "task") | "
                + lengths.map { lengthsAreFrames ? String($0) : Self.lengthLabel($0) }.joined(separator: " | ") + " |\n"
            text += "| --- |" + String(repeating: " ---: |", count: lengths.count) + "\n"
            for row in rows {
                let values = lengths.map { length in
                    mine.first { rowKey($0) == row && $0.length == length }.map { Self.percent($0.accuracy) } ?? "-"
                }
                text += "| \(row) | " + values.joined(separator: " | ") + " |\n"
            }
            let means = lengths.map { length -> String in
                let column = mine.filter { $0.length == length }.map(\.accuracy)
                return column.isEmpty ? "-" : Self.percent(column.reduce(0, +) / Double(column.count))
            }
            text += "| **average** | " + means.joined(separator: " | ") + " |\n"
        }
        return text + agreementWithDense() + approximationMarkdown()
    }

    /// For each method but dense, how many of its answers are dense's answer to the same sample
    /// (empty without dense or without another method).
    func agreementWithDense() -> String {
        struct Sample: Hashable { let task: String, length: Int, depth: Double?, index: Int }
        func key(_ p: EvalPrediction) -> Sample {
            Sample(task: p.task, length: p.length, depth: p.depth, index: p.index)
        }
        let dense = Dictionary(
            predictions.filter { $0.method == "dense" }.map { (key($0), $0.prediction) },
            uniquingKeysWith: { a, _ in a })
        let others = methods.filter { $0 != "dense" }
        guard !dense.isEmpty, !others.isEmpty else { return "" }
        var text = "\n## Answers equal to dense's\n\n| method | equal | of |\n| --- | ---: | ---: |\n"
        for method in others {
            let mine = predictions.filter { $0.method == method && dense[key($0)] != nil }
            let equal = mine.filter { dense[key($0)] == $0.prediction }.count
            text += "| \(method) | \(equal) | \(mine.count) |\n"
        }
        return text
    }

    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }

    /// Writes `<benchmark>.json` and `<benchmark>.md` into `directory` (created if missing);
    /// returns their paths.
    public func write(to directory: URL) throws -> (json: URL, markdown: URL) {
        let json = directory.appendingPathComponent("\(benchmark).json")
        let table = directory.appendingPathComponent("\(benchmark).md")
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try jsonData().write(to: json)
            try Data(markdown().utf8).write(to: table)
        } catch {
            throw BatonError(.io, "eval: cannot write results into \(directory.path): \(error)")
        }
        return (json, table)
    }

    static func percent(_ value: Double) -> String { format1(value) }
    static func lengthLabel(_ length: Int) -> String { length % 1024 == 0 ? "\(length / 1024)K" : String(length) }
    static func depthLabel(_ depth: Double) -> String { "\(Int((depth * 100).rounded()))%" }
}

extension Array where Element: Hashable {
    /// The distinct elements in order of first appearance.
    func uniqued() -> [Element] {
        var seen = Set<Element>()
        return filter { seen.insert($0).inserted }
    }
}
