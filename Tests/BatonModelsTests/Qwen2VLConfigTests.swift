import BatonModels
import BatonTensor
import Foundation
import XCTest

final class Qwen2VLConfigTests: XCTestCase {
    func fixtureConfigData() throws -> Data {
        let fixture = try FixtureModel("tiny-qwen2-vl")
        return try Data(contentsOf: fixture.directory.appendingPathComponent("config.json"))
    }

    func testParsesReleasedFlatConfigOfTheFixture() throws {
        let config = try Qwen2VLConfig.parse(try fixtureConfigData())
        XCTAssertEqual(config.text.architecture, .qwen2)
        XCTAssertEqual(config.text.hiddenSize, 64)
        XCTAssertEqual(config.text.headDim, 16)
        XCTAssertEqual(config.text.numKeyValueHeads, 2)
        XCTAssertEqual(config.text.ropeTheta, 1_000_000)
        XCTAssertNil(config.text.ropeScaling, "mrope is the default RoPE plus sections")
        XCTAssertTrue(config.text.tieWordEmbeddings)
        XCTAssertEqual(config.mropeSection, [2, 3, 3])
        XCTAssertEqual(config.vision.depth, 3)
        XCTAssertEqual(config.vision.headDim, 16)
        XCTAssertEqual(config.vision.patchInputSize, 1176)
        XCTAssertEqual(config.vision.windowMergeUnits, 2)
        XCTAssertEqual(config.vision.fullAttentionBlockIndexes, [1])
        XCTAssertEqual(config.vision.tokensPerSecond, 2)
        let ids = try XCTUnwrap(FixtureModel("tiny-qwen2-vl").expected["token_ids"] as? [String: Int])
        XCTAssertEqual(config.imageTokenId, ids["<|image_pad|>"])
        XCTAssertEqual(config.videoTokenId, ids["<|video_pad|>"])
        XCTAssertEqual(config.visionStartTokenId, ids["<|vision_start|>"])
        XCTAssertEqual(config.visionEndTokenId, ids["<|vision_end|>"])
    }

    /// transformers 5 nests the text keys under `text_config` and names the rope block
    /// `rope_parameters` (holding rope_theta): the same model.
    func testTransformers5NestedTextConfigParsesToTheSameModel() throws {
        let flat = try XCTUnwrap(JSONSerialization.jsonObject(with: try fixtureConfigData()) as? [String: Any])
        var nested: [String: Any] = [
            "architectures": ["Qwen2_5_VLForConditionalGeneration"], "model_type": "qwen2_5_vl",
            "vision_config": flat["vision_config"]!, "image_token_id": flat["image_token_id"]!,
            "video_token_id": flat["video_token_id"]!,
            "vision_start_token_id": flat["vision_start_token_id"]!,
            "vision_end_token_id": flat["vision_end_token_id"]!, "dtype": "bfloat16"
        ]
        var text = flat.filter {
            !["architectures", "model_type", "vision_config", "rope_scaling", "rope_theta"].contains($0.key)
        }
        text["model_type"] = "qwen2_5_vl_text"
        text["rope_parameters"] = ["rope_type": "default", "mrope_section": [2, 3, 3], "rope_theta": 1_000_000.0]
        nested["text_config"] = text
        let parsed = try Qwen2VLConfig.parse(try JSONSerialization.data(withJSONObject: nested))
        XCTAssertEqual(parsed, try Qwen2VLConfig.parse(try fixtureConfigData()))
    }

    func testMissingOrWrongMRoPESectionIsOneClearError() throws {
        var object = try XCTUnwrap(JSONSerialization.jsonObject(with: try fixtureConfigData()) as? [String: Any])
        object["rope_scaling"] = ["type": "mrope"]
        assertBatonError(["cfg.json", "mrope_section"]) {
            _ = try Qwen2VLConfig.parse(try JSONSerialization.data(withJSONObject: object), file: "cfg.json")
        }
        object["rope_scaling"] = ["type": "mrope", "mrope_section": [2, 3, 4]]
        assertBatonError(["cfg.json", "mrope_section", "head_dim / 2 = 8"]) {
            _ = try Qwen2VLConfig.parse(try JSONSerialization.data(withJSONObject: object), file: "cfg.json")
        }
        object["rope_scaling"] = ["type": "yarn", "mrope_section": [2, 3, 3], "factor": 4]
        assertBatonError(["cfg.json", "yarn"]) {
            _ = try Qwen2VLConfig.parse(try JSONSerialization.data(withJSONObject: object), file: "cfg.json")
        }
    }

    func testTextOnlyArchitectureIsNotAVisionModel() throws {
        let data = Data(#"{"architectures": ["Qwen2ForCausalLM"], "hidden_size": 8}"#.utf8)
        XCTAssertFalse(Qwen2VLConfig.describes(data))
        assertBatonError(["cfg.json", "Qwen2_5_VLForConditionalGeneration"]) {
            _ = try Qwen2VLConfig.parse(data, file: "cfg.json")
        }
        XCTAssertTrue(Qwen2VLConfig.describes(try fixtureConfigData()))
    }

    func testWeightNamingIsDetectedForReleasedAndTransformers5Checkpoints() throws {
        let released = try Qwen2VLWeightNames.detect(in: ["visual.patch_embed.proj.weight", "model.embed_tokens.weight"]
        )
        XCTAssertEqual(released, .released)
        XCTAssertEqual(
            released.language("model.layers.3.self_attn.q_proj.weight"), "model.layers.3.self_attn.q_proj.weight")
        let saved = try Qwen2VLWeightNames.detect(in: [
            "model.visual.patch_embed.proj.weight",
            "model.language_model.embed_tokens.weight"
        ])
        XCTAssertEqual(saved, .transformers5)
        XCTAssertEqual(saved.language("model.norm.weight"), "model.language_model.norm.weight")
        XCTAssertEqual(saved.language("lm_head.weight"), "lm_head.weight")
        assertBatonError(["no vision tower", "visual.patch_embed.proj.weight"]) {
            _ = try Qwen2VLWeightNames.detect(in: ["model.embed_tokens.weight"])
        }
    }
}
