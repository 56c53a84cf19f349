import ArgumentParser
import BatonEngine
import BatonParallel
import BatonTensor
import Foundation

extension Eval {
    /// `baton eval video-niah`: VNBench-style retrieval on a Qwen2.5-VL or InternVL3 checkpoint.
    struct VideoNIAH: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "video-niah",
            abstract: "Video needle in a haystack: a number or word drawn into frames at depths of a long video.",
            discussion:
                "The needle is two frames (one temporal unit) showing a number or a word on a white panel, drawn with a built-in bitmap font and inserted at each depth of a video of each length; the question asks what it says. The haystack is made-up scenes, or --video FILE's sampled frames. Writes video-niah.json and video-niah.md into --out (default: baton-eval under the current folder), and video-niah.png when matplotlib is installed. With dense and other methods the report counts the answers equal to dense's: the exact methods (ring, zigzag; apb and spava when nothing is compressed away) must give them all."
        )

        @OptionGroup var shared: EvalRunOptions
        @Option(
            parsing: .unconditional,
            help: "Video lengths in frames, the needle's two included, comma-separated (even, at least 4).")
        var frames = "16,32,64"
        @Option(parsing: .unconditional, help: "Needle depths as fractions of the video, comma-separated.")
        var depths = "0,0.25,0.5,0.75,1"
        @Option(parsing: .unconditional, help: "Samples (different needles) per frames x depth cell.")
        var samples = 1
        @Option(
            help:
                "Frame size: WIDTHxHEIGHT or 360p, 720p, 1080p, 1440p (made-up frames are rounded to multiples of 28; a clip's frames get as many pixels)."
        )
        var resolution = "448x252"
        @Option(
            help: "A real clip as the haystack (decoded with ffmpeg), sampled to each length less the needle's frames.")
        var video: String?
        @Option(help: "The needle: 'numbers' (--digits digits) or 'words' (a noun in capitals).")
        var needle = "numbers"
        @Option(parsing: .unconditional, help: "Digits of a number needle.")
        var digits = 4
        @OptionGroup var planLengths: PlanLengthOptions

        func run() async throws {
            try runReportingErrors { try runGrid() }
        }

        func runGrid() throws {
            try checkOption("--samples", samples, atLeast: 1)
            try checkOption("--digits", digits, atLeast: 1)
            guard let needleKind = VideoNIAHOptions.Needle(rawValue: needle) else {
                throw BatonError.invalidArgument("--needle: expected numbers or words, found '\(needle)'")
            }
            if let video, !FileManager.default.fileExists(atPath: video) {
                throw BatonError(.io, "--video \(video): no such file")
            }
            let options = VideoNIAHOptions(
                frames: try parseIntegers(frames, option: "--frames", atLeast: 4),
                depths: try parseList(depths, name: "--depths") { Double($0) }, samples: samples,
                resolution: try VideoResolution.named(resolution), video: video.map { URL(fileURLWithPath: $0) },
                needle: needleKind, digits: digits, seed: shared.seed)
            try options.check()
            let rankCount = try shared.rankCount() ?? 2
            let plan = try planLengths.planOptions()
            let methods = try shared.methodOptions.list().map {
                VideoNIAHMethod(method: $0, ranks: rankCount, plan: plan, placement: shared.placement)
            }
            let directory = try shared.modelOptions.directory()
            let preflight = try ModelPreflight(directory: directory)
            guard preflight.visionLanguageConfig != nil else {
                throw BatonError.invalidArgument(
                    "eval video-niah needs a Qwen2.5-VL or InternVL3 checkpoint; \(directory.path) is text-only "
                        + "(\(preflight.config.architecture.rawValue))")
            }
            let engine = try Engine.load(
                EngineOptions(modelDirectory: directory, device: shared.computeDevice()),
                tokenizer: preflight.tokenizer)
            let eval = try BatonEngine.VideoNIAH(engine: engine, options: options, modelDirectory: directory)
            let bar = ProgressBar(label: "video-niah", total: eval.samples.count * methods.count)
            let predictions = try eval.run(methods: methods, progress: bar.update)
            try shared.publish(
                EvalReport(
                    benchmark: "video-niah", model: directory.lastPathComponent, seed: shared.seed,
                    lengths: options.frames, depths: options.depths, predictions: predictions))
        }
    }
}
