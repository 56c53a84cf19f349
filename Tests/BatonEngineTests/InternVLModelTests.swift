import BatonCPU
import BatonEngine
import BatonModels
import BatonParallel
import BatonTensor
import BatonTokenizer
import Foundation
import XCTest

/// The tiny InternVL fixture (Tests/Fixtures/tiny-internvl, and the same tensors in OpenGVLab's
/// original layout) on the CPU against transformers' fp32 numbers: the vision features, the prompt
/// ids, the logits and `generate`'s greedy tokens (dynamic NTK beyond 48 positions); and every
/// exact method on CPU ranks against dense.
final class InternVLModelTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")
    static let transformersFormat = fixtures.appendingPathComponent("tiny-internvl")
    static let originalFormat = fixtures.appendingPathComponent("tiny-internvl-original")
    static let model: VisionLanguageModel = {
        try! VisionLanguageModel.load(directory: transformersFormat, backend: CPUBackend())
    }()

    /// Largest |actual - expected| over the largest |expected|.
    func relativeMaxError(_ actual: [Float], _ expected: [Float]) -> Double {
        let scale = expected.map { abs(Double($0)) }.max() ?? 1
        return zip(actual, expected).map { abs(Double($0) - Double($1)) }.max()! / max(scale, 1e-30)
    }

    func testBothConfigFormatsParseToOneModel() throws {
        guard case .internVL(let hf)? = try VisionLanguageConfig.load(directory: Self.transformersFormat),
            case .internVL(let original)? = try VisionLanguageConfig.load(directory: Self.originalFormat)
        else { return XCTFail("the fixtures are not read as InternVL") }
        XCTAssertEqual(hf.format, .transformers)
        XCTAssertEqual(original.format, .original)
        XCTAssertEqual(hf.vision, original.vision)
        XCTAssertEqual(hf.text.hiddenSize, 64)
        XCTAssertEqual(hf.text.numHiddenLayers, original.text.numHiddenLayers)
        XCTAssertEqual(hf.text.ropeScaling, original.text.ropeScaling)
        XCTAssertEqual(hf.tokensPerTile, 4)
        XCTAssertEqual(hf.imageTokenId, 1007)
    }

    func testVisionFeaturesEqualTransformersInBothWeightLayouts() throws {
        let (expected, file) = try InternVLFixtureInputs.expected(directory: Self.transformersFormat)
        let inputs = try InternVLFixtureInputs.visuals(expected, file: file)
        let original = try VisionLanguageModel.load(directory: Self.originalFormat, backend: CPUBackend())
        for (name, input) in inputs.sorted(by: { $0.key < $1.key }) {
            let reference = try XCTUnwrap(InternVLFixtureInputs.features(expected, name: name))
            let out = try Self.model.vision(pixels: input.pixels, grids: [input.item.grid])
            XCTAssertEqual(out.shape, [input.item.grid.t * 4, 64], name)
            let error = relativeMaxError(out.floats(), reference)
            print("\(name): max error / max |expected| = \(error)")
            XCTAssertLessThan(error, 1e-4, "\(name): the vision features differ from transformers")
            let fromOriginal = try original.vision(pixels: input.pixels, grids: [input.item.grid]).floats()
            XCTAssertLessThan(relativeMaxError(fromOriginal, out.floats()), 1e-6, "\(name): original layout")
        }
    }

    func testPromptLogitsAndGreedyTokensEqualTransformers() throws {
        for prompt in try InternVLFixtureInputs.prompts(directory: Self.transformersFormat) {
            let model = Self.model, backend = model.backend
            let strategy = Dense(headDim: model.config.text.headDim)
            let cache = model.language.makeCache(backend: backend)
            let (hidden, ropeDelta) = try model.prefill(
                tokens: prompt.tokens, visuals: prompt.visuals, strategy: strategy, cache: cache)
            XCTAssertEqual(ropeDelta, 0)
            let logits = try backend.floats(
                model.language.logits(backend.concatRows(prompt.logitRows.map { hidden.rows($0..<$0 + 1) })))
            let error = relativeMaxError(logits, prompt.logits)
            print("\(prompt.name) (\(prompt.tokens.count) tokens): logits max error / max |expected| = \(error)")
            XCTAssertLessThan(error, 1e-4, "\(prompt.name): logits differ from transformers")
            let greedy = try model.greedyTokens(
                after: hidden, promptLength: prompt.tokens.count, ropeDelta: ropeDelta, strategy: strategy,
                cache: cache, count: prompt.greedy.count)
            XCTAssertEqual(greedy, prompt.greedy, "\(prompt.name): greedy tokens differ from transformers' generate")
        }
    }

    /// The original layout reads `<IMG_CONTEXT>`'s id from the tokenizer (its config.json has none)
    /// and gives the transformers layout's logits for the richest prompt.
    func testOriginalLayoutGivesTheSameLogits() throws {
        let original = try VisionLanguageModel.load(directory: Self.originalFormat, backend: CPUBackend())
        guard case .internVL(let config) = original.config else { return XCTFail("not InternVL") }
        XCTAssertEqual(config.imageTokenId, 1007)
        XCTAssertEqual([config.imageStartTokenId, config.imageEndTokenId], [1005, 1006])
        let prompt = try XCTUnwrap(
            InternVLFixtureInputs.prompts(directory: Self.transformersFormat).max {
                $0.visuals.count < $1.visuals.count
            })
        func lastLogits(_ model: VisionLanguageModel) throws -> [Float] {
            let (hidden, _) = try model.prefill(
                tokens: prompt.tokens, visuals: prompt.visuals, strategy: Dense(headDim: 16),
                cache: model.language.makeCache(backend: model.backend))
            return try model.language.logits(hidden.rows(prompt.tokens.count - 1..<prompt.tokens.count)).floats()
        }
        XCTAssertLessThan(relativeMaxError(try lastLogits(original), try lastLogits(Self.model)), 1e-6)
    }

    /// Baton's own prompt building gives the ids transformers' processor and chat template give.
    func testPromptEncodingEqualsTransformersIds() throws {
        let tokenizer = try Tokenizer(directory: Self.transformersFormat)
        let (expected, _) = try InternVLFixtureInputs.expected(directory: Self.transformersFormat)
        let questions = (expected["prompts"] as? [[String: Any]] ?? []).compactMap { $0["question"] as? String }
        let prompts = try InternVLFixtureInputs.prompts(directory: Self.transformersFormat)
        XCTAssertEqual(questions.count, prompts.count)
        for (prompt, question) in zip(prompts, questions) {
            let ids = try VisualPromptEncoding.encode(
                question: question, items: prompt.visuals.map(\.item), tokenizer: tokenizer, config: Self.model.config)
            XCTAssertEqual(ids, prompt.tokens, prompt.name)
        }
    }

    /// The exact methods over the image-and-video prompt on 2 and 3 CPU ranks (frame-parallel
    /// encoding: each rank encodes its share of the tiles) give dense's greedy tokens.
    func testExactMethodsOnCPURanksGiveDenseTokens() throws {
        let engine = try Engine.load(EngineOptions(modelDirectory: Self.transformersFormat, showProgress: false))
        let model = try XCTUnwrap(engine.visionLanguage)
        let prompt = try XCTUnwrap(
            InternVLFixtureInputs.prompts(directory: Self.transformersFormat).max {
                $0.visuals.count < $1.visuals.count
            })
        let visuals = VisualPrefill(visuals: prompt.visuals)
        func run(_ method: Method, ranks: Int) throws -> [Int32] {
            let (context, query) =
                method == .dense
                ? (prompt.tokens, []) : try VisualPromptEncoding.splitQuery(prompt.tokens, config: model.config)
            var request = ParallelRequest(
                context: context, query: query, method: method, ranks: ranks,
                generation: GenerationOptions(maxTokens: 6))
            request.visuals = visuals
            return try engine.run(request).tokens
        }
        let dense = try run(.dense, ranks: 1)
        XCTAssertEqual(dense, Array(prompt.greedy.prefix(6)))
        for ranks in [2, 3] {
            for method in [Method.ring, .zigzag] {
                XCTAssertEqual(try run(method, ranks: ranks), dense, "\(method) on \(ranks) ranks")
            }
        }
    }
}
