import ArgumentParser
import BatonCUDA
import BatonEngine
import BatonModels
import BatonParallel
import BatonTensor
import BatonTokenizer
import Foundation

struct Generate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate text from a prompt, streaming it as it is produced.",
        discussion:
            "Standard output is the generated text only; loading, progress and timing lines go to standard error.")

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "The prompt text.")
    var prompt: String = "The capital of France is"

    @Option(name: .customLong("prompt-file"), help: "Read the prompt from this file instead.")
    var promptFile: String?

    @Option(name: .customLong("max-tokens"), parsing: .unconditional, help: "Most new tokens to generate (at least 1).")
    var maxTokens: Int = 64

    @Flag(help: "Wrap the prompt in the model's chat template (Llama-3 or ChatML).")
    var chat = false

    @Option(parsing: .unconditional, help: "Sampling temperature; 0 is greedy.")
    var temperature: Float = 0

    @Option(name: .customLong("top-p"), parsing: .unconditional, help: "Nucleus sampling mass, in (0, 1].")
    var topP: Float = 1

    @Option(parsing: .unconditional, help: "Random seed for sampling.")
    var seed: UInt64 = 0

    @Option(help: "Attention method: dense, ring, zigzag, star, apb, spava.")
    var method: String = "dense"

    @Option(
        help:
            "The question, appended after the prompt (the context). APB puts it into the anchor; Spava scores the context against it. Default: the prompt's last tokens."
    )
    var query: String?

    @OptionGroup var planLengths: PlanLengthOptions

    @OptionGroup var rankOptions: RankOptions

    @OptionGroup var deviceOptions: DeviceOptions

    @OptionGroup(title: "Approximation report") var approximationOptions: ApproximationOptions

    @OptionGroup(title: "Images and videos (Qwen2.5-VL, InternVL3)") var visualOptions: VisualOptions

    func run() async throws {
        try runReportingErrors {
            // Options, the tokenizer and the prompt's length are checked before the weights load,
            // so a typo or a too-long prompt costs milliseconds, not minutes.
            try checkNumbers()
            let text = try readPrompt()
            let parsedMethod = try Method.named(method)
            let mode = try LaunchMode.resolve(gpus: rankOptions.gpus, ranks: rankOptions.ranks ?? 1)
            if mode.usesSeparateGPUs {
                try mode.requireVisibleGPUs(visible: visibleGPUCount(for: "--gpus \(mode.worldSize)"))
            }
            let computeDevice = mode.device(requested: try deviceOptions.resolve(onePerGPU: rankOptions.gpus != nil))
            let plan = try planLengths.planOptions()
            let preflight = try ModelPreflight(directory: modelOptions.directory())
            if !visualOptions.isEmpty {
                return try generateVisual(
                    preflight: preflight, question: text, method: parsedMethod, mode: mode,
                    device: computeDevice, plan: plan)
            }
            let prompt = try preflight.encode(prompt: text, chat: chat)
            let question = query.map { preflight.tokenizer.encode($0, addSpecialTokens: false) }
            // Dense attends over the prompt (+ --query) as one block; the other methods need a
            // question: --query, or the prompt's last tokens.
            let (context, questionIDs) =
                parsedMethod == .dense
                ? (prompt, question ?? []) : try question.map { (prompt, $0) } ?? splitContextAndQuery(prompt)
            try preflight.checkContext(promptTokens: context.count + questionIDs.count, maxTokens: maxTokens)
            if parsedMethod != .dense, rankOptions.ranks == nil, rankOptions.gpus == nil, mode.printsOutput {
                standardError(oneRankNote(parsedMethod))
            }
            let engine = try Engine.load(
                EngineOptions(
                    modelDirectory: preflight.directory, device: computeDevice,
                    showProgress: mode.printsOutput), tokenizer: preflight.tokenizer)
            try generate(
                engine: engine, context: context, query: questionIDs, method: parsedMethod, mode: mode, plan: plan)
        }
    }

    /// Range checks of the numeric options, one error line naming the option.
    func checkNumbers() throws {
        try checkOption("--max-tokens", maxTokens, atLeast: 1)
        try checkOption(
            "--temperature", Double(temperature), in: 0...Double.greatestFiniteMagnitude,
            expected: "0 (greedy) or more")
        try checkOption("--top-p", Double(topP), in: 0...1, excludingLowerBound: true, expected: "in (0, 1]")
        try rankOptions.check()
        try checkOption("--approximation-rows", approximationOptions.rows, atLeast: 1)
    }

    /// `--prompt-file`'s text, or `--prompt`; a missing file, a folder or bytes that are not UTF-8
    /// are each one line saying so.
    func readPrompt() throws -> String {
        guard let path = promptFile else { return prompt }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw BatonError(.io, "--prompt-file \(path): no such file")
        }
        if isDirectory.boolValue { throw BatonError(.io, "--prompt-file \(path) is a directory; expected a text file") }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw BatonError(.io, "--prompt-file \(path): cannot read the file (permission denied?)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw BatonError(.io, "--prompt-file \(path): the file is not UTF-8 text")
        }
        return text
    }

    /// What a parallel method does when neither `--ranks` nor `--gpus` is given: it runs on one rank.
    func oneRankNote(_ method: Method) -> String {
        let effect =
            method == .spava
            ? "its two virtual hosts share that rank, so the second half of the context still sees the first only through the compressed passing block"
            : "the whole context is one block, so nothing is split, passed or compressed and the result is dense attention's"
        return
            "baton: --method \(method.rawValue) without --ranks or --gpus runs on 1 rank: \(effect); pass --ranks N (CPU threads) or --gpus N to split the context\n"
    }
}

extension Generate {
    /// Generation of `context` then `query` (encoded and checked already) with `method`, dense on
    /// one rank included (a world-size-1 plan); ranks as `mode` says (threads on one device, one
    /// thread per GPU, or this process's rank of a torchrun job, where only rank 0 prints).
    func generate(
        engine: Engine, context: [Int32], query question: [Int32], method: Method, mode: LaunchMode,
        plan: PlanOptions, visuals: VisualPrefill? = nil
    ) throws {
        guard let tokenizer = engine.tokenizer else { throw BatonError.invalidArgument("the model has no tokenizer") }
        let options = GenerationOptions(
            maxTokens: maxTokens, sampling: SamplingOptions(temperature: temperature, topP: topP, seed: seed),
            stopIds: engine.stopIds(GenerationOptions()))
        var request = ParallelRequest(
            context: context, query: question, method: method, ranks: mode.worldSize, plan: plan, generation: options)
        request.visuals = visuals
        request.approximation = try approximationOptions.report()
        let printer = mode.printsOutput ? TokenPrinter(tokenizer.streamingDecoder(), stops: options.stopIds) : nil
        let onToken: @Sendable (Int32) -> Void = { printer?.print($0) }
        let result: GenerationResult
        let where_: String
        switch mode {
        case .sharedDevice(let ranks):
            result = try engine.run(request, onToken: onToken)
            let plural = ranks == 1 ? "" : "s"
            where_ =
                engine.backend.device == .cpu
                ? "\(ranks) CPU rank\(plural)" : "\(ranks) rank\(plural) sharing \(engine.backend.device)"
        case .gpuThreads(let gpus):
            request.placement = .onePerGPU
            result = try engine.run(request, onToken: onToken)
            where_ = "\(gpus) GPU\(gpus == 1 ? "" : "s") (NCCL, one thread per GPU)"
        case .process(let config):
            result = try engine.runRank(request, process: config, onToken: onToken)
            where_ = "\(config.worldSize) GPU\(config.worldSize == 1 ? "" : "s") (NCCL, one process per GPU)"
        }
        guard let printer else { return }
        printer.finish()
        defer { request.approximation.map { printApproximation($0, method: method, where: where_) } }
        if method == .dense {
            standardError(
                String(
                    format:
                        "prefill: %d tokens in %.3f s (%.1f tokens/s); decode: %d tokens in %.3f s (%.1f tokens/s); stop: %@\n",
                    result.promptTokens, result.prefillSeconds, result.prefillTokensPerSecond,
                    result.tokens.count, result.decodeSeconds, result.decodeTokensPerSecond, result.stopReason.rawValue)
            )
            return
        }
        standardError(
            String(
                format:
                    "%@ on %@: time to first token %.3f s for %d tokens (%.1f tokens/s); decode: %d tokens in %.3f s; stop: %@\n",
                method.rawValue, where_, result.prefillSeconds, result.promptTokens, result.prefillTokensPerSecond,
                result.tokens.count, result.decodeSeconds, result.stopReason.rawValue))
    }
}

/// The approximation report of a prefill on standard error: one row per layer.
func printApproximation(_ report: ApproximationReport, method: Method, where place: String) {
    let summary = report.summary()
    guard !summary.layers.isEmpty else {
        standardError("approximation report: \(method.rawValue) on one rank is exact attention; nothing to compare\n")
        return
    }
    standardError(
        "approximation report: \(method.rawValue) on \(place), \(report.rowsPerRank) context rows per rank and layer; "
            + "relative error of the attention output against exact attention over every earlier key, and the "
            + "share of the exact softmax mass on the keys the method saw:\n\(summary.table())\n")
}

/// Streams decoded tokens to standard output from whichever thread produces them.
final class TokenPrinter: @unchecked Sendable {
    private var decoder: StreamingDecoder
    private let stops: Set<Int32>
    private let lock = NSLock()

    init(_ decoder: StreamingDecoder, stops: Set<Int32>) {
        self.decoder = decoder
        self.stops = stops
    }

    func print(_ id: Int32) {
        guard !stops.contains(id) else { return }
        lock.lock(); defer { lock.unlock() }
        FileHandle.standardOutput.write(Data(decoder.next(id).utf8))
    }

    func finish() {
        lock.lock(); defer { lock.unlock() }
        FileHandle.standardOutput.write(Data((decoder.finish() + "\n").utf8))
    }
}

/// The CUDA device count, or an error saying that `what` needs CUDA and why it is missing.
func visibleGPUCount(for what: String) throws -> Int {
    do {
        return try CUDABackend.visibleDeviceCount()
    } catch let error as BatonError {
        throw BatonError(error.kind, "\(what) needs CUDA GPUs: \(error.message)")
    }
}

/// Checks the `BATON_*` settings, then runs `body`, printing a `BatonError` as one line on
/// standard error and exiting 1.
func runReportingErrors(_ body: () throws -> Void) throws {
    do {
        _ = try BatonSettings.checkedCurrent()
        try body()
    } catch let error as BatonError {
        standardError("baton: \(error)\n")
        throw ExitCode(1)
    }
}
