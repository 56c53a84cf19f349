import BatonModels
import BatonTensor
import Foundation
import XCTest

/// M-RoPE positions against transformers 4.51's `get_rope_index` (the fixture) and VIDEO.md's example.
final class Qwen2VLMRoPETests: XCTestCase {
    func testPositionsEqualTransformers451ForTheFixturePrompts() throws {
        let fixture = try FixtureModel("tiny-qwen2-vl")
        let config = try Qwen2VLConfig.load(directory: fixture.directory)
        let pixels = try XCTUnwrap(fixture.expected["pixels"] as? [String: [String: Any]])
        func item(_ name: String) throws -> VisualItem {
            let g = try XCTUnwrap(pixels[name]?["grid_thw"] as? [Int])
            return VisualItem(
                kind: name == "image" ? .image : .video, grid: VisionGrid(t: g[0], h: g[1], w: g[2]),
                secondsPerGrid: 1)
        }
        let prompts = try XCTUnwrap(fixture.expected["prompts"] as? [[String: Any]])
        XCTAssertEqual(prompts.count, 3)
        for prompt in prompts {
            let name = try XCTUnwrap(prompt["name"] as? String)
            let tokens = try XCTUnwrap(prompt["input_ids"] as? [Int]).map(Int32.init)
            let items = try XCTUnwrap(prompt["items"] as? [String]).map(item)
            let expected = try XCTUnwrap(prompt["positions"] as? [[Int]]).map { $0.map(Int32.init) }
            let (rows, delta) = try config.ropePositions(tokens: tokens, items: items)
            XCTAssertEqual(rows, expected, "\(name): positions")
            XCTAssertEqual(delta, try XCTUnwrap(prompt["rope_delta"] as? Int), "\(name): rope delta")
        }
    }

    /// VIDEO.md section 5: 15 text tokens, a video of T=3 and 2x2 merge units at 2 fps (1 s per unit,
    /// 2 tokens per second), then text: t in {15, 17, 19}, h and w in {15, 16}, text resumes at 20.
    func testVideoExampleAdvancesTimeByTwoPerUnitAndTextResumesAfterTheLargest() throws {
        let (text, pad) = (Int32(7), Int32(99))
        let tokens = [Int32](repeating: text, count: 15) + [Int32](repeating: pad, count: 12) + [text, text]
        let (rows, delta) = try MRoPE.positions(
            tokens: tokens, items: [VisualItem(kind: .video, grid: VisionGrid(t: 3, h: 4, w: 4), secondsPerGrid: 1)],
            imageTokenId: 98, videoTokenId: 99, mergeSize: 2, tokensPerSecond: 2)
        XCTAssertEqual(Array(rows[0][0..<15]), (0..<15).map(Int32.init))
        XCTAssertEqual(Array(rows[0][15..<27]), [15, 15, 15, 15, 17, 17, 17, 17, 19, 19, 19, 19])
        XCTAssertEqual(Array(rows[1][15..<27]), [15, 15, 16, 16, 15, 15, 16, 16, 15, 15, 16, 16])
        XCTAssertEqual(Array(rows[2][15..<27]), [15, 16, 15, 16, 15, 16, 15, 16, 15, 16, 15, 16])
        XCTAssertEqual(rows.map { Array($0[27...]) }, [[20, 21], [20, 21], [20, 21]])
        XCTAssertEqual(delta, 22 - 29)
        XCTAssertEqual(MRoPE.decodingPositions(first: 29, count: 2, ropeDelta: delta), [[22, 23], [22, 23], [22, 23]])
    }

    func testImagesHaveNoTemporalStepAndTextOnlyIsArange() throws {
        let tokens: [Int32] = [1, 98, 98, 98, 98, 98, 98, 2]
        let (rows, delta) = try MRoPE.positions(
            tokens: tokens, items: [VisualItem(kind: .image, grid: VisionGrid(t: 1, h: 4, w: 6))],
            imageTokenId: 98, videoTokenId: 99, mergeSize: 2, tokensPerSecond: 2)
        XCTAssertEqual(rows, [[0, 1, 1, 1, 1, 1, 1, 4], [0, 1, 1, 1, 2, 2, 2, 4], [0, 1, 2, 3, 1, 2, 3, 4]])
        XCTAssertEqual(delta, 5 - 8)
        let (text, none) = try MRoPE.positions(
            tokens: [5, 6, 7], items: [], imageTokenId: 98, videoTokenId: 99,
            mergeSize: 2, tokensPerSecond: 2)
        XCTAssertEqual(text, [[0, 1, 2], [0, 1, 2], [0, 1, 2]])
        XCTAssertEqual(none, 0)
    }

    /// 4 fps sampling (0.5 s per unit) with 2 tokens per second: one temporal step per unit, kept
    /// fractional in fp32 (transformers 4.52-4.57 truncated it to 0 first: VIDEO.md 9).
    func testFractionalSecondsPerGridKeepsItsFraction() throws {
        let tokens = [Int32](repeating: 99, count: 3)
        let (rows, _) = try MRoPE.positions(
            tokens: tokens, items: [VisualItem(kind: .video, grid: VisionGrid(t: 3, h: 2, w: 2), secondsPerGrid: 0.5)],
            imageTokenId: 98, videoTokenId: 99, mergeSize: 2, tokensPerSecond: 2)
        XCTAssertEqual(rows[0], [0, 1, 2])
    }

    func testPadRunsThatDoNotMatchTheItemsAreErrors() {
        let video = VisualItem(kind: .video, grid: VisionGrid(t: 1, h: 4, w: 4))
        assertBatonError(["M-RoPE", "needs 4 pad tokens", "has 3"]) {
            _ = try MRoPE.positions(
                tokens: [1, 99, 99, 99, 2], items: [video], imageTokenId: 98, videoTokenId: 99,
                mergeSize: 2, tokensPerSecond: 2)
        }
        assertBatonError(["M-RoPE", "more image/video pad runs"]) {
            _ = try MRoPE.positions(
                tokens: [98], items: [], imageTokenId: 98, videoTokenId: 99, mergeSize: 2,
                tokensPerSecond: 2)
        }
        assertBatonError(["M-RoPE", "<|image_pad|>"]) {
            _ = try MRoPE.positions(
                tokens: [98, 98, 98, 98], items: [video], imageTokenId: 98, videoTokenId: 99,
                mergeSize: 2, tokensPerSecond: 2)
        }
        assertBatonError(["M-RoPE", "2 images/videos given", "for 1"]) {
            _ = try MRoPE.positions(
                tokens: [99, 99, 99, 99], items: [video, video], imageTokenId: 98, videoTokenId: 99,
                mergeSize: 2, tokensPerSecond: 2)
        }
    }
}
