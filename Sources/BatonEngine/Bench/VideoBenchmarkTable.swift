import Foundation

/// A column of the `bench video` table: its header, its markdown alignment and a row's cell.
private struct VideoColumn {
    let header: String
    let alignment: String
    let cell: (VideoMeasurement) -> String

    init(_ header: String, _ alignment: String = "---:", cell: @escaping (VideoMeasurement) -> String) {
        self.header = header
        self.alignment = alignment
        self.cell = cell
    }
}

/// The markdown table of `baton bench video`, with the speedups over the PyTorch rows
/// (`torch-sdpa`) of the same frames and resolution. PyTorch's rows start from random pixel rows
/// (no decoding or preprocessing), so the speedups compare like with like: vision tower + LM
/// prefill, and the vision tower alone. TTFT includes Baton's decoding and preprocessing.
///
/// With other methods or several ranks the table gains a ranks column, the exchange of visual
/// embeddings, the speedup over dense on one rank (TTFT, and the vision tower alone) and a
/// per-rank table; a one-rank dense run keeps the columns it always had.
public func videoTable(_ rows: [VideoMeasurement]) -> String {
    let parallel = rows.contains { $0.ranks > 1 || !["dense", TorchBaseline.method].contains($0.method) }
    func seconds(_ value: @escaping (VideoMeasurement) -> Double) -> (VideoMeasurement) -> String {
        { String(format: "%.3f", value($0)) }
    }
    var identity = [
        VideoColumn("method", "---", cell: \.method), VideoColumn("device", "---", cell: \.device),
        VideoColumn("frames") { "\($0.frames)" }, VideoColumn("resolution", "---", cell: \.resolution),
        VideoColumn("resized", "---", cell: \.resized), VideoColumn("visual tokens") { "\($0.visual_tokens)" }
    ]
    var measured = [
        VideoColumn("TTFT s", cell: seconds(\.median_s)),
        VideoColumn("decode+preprocess s") {
            $0.method == TorchBaseline.method ? "n/a" : String(format: "%.3f", $0.preprocess_s)
        },
        VideoColumn("vision tower s", cell: seconds(\.vision_s)),
        VideoColumn("LM prefill s", cell: seconds(\.prefill_s)),
        VideoColumn("speedup vs PyTorch (vision + prefill)") {
            speedup($0, over: torchRow($0, rows)) { $0.vision_s + $0.prefill_s }
        },
        VideoColumn("vision speedup") { speedup($0, over: torchRow($0, rows), \.vision_s) },
        VideoColumn("peak device GiB") { r in
            r.peak_device_bytes.map { String(format: "%.1f", Double($0) / 1_073_741_824) } ?? "n/a"
        }
    ]
    if parallel {
        identity.insert(VideoColumn("ranks") { "\($0.ranks)" }, at: 1)
        measured.insert(VideoColumn("exchange s", cell: seconds(\.exchange_s)), at: 3)
        measured.insert(
            contentsOf: [
                VideoColumn("speedup vs dense") { speedup($0, over: denseRow($0, rows), \.median_s) },
                VideoColumn("vision speedup vs 1 rank") { speedup($0, over: denseRow($0, rows), \.vision_s) }
            ], at: 5)
    }
    let columns = identity + measured
    var lines = [markdownRow(columns.map(\.header)), markdownRow(columns.map(\.alignment))]
    for r in rows {
        let cells =
            r.skipped.map { ["not run: \($0)"] + Array(repeating: "", count: measured.count - 1) }
            ?? measured.map { $0.cell(r) }
        lines.append(markdownRow(identity.map { $0.cell(r) } + cells))
    }
    guard parallel else { return lines.joined(separator: "\n") }
    lines += [
        "",
        "On several ranks each stage is its slowest rank's; the exchange includes waiting for the other ranks' "
            + "towers. Speedups vs dense: dense on one rank's time over this row's (TTFT, and the vision tower alone); "
            + "the two columns after them compare with PyTorch's rows."
    ]
    return (lines + videoRankTable(rows)).joined(separator: "\n")
}

/// "| a | | b |": cells between pipes, an empty cell as one space.
private func markdownRow(_ cells: [String]) -> String {
    cells.map { $0.isEmpty ? "|" : "| \($0)" }.joined(separator: " ") + " |"
}

/// The PyTorch row of `row`'s case.
private func torchRow(_ row: VideoMeasurement, _ rows: [VideoMeasurement]) -> VideoMeasurement? {
    rows.first {
        $0.method == TorchBaseline.method && $0.frames == row.frames && $0.resolution == row.resolution
            && $0.skipped == nil
    }
}

/// Dense on one rank at `row`'s case and device; rows on several GPUs compare with dense on one GPU.
private func denseRow(_ row: VideoMeasurement, _ rows: [VideoMeasurement]) -> VideoMeasurement? {
    let multiGPU = row.device.hasSuffix("NCCL)")
    return rows.first {
        $0.method == "dense" && $0.ranks == 1 && $0.frames == row.frames && $0.resolution == row.resolution
            && $0.skipped == nil && ($0.device == row.device || multiGPU && $0.device.hasPrefix("cuda"))
    }
}

/// `part` of `baseline` over `part` of `row` ("n/a" without a baseline; blank on the PyTorch row).
private func speedup(
    _ row: VideoMeasurement, over baseline: VideoMeasurement?, _ part: (VideoMeasurement) -> Double
) -> String {
    guard row.method != TorchBaseline.method else { return "" }
    return baseline.map { String(format: "%.2fx", part($0) / part(row)) } ?? "n/a"
}

/// Every rank's stages of each measured case, from the median run.
private func videoRankTable(_ rows: [VideoMeasurement]) -> [String] {
    let stages: [(VisualStageTimes.Stage, String)] = [
        (.preprocess, "decode+preprocess s"), (.vision, "vision tower s"), (.exchange, "exchange s"),
        (.prefill, "LM prefill s")
    ]
    var lines = [
        "",
        "Per rank, the median run's stages (seconds; LM prefill is the rest of the rank's time to first token):",
        "", markdownRow(["method", "ranks", "frames", "resolution", "rank"] + stages.map(\.1)),
        markdownRow(["---", "---:", "---:", "---", "---:"] + Array(repeating: "---:", count: stages.count))
    ]
    for r in rows where r.skipped == nil {
        for (rank, parts) in (r.ranks_stages_s ?? []).enumerated() {
            let cells =
                parts.map { parts in stages.map { String(format: "%.3f", parts[$0.0.rawValue] ?? 0) } }
                ?? ["not timed: this rank ran in another process"] + Array(repeating: "", count: stages.count - 1)
            lines.append(markdownRow(["\(r.method)", "\(r.ranks)", "\(r.frames)", r.resolution, "\(rank)"] + cells))
        }
    }
    return lines
}
