import ArgumentParser
import BatonEngine
import BatonParallel
import BatonTensor
import Foundation

// Options that several commands share, one group each, so that `--model`, `--device`,
// `--methods`, `--ranks`, `--gpus`, `--anchor-length` and `--passing-length` mean the same
// everywhere. Numeric options parse negative numbers as values (`parsing: .unconditional`), so
// `--max-tokens -1` is a range error naming the option, not "Missing value".

/// `--model` of generate, eval and inspect.
struct ModelOptions: ParsableArguments {
    @Option(
        help:
            "Hugging Face model directory (config.json, *.safetensors, tokenizer.json), or the name of an obtainable model (`baton models`), fetched once into ~/.cache/baton/models. Default: smollm2-135m-instruct."
    )
    var model: String?

    /// The directory `--model` names, an obtainable model's by name, or the default model's
    /// (both fetched on first use). An existing directory wins over a name.
    func directory() throws -> URL {
        guard let model else { return try DefaultModel.directory() }
        if !FileManager.default.fileExists(atPath: model), let obtainable = ObtainableModel.named(model) {
            return try obtainable.directory()
        }
        return URL(fileURLWithPath: model)
    }
}

/// `--device` of generate, bench and eval.
struct DeviceOptions: ParsableArguments {
    @Option(help: "cpu, cuda (alias: gpu) or cuda:N.")
    var device = "cpu"

    /// The engine's device: `--device`, or cuda:0 when ranks run one per GPU (`--gpus`; rank i on cuda:i).
    func resolve(onePerGPU: Bool) throws -> Device {
        let named = try Device.named(device)
        return onePerGPU ? .cuda(ordinal: 0) : named
    }
}

/// `--ranks` and `--gpus` of one run: generate and eval (bench takes lists of both).
struct RankOptions: ParsableArguments {
    @Option(
        parsing: .unconditional,
        help:
            "Ranks (threads) for sequence parallelism: CPU ranks, or with --device cuda ranks sharing one GPU (a correctness mode). Default: 1 (eval: 2 for its parallel methods)."
    )
    var ranks: Int?

    @Option(
        parsing: .unconditional,
        help:
            "GPUs for sequence parallelism: one rank per GPU over NCCL, as threads of this process, or (generate) one process per GPU under torchrun, where --gpus must equal WORLD_SIZE."
    )
    var gpus: Int?

    /// Throws unless each given count is at least 1.
    func check() throws {
        if let ranks { try checkOption("--ranks", ranks, atLeast: 1) }
        if let gpus { try checkOption("--gpus", gpus, atLeast: 1) }
    }
}

/// `--methods` of bench and eval.
struct MethodListOptions: ParsableArguments {
    @Option(help: "Attention methods, comma separated: \(Method.allCases.map(\.rawValue).joined(separator: ",")).")
    var methods = "dense"

    /// The methods named, in order.
    func list() throws -> [Method] {
        try parseList(methods, name: "--methods") { $0 }.map { try Method.named($0, option: "--methods") }
    }
}

/// `--anchor-length` and `--passing-length` of generate and bench.
struct PlanLengthOptions: ParsableArguments {
    @Option(
        name: .customLong("anchor-length"), parsing: .unconditional,
        help: "APB/Spava anchor length in tokens (default: from the input length, as the papers).")
    var anchorLength: Int?

    @Option(
        name: .customLong("passing-length"), parsing: .unconditional,
        help: "APB/Spava passing budget per (virtual) host and KV head (default: from the input length).")
    var passingLength: Int?

    /// The plan options, each length checked to be at least 0.
    func planOptions() throws -> PlanOptions {
        if let anchorLength { try checkOption("--anchor-length", anchorLength, atLeast: 0) }
        if let passingLength { try checkOption("--passing-length", passingLength, atLeast: 0) }
        return PlanOptions(anchorLength: anchorLength, passingLength: passingLength)
    }
}

/// Throws one line naming `option` unless `value >= minimum`.
func checkOption(_ option: String, _ value: Int, atLeast minimum: Int) throws {
    guard value >= minimum else {
        throw BatonError.invalidArgument("\(option) must be at least \(minimum), got \(value)")
    }
}

/// Throws one line naming `option` unless `value` is a finite number in `range`; `expected` says
/// what the range means.
func checkOption(
    _ option: String, _ value: Double, in range: ClosedRange<Double>, excludingLowerBound: Bool = false,
    expected: String
) throws {
    guard value.isFinite, range.contains(value), !(excludingLowerBound && value == range.lowerBound) else {
        throw BatonError.invalidArgument("\(option) must be \(expected), got \(value)")
    }
}

/// Splits a comma-separated option value and converts each item, naming the option on failure.
func parseList<T>(_ value: String, name: String, _ convert: (String) throws -> T?) throws -> [T] {
    let items = value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    guard !items.isEmpty else {
        throw BatonError.invalidArgument("\(name): expected a comma-separated list, found '\(value)'")
    }
    return try items.map { item in
        guard let converted = try convert(item) else {
            throw BatonError.invalidArgument("\(name): cannot read '\(item)' in '\(value)'")
        }
        return converted
    }
}

/// "1,2,4" -> [1, 2, 4], each at least `minimum`.
func parseIntegers(_ text: String, option: String, atLeast minimum: Int = 1) throws -> [Int] {
    try parseList(text, name: option) { Int($0) }.map { value in
        guard value >= minimum else {
            throw BatonError.invalidArgument(
                "\(option): expected integers of at least \(minimum), got \(value) in '\(text)'")
        }
        return value
    }
}

/// `--report-approximation` and `--approximation-rows` of generate, bench and eval.
struct ApproximationOptions: ParsableArguments {
    @Flag(
        name: .customLong("report-approximation"),
        help:
            "Measure, in every prefill layer, sampled context rows of every rank against exact attention over every earlier key, and report the relative error of the method's attention output per layer (costs rows x keys per layer)."
    )
    var reportApproximation = false

    @Option(
        name: .customLong("approximation-rows"), parsing: .unconditional,
        help: "Context rows per rank and layer that --report-approximation samples.")
    var rows = 64

    /// A new report when the flag is given, nil otherwise; `--approximation-rows` must be at least 1.
    func report() throws -> ApproximationReport? {
        try checkOption("--approximation-rows", rows, atLeast: 1)
        return reportApproximation ? ApproximationReport(rowsPerRank: rows) : nil
    }
}
