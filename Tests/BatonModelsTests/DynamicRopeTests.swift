import BatonCPU
import BatonParallel
import BatonTensor
import Foundation
import XCTest

@testable import BatonModels

/// Tests/Fixtures/dynamic-rope (scripts/make_dynamic_rope_fixture.py): transformers' dynamic NTK RoPE
/// on the tiny-qwen2 checkpoint with max_position_embeddings 32 and factor 2.
struct DynamicRopeFixture {
    struct Case {
        let name: String
        let promptIds: [Int32]
        let newIds: [Int32]
        /// Each forward's largest position + 1: the prompt's length, then every decoding step's.
        let ropeLengths: [Int]
        let prefillRows: [Int]
        /// `[prefillRows.count, V]` and `[newIds.count, V]` (step 0: the prefill's last row).
        let prefillLogits: [Float]
        let stepLogits: [Float]
    }

    let checkpoint: URL
    let maxPositionEmbeddings: Int
    let factor: Double
    let cases: [Case]

    init() throws {
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures")
        checkpoint = fixtures.appendingPathComponent("tiny-qwen2")
        let data = try Data(contentsOf: fixtures.appendingPathComponent("dynamic-rope/expected.json"))
        let expected = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        let overrides = try XCTUnwrap(expected["config_overrides"] as? [String: Any])
        maxPositionEmbeddings = try XCTUnwrap(overrides["max_position_embeddings"] as? Int)
        let scaling = try XCTUnwrap(overrides["rope_scaling"] as? [String: Any])
        XCTAssertEqual(scaling["rope_type"] as? String, "dynamic")
        factor = try XCTUnwrap(scaling["factor"] as? Double)
        func floats(_ entry: [String: Any], _ key: String) throws -> [Float] {
            let bytes = try XCTUnwrap(Data(base64Encoded: try XCTUnwrap(entry[key] as? String)))
            return bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
        }
        cases = try XCTUnwrap(expected["cases"] as? [[String: Any]]).map { entry in
            Case(
                name: try XCTUnwrap(entry["name"] as? String),
                promptIds: try XCTUnwrap(entry["prompt_ids"] as? [Int]).map(Int32.init),
                newIds: try XCTUnwrap(entry["new_ids"] as? [Int]).map(Int32.init),
                ropeLengths: try XCTUnwrap(entry["rope_lengths"] as? [Int]),
                prefillRows: try XCTUnwrap(entry["prefill_logit_rows"] as? [Int]),
                prefillLogits: try floats(entry, "prefill_logits_b64"), stepLogits: try floats(entry, "step_logits_b64")
            )
        }
    }

    /// tiny-qwen2's config with the fixture's changes.
    func config() throws -> ModelConfig {
        var config = try ModelConfig.load(directory: checkpoint)
        config.maxPositionEmbeddings = maxPositionEmbeddings
        config.ropeScaling = .dynamic(factor: factor)
        return config
    }
}

final class DynamicRopeTests: XCTestCase {
    let backend = CPUBackend()

    func testDynamicScalingParsesFromBothKeyStylesAndEncodesBack() throws {
        let common = """
            "architectures": ["Qwen2ForCausalLM"], "hidden_size": 64, "intermediate_size": 128,
            "num_hidden_layers": 1, "num_attention_heads": 4, "vocab_size": 10, "max_position_embeddings": 32768
            """
        // InternVL3's language model (transformers 4.x): both `type` and `rope_type`.
        let legacyScaling = #""rope_scaling": {"factor": 2.0, "rope_type": "dynamic", "type": "dynamic"}"#
        let legacy = try ModelConfig.parse(Data("{\(common), \"rope_theta\": 1000000.0, \(legacyScaling)}".utf8))
        XCTAssertEqual(legacy.ropeScaling, .dynamic(factor: 2))
        XCTAssertEqual(legacy.ropeTheta, 1_000_000)
        let parameters = #""rope_parameters": {"rope_type": "dynamic", "factor": 2.0, "rope_theta": 1000000.0}"#
        let current = try ModelConfig.parse(Data("{\(common), \(parameters)}".utf8))
        XCTAssertEqual(current, legacy)
        XCTAssertEqual(try ModelConfig.parse(JSONEncoder().encode(legacy)), legacy)
        XCTAssertEqual(legacy.contextLength, 65_536)
        XCTAssertEqual(legacy.contextLengthOrigin, "max_position_embeddings (32768) x dynamic rope factor 2.0 = 65536")
        XCTAssertTrue(legacy.ropeScaling!.description.contains("dynamic NTK (factor 2.0"))

        assertBatonError(["rope_scaling.factor", "at least 1", "0.5"]) {
            _ = try ModelConfig.parse(
                Data("{\(common), \"rope_scaling\": {\"type\": \"dynamic\", \"factor\": 0.5}}".utf8))
        }
        assertBatonError(["rope_scaling.factor", "required", "dynamic"]) {
            _ = try ModelConfig.parse(Data("{\(common), \"rope_scaling\": {\"type\": \"dynamic\"}}".utf8))
        }
    }

    /// transformers' `_compute_dynamic_ntk_parameters`, written out: plain frequencies up to
    /// max_position_embeddings, then base * (factor L / max - (factor - 1))^(d / (d - 2)).
    func testDynamicFrequenciesArePlainUpToTheLimitThenFollowTheNTKBase() throws {
        var config = ModelPreset.tinyQwen2.config  // head dim 16, theta 1e6
        let plain = config.inverseFrequencies()
        config.maxPositionEmbeddings = 32
        config.ropeScaling = .dynamic(factor: 2)
        XCTAssertEqual(config.inverseFrequencies(), plain, "no length: the frequencies a model starts with")
        XCTAssertEqual(config.inverseFrequencies(ropeLength: 32), plain)
        XCTAssertNil(config.dynamicRopeTheta(ropeLength: 32))
        let base = 1_000_000 * pow(2.0 * 50 / 32 - 1, 16.0 / 14)
        XCTAssertEqual(try XCTUnwrap(config.dynamicRopeTheta(ropeLength: 50)), base, accuracy: base * 1e-15)
        for (i, frequency) in config.inverseFrequencies(ropeLength: 50).enumerated() {
            let expected = 1 / pow(base, Double(2 * i) / 16)
            XCTAssertEqual(frequency, expected, accuracy: expected * 1e-14, "frequency \(i)")
        }
        XCTAssertLessThan(config.inverseFrequencies(ropeLength: 50)[4], plain[4] * 0.8, "a real change")
    }

    /// Prefill (every rank's pass carries the whole prompt's length), then decoding through the KV
    /// cache with each step at its own length: prefill rows, every step's logits and the greedy ids
    /// equal transformers' (whose cached keys also keep the frequencies they were rotated with).
    func testTinyQwen2DynamicRopeLogitsAndCachedGreedyDecodeMatchTransformers() throws {
        let fixture = try DynamicRopeFixture()
        let model = try LlamaModel(config: fixture.config(), weights: .directory(fixture.checkpoint), backend: backend)
        let vocabulary = model.config.vocabSize
        func logits(_ ids: [Int32], start: Int, ropeLength: Int, cache: KVCache) throws -> [Float] {
            let pass = try ForwardPass(
                backend: backend, positions: (start..<start + ids.count).map(Int32.init),
                strategy: Dense(headDim: model.config.headDim), cache: cache, ropeLength: ropeLength)
            return try backend.floats(model.logits(model.forward(tokens: backend.int32Tensor(ids), pass)))
        }
        func assertClose(_ ours: ArraySlice<Float>, _ theirs: ArraySlice<Float>, _ label: String) {
            let maxAbs = zip(ours, theirs).map { abs($0 - $1) }.max() ?? .infinity
            XCTAssertEqual(ours.count, theirs.count, label)
            XCTAssertLessThan(maxAbs, 5e-4, label)
        }
        for reference in fixture.cases {
            let (prompt, cache) = (reference.promptIds, model.makeCache(backend: backend))
            XCTAssertEqual(reference.ropeLengths.first, prompt.count)
            let prefill = try logits(prompt, start: 0, ropeLength: prompt.count, cache: cache)
            for (i, row) in reference.prefillRows.enumerated() {
                assertClose(
                    prefill[row * vocabulary..<(row + 1) * vocabulary],
                    reference.prefillLogits[i * vocabulary..<(i + 1) * vocabulary], "\(reference.name) row \(row)")
            }
            var step = Array(prefill.suffix(vocabulary)), generated: [Int32] = []
            for index in reference.newIds.indices {
                assertClose(
                    step[...], reference.stepLogits[index * vocabulary..<(index + 1) * vocabulary],
                    "\(reference.name) step \(index)")
                generated.append(Int32(step.indices.max { step[$0] < step[$1] }!))
                guard index + 1 < reference.newIds.count else { break }
                let position = prompt.count + index
                XCTAssertEqual(reference.ropeLengths[index + 1], position + 1)
                step = try logits([generated[index]], start: position, ropeLength: position + 1, cache: cache)
            }
            XCTAssertEqual(generated, reference.newIds, reference.name)
        }
    }

    /// Two passes of one request, as two ranks (or a chunked prefill) run it: each carries the whole
    /// prompt's length, so the result is the one-pass prefill's. A first pass at its own rows' length
    /// (25 <= 32: the plain frequencies) would rotate its keys differently.
    func testPassesOverPartsOfARequestUseTheWholeLength() throws {
        let fixture = try DynamicRopeFixture()
        let model = try LlamaModel(config: fixture.config(), weights: .directory(fixture.checkpoint), backend: backend)
        let reference = try XCTUnwrap(fixture.cases.first { $0.name == "long_prompt" })
        let (prompt, vocabulary) = (reference.promptIds, model.config.vocabSize)
        XCTAssertEqual(reference.prefillRows, [24, 49])
        func lastLogits(firstPassLength: Int) throws -> (first: [Float], second: [Float]) {
            let cache = model.makeCache(backend: backend)
            var rows: [[Float]] = []
            for (range, ropeLength) in [(0..<25, firstPassLength), (25..<50, prompt.count)] {
                let pass = try ForwardPass(
                    backend: backend, positions: range.map(Int32.init), strategy: Dense(headDim: model.config.headDim),
                    cache: cache, ropeLength: ropeLength)
                let hidden = try model.forward(tokens: backend.int32Tensor(Array(prompt[range])), pass)
                rows.append(try backend.floats(model.logits(hidden.rows(24..<25))))
            }
            return (rows[0], rows[1])
        }
        let whole = try lastLogits(firstPassLength: prompt.count)
        for (ours, theirs) in [
            (whole.first, reference.prefillLogits[0..<vocabulary]),
            (whole.second, reference.prefillLogits[vocabulary...])
        ] {
            XCTAssertLessThan(zip(ours, theirs).map { abs($0 - $1) }.max() ?? .infinity, 5e-4)
        }
        let local = try lastLogits(firstPassLength: 25)
        XCTAssertGreaterThan(zip(local.second, whole.second).map { abs($0 - $1) }.max() ?? 0, 0.1)
    }

    func testDynamicRopeNeedsThePassLengthAndRefusesMRoPE() throws {
        let fixture = try DynamicRopeFixture()
        let model = try LlamaModel(config: fixture.config(), weights: .directory(fixture.checkpoint), backend: backend)
        let pass = try ForwardPass(
            backend: backend, positions: [0, 1], strategy: Dense(headDim: 16), cache: model.makeCache(backend: backend))
        assertBatonError(["dynamic rope scaling", "ropeLength"]) {
            _ = try model.forward(tokens: backend.int32Tensor([3, 4]), pass)
        }
        assertBatonError(["dynamic rope scaling", "M-RoPE"]) {
            _ = try LlamaModel(
                config: fixture.config(), weights: .directory(fixture.checkpoint), backend: backend,
                mropeSections: [2, 3, 3])
        }
    }

    /// One upload per length: the layers and passes of one length share a tensor, lengths within
    /// max_position_embeddings share the plain one, and only the last few lengths stay.
    func testFrequenciesAreUploadedOncePerLengthAndOnlyRecentLengthsAreKept() throws {
        var config = ModelPreset.tinyQwen2.config
        config.maxPositionEmbeddings = 32
        config.ropeScaling = .dynamic(factor: 2)
        let rotary = try RotaryFrequencies(config: config, backend: backend)
        XCTAssertTrue(try rotary.inverseFrequencies(ropeLength: 20).storage === rotary.base.storage)
        XCTAssertTrue(try rotary.inverseFrequencies(ropeLength: 32).storage === rotary.base.storage)
        let first = try rotary.inverseFrequencies(ropeLength: 50)
        XCTAssertTrue(try rotary.inverseFrequencies(ropeLength: 50).storage === first.storage)
        XCTAssertEqual(try backend.floats(first), config.inverseFrequencies(ropeLength: 50).map(Float.init))
        for length in 51...(50 + RotaryFrequencies.capacity) { _ = try rotary.inverseFrequencies(ropeLength: length) }
        XCTAssertEqual(rotary.keptLengths, Array(51...(50 + RotaryFrequencies.capacity)))
        XCTAssertThrowsError(try rotary.inverseFrequencies(ropeLength: nil))
    }
}
