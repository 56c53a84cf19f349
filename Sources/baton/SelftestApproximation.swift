import BatonEngine
import BatonParallel
import Foundation

extension Selftest {
    /// `--model DIR --ranks N`: the approximation report (`--report-approximation`) on N GPU ranks
    /// sharing this GPU against the same report on N CPU ranks (fp32). Ring is exact, so its error is
    /// the GPU's bf16 rounding (under 2e-2); each approximate method's mean error must be within
    /// 30% (or 1e-2) of its CPU twin's, which the CPU tests check against float64 references.
    func checkApproximationReport(_ path: String, ranks: Int) throws -> Int {
        let directory = URL(fileURLWithPath: path)
        let onDevice = try Engine.load(
            EngineOptions(modelDirectory: directory, device: .cuda(ordinal: ordinal), showProgress: false))
        let onCPU = try Engine.load(EngineOptions(modelDirectory: directory, device: .cpu, showProgress: false))
        let text = String(repeating: "The sky is blue. The tree is green. Here we go. ", count: 12)
        var ids = try onCPU.encode(prompt: text, chat: false)
        ids = Array(ids.prefix(max(64, onCPU.config.contextLength - 16)))
        func meanError(_ engine: Engine, _ method: Method) throws -> Double {
            let report = ApproximationReport(rowsPerRank: 16)
            _ = try engine.generateParallel(
                promptIds: ids, method: method, ranks: ranks, options: GenerationOptions(maxTokens: 1),
                ignoringModelStopIds: true, approximation: report)
            return report.summary().meanError
        }
        print("approximation report check: \(path), \(ids.count) tokens, \(ranks) GPU ranks vs \(ranks) CPU ranks")
        var failures = 0
        for method in [Method.ring, .star, .apb, .spava] {
            let gpu = try meanError(onDevice, method), cpu = try meanError(onCPU, method)
            let pass =
                method == .ring ? gpu < 2e-2 : abs(gpu - cpu) <= max(0.3 * cpu, 1e-2) && gpu.isFinite
            if !pass { failures += 1 }
            print(
                String(
                    format: "  %@ %@: mean relative error %.3e on the GPU, %.3e on the CPU", pass ? "PASS" : "FAIL",
                    method.rawValue, gpu, cpu))
        }
        return failures
    }
}
