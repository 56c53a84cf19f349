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
            return zip(tokens, report.rows).map { prompt, row in
                PrefillMeasurement(
                    method: Self.method, ranks: 1, device: report.label, tokens: prompt, queryTokens: queryTokens,
                    runs: row.runs, median_s: row.median_s, min_s: row.min_s, max_s: row.max_s,
                    tokens_per_s: row.tokens_per_s, breakdown_s: nil,
                    peak_device_bytes: device == .cpu ? nil : Int(row.peak_gib * 1_073_741_824), skipped: nil)
            }
        } catch {
            let reason = "PyTorch baseline failed: \(error)"
            return tokens.map {
                PrefillMeasurement(
                    method: Self.method, ranks: 1, device: "\(device) (PyTorch)", tokens: $0, queryTokens: queryTokens,
                    runs: [], median_s: 0, min_s: 0, max_s: 0, tokens_per_s: 0, breakdown_s: nil,
                    peak_device_bytes: nil, skipped: reason)
            }
        }
    }

    /// The method name of baseline rows.
    public static let method = "torch-sdpa"

    /// One row of torch_prefill.py's JSON: a prompt length's timings.
    struct Row: Decodable {
        var tokens: Int
        var runs: [Double]
        var median_s: Double
        var min_s: Double
        var max_s: Double
        var tokens_per_s: Double
        var peak_gib: Double
    }

    func measure(lengths: [Int], runs: Int) throws -> TorchScript.Report<Row> {
        let script = TorchScript(name: "torch_prefill.py", source: PackageResources.torch_prefill_py)
        let report: TorchScript.Report<Row> = try script.run(python: python, folderName: "baton-torch-baseline") {
            folder, output in
            var arguments = [
                "--tokens", lengths.map(String.init).joined(separator: ","), "--runs", "\(runs)",
                "--json", output.path, "--device", device.description
            ]
            if let modelDirectory {
                arguments += ["--model", modelDirectory.path]
            } else {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                try encoder.encode(config).write(to: folder.appendingPathComponent("config.json"))
                arguments += ["--config", folder.path]
            }
            return arguments
        }
        guard report.rows.map(\.tokens) == lengths else {
            throw BatonError(.io, "torch_prefill.py measured \(report.rows.map(\.tokens)), expected \(lengths)")
        }
        return report
    }
}
