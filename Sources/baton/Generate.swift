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
        abstract: "Generate text from a prompt, streaming it as it is produced.")

    @Option(help: "Hugging Face model directory (config.json, *.safetensors, tokenizer.json). Default: the embedded default model.")
    var model: String?

    @Option(help: "The prompt text.")
    var prompt: String = "The capital of France is"

    @Option(name: .customLong("prompt-file"), help: "Read the prompt from this file instead.")
    var promptFile: String?

    @Option(name: .customLong("max-tokens"), help: "Most new tokens to generate.")
    var maxTokens: Int = 64

    @Flag(help: "Wrap the prompt in the model's chat template (Llama-3 or ChatML).")
    var chat = false

    @Option(help: "Sampling temperature; 0 is greedy.")
    var temperature: Float = 0

    @Option(name: .customLong("top-p"), help: "Nucleus sampling mass.")
    var topP: Float = 1

    @Option(help: "Random seed for sampling.")
    var seed: UInt64 = 0

    @Option(help: "Attention method: dense, ring, zigzag, star, apb, spava.")
    var method: String = "dense"

    @Option(help: "The question, appended after the prompt (the context). APB puts it into the anchor; Spava scores the context against it. Default: the prompt's last tokens.")
    var query: String?

    @Option(name: .customLong("anchor-length"), help: "APB/Spava anchor length in tokens (default: from the input length, as the papers).")
    var anchorLength: Int?

    @Option(name: .customLong("passing-length"), help: "APB/Spava passing budget per (virtual) host and KV head (default: from the input length).")
    var passingLength: Int?

    @Option(help: "Number of ranks (threads) for sequence parallelism: CPU ranks, or with --device cuda ranks sharing one GPU (a correctness mode).")
    var ranks: Int = 1

    @Option(help: "Number of GPUs for sequence parallelism: one rank per GPU over NCCL, as threads of this process, or one process per GPU under torchrun (then --gpus must equal WORLD_SIZE).")
    var gpus: Int?

    @Option(help: "cpu or cuda.")
    var device: String = "cpu"

    func run() async throws {
        try runReportingErrors {
            let text = try promptFile.map { path -> String in
                guard let data = FileManager.default.contents(atPath: path), let s = String(data: data, encoding: .utf8) else {
                    throw BatonError(.io, "--prompt-file \(path): cannot read the file as UTF-8 text")
                }
                return s
            } ?? prompt
            guard maxTokens > 0 else { throw BatonError.invalidArgument("--max-tokens must be positive, got \(maxTokens)") }
            guard let parsedMethod = Method(rawValue: method) else {
                throw BatonError.invalidArgument("--method must be one of \(Method.allCases.map(\.rawValue).joined(separator: ", ")), got '\(method)'")
            }
            // Options are checked before the model loads, so a typo costs no loading time.
            let mode = try LaunchMode.resolve(gpus: gpus, ranks: ranks)
            if mode.usesSeparateGPUs { try mode.requireVisibleGPUs(visible: visibleGPUCount(for: "--gpus \(mode.worldSize)")) }
            let computeDevice = mode.device(requested: try parseDevice(device, gpus: gpus))
            let directory = try model.map { URL(fileURLWithPath: $0) } ?? DefaultModel.directory()
            let engine = try Engine.load(EngineOptions(modelDirectory: directory, device: computeDevice, showProgress: mode.printsOutput))
            guard let tokenizer = engine.tokenizer else { throw BatonError.invalidModel("\(directory.path): no tokenizer") }
            if parsedMethod != .dense || mode != .sharedDevice(ranks: 1) && mode != .gpuThreads(gpus: 1) {
                try generateParallel(engine: engine, text: text, method: parsedMethod, mode: mode)
                return
            }
            var ids = try engine.encode(prompt: text, chat: chat)
            if let query { ids += tokenizer.encode(query, addSpecialTokens: false) }
            let options = GenerationOptions(maxTokens: maxTokens, sampling: SamplingOptions(temperature: temperature, topP: topP, seed: seed))
            let printer = TokenPrinter(tokenizer.streamingDecoder(), stops: engine.stopIds(options))
            let result = try engine.generate(promptIds: ids, options: options) { printer.print($0) }
            printer.finish()
            standardError(String(format: "prefill: %d tokens in %.3f s (%.1f tokens/s); decode: %d tokens in %.3f s (%.1f tokens/s); stop: %@\n",
                                 result.promptTokens, result.prefillSeconds, result.prefillTokensPerSecond,
                                 result.tokens.count, result.decodeSeconds, result.decodeTokensPerSecond, result.stopReason.rawValue))
        }
    }
}

extension Generate {
    /// Sequence-parallel generation: the prompt is the context, `--query` (or the prompt's last
    /// tokens) the question; ranks as `mode` says (threads on one device, one thread per GPU, or
    /// this process's rank of a torchrun job, where only rank 0 prints).
    func generateParallel(engine: Engine, text: String, method: Method, mode: LaunchMode) throws {
        guard let tokenizer = engine.tokenizer else { throw BatonError.invalidArgument("the model has no tokenizer") }
        let prompt = try engine.encode(prompt: text, chat: chat)
        let (context, question) = try query.map { (prompt, tokenizer.encode($0, addSpecialTokens: false)) }
            ?? splitContextAndQuery(prompt)
        try engine.checkContext(promptTokens: context.count + question.count, maxTokens: maxTokens)
        let plan = PlanOptions(anchorLength: anchorLength, passingLength: passingLength)
        let options = GenerationOptions(maxTokens: maxTokens, sampling: SamplingOptions(temperature: temperature, topP: topP, seed: seed),
                                        stopIds: engine.stopIds(GenerationOptions()))
        var request = ParallelRequest(context: context, query: question, method: method, ranks: mode.worldSize, plan: plan, generation: options)
        let printer = mode.printsOutput ? TokenPrinter(tokenizer.streamingDecoder(), stops: options.stopIds) : nil
        let onToken: @Sendable (Int32) -> Void = { printer?.print($0) }
        let result: GenerationResult
        let where_: String
        switch mode {
        case .sharedDevice(let ranks):
            result = try engine.run(request, onToken: onToken)
            where_ = engine.backend.device == .cpu ? "\(ranks) CPU ranks" : "\(ranks) ranks sharing \(engine.backend.device)"
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
        standardError(String(format: "%@ on %@: time to first token %.3f s for %d tokens (%.1f tokens/s); decode: %d tokens in %.3f s; stop: %@\n",
                             method.rawValue, where_, result.prefillSeconds, result.promptTokens, result.prefillTokensPerSecond,
                             result.tokens.count, result.decodeSeconds, result.stopReason.rawValue))
    }
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

/// Parses `--device` (and `--gpus`) into a compute device.
func parseDevice(_ name: String, gpus: Int?) throws -> ComputeDevice {
    if gpus != nil { return .cuda(ordinal: 0) }
    switch name.lowercased() {
    case "cpu": return .cpu
    case "cuda", "gpu": return .cuda(ordinal: 0)
    default:
        if name.hasPrefix("cuda:"), let n = Int(name.dropFirst(5)) { return .cuda(ordinal: n) }
        throw BatonError.invalidArgument("--device must be cpu, cuda or cuda:N, got '\(name)'")
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

/// Runs `body`, printing a `BatonError` as one line on standard error and exiting 1.
func runReportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as BatonError {
        standardError("baton: \(error)\n")
        throw ExitCode(1)
    }
}
