import BatonModels
import BatonTensor
import BatonVision

/// The images and videos of a request's prompt on a vision-language engine, as its ranks read
/// them: what M-RoPE needs of each item, and its patch rows per share of temporal units, so that a
/// rank of frame-parallel encoding preprocesses (for a planned video: decodes) only its own frames.
/// Each rank runs the vision tower over its share (`VisualShare`), the ranks exchange the
/// embeddings their rows need, and every pass takes its rows' M-RoPE positions (`RankVisualInput`).
public struct VisualPrefill: Sendable {
    /// The images and videos in prompt order (the order of their pad-token runs).
    public let items: [VisualItem]
    private let pixelSources: [ItemPixels]

    /// Where one item's patch rows come from.
    enum ItemPixels: Sendable {
        /// The processor's rows of the whole item, `[t·h·w, 1176]` f32: on the host, or on the
        /// device of the ranks that read them.
        case rows(Tensor)
        /// Made on demand: the patch rows `[units.count · h · w, 1176]` f32 (host) of temporal units
        /// `units`, so a rank decodes (a planned video) or resizes (the video benchmark's random
        /// frames) the frames of its units only.
        case units(@Sendable (_ units: Range<Int>) throws -> Tensor)
    }

    /// Preprocessed items. Pixels on the host serve ranks on any device; pixels on a device serve
    /// ranks on that device (one rank on the engine's device, say).
    public init(visuals: [BatonModels.VisualInput]) {
        items = visuals.map(\.item)
        pixelSources = visuals.map { .rows($0.pixels) }
    }

    /// Planned videos and preprocessed images (the CLI's `--video`/`--image`): every rank decodes
    /// and preprocesses only the frames of its own temporal units.
    public init(sources: [VisualSource]) {
        items = sources.map(\.item)
        pixelSources = sources.map { source in
            switch source {
            case .video(let plan): .units { try plan.preprocess(temporalUnits: $0) }
            case .image(let input): .rows(input.pixelValues)
            }
        }
    }

    /// Items whose patch rows `unitPixels[k](units)` makes for the temporal units a rank encodes
    /// (rows of the whole item at `units.lowerBound · h · w ..< units.upperBound · h · w`).
    public init(items: [VisualItem], unitPixels: [@Sendable (_ units: Range<Int>) throws -> Tensor]) {
        self.items = items
        pixelSources = unitPixels.map { .units($0) }
    }

    /// Patch rows of `share` on `backend`: its pieces' rows back to back, `[Σ t·h·w, 1176]` f32.
    func pixels(of share: VisualShare, backend: any Backend) throws -> Tensor {
        let parts = try share.pieces.map { try pixels(item: $0.item, units: $0.units, backend: backend) }
        return parts.count == 1 ? parts[0] : try backend.concatRows(parts)
    }

    /// Patch rows of temporal units `units` of item `item` on `backend`.
    private func pixels(item: Int, units: Range<Int>, backend: any Backend) throws -> Tensor {
        let grid = items[item].grid, perUnit = grid.h * grid.w
        switch pixelSources[item] {
        case .rows(let all):
            let rows = all.rows(units.lowerBound * perUnit..<units.upperBound * perUnit)
            if rows.device == backend.device { return rows }
            guard rows.device == .cpu else {
                throw BatonError.invalidArgument(
                    "visual item \(item): its pixels are on \(rows.device) but a rank "
                        + "runs on \(backend.device); give the pixels on the host")
            }
            return try backend.upload(rows)
        case .units(let make):
            return try backend.upload(make(units))
        }
    }
}

extension VisualSource {
    /// What M-RoPE needs of this item.
    public var item: VisualItem {
        switch self {
        case .video(let plan): VisualItem(.video, grid: plan.grid, secondPerGridT: plan.secondPerGridT)
        case .image(let input): VisualItem(input.kind, grid: input.grid, secondPerGridT: input.secondPerGridT)
        }
    }
}
