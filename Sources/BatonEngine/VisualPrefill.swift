import BatonModels
import BatonParallel
import BatonTensor
import BatonVision
import Dispatch

/// The images and videos of a request's prompt on a vision-language engine, as its ranks read
/// them: what M-RoPE needs of each item, and its patch rows per share of temporal units, so that a
/// rank of frame-parallel encoding preprocesses (for a planned video: decodes) only its own frames.
/// Each rank runs the vision tower over its share (`VisualShare`), the ranks exchange the
/// embeddings their rows need, and every pass takes its rows' M-RoPE positions (`RankVisualInput`).
/// Items encoded before (`VisualSource.encoded`, the server's cache) skip the tower: a rank takes
/// their rows of the cached output.
public struct VisualPrefill: Sendable {
    /// The images and videos in prompt order (the order of their pad-token runs).
    public let items: [VisualItem]
    private let pixelSources: [ItemPixels]
    /// Where the ranks leave the tower's output of the items they encode, to be cached.
    let recorder: VisualEmbeddingRecorder?

    /// Where one item's patch rows come from.
    enum ItemPixels: Sendable {
        /// The processor's rows of the whole item, `[t·h·w, 1176]` f32: on the host, or on the
        /// device of the ranks that read them.
        case rows(Tensor)
        /// Made on demand: the patch rows `[units.count · h · w, 1176]` f32 (host) of temporal units
        /// `units`, so a rank decodes (a planned video) or resizes (the video benchmark's random
        /// frames) the frames of its units only.
        case units(@Sendable (_ units: Range<Int>) throws -> Tensor)
        /// No pixels: the tower's output over the whole item, `[t·h·w/4, D]` on the host.
        case embeddings(Tensor)
    }

    /// Preprocessed items. Pixels on the host serve ranks on any device; pixels on a device serve
    /// ranks on that device (one rank on the engine's device, say).
    public init(visuals: [BatonModels.VisualInput]) {
        items = visuals.map(\.item)
        pixelSources = visuals.map { .rows($0.pixels) }
        recorder = nil
    }

    /// Planned videos, preprocessed images (the CLI's `--video`/`--image`) and encoded items: every
    /// rank decodes and preprocesses only the frames of its own temporal units. `recorder`, when
    /// given, receives the tower's output of the items it records.
    public init(sources: [VisualSource], recorder: VisualEmbeddingRecorder? = nil) {
        items = sources.map(\.item)
        pixelSources = sources.map { source in
            switch source {
            case .video(let plan): .units { try plan.preprocess(temporalUnits: $0) }
            case .image(let input): .rows(input.pixelValues)
            case .encoded(let visual): .embeddings(visual.embeddings)
            }
        }
        self.recorder = recorder
    }

    /// Items whose patch rows `unitPixels[k](units)` makes for the temporal units a rank encodes
    /// (rows of the whole item at `units.lowerBound · h · w ..< units.upperBound · h · w`).
    public init(items: [VisualItem], unitPixels: [@Sendable (_ units: Range<Int>) throws -> Tensor]) {
        self.items = items
        pixelSources = unitPixels.map { .units($0) }
        recorder = nil
    }

    /// The tower's output over `share` on `model`'s backend, `[share.rows.count, D]` act: the
    /// pieces of encoded items taken from their embeddings, the others through one tower call.
    /// `timed` wraps the making of the patch rows (`.preprocess`) and the tower (`.vision`).
    func embeddings(
        of share: VisualShare, model: VisionLanguageModel,
        timed: (VisualStageTimes.Stage, () throws -> Tensor) throws -> Tensor = { try $1() }
    ) throws -> Tensor {
        let backend = model.backend, mergeUnit = model.config.mergeUnit
        let toEncode = share.pieces.filter { !isEncoded($0.item) }
        var encoded: Tensor?
        if !toEncode.isEmpty {
            let chunks = Self.chunks(
                toEncode, count: BatonSettings.current.visionChunks, minimumRows: Self.minimumChunkRows)
            encoded = try encodeOverlapped(chunks, model: model, timed: timed)
        }
        var segments: [Tensor] = [], encodedRow = 0
        for piece in share.pieces {
            let rows = piece.grid.patchCount / mergeUnit
            let firstRow = piece.units.lowerBound * piece.grid.h * piece.grid.w / mergeUnit
            if case .embeddings(let all) = pixelSources[piece.item] {
                let own = try backend.upload(all.rows(firstRow..<firstRow + rows))
                segments.append(
                    own.dtype == backend.activationDType ? own : try backend.cast(own, to: backend.activationDType))
            } else if let encoded {
                let own = encoded.rows(encodedRow..<encodedRow + rows)
                encodedRow += rows
                try recorder?.record(item: piece.item, firstRow: firstRow, rows: own, backend: backend)
                segments.append(own)
            }
        }
        return segments.count == 1 ? segments[0] : try backend.concatRows(segments)
    }

    /// The tower over `chunks` in order, one call each, `[rows, D]` act: while the tower encodes chunk
    /// k, a worker thread makes chunk k+1's patch rows on the host (a planned clip's frames decoded
    /// and resized, random frames resized), so decoding overlaps encoding. Only host work leaves this
    /// thread (a device backend is driven from its rank's thread). No attention crosses a temporal
    /// unit, so the chunks' rows equal the one call's to rounding. Stages: `.preprocess` records what
    /// the tower did not hide (waiting for a chunk's rows, their upload), `.vision` the tower.
    private func encodeOverlapped(
        _ chunks: [[VisualShare.Piece]], model: VisionLanguageModel,
        timed: (VisualStageTimes.Stage, () throws -> Tensor) throws -> Tensor
    ) throws -> Tensor {
        let backend = model.backend
        var pending = hostPixels(chunks[0])
        var outputs: [Tensor] = []
        for (index, chunk) in chunks.enumerated() {
            let ready = pending
            let pixels = try timed(.preprocess) {
                let parts = try zip(chunk, ready.wait()).map { piece, host in
                    try host.map { try backend.upload($0) }
                        ?? self.pixels(item: piece.item, units: piece.units, backend: backend)
                }
                return parts.count == 1 ? parts[0] : try backend.concatRows(parts)
            }
            if index + 1 < chunks.count { pending = hostPixels(chunks[index + 1]) }
            outputs.append(try timed(.vision) { try model.vision(pixels: pixels, grids: chunk.map(\.grid)) })
        }
        return outputs.count == 1 ? outputs[0] : try backend.concatRows(outputs)
    }

    /// Starts making the host patch rows of `chunk`'s pieces made on demand (`.units`) on a worker
    /// thread; pieces whose rows exist already are nil (sliced on the rank's thread).
    private func hostPixels(_ chunk: [VisualShare.Piece]) -> PendingPixels {
        let makers: [(@Sendable () throws -> Tensor)?] = chunk.map { piece in
            guard case .units(let make) = pixelSources[piece.item] else { return nil }
            let units = piece.units
            return { try make(units) }
        }
        return PendingPixels(makers)
    }

    /// The fewest patch rows a chunk of `encodeOverlapped` holds (tests lower it to run the pipeline
    /// on tiny fixtures).
    nonisolated(unsafe) public static var minimumChunkRows = 16384

    /// `pieces` (each some temporal units of one item) cut into at most `count` chunks of about
    /// equal unit counts, in order, a piece split where a chunk ends; one chunk when `count` is 1
    /// or a chunk would hold fewer than `minimumRows` patch rows (the tower's GEMMs stay large).
    public static func chunks(_ pieces: [VisualShare.Piece], count: Int, minimumRows: Int) -> [[VisualShare.Piece]] {
        let units = pieces.reduce(0) { $0 + $1.units.count }
        let rowsPerUnit = pieces.map { $0.grid.h * $0.grid.w }.max() ?? 1
        let parts = max(1, min(count, units, units * rowsPerUnit / max(minimumRows, 1)))
        guard parts > 1 else { return [pieces] }
        var chunks: [[VisualShare.Piece]] = [], current: [VisualShare.Piece] = []
        var target = balancedSplit(units, parts: parts).map(\.count)[...], left = target.popFirst()!
        for piece in pieces {
            var start = piece.units.lowerBound
            while start < piece.units.upperBound {
                let taken = min(left, piece.units.upperBound - start)
                current.append(
                    VisualShare.Piece(
                        item: piece.item, units: start..<start + taken,
                        grid: VisionGrid(t: taken, h: piece.grid.h, w: piece.grid.w)))
                start += taken
                left -= taken
                if left == 0 {
                    chunks.append(current)
                    current = []
                    left = target.popFirst() ?? 0
                }
            }
        }
        if !current.isEmpty { chunks.append(current) }
        return chunks
    }

    /// Whether item `item` comes as the tower's output already.
    private func isEncoded(_ item: Int) -> Bool {
        if case .embeddings = pixelSources[item] { return true }
        return false
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
        case .embeddings:
            throw BatonError.invalidArgument("visual item \(item) is encoded already: it has no pixels")
        }
    }
}

extension VisualSource {
    /// What M-RoPE needs of this item.
    public var item: VisualItem {
        switch self {
        case .video(let plan): VisualItem(.video, grid: plan.grid, secondPerGridT: plan.secondsPerTemporalUnit)
        case .image(let input): VisualItem(input.kind, grid: input.grid, secondPerGridT: input.secondPerGridT)
        case .encoded(let visual): visual.item
        }
    }
}

/// Host patch rows being made on a worker thread, one entry per piece (nil: made on the rank's
/// thread instead).
final class PendingPixels: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var result: Result<[Tensor?], Error> = .success([])

    init(_ makers: [(@Sendable () throws -> Tensor)?]) {
        guard makers.contains(where: { $0 != nil }) else {
            result = .success(makers.map { _ in nil })
            done.signal()
            return
        }
        DispatchQueue.global().async { [self] in
            result = Result { try makers.map { try $0?() } }
            done.signal()
        }
    }

    /// The rows, once made (rethrows the maker's error).
    func wait() throws -> [Tensor?] {
        done.wait()
        done.signal()
        return try result.get()
    }
}
