import ArgumentParser
import BatonEngine
import BatonTensor
import Foundation

/// What `bench prefill` and `bench video` share: the reference baseline runs first, every row is
/// reported on standard error as it comes, then the table is printed and saved, with the rows, as
/// `<reportName>.json` (what bench/plot.py reads) and `<reportName>.md` in `--out`.
protocol BenchCommand {
    associatedtype Row: BenchRow
    var preset: String { get }
    var model: String? { get }
    var baseline: String { get }
    var python: String? { get }
    var out: String { get }
    var deviceOptions: DeviceOptions { get }
    /// The report files' name in `--out`: prefill, video.
    static var reportName: String { get }
    /// bench/plot.py's first argument for the JSON file.
    static var plotMode: String { get }
}

/// A row of a bench report: enough to tell Baton's measured rows from the baseline's and skipped ones.
protocol BenchRow: Codable {
    var method: String { get }
    var device: String { get }
    var skipped: String? { get }
}

extension PrefillMeasurement: BenchRow {}
extension VideoMeasurement: BenchRow {}

/// The JSON file a bench command writes.
struct BenchReport<Row: BenchRow>: Codable {
    var preset: String
    var device: String
    var date: String
    var command: String
    var rows: [Row]
}

extension BenchCommand {
    /// Runs `--baseline` (`torch` is given the interpreter), then Baton's cases (`measure` is given
    /// `describe` to call as each row comes), prints `table` of all the rows and writes the report.
    func measureAndReport(
        torch: (_ python: String) throws -> [Row],
        measure: (_ onResult: @escaping (Row) -> Void) throws -> [Row],
        describe: @escaping (Row) -> Void, table: ([Row]) -> String
    ) throws {
        // The baseline runs before Baton loads its model: the two never share the GPU's memory.
        var rows = try baselineRows(torch).map { row in
            describe(row); return row
        }
        rows += try measure(describe)
        let text = table(rows)
        print(text)
        try writeReport(rows: rows, table: text)
    }

    func baselineRows(_ torch: (_ python: String) throws -> [Row]) throws -> [Row] {
        switch baseline.lowercased() {
        case "none": return []
        case "torch": return try torch(python ?? BatonSettings.current.python)
        default: throw BatonError.invalidArgument("--baseline must be none or torch, got '\(baseline)'")
        }
    }

    func writeReport(rows: [Row], table: String) throws {
        let folder = URL(fileURLWithPath: out)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        // The device of Baton's first measured row names the GPU ("cuda:0 (NVIDIA H100 80GB HBM3)").
        let measured = rows.first { $0.method != TorchBaseline.method && $0.skipped == nil }
        let report = BenchReport(
            preset: model ?? preset, device: measured?.device ?? deviceOptions.device,
            date: ISO8601DateFormatter().string(from: Date()),
            command: CommandLine.arguments.joined(separator: " "), rows: rows)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let name = Self.reportName
        try encoder.encode(report).write(to: folder.appendingPathComponent("\(name).json"))
        try (table + "\n").write(to: folder.appendingPathComponent("\(name).md"), atomically: true, encoding: .utf8)
        standardError(
            "wrote \(folder.path)/\(name).json and \(name).md; plot: python3 bench/plot.py \(Self.plotMode) "
                + "\(folder.path)/\(name).json \(folder.path)/\(name).png\n")
    }
}

/// `--ranks` and `--gpus` of the bench commands: lists of rank counts.
struct RankListOptions: ParsableArguments {
    @Option(
        parsing: .unconditional,
        help:
            "Rank counts for the sequence-parallel methods, comma separated: CPU ranks, or with --device cuda ranks sharing one GPU."
    )
    var ranks: String = "1"

    @Option(
        parsing: .unconditional,
        help:
            "GPU counts, comma separated: one rank per GPU over NCCL, threads of this process (rows needing more GPUs than are visible are reported as skipped)."
    )
    var gpus: String?

    var onePerGPU: Bool { gpus != nil }
    var placement: RankPlacement { onePerGPU ? .onePerGPU : .sharedDevice }

    /// The rank counts of `--gpus` or else `--ranks`. `--gpus` runs threads of one process, so it
    /// refuses a torchrun job of several processes (`command` names the command in the message).
    func counts(command: String) throws -> [Int] {
        let environment = ProcessInfo.processInfo.environment
        if onePerGPU, LaunchMode.launchedByTorchrun(environment), (Int(environment["WORLD_SIZE"] ?? "1") ?? 1) > 1 {
            throw BatonError.invalidArgument(
                "\(command) --gpus runs one thread per GPU in one process; start it without torchrun")
        }
        return try parseIntegers(gpus ?? ranks, option: gpus == nil ? "--ranks" : "--gpus")
    }
}
