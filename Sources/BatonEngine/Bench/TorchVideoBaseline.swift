import BatonModels
import BatonTensor
import BatonVision
import Foundation

/// `baton bench video --baseline torch`: transformers' Qwen2_5_VLForConditionalGeneration or
/// InternVLForConditionalGeneration built from the same config with random weights (bf16, sdpa),
/// one forward with the pixels of each case's grid, timed whole and vision tower alone. Runs the embedded torch_video.py with python3 in
/// a child process, before Baton loads its model, as `TorchBaseline` does for text.
public struct TorchVideoBaseline: Sendable {
    public var python: String
    public var config: VisionLanguageConfig
    public var device: Device

    public init(python: String, config: VisionLanguageConfig, device: Device) {
        self.python = python
        self.config = config
        self.device = device
    }

    /// One row of torch_video.py's JSON: a grid's timings.
    struct Row: Decodable {
        var grid: [Int]
        var runs: [Double]
        var median_s: Double
        var vision_s: Double
        var peak_gib: Double
    }

    /// One `torch-sdpa` row per case (random-frame grids: the image-path size of each resolution);
    /// every row is skipped with the script's last line when PyTorch, transformers or a GPU is missing.
    public func run(_ options: VideoBenchmarkOptions) -> [VideoMeasurement] {
        var cases: [(frames: Int, resolution: VideoResolution, source: VideoCaseSource?)] = []
        for resolution in options.resolutions {
            for frames in options.frames {
                cases.append(
                    (
                        frames, resolution,
                        try? VideoCaseSource(
                            options: options, frames: frames, resolution: resolution,
                            processor: VisualProcessor.load(modelDirectory: nil, config: config))
                    ))
            }
        }
        func row(
            _ item: (frames: Int, resolution: VideoResolution, source: VideoCaseSource?),
            device: String
        ) -> VideoMeasurement {
            let grid = item.source?.grid
            let resized = item.source.map { "\($0.size.width)x\($0.size.height)" } ?? ""
            return VideoMeasurement(
                method: TorchBaseline.method, device: device, frames: item.frames, resolution: item.resolution.name,
                resized: resized, grid: grid.map { [$0.t, $0.h, $0.w] } ?? [],
                visual_tokens: grid?.tokenCount ?? 0,
                prompt_tokens: item.source.map { videoPromptIds(config: config, item: $0.item).count } ?? 0, runs: [],
                median_s: 0, preprocess_s: 0, vision_s: 0, prefill_s: 0, peak_device_bytes: nil, skipped: nil)
        }
        do {
            let grids = cases.compactMap(\.source?.grid)
            let report = try measure(grids: grids.map { [$0.t, $0.h, $0.w] }, runs: options.runs)
            var measured = report.rows.makeIterator()
            return cases.map { item in
                var result = row(item, device: report.label)
                guard item.source != nil, let timing = measured.next() else {
                    result.skipped = "no grid for this case"
                    return result
                }
                result.runs = timing.runs
                result.median_s = timing.median_s
                result.vision_s = timing.vision_s
                // The tower is timed apart from the forward; at tiny sizes noise can make it the larger.
                result.prefill_s = max(0, timing.median_s - timing.vision_s)
                result.peak_device_bytes = device == .cpu ? nil : Int(timing.peak_gib * 1_073_741_824)
                return result
            }
        } catch {
            return cases.map { item in
                var result = row(item, device: "\(device) (PyTorch)")
                result.skipped = "PyTorch baseline failed: \(error)"
                return result
            }
        }
    }

    /// config.json as transformers reads the model's: a released Qwen2.5-VL checkpoint's (flat
    /// text keys) or an InternVL `-hf` one (`text_config`, `vision_config`).
    public func configJSON() throws -> Data {
        let text = try JSONSerialization.jsonObject(with: JSONEncoder().encode(config.text)) as? [String: Any] ?? [:]
        let object: [String: Any]
        switch config {
        case .qwen2VL(let qwen): object = Self.qwenConfig(qwen, text: text)
        case .internVL(let intern): object = Self.internVLConfig(intern, text: text)
        }
        return try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
    }

    private static func internVLConfig(_ config: InternVLConfig, text: [String: Any]) -> [String: Any] {
        let v = config.vision
        return [
            "architectures": ["InternVLForConditionalGeneration"], "model_type": "internvl",
            "image_token_id": config.imageTokenId, "image_seq_length": config.tokensPerTile,
            "downsample_ratio": 0.5, "projector_hidden_act": "gelu", "vision_feature_layer": -1,
            "vision_feature_select_strategy": "default", "text_config": text,
            "vision_config": [
                "model_type": "internvl_vision", "hidden_size": v.hiddenSize, "num_hidden_layers": v.numLayers,
                "num_attention_heads": v.numHeads, "intermediate_size": v.intermediateSize,
                "image_size": [v.imageSize, v.imageSize], "patch_size": [v.patchSize, v.patchSize],
                "attention_bias": v.qkvBias, "use_qk_norm": false, "layer_norm_eps": v.layerNormEps,
                "hidden_act": "gelu", "use_mean_pooling": true, "norm_type": "layer_norm"
            ] as [String: Any]
        ]
    }

    private static func qwenConfig(_ config: Qwen2VLConfig, text: [String: Any]) -> [String: Any] {
        var object = text.filter { $0.key != "rope_scaling" }
        let v = config.vision
        object["architectures"] = [Qwen2VLConfig.architecture]
        object["model_type"] = Qwen2VLConfig.modelType
        object["rope_scaling"] = ["type": "mrope", "rope_type": "default", "mrope_section": config.mropeSection]
        object["image_token_id"] = config.imageTokenId
        object["video_token_id"] = config.videoTokenId
        object["vision_start_token_id"] = config.visionStartTokenId
        object["vision_end_token_id"] = config.visionEndTokenId
        object["vision_config"] =
            [
                "depth": v.depth, "hidden_size": v.hiddenSize, "num_heads": v.numHeads,
                "intermediate_size": v.intermediateSize,
                "in_chans": v.inChannels, "patch_size": v.patchSize, "spatial_patch_size": v.patchSize,
                "temporal_patch_size": v.temporalPatchSize, "spatial_merge_size": v.spatialMergeSize,
                "window_size": v.windowSize, "fullatt_block_indexes": v.fullAttentionBlockIndexes,
                "tokens_per_second": v.tokensPerSecond, "out_hidden_size": v.outHiddenSize, "hidden_act": "silu",
                "model_type": Qwen2VLConfig.modelType
            ] as [String: Any]
        return object
    }

    func measure(grids: [[Int]], runs: Int) throws -> TorchScript.Report<Row> {
        let script = TorchScript(name: "torch_video.py", source: PackageResources.torch_video_py)
        let report: TorchScript.Report<Row> = try script.run(python: python, folderName: "baton-torch-video") {
            folder, output in
            try configJSON().write(to: folder.appendingPathComponent("config.json"))
            let gridList = grids.map { $0.map(String.init).joined(separator: "x") }.joined(separator: ",")
            return [
                "--config", folder.path, "--grids", gridList, "--runs", "\(runs)",
                "--json", output.path, "--device", device.description
            ]
        }
        guard report.rows.map(\.grid) == grids else {
            throw BatonError(.io, "torch_video.py measured grids \(report.rows.map(\.grid)), expected \(grids)")
        }
        return report
    }
}
