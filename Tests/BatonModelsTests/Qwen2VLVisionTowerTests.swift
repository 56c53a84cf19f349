import BatonCPU
import BatonModels
import BatonTensor
import Foundation
import XCTest

/// The vision tower on the CPU against transformers' fp32 output for the fixture's image and video.
final class Qwen2VLVisionTowerTests: XCTestCase {
    typealias Item = Qwen2VLFixtureItem

    func fixtureItems() throws -> (FixtureModel, [Item]) { try Qwen2VLFixtureItem.load() }

    func loadTower(_ directory: URL) throws -> Qwen2VisionTower {
        let config = try Qwen2VLConfig.load(directory: directory)
        let checkpoint = try SafetensorsCheckpoint(directory: directory)
        let names = try Qwen2VLWeightNames.detect(in: checkpoint.names)
        return try Qwen2VisionTower(
            config: config.vision, weights: .checkpoint(checkpoint), prefix: names.visualPrefix,
            backend: CPUBackend())
    }

    /// Largest |actual - expected| over the largest |expected|.
    func relativeMaxError(_ actual: [Float], _ expected: [Float]) -> Double {
        let scale = expected.map { abs(Double($0)) }.max() ?? 1
        return zip(actual, expected).map { abs(Double($0) - Double($1)) }.max()! / max(scale, 1e-30)
    }

    func testVisionTowerEqualsTransformersFP32ForImageAndVideo() throws {
        let (fixture, items) = try fixtureItems()
        let tower = try loadTower(fixture.directory)
        for item in items {
            let out = try tower(pixels: item.pixels, grids: [item.grid])
            XCTAssertEqual(out.shape, [item.grid.patchCount / 4, 64], item.name)
            let error = relativeMaxError(out.floats(), item.expected)
            print("\(item.name) grid \(item.grid): max error / max |expected| = \(error)")
            XCTAssertLessThan(error, 1e-4, "\(item.name): vision tower differs from transformers")
        }
    }

    func testImageAndVideoInOneCallEqualEachAlone() throws {
        let (fixture, items) = try fixtureItems()
        let tower = try loadTower(fixture.directory)
        let together = try tower(pixels: try CPUBackend().concatRows(items.map(\.pixels)), grids: items.map(\.grid))
        let alone = try items.flatMap { try tower(pixels: $0.pixels, grids: [$0.grid]).floats() }
        XCTAssertLessThan(relativeMaxError(together.floats(), alone), 1e-6)
    }

    /// The same tensors under transformers 5's names (`model.visual.*`) load into the same tower.
    func testTransformers5WeightNamesLoadTheSameTower() throws {
        let (fixture, items) = try fixtureItems()
        let directory = try Qwen2VLFixtureItem.transformers5Copy(of: fixture, self)
        let renamed = try loadTower(directory), original = try loadTower(fixture.directory)
        XCTAssertEqual(
            try renamed(pixels: items[1].pixels, grids: [items[1].grid]).floats(),
            try original(pixels: items[1].pixels, grids: [items[1].grid]).floats())
    }

    func testWrongPixelRowCountNamesTheGrid() throws {
        let (fixture, items) = try fixtureItems()
        let tower = try loadTower(fixture.directory)
        assertBatonError(["vision tower", "(1, 6, 8)", "[48, 1176]"]) {
            _ = try tower(pixels: items[1].pixels.rows(0..<40), grids: [items[0].grid])
        }
    }

    /// VIDEO.md section 4's example: a 644x364 frame pair is 26 x 46 patches, 13 x 23 merge units,
    /// 4 x 6 windows of 4 x 4 units (the last row and column partial), 299 units.
    func testWindowLayoutOfA644x364FramePair() {
        let layout = VisionLayout(grids: [VisionGrid(t: 1, h: 26, w: 46)], mergeSize: 2, windowUnits: 4)
        XCTAssertEqual(layout.mergedCount, 299)
        XCTAssertEqual(layout.frameSegments, [0, 1196])
        let sizes = zip(layout.windowSegments, layout.windowSegments.dropFirst()).map { Int($1 - $0) / 4 }
        XCTAssertEqual(sizes.count, 24)
        XCTAssertEqual(sizes.prefix(6), [16, 16, 16, 16, 16, 12], "first window row: five full windows, one 4x3")
        XCTAssertEqual(sizes.suffix(6), [4, 4, 4, 4, 4, 3], "last window row: one unit tall")
        XCTAssertEqual(Set(layout.patchOrder).count, 1196, "every patch exactly once")
        // The first window's first merge unit is unit 0; its second is unit 1; the fifth starts the next unit row.
        XCTAssertEqual(layout.patchOrder.prefix(8), [0, 1, 2, 3, 4, 5, 6, 7])
        XCTAssertEqual(layout.patchOrder[16], Int32(23 * 4))
        for (row, unit) in layout.mergedRestoreOrder.enumerated() {
            XCTAssertEqual(Int(layout.patchOrder[Int(unit) * 4]) / 4, row, "restore order inverts the window order")
        }
    }
}
