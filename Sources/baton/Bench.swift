import ArgumentParser
import BatonEngine
import BatonModels
import BatonParallel
import BatonTensor
import Foundation

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Speed tests: time to first token per method, context length and rank count.",
        subcommands: [Prefill.self, Video.self])
}

extension Bench {
    struct Prefill: AsyncParsableCommand, BenchCommand {
        typealias Row = PrefillMeasurement
        static let reportName = "prefill"
        static let plotMode = "bench"

        static let configuration = CommandConfiguration(
            abstract: "Time prefill (context + query + first token) of a random-weight model of a real architecture.",
            discussion: "Writes prefill.json and prefill.md into --out (default: bench/out under the current folder): "
                + "the times of each case, then from one more run measured part by part, the parts of dense "
                + "(breakdown_s) and of every rank of every case (ranks_breakdown_s), whose attention is split "
                + "into compute, selection and communication (which includes waiting for the other ranks). "
                + "BATON_TIMING_LAYERS=1 also prints the attention parts per layer and rank on standard error. "
                + "--report-approximation adds, from one more untimed run per case, each layer's error against "
                + "exact attention (approximation in prefill.json, a table per case in prefill.md).")

        @Option(help: "Architecture preset with random weights (llama-3.1-8b, qwen2.5-14b, ..., tiny-llama).")
        var preset: String = "llama-3.1-8b"

        @Option(help: "Or a Hugging Face model directory (its real weights) instead of the preset.")
        var model: String?

        @Option(
            parsing: .unconditional,
            help:
                "Prompt lengths, comma separated (e.g. 32768,65536,131072); each counts the whole prompt, the --query-tokens question included, so a model's full context (131072 on llama-3.1-8b) runs. A case that cannot run (too long, too many GPUs, out of memory) becomes a row saying why."
        )
        var tokens: String = "8192"

        @OptionGroup var methodOptions: MethodListOptions

        @OptionGroup var rankLists: RankListOptions

        @OptionGroup var deviceOptions: DeviceOptions

        @Option(parsing: .unconditional, help: "Timed runs per case (the median is reported; at least 1).")
        var runs: Int = 3

        @Option(parsing: .unconditional, help: "Untimed warm-up runs per case.")
        var warmup: Int = 1

        @Option(
            name: .customLong("query-tokens"), parsing: .unconditional,
            help: "Question length in tokens (the last tokens of each --tokens prompt).")
        var queryTokens: Int = 50

        @OptionGroup var planLengths: PlanLengthOptions

        @OptionGroup(title: "Approximation report") var approximationOptions: ApproximationOptions

        @Option(
            help:
                "Reference baseline run first, in the same command: none, or torch (PyTorch + transformers sdpa dense prefill of the same architecture on the same device, through python3)."
        )
        var baseline: String = "none"

        @Option(help: "Python interpreter for --baseline torch (default: $BATON_PYTHON or python3).")
        var python: String?

        @Option(
            help: "Folder for prefill.json and prefill.md, created if missing (relative paths from the current folder)."
        )
        var out: String = "bench/out"

        func run() async throws {
            try runReportingErrors {
                let methodList = try methodOptions.list()
                let tokenList = try parseIntegers(tokens, option: "--tokens")
                let rankList = try rankLists.counts(command: "bench prefill")
                try checkOption("--runs", runs, atLeast: 1)
                try checkOption("--warmup", warmup, atLeast: 0)
                try checkOption("--query-tokens", queryTokens, atLeast: 0)
                var options = PrefillBenchmarkOptions(
                    preset: preset, modelDirectory: model.map { URL(fileURLWithPath: $0) }, tokens: tokenList,
                    methods: methodList,
                    ranks: rankList, device: try deviceOptions.resolve(onePerGPU: rankLists.onePerGPU), runs: runs,
                    warmups: warmup, queryTokens: queryTokens, plan: try planLengths.planOptions(),
                    placement: rankLists.placement)
                options.approximationRows = try approximationOptions.report().map(\.rowsPerRank)
                let report: (PrefillMeasurement) -> Void = { row in
                    if let reason = row.skipped {
                        standardError("\(row.method) x\(row.ranks) \(row.tokens) tokens: not run (\(reason))\n")
                        return
                    }
                    standardError(
                        String(
                            format: "%@ x%d %d tokens: median %.3f s (%.0f tokens/s)\n", row.method, row.ranks,
                            row.tokens, row.median_s, row.tokens_per_s))
                }
                try measureAndReport(
                    torch: { try torchRows(options, python: $0) },
                    measure: { try runPrefillBenchmark(options, onResult: $0) },
                    describe: report, table: prefillTable)
            }
        }

        func torchRows(_ options: PrefillBenchmarkOptions, python: String) throws -> [PrefillMeasurement] {
            let directory = options.modelDirectory
            let config =
                try directory.map { try ModelConfig.load(directory: $0) } ?? ModelPreset.named(options.preset).config
            standardError("bench prefill: PyTorch baseline (\(python) torch_prefill.py) first\n")
            return TorchBaseline(python: python, modelDirectory: directory, config: config, device: options.device)
                .run(tokens: options.tokens, queryTokens: options.queryTokens, runs: options.runs)
        }
    }
}
