import BatonModels
import BatonTensor
import Foundation
import XCTest

/// The fixtures' config.json files (one legacy-style, one transformers 5) parse to what
/// transformers itself read from them (expected.json's `config`).
final class FixtureConfigTests: XCTestCase {
    private func assertParsesLikeTransformers(_ name: String) throws {
        let fixture = try FixtureModel(name)
        let config = try ModelConfig.load(directory: fixture.directory)
        let reference = fixture.config
        XCTAssertEqual(config.hiddenSize, reference["hidden_size"] as? Int)
        XCTAssertEqual(config.intermediateSize, reference["intermediate_size"] as? Int)
        XCTAssertEqual(config.numHiddenLayers, reference["num_hidden_layers"] as? Int)
        XCTAssertEqual(config.numAttentionHeads, reference["num_attention_heads"] as? Int)
        XCTAssertEqual(config.numKeyValueHeads, reference["num_key_value_heads"] as? Int)
        XCTAssertEqual(config.headDim, reference["head_dim"] as? Int)
        XCTAssertEqual(config.vocabSize, reference["vocab_size"] as? Int)
        XCTAssertEqual(config.maxPositionEmbeddings, reference["max_position_embeddings"] as? Int)
        XCTAssertEqual(config.rmsNormEps, reference["rms_norm_eps"] as? Double)
        XCTAssertEqual(config.tieWordEmbeddings, reference["tie_word_embeddings"] as? Bool)
        XCTAssertEqual(config.hasQKVBias, reference["qkv_bias"] as? Bool)
        XCTAssertEqual(config.torchDType, reference["weights_dtype"] as? String)
        let rope = try XCTUnwrap(reference["rope"] as? [String: Any])
        XCTAssertEqual(config.ropeTheta, rope["rope_theta"] as? Double)
        switch rope["rope_type"] as? String {
        case "llama3":
            XCTAssertEqual(
                config.ropeScaling,
                .llama3(
                    factor: try XCTUnwrap(rope["factor"] as? Double),
                    lowFrequencyFactor: try XCTUnwrap(rope["low_freq_factor"] as? Double),
                    highFrequencyFactor: try XCTUnwrap(rope["high_freq_factor"] as? Double),
                    originalMaxPositionEmbeddings: try XCTUnwrap(rope["original_max_position_embeddings"] as? Int)))
        default:
            XCTAssertNil(config.ropeScaling)
        }
    }

    func testLegacyStyleTinyLlamaConfigMatchesTransformers() throws { try assertParsesLikeTransformers("tiny-llama") }

    func testTransformers5StyleTinyQwen2ConfigMatchesTransformers() throws {
        try assertParsesLikeTransformers("tiny-qwen2")
    }

    func testShardedFixtureCheckpointOpensEveryShard() throws {
        let checkpoint = try SafetensorsCheckpoint(directory: try FixtureModel("tiny-llama").directory)
        XCTAssertEqual(checkpoint.files.count, 3)
        XCTAssertEqual(try checkpoint.require("model.embed_tokens.weight").dtype, .bf16)
        XCTAssertEqual(try checkpoint.require("lm_head.weight").shape, [1024, 64])
    }
}
