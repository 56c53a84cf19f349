import BatonModels
import BatonTensor
import Foundation

/// `baton bench prefill --baseline torch`: PyTorch + transformers dense prefill (sdpa) of the same
/// architecture, in the same run, the "FlashAttn" row of the papers. Baton writes the model's
/// config.json and runs its embedded copy of bench/torch_prefill.py with `python3`, before it
/// loads its own model, so the two never hold GPU memory at the same time.
public struct TorchBaseline: Sendable {
    /// The Python interpreter (`--python`; `BATON_PYTHON` or `python3` by default).
    public var python: String
    /// The model: a checkpoint folder (its weights) or nil for random weights of `config`.
    public var modelDirectory: URL?
    public var config: ModelConfig
    /// The GPU Baton's rows run on (CUDA events), or the CPU.
    public var device: Device

    public init(python: String, modelDirectory: URL?, config: ModelConfig, device: Device) {
        self.python = python
        self.modelDirectory = modelDirectory
        self.config = config
        self.device = device
    }

    /// One row per length, labelled `torch-sdpa`; a row is `skipped` with the script's last error
    /// line when PyTorch, transformers or a GPU is missing, so Baton's own rows still run.
    /// `tokens` are whole prompt lengths (context + the `queryTokens` question), as Baton's rows.
    public func run(tokens: [Int], queryTokens: Int, runs: Int) -> [PrefillMeasurement] {
        do {
            let report = try measure(lengths: tokens, runs: runs)
            let label = "\(report.device) (PyTorch \(report.torch), transformers \(report.transformers ?? "?") sdpa)"
            return zip(tokens, report.rows).map { prompt, row in
                PrefillMeasurement(method: Self.method, ranks: 1, device: label, tokens: prompt, queryTokens: queryTokens,
                                   runs: row.runs, median_s: row.median_s, min_s: row.min_s, max_s: row.max_s,
                                   tokens_per_s: row.tokens_per_s, breakdown_s: nil,
                                   peak_device_bytes: device == .cpu ? nil : Int(row.peak_gib * 1_073_741_824), skipped: nil)
            }
        } catch {
            let reason = "PyTorch baseline failed: \(error)"
            return tokens.map {
                PrefillMeasurement(method: Self.method, ranks: 1, device: "\(device) (PyTorch)", tokens: $0, queryTokens: queryTokens,
                                   runs: [], median_s: 0, min_s: 0, max_s: 0, tokens_per_s: 0, breakdown_s: nil,
                                   peak_device_bytes: nil, skipped: reason)
            }
        }
    }

    /// The method name of baseline rows.
    public static let method = "torch-sdpa"

    struct Report: Decodable {
        struct Row: Decodable {
            var tokens: Int
            var runs: [Double]
            var median_s: Double
            var min_s: Double
            var max_s: Double
            var tokens_per_s: Double
            var peak_gib: Double
        }
        var torch: String
        var transformers: String?
        var device: String
        var rows: [Row]
    }

    func measure(lengths: [Int], runs: Int) throws -> Report {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("baton-torch-baseline-\(getpid())")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let script = folder.appendingPathComponent("torch_prefill.py")
        try Data(PackageResources.torch_prefill_py).write(to: script)
        let output = folder.appendingPathComponent("torch.json")
        var arguments = [script.path, "--tokens", lengths.map(String.init).joined(separator: ","), "--runs", "\(runs)",
                         "--json", output.path, "--device", device.description]
        if let modelDirectory {
            arguments += ["--model", modelDirectory.path]
        } else {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try encoder.encode(config).write(to: folder.appendingPathComponent("config.json"))
            arguments += ["--config", folder.path]
        }
        let lastLine = try runStreamingToStandardError(python, arguments)
        guard let data = try? Data(contentsOf: output) else {
            throw BatonError(.notAvailable, "\(python) \(script.lastPathComponent) wrote no results (\(lastLine))")
        }
        let report = try JSONDecoder().decode(Report.self, from: data)
        guard report.rows.map(\.tokens) == lengths else {
            throw BatonError(.io, "torch_prefill.py measured \(report.rows.map(\.tokens)), expected \(lengths)")
        }
        return report
    }

    /// Runs `program` with its stdout and stderr copied to this process's stderr; returns the last
    /// non-empty line, or throws naming the program when it cannot start or exits non-zero.
    func runStreamingToStandardError(_ program: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [program] + arguments
        var environment = ProcessInfo.processInfo.environment
        environment["PYTHONUNBUFFERED"] = "1"
        process.environment = environment
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        do { try process.run() } catch {
            throw BatonError(.notAvailable, "cannot start \(program): \(error.localizedDescription)")
        }
        var lastLine = ""
        let handle = pipe.fileHandleForReading
        while case let chunk = handle.availableData, !chunk.isEmpty {
            FileHandle.standardError.write(chunk)
            let text = String(decoding: chunk, as: UTF8.self)
            if let line = text.split(whereSeparator: \.isNewline).last(where: { !$0.trimmingCharacters(in: .whitespaces).isEmpty }) {
                lastLine = String(line)
            }
        }
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw BatonError(.notAvailable, "\(program) exited with status \(process.terminationStatus): \(lastLine)")
        }
        return lastLine
    }
}
