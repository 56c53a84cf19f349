import ArgumentParser
import BatonEngine
import BatonTensor
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

    @Option(help: "Number of CPU ranks (threads) for sequence parallelism.")
    var ranks: Int = 1

    @Option(help: "Number of GPUs for sequence parallelism.")
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
            let computeDevice = try parseDevice(device, gpus: gpus)
            let directory = try model.map { URL(fileURLWithPath: $0) } ?? DefaultModel.directory()
            let engine = try Engine.load(EngineOptions(modelDirectory: directory, device: computeDevice))
            guard method == "dense" && ranks == 1 && (gpus ?? 1) == 1 else {
                throw BatonError.unsupported("--method \(method) --ranks \(ranks): sequence-parallel generation is not wired into this build yet")
            }
            let ids = try engine.encode(prompt: text, chat: chat)
            var decoder = engine.tokenizer!.streamingDecoder()
            let options = GenerationOptions(maxTokens: maxTokens, sampling: SamplingOptions(temperature: temperature, topP: topP, seed: seed))
            let stops = engine.stopIds(options)
            let result = try engine.generate(promptIds: ids, options: options) { id in
                guard !stops.contains(id) else { return }
                let piece = decoder.next(id)
                FileHandle.standardOutput.write(Data(piece.utf8))
            }
            FileHandle.standardOutput.write(Data((decoder.finish() + "\n").utf8))
            standardError(String(format: "prefill: %d tokens in %.3f s (%.1f tokens/s); decode: %d tokens in %.3f s (%.1f tokens/s); stop: %@\n",
                                 result.promptTokens, result.prefillSeconds, result.prefillTokensPerSecond,
                                 result.tokens.count, result.decodeSeconds, result.decodeTokensPerSecond, result.stopReason.rawValue))
        }
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

/// Runs `body`, printing a `BatonError` as one line on standard error and exiting 1.
func runReportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as BatonError {
        standardError("baton: \(error)\n")
        throw ExitCode(1)
    }
}
