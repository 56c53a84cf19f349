import BatonModels
import BatonTensor
import BatonVision
import Foundation

/// What identifies the vision tower's output for one image or video: the file's content (a digest
/// of its bytes, so a renamed or re-uploaded copy still hits and an edited file misses), whether it
/// was read as an image or a video, and the sampling and size options that decide its frames and
/// patches. One cache serves one model, so the model and its processor settings are not part of it.
public struct VisualCacheKey: Hashable, Sendable {
    public var contentDigest: String
    public var kind: BatonVision.VisualInput.Kind
    public var options: VideoOptions

    public init(contentDigest: String, kind: BatonVision.VisualInput.Kind, options: VideoOptions) {
        self.contentDigest = contentDigest
        self.kind = kind
        self.options = options
    }
}

/// One image or video as the language model reads it, without its pixels: the tower's output rows
/// and what M-RoPE needs (grid, seconds per temporal unit).
public struct EncodedVisual: Sendable {
    public var item: VisualItem
    /// The tower's output over this item alone: `[tokens, D]` act dtype of the device that encoded
    /// it, on the host (any rank on any device can take its rows).
    public var embeddings: Tensor
    /// Sampled frames (a video) or 0 (an image); reported when the prompt does not fit.
    public var frameCount: Int

    public init(item: VisualItem, embeddings: Tensor, frameCount: Int) {
        self.item = item
        self.embeddings = embeddings
        self.frameCount = frameCount
    }
}

/// The vision tower's output for recently seen images and videos, so that follow-up questions on
/// the same file skip decoding and encoding. Bounded by the bytes of the embeddings it holds; the
/// least recently used entries go first. Safe to use from any thread.
public final class VisualEmbeddingCache: @unchecked Sendable {
    public let capacityBytes: Int
    private let lock = NSLock()
    private var entries: [VisualCacheKey: (visual: EncodedVisual, lastUse: UInt64)] = [:]
    private var useClock: UInt64 = 0
    private var heldBytes = 0

    /// `capacityBytes` 0 keeps nothing.
    public init(capacityBytes: Int) {
        self.capacityBytes = max(capacityBytes, 0)
    }

    /// Bytes of embeddings held.
    public var bytes: Int { lock.withLock { heldBytes } }
    public var count: Int { lock.withLock { entries.count } }

    /// The entry for `key`, now the most recently used; nil when absent.
    public func lookup(_ key: VisualCacheKey) -> EncodedVisual? {
        lock.withLock {
            guard var entry = entries[key] else { return nil }
            useClock += 1
            entry.lastUse = useClock
            entries[key] = entry
            return entry.visual
        }
    }

    /// Keeps `visual` under `key`, dropping least recently used entries until it fits. An entry
    /// larger than the whole cache is not kept.
    public func insert(_ visual: EncodedVisual, for key: VisualCacheKey) {
        let size = visual.embeddings.byteCount
        guard size <= capacityBytes else { return }
        lock.withLock {
            if let old = entries.removeValue(forKey: key) { heldBytes -= old.visual.embeddings.byteCount }
            // Entries are few (each is a whole image or video), so a scan for the oldest is enough.
            while heldBytes + size > capacityBytes,
                let oldest = entries.min(by: { $0.value.lastUse < $1.value.lastUse })
            {
                entries[oldest.key] = nil
                heldBytes -= oldest.value.visual.embeddings.byteCount
            }
            useClock += 1
            entries[key] = (visual, useClock)
            heldBytes += size
        }
    }
}

/// Collects the vision tower's output rows of a request's items as its ranks encode them (each
/// rank its share of the temporal units, possibly on different devices), copied to the host, so
/// that whole items can be cached after the request. Thread-safe: ranks record concurrently.
public final class VisualEmbeddingRecorder: @unchecked Sendable {
    private let lock = NSLock()
    /// Items to record (index in the prompt's items -> its token count); others are ignored.
    private let tokenCounts: [Int: Int]
    private var rows: [Int: Tensor] = [:]
    private var recordedRows: [Int: Int] = [:]

    /// Records the items at `itemIndices` of a prompt whose items are `items`.
    public init(items: [VisualItem], recording itemIndices: [Int], mergeUnit: Int) {
        tokenCounts = Dictionary(
            uniqueKeysWithValues: itemIndices.map { ($0, items[$0].grid.patchCount / mergeUnit) })
    }

    /// Rows `[n, D]` (any device) of item `item` starting at its row `firstRow`.
    func record(item: Int, firstRow: Int, rows part: Tensor, backend: any Backend) throws {
        guard let total = tokenCounts[item], part.shape.rows > 0 else { return }
        let host = try backend.download(part)
        let width = host.shape.rowSize, rowBytes = width * host.dtype.byteSize
        try lock.withLock {
            let whole = rows[item] ?? Tensor.zeros(Shape([total, width]), dtype: host.dtype)
            try require(
                whole.dtype == host.dtype && whole.shape.rowSize == width
                    && firstRow + host.shape.rows <= total,
                "visual item \(item): rows \(firstRow)..<\(firstRow + host.shape.rows) \(host.dtype) do not fit "
                    + "its \(total) rows \(whole.dtype)")
            (whole.hostPointer + firstRow * rowBytes).copyMemory(from: host.hostPointer, byteCount: host.byteCount)
            rows[item] = whole
            recordedRows[item, default: 0] += host.shape.rows
        }
    }

    /// Items whose every row was recorded -> their rows `[tokens, D]` on the host.
    public func completedItems() -> [Int: Tensor] {
        lock.withLock { rows.filter { recordedRows[$0.key] == tokenCounts[$0.key] } }
    }
}
