import BatonCPU
import BatonModels
import BatonTensor
import BatonVision
import XCTest

@testable import BatonEngine

/// The encoder cache's bound (bytes, least recently used out) and the recorder that assembles an
/// item's rows from the shares ranks encode.
final class VisualEmbeddingCacheTests: XCTestCase {
    /// An image item of `tokens` rows of 8 f32 values (32 bytes a row), row r filled with r.
    func visual(tokens: Int) -> EncodedVisual {
        let values = (0..<tokens).flatMap { row in [Float](repeating: Float(row), count: 8) }
        return EncodedVisual(
            item: VisualItem(kind: .image, grid: VisionGrid(t: 1, h: 2, w: 2 * tokens)),
            embeddings: Tensor(values, shape: [tokens, 8]), frameCount: 0)
    }

    func key(_ name: String) -> VisualCacheKey {
        VisualCacheKey(contentDigest: name, kind: .image, options: VideoOptions())
    }

    func testLeastRecentlyUsedEntryGoesFirstAndTheBytesStayWithinTheBound() {
        let cache = VisualEmbeddingCache(capacityBytes: 1000)  // room for three entries of 320 bytes
        cache.insert(visual(tokens: 10), for: key("a"))
        cache.insert(visual(tokens: 10), for: key("b"))
        XCTAssertNotNil(cache.lookup(key("a")))  // now b is the least recently used
        cache.insert(visual(tokens: 10), for: key("c"))
        XCTAssertEqual(cache.bytes, 960)
        cache.insert(visual(tokens: 10), for: key("d"))
        XCTAssertNil(cache.lookup(key("b")), "b, inserted after a but used before it, went first")
        XCTAssertEqual(cache.bytes, 960)
        XCTAssertNotNil(cache.lookup(key("a")))  // now c is the least recently used
        cache.insert(visual(tokens: 10), for: key("e"))
        XCTAssertNil(cache.lookup(key("c")), "then c")
        for name in ["a", "d", "e"] { XCTAssertNotNil(cache.lookup(key(name)), name) }
        XCTAssertEqual(cache.count, 3)
    }

    func testAnEntryLargerThanTheCacheIsNotKeptAndReplacingAKeyCountsItOnce() {
        let cache = VisualEmbeddingCache(capacityBytes: 1000)
        cache.insert(visual(tokens: 40), for: key("huge"))  // 1,280 bytes
        XCTAssertNil(cache.lookup(key("huge")))
        XCTAssertEqual(cache.bytes, 0)
        cache.insert(visual(tokens: 10), for: key("a"))
        cache.insert(visual(tokens: 5), for: key("a"))
        XCTAssertEqual(cache.bytes, 160)
        XCTAssertEqual(cache.count, 1)
        XCTAssertEqual(VisualEmbeddingCache(capacityBytes: 0).lookup(key("a"))?.embeddings.shape.rows, nil)
    }

    /// Two ranks' shares of a 2-unit video, recorded in either order, make its whole rows; the
    /// item not asked for is not recorded.
    func testRecorderAssemblesAnItemFromItsSharesInAnyOrder() throws {
        let backend = CPUBackend()
        let video = VisualItem(kind: .video, grid: VisionGrid(t: 2, h: 2, w: 4))  // 2 units of 2 tokens
        let recorder = VisualEmbeddingRecorder(
            items: [video, video], recording: [0], mergeUnit: 4)
        let whole = visual(tokens: 4).embeddings
        try recorder.record(item: 0, firstRow: 2, rows: whole.rows(2..<4), backend: backend)
        XCTAssertTrue(recorder.completedItems().isEmpty, "half the rows are not an item")
        try recorder.record(item: 1, firstRow: 0, rows: whole.rows(0..<2), backend: backend)
        try recorder.record(item: 0, firstRow: 0, rows: whole.rows(0..<2), backend: backend)
        let completed = recorder.completedItems()
        XCTAssertEqual(Array(completed.keys), [0])
        XCTAssertEqual(try XCTUnwrap(completed[0]).floats(), whole.floats())
    }
}
