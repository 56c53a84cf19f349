import BatonModels
import BatonTensor
import Foundation
import XCTest

final class ModelConfigTests: XCTestCase {
    /// Llama 3.1 8B's config.json as transformers 4.x writes it.
    static let llama31Config = """
        {"architectures": ["LlamaForCausalLM"], "attention_bias": false, "bos_token_id": 128000,
         "eos_token_id": [128001, 128008, 128009], "hidden_act": "silu", "hidden_size": 4096,
         "intermediate_size": 14336, "max_position_embeddings": 131072, "mlp_bias": false, "model_type": "llama",
         "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8, "pretraining_tp": 1,
         "rms_norm_eps": 1e-05, "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
         "original_max_position_embeddings": 8192, "rope_type": "llama3"}, "rope_theta": 500000.0,
         "tie_word_embeddings": false, "torch_dtype": "bfloat16", "transformers_version": "4.43.0.dev0",
         "use_cache": true, "vocab_size": 128256}
        """

    func testLlama31ConfigParsesToThePreset() throws {
        let config = try ModelConfig.parse(Data(Self.llama31Config.utf8))
        XCTAssertEqual(config, ModelPreset.llama31_8b.config)
        XCTAssertEqual(config.headDim, 128)
        XCTAssertEqual(config.weightDType, .bf16)
        XCTAssertFalse(config.hasQKVBias)
    }

    func testTransformers5RopeParametersStyleEqualsRopeScalingStyle() throws {
        let v5 = """
            {"architectures": ["LlamaForCausalLM"], "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009],
             "hidden_act": "silu", "hidden_size": 4096, "intermediate_size": 14336, "max_position_embeddings": 131072,
             "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
             "rms_norm_eps": 1e-05, "rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
             "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
             "tie_word_embeddings": false, "dtype": "bfloat16", "vocab_size": 128256}
            """
        XCTAssertEqual(try ModelConfig.parse(Data(v5.utf8)), try ModelConfig.parse(Data(Self.llama31Config.utf8)))
    }

    func testDefaultRopeParametersGiveThetaAndNoScaling() throws {
        let text = """
            {"architectures": ["Qwen2ForCausalLM"], "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
             "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100, "rms_norm_eps": 1e-6,
             "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0}, "tie_word_embeddings": true,
             "sliding_window": null, "use_sliding_window": false, "eos_token_id": 7}
            """
        let config = try ModelConfig.parse(Data(text.utf8))
        XCTAssertEqual(config.ropeTheta, 1_000_000)
        XCTAssertNil(config.ropeScaling)
        XCTAssertEqual(config.architecture, .qwen2)
        XCTAssertTrue(config.hasQKVBias)
        XCTAssertFalse(config.hasOutputBias)
        XCTAssertEqual(config.eosTokenIds, [7])
        XCTAssertEqual(config.bosTokenIds, [])
        XCTAssertEqual(config.headDim, 16)
    }

    func testLinearRopeScalingWithLegacyTypeKeyAndDefaultKVHeads() throws {
        let text = """
            {"architectures": ["MistralForCausalLM"], "hidden_size": 64, "intermediate_size": 128,
             "num_hidden_layers": 1, "num_attention_heads": 4, "vocab_size": 10, "rope_theta": 10000,
             "rope_scaling": {"type": "linear", "factor": 4.0}, "sliding_window": 4096}
            """
        let config = try ModelConfig.parse(Data(text.utf8))
        XCTAssertEqual(config.ropeScaling, .linear(factor: 4))
        XCTAssertEqual(config.numKeyValueHeads, 4)
        XCTAssertEqual(config.slidingWindow, 4096)
        XCTAssertEqual(config.architecture, .mistral)
    }

    func testEveryPresetValidates() throws {
        for preset in ModelPreset.allCases { XCTAssertNoThrow(try preset.config.validate(), preset.rawValue) }
        XCTAssertEqual(try ModelPreset.named("qwen2.5-14b").config.numHiddenLayers, 48)
        assertBatonError(["llama-3.1-8b"]) { _ = try ModelPreset.named("gpt-5") }
    }

    func testUnknownArchitectureNamesFileFieldAndSupportedList() {
        let text = Self.llama31Config.replacingOccurrences(of: "LlamaForCausalLM", with: "GemmaForCausalLM")
        assertBatonError([
            "my/config.json", "architectures", "GemmaForCausalLM", "LlamaForCausalLM",
            "MistralForCausalLM", "Qwen2ForCausalLM"
        ]) {
            _ = try ModelConfig.parse(Data(text.utf8), file: "my/config.json")
        }
    }

    func testUnsupportedRopeTypeAndActivationAreRejected() {
        let yarn = Self.llama31Config.replacingOccurrences(of: "\"llama3\"", with: "\"yarn\"")
        assertBatonError(["rope_scaling.rope_type", "yarn"]) { _ = try ModelConfig.parse(Data(yarn.utf8)) }
        let gelu = Self.llama31Config.replacingOccurrences(of: "\"silu\"", with: "\"gelu\"")
        assertBatonError(["hidden_act", "gelu"]) { _ = try ModelConfig.parse(Data(gelu.utf8)) }
    }

    func testInconsistentHeadsAndMissingFieldsAreRejected() {
        let badHeads = Self.llama31Config.replacingOccurrences(
            of: "\"num_key_value_heads\": 8",
            with: "\"num_key_value_heads\": 5")
        assertBatonError(["config.json", "num_attention_heads (32)", "num_key_value_heads (5)"]) {
            _ = try ModelConfig.parse(Data(badHeads.utf8))
        }
        let noHidden = Self.llama31Config.replacingOccurrences(of: "\"hidden_size\": 4096,", with: "")
        assertBatonError(["hidden_size", "missing"]) { _ = try ModelConfig.parse(Data(noHidden.utf8)) }
        let wrongType = Self.llama31Config.replacingOccurrences(
            of: "\"vocab_size\": 128256", with: "\"vocab_size\": \"big\"")
        assertBatonError(["vocab_size"]) { _ = try ModelConfig.parse(Data(wrongType.utf8)) }
        assertBatonError(["config.json", "JSON"]) { _ = try ModelConfig.parse(Data("[1, 2".utf8)) }
    }

    func testMissingDirectoryAndMissingConfigAreReported() throws {
        let missing = URL(fileURLWithPath: "/nonexistent/baton-model")
        assertBatonError(["/nonexistent/baton-model", "does not exist"]) {
            _ = try ModelConfig.load(directory: missing)
        }
        let empty = try makeTemporaryDirectory(self)
        assertBatonError(["config.json", "not found"]) { _ = try ModelConfig.load(directory: empty) }
    }

    func testLlama3InverseFrequenciesFollowTheWavelengthFormula() {
        let config = ModelPreset.llama31_8b.config
        let frequencies = config.inverseFrequencies()
        XCTAssertEqual(frequencies.count, 64)
        // The transformers rule, written out independently: keep short wavelengths, divide long
        // ones by the factor, and blend linearly in 1/wavelength between.
        let (factor, low, high, original) = (8.0, 1.0, 4.0, 8192.0)
        var kept = 0, divided = 0, blended = 0
        for i in 0..<64 {
            let base = pow(500_000.0, -Double(2 * i) / 128)
            let wavelength = 2 * Double.pi / base
            let expected: Double
            if wavelength < original / high {
                expected = base; kept += 1
            } else if wavelength > original / low {
                expected = base / factor; divided += 1
            } else {
                let t = (original / wavelength - low) / (high - low)
                expected = (1 - t) * base / factor + t * base; blended += 1
            }
            XCTAssertEqual(frequencies[i], expected, accuracy: expected * 1e-15, "frequency \(i)")
        }
        XCTAssertTrue(
            kept > 0 && divided > 0 && blended > 0, "all three bands exercised: \(kept) \(divided) \(blended)")
        XCTAssertEqual(frequencies[0], 1)
        XCTAssertEqual(frequencies[63], pow(500_000.0, -126.0 / 128) / 8, accuracy: 1e-20)
    }

    func testLinearScalingDividesEveryFrequency() {
        var config = ModelPreset.tinyQwen2.config
        let plain = config.inverseFrequencies()
        config.ropeScaling = .linear(factor: 4)
        XCTAssertEqual(config.inverseFrequencies(), plain.map { $0 / 4 })
        XCTAssertEqual(plain[1], pow(1_000_000.0, -2.0 / 16), accuracy: 1e-15)
    }

    func testEncodedPresetsParseBackUnchanged() throws {
        for preset in ModelPreset.allCases {
            let data = try JSONEncoder().encode(preset.config)
            XCTAssertEqual(try ModelConfig.parse(data), preset.config, preset.rawValue)
        }
    }
}
