import BatonCPU
import BatonModels
import BatonParallel
import BatonTensor
import Foundation
import XCTest

/// The decoder on CPUBackend with Dense attention against transformers' fp32 reference.
final class LlamaModelTests: XCTestCase {
    let backend = CPUBackend()

    /// Prefill `ids` at positions `start..<start+T` through `cache` -> logits `[T, V]` values.
    private func logits(_ model: LlamaModel, _ ids: [Int32], start: Int = 0, cache: KVCache) throws -> [Float] {
        let positions = (start..<start + ids.count).map(Int32.init)
        let pass = try ForwardPass(
            backend: backend, positions: positions, strategy: Dense(headDim: model.config.headDim),
            cache: cache)
        let hidden = try model.forward(tokens: try backend.int32Tensor(ids), pass)
        return try backend.floats(try model.logits(hidden))
    }

    private func assertLogitsMatchTransformers(_ name: String) throws {
        let fixture = try FixtureModel(name)
        var reported = 0
        let model = try LlamaModel.load(directory: fixture.directory, backend: backend) { done, total in
            XCTAssertLessThanOrEqual(done, total)
            reported = done
        }
        XCTAssertEqual(reported, model.weightByteCount, "progress ends at the bytes loaded")
        for reference in try fixture.logits() {
            let ours = try logits(model, reference.inputIds, cache: model.makeCache(backend: backend))
            XCTAssertEqual(ours.count, reference.values.count)
            var maxAbs: Float = 0, squaredError = 0.0, squaredNorm = 0.0
            for (a, b) in zip(ours, reference.values) {
                maxAbs = max(maxAbs, abs(a - b))
                squaredError += Double(a - b) * Double(a - b)
                squaredNorm += Double(b) * Double(b)
            }
            let relativeNorm = (squaredError / squaredNorm).squareRoot()
            if ProcessInfo.processInfo.environment["BATON_TEST_VERBOSE"] != nil {
                print("\(name) \(reference.name): max abs diff \(maxAbs), relative norm \(relativeNorm)")
            }
            XCTAssertLessThan(relativeNorm, 1e-5, "\(name) \(reference.name)")
            XCTAssertLessThan(maxAbs, 5e-4, "\(name) \(reference.name)")
        }
    }

    func testTinyLlamaBF16ShardedLogitsMatchTransformersFP32() throws {
        try assertLogitsMatchTransformers("tiny-llama")
    }

    func testTinyQwen2BiasTiedLogitsMatchTransformersFP32() throws { try assertLogitsMatchTransformers("tiny-qwen2") }

    /// Prefill, then one token at a time through the KV cache; the ids must equal transformers'
    /// greedy ids, which it computed by full recomputation at every step.
    private func assertGreedyMatchesTransformers(_ name: String) throws {
        let fixture = try FixtureModel(name)
        let model = try LlamaModel.load(directory: fixture.directory, backend: backend)
        let vocabulary = model.config.vocabSize
        for reference in try fixture.generations() {
            let cache = model.makeCache(backend: backend)
            var last = try logits(model, reference.promptIds, cache: cache).suffix(vocabulary)
            var generated: [Int32] = []
            for step in 0..<reference.newIds.count {
                let next = Int32(last.indices.max { last[$0] < last[$1] }! - last.startIndex)
                generated.append(next)
                if step + 1 < reference.newIds.count {
                    last = try logits(model, [next], start: reference.promptIds.count + step, cache: cache)[...]
                }
            }
            XCTAssertEqual(generated, reference.newIds, "\(name) \(reference.name)")
            XCTAssertEqual(cache.length(layer: 0), reference.promptIds.count + reference.newIds.count - 1)
        }
    }

    func testTinyLlamaGreedyDecodeThroughKVCacheEqualsTransformers() throws {
        try assertGreedyMatchesTransformers("tiny-llama")
    }

    func testTinyQwen2GreedyDecodeThroughKVCacheEqualsTransformers() throws {
        try assertGreedyMatchesTransformers("tiny-qwen2")
    }

    func testLogitsInRowBlocksEqualOneBlock() throws {
        var config = ModelPreset.tinyLlama.config
        config.numHiddenLayers = 1
        let model = try LlamaModel(config: config, weights: .random(seed: 3), backend: backend)
        let hidden = try backend.tensor(
            (0..<9 * 64).map { Float(($0 * 37) % 17) / 17 - 0.5 }, shape: [9, 64], dtype: .f32)
        let whole = try backend.floats(try model.logits(hidden))
        model.logitsBlockBytes = 4 * config.vocabSize * 4  // blocks of 4 rows: 4 + 4 + 1
        let blocked = try backend.floats(try model.logits(hidden))
        XCTAssertEqual(blocked.count, 9 * config.vocabSize)
        // BLAS may sum in another order for another row count: equal to rounding.
        let maxDifference = zip(blocked, whole).map { abs($0 - $1) }.max() ?? .infinity
        XCTAssertLessThan(maxDifference, 1e-5)
        XCTAssertGreaterThan(whole.map(abs).max() ?? 0, 1e-2, "logits are not all zero")
    }

    func testMLPInRowBlocksEqualsOneBlock() throws {
        let fixture = try FixtureModel("tiny-llama")
        let model = try LlamaModel.load(directory: fixture.directory, backend: backend)
        let ids = try XCTUnwrap(fixture.logits().last).inputIds
        let whole = try logits(model, ids, cache: model.makeCache(backend: backend))
        model.mlpRowBlock = 5  // 37 rows -> 8 blocks, the last of 2 rows
        let blocked = try logits(model, ids, cache: model.makeCache(backend: backend))
        let maxDifference = zip(blocked, whole).map { abs($0 - $1) }.max() ?? .infinity
        XCTAssertLessThan(maxDifference, 1e-5)
    }

    /// The fused q/k/v and gate/up weights (what a device loads) give the separate projections'
    /// logits, on both fixtures (tiny-qwen2 has q/k/v biases, which are fused too).
    func testFusedProjectionsGiveTheSeparateLogits() throws {
        for name in ["tiny-llama", "tiny-qwen2"] {
            let fixture = try FixtureModel(name)
            let config = try ModelConfig.load(directory: fixture.directory)
            let separate = try LlamaModel(
                config: config, weights: .directory(fixture.directory), backend: backend,
                fuseProjections: false)
            let fused = try LlamaModel(
                config: config, weights: .directory(fixture.directory), backend: backend,
                fuseProjections: true)
            let ids = try XCTUnwrap(fixture.logits().last).inputIds
            let expected = try logits(separate, ids, cache: separate.makeCache(backend: backend))
            let actual = try logits(fused, ids, cache: fused.makeCache(backend: backend))
            let maxDifference = zip(actual, expected).map { abs($0 - $1) }.max() ?? .infinity
            XCTAssertLessThan(maxDifference, 1e-4, name)
            XCTAssertGreaterThan(expected.map(abs).max() ?? 0, 1e-2, "\(name): logits are not all zero")
        }
    }
}
