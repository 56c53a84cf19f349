import BatonCPU
import BatonModels
import BatonTensor
import Foundation
import XCTest

final class RetainingHeadsTests: XCTestCase {
    let backend = CPUBackend()
    // H = 4, Hkv = 1, d = 16 (tiny-qwen2): [q; k; v] is 96 wide; a hidden width of 8 keeps it small.
    let config = ModelPreset.tinyQwen2.config
    let hidden = 8

    private func values(_ count: Int, _ salt: Int) -> [Float] {
        (0..<count).map { Float((($0 + salt) * 7919) % 97) / 97 - 0.5 }
    }

    private var width: Int { (config.numAttentionHeads + 2 * config.numKeyValueHeads) * config.headDim }

    private func headFile(layers: Range<Int>, fc2Rows: Int? = nil) throws -> String {
        let kv = config.numKeyValueHeads
        var entries: [SafetensorsFixture.Entry] = []
        for layer in layers {
            let p = "model.layers.\(layer).self_attn.retaining_head."
            entries += [
                SafetensorsFixture.f32(p + "fc1.weight", [hidden, width], values(hidden * width, layer)),
                SafetensorsFixture.f32(p + "fc1.bias", [hidden], values(hidden, layer + 1)),
                SafetensorsFixture.f32(
                    p + "fc2.weight", [fc2Rows ?? kv, hidden], values((fc2Rows ?? kv) * hidden, layer + 2)),
                SafetensorsFixture.f32(p + "fc2.bias", [fc2Rows ?? kv], values(fc2Rows ?? kv, layer + 3))
            ]
        }
        let url = try makeTemporaryDirectory(self).appendingPathComponent("retaining_heads.safetensors")
        try SafetensorsFixture.bytes(entries).write(to: url)
        return url.path
    }

    func testScoresEqualFc2SiluFc1OfConcatenatedProjections() throws {
        let heads = try RetainingHeads(
            file: try headFile(layers: 0..<config.numHiddenLayers), config: config, backend: backend)
        XCTAssertEqual(heads.hiddenSize, hidden)
        let (tokens, kv, d) = (5, config.numKeyValueHeads, config.headDim)
        let q = values(tokens * config.numAttentionHeads * d, 11), k = values(tokens * kv * d, 12),
            v = values(tokens * kv * d, 13)
        let scores = try heads.scores(
            layer: 1,
            preRotary: .separate(
                query: try backend.tensor(q, shape: [tokens, config.numAttentionHeads * d], dtype: .f32),
                key: try backend.tensor(k, shape: [tokens, kv * d], dtype: .f32),
                value: try backend.tensor(v, shape: [tokens, kv * d], dtype: .f32)))
        XCTAssertEqual(scores.shape, [tokens, kv])
        XCTAssertEqual(scores.dtype, .f32)
        let ours = try backend.floats(scores)
        // Float64 reference of fc2(silu(fc1(x))) with layer 1's weights.
        let (w1, b1, w2, b2) = (values(hidden * width, 1), values(hidden, 2), values(kv * hidden, 3), values(kv, 4))
        let qWidth = config.numAttentionHeads * d
        for t in 0..<tokens {
            let x = Array(
                q[t * qWidth..<(t + 1) * qWidth] + k[t * kv * d..<(t + 1) * kv * d] + v[t * kv * d..<(t + 1) * kv * d])
            let h = (0..<hidden).map { j -> Double in
                let z = Double(b1[j]) + (0..<width).reduce(0.0) { $0 + Double(w1[j * width + $1]) * Double(x[$1]) }
                return z / (1 + exp(-z))
            }
            for c in 0..<kv {
                let expected = Double(b2[c]) + (0..<hidden).reduce(0.0) { $0 + Double(w2[c * hidden + $1]) * h[$1] }
                XCTAssertEqual(Double(ours[t * kv + c]), expected, accuracy: 1e-5, "token \(t) head \(c)")
            }
        }
    }

    func testMissingLayerIsReported() throws {
        let path = try headFile(layers: 0..<1)
        assertBatonError([path, "layer 1", "fc1"]) {
            _ = try RetainingHeads(file: path, config: config, backend: backend)
        }
    }

    func testWrongFc2ShapeIsReported() throws {
        let path = try headFile(layers: 0..<config.numHiddenLayers, fc2Rows: 3)
        assertBatonError([path, "fc2.weight", "expected [1, 8]", "found [3, 8]"]) {
            _ = try RetainingHeads(file: path, config: config, backend: backend)
        }
    }

    func testRandomHeadsGiveFiniteScoresPerKVHead() throws {
        let heads = try RetainingHeads.random(config: config, backend: backend, seed: 5, hiddenSize: 32)
        let tokens = 7, d = config.headDim, kv = config.numKeyValueHeads
        let scores = try heads.scores(
            layer: 0,
            preRotary: .separate(
                query: try backend.tensor(
                    values(tokens * config.numAttentionHeads * d, 1), shape: [tokens, config.numAttentionHeads * d],
                    dtype: .f32),
                key: try backend.tensor(values(tokens * kv * d, 2), shape: [tokens, kv * d], dtype: .f32),
                value: try backend.tensor(values(tokens * kv * d, 3), shape: [tokens, kv * d], dtype: .f32)))
        XCTAssertEqual(scores.shape, [tokens, kv])
        XCTAssertTrue(try backend.floats(scores).allSatisfy(\.isFinite))
    }
}
