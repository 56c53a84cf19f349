import ArgumentParser
import BatonEngine
import BatonModels
import BatonTensor
import Foundation

extension Bench {
    struct Video: AsyncParsableCommand, BenchCommand {
        typealias Row = VideoMeasurement
        static let reportName = "video"
        static let plotMode = "video"

        static let configuration = CommandConfiguration(
            abstract:
                "Time to first token of Qwen2.5-VL or InternVL3 on a video: decode + preprocess, vision tower, LM prefill.",
            discussion: "Random frames by default (as the papers' speed test), or --video FILE. With --methods and "
                + "--ranks or --gpus, every method on every rank count (dense on one rank): each rank decodes and "
                + "encodes its share of the frames and the ranks exchange the visual embeddings they need; each "
                + "stage is reported for its slowest rank, with a per-rank table. Writes video.json and "
                + "video.md into --out (default: bench/out under the current folder).")

        @Option(
            help:
                "Vision-language preset with random weights: qwen2.5-vl-3b, qwen2.5-vl-7b, internvl3-2b or internvl3-8b (one 448-pixel tile per frame: --resolution only sizes the random frames)."
        )
        var preset: String = "qwen2.5-vl-3b"

        @Option(help: "Or a Qwen2.5-VL or InternVL3 model directory (its real weights) instead of the preset.")
        var model: String?

        @Option(help: "Frame counts, comma separated (even).")
        var frames: String = "16"

        @Option(
            help: ArgumentHelp(
                "Frame sizes, comma separated: 360p, 720p, 1080p, 1440p (resized to "
                    + "multiples of 28, "
                    + "e.g. 1288x728) or WIDTHxHEIGHT."))
        var resolution: String = "720p"

        @Option(
            help: ArgumentHelp(
                "A real clip instead of random frames: sampled to each frame count, sized to each "
                    + "resolution's pixels."))
        var video: String?

        @OptionGroup var methodOptions: MethodListOptions

        @OptionGroup var rankLists: RankListOptions

        @OptionGroup var deviceOptions: DeviceOptions

        @OptionGroup var planLengths: PlanLengthOptions

        @Option(parsing: .unconditional, help: "Timed runs per case (the median is reported; at least 1).")
        var runs: Int = 1

        @Option(parsing: .unconditional, help: "Untimed warm-up runs per case (a GPU's first run compiles kernels).")
        var warmup: Int = 1

        @Option(
            help: ArgumentHelp(
                "Reference baseline run first: none, or torch (transformers "
                    + "Qwen2_5_VLForConditionalGeneration, "
                    + "bf16, sdpa, random weights, one forward)."))
        var baseline: String = "none"

        @Option(help: "Python interpreter for --baseline torch (default: $BATON_PYTHON or python3).")
        var python: String?

        @Option(help: "Folder for video.json and video.md, created if missing.")
        var out: String = "bench/out"

        func run() async throws {
            try runReportingErrors {
                try checkOption("--runs", runs, atLeast: 1)
                try checkOption("--warmup", warmup, atLeast: 0)
                let frameList = try parseIntegers(frames, option: "--frames", atLeast: 2)
                let methodList = try methodOptions.list()
                let rankList = try rankLists.counts(command: "bench video")
                let resolutions = try parseList(resolution, name: "--resolution") { $0 }.map(VideoResolution.named)
                if let video, !FileManager.default.fileExists(atPath: video) {
                    throw BatonError(.io, "--video \(video): no such file")
                }
                let options = VideoBenchmarkOptions(
                    preset: preset, modelDirectory: model.map { URL(fileURLWithPath: $0) }, frames: frameList,
                    resolutions: resolutions, video: video.map { URL(fileURLWithPath: $0) },
                    device: try deviceOptions.resolve(onePerGPU: rankLists.onePerGPU), runs: runs, warmups: warmup,
                    methods: methodList, ranks: rankList, placement: rankLists.placement,
                    plan: try planLengths.planOptions())
                let report: (VideoMeasurement) -> Void = { row in
                    let name = row.ranks > 1 ? "\(row.method) x\(row.ranks)" : row.method
                    if let reason = row.skipped {
                        standardError("\(name) \(row.frames) frames \(row.resolution): not run (\(reason))\n")
                        return
                    }
                    let exchange = row.ranks > 1 ? String(format: ", exchange %.3f", row.exchange_s) : ""
                    standardError(
                        String(
                            format: "%@ %d frames %@ (%d visual tokens): %.3f s (preprocess %.3f, "
                                + "vision %.3f%@, prefill %.3f)\n", name, row.frames, row.resolution,
                            row.visual_tokens, row.median_s, row.preprocess_s, row.vision_s, exchange,
                            row.prefill_s))
                }
                try measureAndReport(
                    torch: { try torchRows(options, python: $0) },
                    measure: { try runVideoBenchmark(options, onResult: $0) },
                    describe: report, table: videoTable)
            }
        }

        func torchRows(_ options: VideoBenchmarkOptions, python: String) throws -> [VideoMeasurement] {
            let config =
                try options.modelDirectory.map { try VisionLanguageConfig.load(directory: $0) }
                ?? VisionLanguagePreset.named(options.preset)
            guard let config else {
                throw BatonError.invalidArgument(
                    "--preset \(options.preset) is not a vision-language preset ("
                        + VisionLanguagePreset.names.joined(separator: ", ") + ")")
            }
            standardError("bench video: PyTorch baseline (\(python) torch_video.py) first\n")
            return TorchVideoBaseline(python: python, config: config, device: options.device).run(options)
        }
    }
}
