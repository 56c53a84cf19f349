import BatonTensor
import BatonVision
import Foundation
import XCTest

/// `InternVLProcessorConfig.load`: the two `preprocessor_config.json` styles InternVL3 checkpoints
/// ship, the vision config's image size when there is no file, and one error line per bad field.
final class InternVLConfigTests: XCTestCase {
    private func directory(with json: String?) throws -> URL {
        let directory = try temporaryDirectory()
        if let json {
            try Data(json.utf8).write(to: directory.appendingPathComponent("preprocessor_config.json"))
        }
        return directory
    }

    private func loadError(_ json: String, imageSize: Int? = nil) throws -> BatonError? {
        let directory = try directory(with: json)
        do {
            _ = try InternVLProcessorConfig.load(directory: directory, imageSize: imageSize)
            return nil
        } catch let error as BatonError {
            XCTAssertTrue(error.message.contains("preprocessor_config.json"), "names the file: \(error)")
            return error
        }
    }

    func testDefaultsAreTheReleasedCheckpointsAndGive256TokensPerTile() throws {
        let config = InternVLProcessorConfig()
        XCTAssertEqual(config.tileSize, 448)
        XCTAssertEqual(config.patchesPerSide, 32)
        XCTAssertEqual(config.rowsPerTile, 1024)
        XCTAssertEqual(config.rowSize, 588)
        XCTAssertEqual(config.tokensPerTile, 256)
        XCTAssertEqual(config.grid(tiles: 3), VisionGrid(t: 3, h: 32, w: 32))
        XCTAssertEqual(config.grid(tiles: 3).tokenCount, 768)
        XCTAssertEqual(try InternVLProcessorConfig.load(directory: try directory(with: nil), imageSize: nil), config)
    }

    func testWithoutAFileTheVisionImageSizeSetsTheTile() throws {
        let config = try InternVLProcessorConfig.load(directory: try directory(with: nil), imageSize: 224)
        XCTAssertEqual(config.tileSize, 224)
        XCTAssertEqual(config.tokensPerTile, 64)
        XCTAssertThrowsError(try InternVLProcessorConfig.load(directory: try directory(with: nil), imageSize: 450))
    }

    /// What transformers' conversion script writes (GotOcr2ImageProcessorFast, `crop_to_patches` false,
    /// which InternVLProcessor overrides on every call, so tiling stays on).
    func testHFNativeGotOcr2FileIsRead() throws {
        let json = """
            {"crop_size": null, "crop_to_patches": false, "data_format": "channels_first", "do_normalize": true,
             "image_mean": [0.485, 0.456, 0.406], "image_processor_type": "GotOcr2ImageProcessorFast",
             "image_std": [0.229, 0.224, 0.225], "max_patches": 6, "min_patches": 2, "resample": 3,
             "rescale_factor": 0.00392156862745098, "size": {"height": 448, "width": 448}}
            """
        let config = try InternVLProcessorConfig.load(directory: try directory(with: json), imageSize: 448)
        XCTAssertEqual(config, InternVLProcessorConfig(minTiles: 2, maxTiles: 6))
    }

    /// The original checkpoints' CLIP-style file: integer sizes.
    func testOriginalCLIPStyleFileIsRead() throws {
        let json = """
            {"crop_size": 448, "do_center_crop": true, "feature_extractor_type": "CLIPFeatureExtractor",
             "image_mean": [0.5, 0.5, 0.5], "image_std": [0.25, 0.25, 0.25], "resample": 3, "size": 448}
            """
        let config = try InternVLProcessorConfig.load(directory: try directory(with: json), imageSize: nil)
        XCTAssertEqual(config.tileSize, 448)
        XCTAssertEqual(config.imageMean, [0.5, 0.5, 0.5])
        XCTAssertEqual(config.imageStd, [0.25, 0.25, 0.25])
        XCTAssertEqual(config.maxTiles, 12)
        let shortest = try InternVLProcessorConfig.load(
            directory: try directory(with: #"{"size": {"shortest_edge": 336}}"#), imageSize: nil)
        XCTAssertEqual(shortest.tileSize, 336)
    }

    func testBadFieldsAreOneErrorNamingTheFileAndField() throws {
        let cases: [(json: String, field: String)] = [
            (#"{"image_std": [0.2, 0, 0.2]}"#, "image_std"),
            (#"{"image_mean": [0.5, 0.5]}"#, "image_mean"),
            (#"{"image_mean": "imagenet"}"#, "image_mean"),
            (#"{"size": "big"}"#, "size"),
            (#"{"size": {"height": 448}}"#, "width"),
            (#"{"size": {"height": 448, "width": 224}}"#, "size"),
            (#"{"size": 448, "crop_size": 336}"#, "crop_size"),
            (#"{"size": 100}"#, "size 100"),
            (#"{"max_patches": 0}"#, "max_patches"),
            (#"{"min_patches": 0}"#, "min_patches"),
            (#"{"min_patches": 1.5}"#, "min_patches"),
            (#"{"crop_to_patches": "yes"}"#, "crop_to_patches"),
            ("{not json", "JSON")
        ]
        for (json, field) in cases {
            let error = try loadError(json)
            XCTAssertNotNil(error, json)
            XCTAssertTrue(error?.message.contains(field) == true, "\(json): \(String(describing: error))")
        }
        let mismatch = try loadError(#"{"size": {"height": 384, "width": 384}}"#, imageSize: 448)
        XCTAssertTrue(mismatch?.message.contains("384") == true && mismatch?.message.contains("448") == true)
    }
}
