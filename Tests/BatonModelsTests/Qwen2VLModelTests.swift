import BatonCPU
import BatonModels
import BatonParallel
import BatonTensor
import Foundation
import XCTest

/// The whole Qwen2.5-VL (vision tower, spliced embeddings, M-RoPE language model) on the CPU with
/// Dense attention against transformers' fp32 logits and greedy tokens for the fixture's prompts.
final class Qwen2VLModelTests: XCTestCase {
    let backend = CPUBackend()

    struct Prompt {
        let name: String
        let tokens: [Int32]
        let visuals: [VisualInput]
        let logitRows: [Int]
        let logits: [Float]
        let greedy: [Int32]
    }

    func prompts() throws -> (FixtureModel, [Prompt]) {
        let (fixture, items) = try Qwen2VLFixtureItem.load()
        let byName = Dictionary(uniqueKeysWithValues: items.map { ($0.name, $0) })
        let entries = try XCTUnwrap(fixture.expected["prompts"] as? [[String: Any]])
        return (
            fixture,
            try entries.map { entry in
                let visuals = try XCTUnwrap(entry["items"] as? [String]).map { name -> VisualInput in
                    let item = try XCTUnwrap(byName[name])
                    return VisualInput(
                        item: VisualItem(
                            kind: name == "image" ? .image : .video, grid: item.grid,
                            secondsPerGrid: 1), pixels: item.pixels)
                }
                let data = try XCTUnwrap(Data(base64Encoded: try XCTUnwrap(entry["logits_b64"] as? String)))
                return Prompt(
                    name: try XCTUnwrap(entry["name"] as? String),
                    tokens: try XCTUnwrap(entry["input_ids"] as? [Int]).map(Int32.init), visuals: visuals,
                    logitRows: try XCTUnwrap(entry["logit_rows"] as? [Int]),
                    logits: data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) },
                    greedy: try XCTUnwrap(entry["greedy_new_ids"] as? [Int]).map(Int32.init))
            }
        )
    }

    func strategy(_ model: VisionLanguageModel) -> Dense { Dense(headDim: model.config.text.headDim) }

    /// Logits of `rows` of the prompt's prefill, `[rows.count * V]`.
    func prefillLogits(_ model: VisionLanguageModel, _ prompt: Prompt, rows: [Int]) throws -> [Float] {
        let cache = model.language.makeCache(backend: backend)
        let (hidden, _) = try model.prefill(
            tokens: prompt.tokens, visuals: prompt.visuals, strategy: strategy(model),
            cache: cache)
        let selected = try backend.concatRows(rows.map { hidden.rows($0..<$0 + 1) })
        return try backend.floats(try model.language.logits(selected))
    }

    func assertLogitsMatchTransformers(_ directory: URL, label: String) throws {
        let (_, prompts) = try prompts()
        let model = try VisionLanguageModel.load(directory: directory, backend: backend)
        for prompt in prompts {
            let ours = try prefillLogits(model, prompt, rows: prompt.logitRows)
            XCTAssertEqual(ours.count, prompt.logits.count)
            var maxAbs: Float = 0, squaredError = 0.0, squaredNorm = 0.0
            for (a, b) in zip(ours, prompt.logits) {
                maxAbs = max(maxAbs, abs(a - b))
                squaredError += Double(a - b) * Double(a - b)
                squaredNorm += Double(b) * Double(b)
            }
            let relativeNorm = (squaredError / squaredNorm).squareRoot()
            print(
                "\(label) \(prompt.name): rows \(prompt.logitRows), max abs diff \(maxAbs), relative norm \(relativeNorm)"
            )
            XCTAssertLessThan(relativeNorm, 1e-5, "\(label) \(prompt.name)")
            XCTAssertLessThan(maxAbs, 5e-4, "\(label) \(prompt.name)")
        }
    }

    func testImageVideoAndBothLogitsMatchTransformersFP32() throws {
        let (fixture, _) = try prompts()
        try assertLogitsMatchTransformers(fixture.directory, label: "released names")
    }

    func testTransformers5WeightNamesGiveTheSameLogits() throws {
        let (fixture, _) = try prompts()
        try assertLogitsMatchTransformers(
            try Qwen2VLFixtureItem.transformers5Copy(of: fixture, self), label: "v5 names")
    }

    /// Prefill with M-RoPE, then one token at a time through the KV cache at position c + rope delta;
    /// transformers recomputed the whole sequence with 4.51 positions at every step.
    func testGreedyDecodeThroughKVCacheWithRopeDeltaEqualsTransformers() throws {
        let (fixture, prompts) = try prompts()
        let model = try VisionLanguageModel.load(directory: fixture.directory, backend: backend)
        let vocabulary = model.config.text.vocabSize
        for prompt in prompts where !prompt.greedy.isEmpty {
            let cache = model.language.makeCache(backend: backend)
            let (hidden, ropeDelta) = try model.prefill(
                tokens: prompt.tokens, visuals: prompt.visuals,
                strategy: strategy(model), cache: cache)
            var last = try backend.floats(
                try model.language.logits(hidden.rows(hidden.shape.rows - 1..<hidden.shape.rows)))
            var generated: [Int32] = []
            for step in 0..<prompt.greedy.count {
                let next = Int32(last.indices.max { last[$0] < last[$1] }!)
                generated.append(next)
                if step + 1 < prompt.greedy.count {
                    let h = try model.decode(
                        tokens: [next], first: prompt.tokens.count + step, ropeDelta: ropeDelta,
                        strategy: strategy(model), cache: cache)
                    last = try backend.floats(try model.language.logits(h))
                }
            }
            XCTAssertEqual(last.count, vocabulary)
            XCTAssertEqual(generated, prompt.greedy, prompt.name)
        }
    }

    func testPadTokensWithoutMatchingImagesAreOneClearError() throws {
        let (fixture, prompts) = try prompts()
        let model = try VisionLanguageModel.load(directory: fixture.directory, backend: backend)
        assertBatonError(["12 image/video pad tokens", "0 images/videos"]) {
            _ = try model.embeddings(tokens: prompts[0].tokens, visuals: [])
        }
    }
}
