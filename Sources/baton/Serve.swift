import ArgumentParser
import BatonComm
import BatonEngine
import BatonParallel
import BatonServer
import BatonTensor
import Foundation

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract:
            "Serve the model over an OpenAI-compatible HTTP API (/v1/completions, /v1/chat/completions, /v1/models).",
        discussion: """
            Dense text requests decode together: each is prefilled alone, then up to --max-batch of them \
            advance by one token per forward pass. Parallel-method and visual requests run one at a time, \
            between the batch's steps. Up to --max-queue more requests wait, and further requests get 503 with Retry-After. SIGTERM or SIGINT stops \
            accepting, lets running and queued requests finish, then exits. Under torchrun \
            (torchrun --nproc-per-node N --no-python baton serve --gpus N ...) rank 0 serves HTTP and runs \
            dense requests alone; every other rank joins each parallel request and exits when rank 0 does.
            """)

    @Option(
        help:
            "Hugging Face model directory (config.json, *.safetensors, tokenizer.json). Default: the embedded default model."
    )
    var model: String?

    @Option(help: "cpu or cuda.")
    var device: String = "cpu"

    @Option(
        help: "Number of GPUs for sequence-parallel methods: one rank per GPU over NCCL, as threads of this process.")
    var gpus: Int?

    @Option(
        help:
            "Number of ranks (threads) sharing one device for sequence-parallel methods (CPU ranks; a correctness mode on one GPU)."
    )
    var ranks: Int = 1

    @Option(
        help:
            "Attention method: auto, dense, ring, zigzag, star, apb, spava. auto follows --auto-plan over all --gpus and runs dense on one GPU below its first length; a request may name one in \"baton\": {\"method\": ...}."
    )
    var method: String = "auto"

    @Option(
        name: .customLong("auto-plan"),
        help:
            "What --method auto runs from which prompt length, TOKENS:METHOD,... ascending; below the first length, dense on one GPU. The default is the fastest method measured on 2 x H200 at each length (bench/RESULTS.md)."
    )
    var autoPlan: String = MethodPlanner(ranks: 2).summary

    @Option(help: "Address to listen on.")
    var host: String = "127.0.0.1"

    @Option(help: "Port to listen on (0: any free port, printed at start).")
    var port: Int = 8000

    @Option(name: .customLong("max-queue"), help: "Requests that may wait behind the running one; more get 503.")
    var maxQueue: Int = 64

    @Option(
        name: .customLong("max-batch"),
        help: "Dense requests that decode together (one forward pass per token for all of them).")
    var maxBatch: Int = 16

    @Option(name: .customLong("api-key"), help: "Require 'Authorization: Bearer KEY' on /v1 routes.")
    var apiKey: String?

    @Option(
        name: .customLong("served-model-name"),
        help: "The model name requests give (default: the model directory's name).")
    var servedModelName: String?

    @Option(
        name: .customLong("visual-cache-mb"),
        help:
            "MiB of vision-tower output kept (least recently used dropped first), so follow-up questions on the same image or video skip decoding and encoding; 0 keeps none."
    )
    var visualCacheMB: Int = ServerOptions.defaultVisualCacheMB

    func run() async throws {
        var server: OpenAIServer?
        try runReportingErrors {
            let choice = try MethodChoice.named(method, option: "--method")
            let plan = try MethodPlanner.steps(parsing: autoPlan, option: "--auto-plan")
            guard maxQueue >= 0 else {
                throw BatonError.invalidArgument("--max-queue must be at least 0, got \(maxQueue)")
            }
            guard maxBatch >= 1 else {
                throw BatonError.invalidArgument("--max-batch must be at least 1, got \(maxBatch)")
            }
            guard visualCacheMB >= 0 else {
                throw BatonError.invalidArgument("--visual-cache-mb must be at least 0, got \(visualCacheMB)")
            }
            guard (0...65535).contains(port) else {
                throw BatonError.invalidArgument("--port must be 0...65535, got \(port)")
            }
            let mode = try LaunchMode.resolve(gpus: gpus, ranks: ranks)
            let placement: RankPlacement = mode.usesSeparateGPUs ? .onePerGPU : .sharedDevice
            if mode.usesSeparateGPUs {
                try mode.requireVisibleGPUs(visible: visibleGPUCount(for: "--gpus \(mode.worldSize)"))
            }
            let computeDevice = mode.device(requested: gpus != nil ? .cuda(ordinal: 0) : try Device.named(device))
            let directory = try model.map { URL(fileURLWithPath: $0) } ?? DefaultModel.directory()
            let engine = try Engine.load(EngineOptions(modelDirectory: directory, device: computeDevice))
            guard engine.tokenizer != nil else { throw BatonError.invalidModel("\(directory.path): no tokenizer.json") }
            var torchrun: TorchrunRanks?
            if case .process(let config) = mode {
                let channel = try RequestChannel(config)
                guard config.rank == 0 else {
                    try follow(rankZeroOf: config, channel: channel, engine: engine)
                    return
                }
                torchrun = TorchrunRanks(worldSize: config.worldSize, channel: channel) { request, onToken in
                    try engine.runRank(request, process: config, onToken: onToken)
                }
            }
            server = OpenAIServer(
                engine: engine,
                options: ServerOptions(
                    host: host, port: port, modelName: servedModelName ?? directory.lastPathComponent, apiKey: apiKey,
                    maxQueue: maxQueue, maxBatch: maxBatch, method: choice, ranks: mode.worldSize, placement: placement,
                    visualCacheBytes: visualCacheMB << 20, torchrun: torchrun, autoPlan: plan))
        }
        guard let server else { return }
        // The other ranks exit once the server drained; they run nothing after this.
        defer { try? server.options.torchrun?.stop() }
        let name = server.options.modelName
        let autoLine =
            method != "auto" ? "" : server.planner.ranks > 1 ? " \(server.planner.summary)" : ": dense on one rank"
        let application = server.application { port in
            standardError(
                "baton serve: \(name) on http://\(host):\(port)/v1 (method \(method)\(autoLine), max queue \(maxQueue), max batch \(maxBatch))\n"
            )
        }
        try await application.runService()
    }

    /// A rank other than 0 under torchrun: no HTTP, only its part of each parallel request rank 0
    /// hands out, until rank 0 says stop. torchrun passes SIGTERM and SIGINT to every process; this
    /// one ignores them and exits on rank 0's word, so that requests still running finish on every rank.
    private func follow(rankZeroOf config: ProcessGroupConfig, channel: RequestChannel, engine: Engine) throws {
        signal(SIGTERM, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        standardError("baton serve: rank \(config.rank) of \(config.worldSize) follows rank 0\n")
        try followRankZero(channel: channel, worldSize: config.worldSize, rank: config.rank) { request in
            try engine.runRank(request, process: config)
        }
    }
}
