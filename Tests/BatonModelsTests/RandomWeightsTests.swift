import BatonCPU
@testable import BatonModels
import BatonParallel
import BatonTensor
import Foundation
import XCTest

final class RandomWeightsTests: XCTestCase {
    let backend = CPUBackend()

    private func finalHidden(_ config: ModelConfig, seed: UInt64, tokens: Int = 24) throws -> [Float] {
        let model = try LlamaModel(config: config, weights: .random(seed: seed), backend: backend)
        let ids = (0..<tokens).map { Int32(($0 * 7919) % config.vocabSize) }
        let pass = try ForwardPass(
            backend: backend, positions: (0..<Int32(tokens)).map { $0 },
            strategy: Dense(headDim: config.headDim), cache: model.makeCache(backend: backend))
        let hidden = try model.forward(tokens: try backend.int32Tensor(ids), pass)
        XCTAssertEqual(hidden.shape, [tokens, config.hiddenSize])
        let logits = try backend.floats(try model.logits(hidden.rows(tokens - 1..<tokens)))
        XCTAssertTrue(logits.allSatisfy(\.isFinite))
        return try backend.floats(hidden)
    }

    func testRandomTinyModelsGiveFiniteDistinctActivations() throws {
        for preset in [ModelPreset.tinyLlama, .tinyQwen2] {
            let hidden = try finalHidden(preset.config, seed: 1)
            XCTAssertTrue(hidden.allSatisfy(\.isFinite), preset.rawValue)
            XCTAssertGreaterThan(Set(hidden).count, hidden.count / 2, "\(preset.rawValue): activations vary")
        }
    }

    func testRandomActivationsStayFiniteAndNormalisedOverManyLayers() throws {
        var config = ModelPreset.tinyLlama.config
        config.numHiddenLayers = 48
        let hidden = try finalHidden(config, seed: 2)
        XCTAssertTrue(hidden.allSatisfy(\.isFinite))
        // The final RMSNorm (weight 1) leaves each row with unit root-mean-square.
        let row = hidden.prefix(config.hiddenSize)
        let rms = (row.reduce(0) { $0 + Double($1) * Double($1) } / Double(row.count)).squareRoot()
        XCTAssertEqual(rms, 1, accuracy: 1e-3)
    }

    func testRandomWeightsAreDeterministicInTheSeed() throws {
        let config = ModelPreset.tinyQwen2.config
        XCTAssertEqual(try finalHidden(config, seed: 9), try finalHidden(config, seed: 9))
        XCTAssertNotEqual(try finalHidden(config, seed: 9), try finalHidden(config, seed: 10))
    }

    func testRandomWeightsReportProgressUpToTheirBytes() throws {
        var calls: [(Int, Int)] = []
        let model = try LlamaModel(config: ModelPreset.tinyQwen2.config, weights: .random(seed: 1), backend: backend) {
            calls.append(($0, $1))
        }
        XCTAssertEqual(calls.first?.0, 0)
        XCTAssertEqual(calls.last?.0, model.weightByteCount)
        XCTAssertEqual(calls.last?.1, model.weightByteCount)
        XCTAssertEqual(calls.map(\.0), calls.map(\.0).sorted())
    }
}

/// Random tensors are generated and uploaded in row blocks; the values must not depend on the
/// block size (element i depends only on the seed, the tensor name and i).
final class RandomWeightBlockTests: XCTestCase {
    func testRandomTensorIsTheSameWhateverTheBlockSize() throws {
        let backend = CPUBackend()
        let spec = WeightSpec(name: "model.embed_tokens.weight", shape: [1000, 70])
        let whole = try RandomWeights.tensor(spec, seed: 4, dtype: .bf16, backend: backend)
        let blocked = try RandomWeights.tensor(spec, seed: 4, dtype: .bf16, backend: backend, blockElements: 7 * 70 + 3)
        XCTAssertEqual(try backend.floats(blocked), try backend.floats(whole))
        let values = try backend.floats(whole)
        let mean = values.reduce(0, +) / Float(values.count)
        let std = (values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Float(values.count)).squareRoot()
        XCTAssertEqual(mean, 0, accuracy: 1e-3)
        XCTAssertEqual(std, RandomWeights.standardDeviation, accuracy: 1e-3)
    }
}
