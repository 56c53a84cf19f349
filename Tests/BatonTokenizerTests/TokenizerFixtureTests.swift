import Foundation
import XCTest

@testable import BatonTokenizer

/// Baton's tokenizer against the ids, decodes and chat renderings that transformers produced
/// for the tiny-llama (Llama-3 layout) and tiny-qwen2 (Qwen2 layout) fixtures.
final class TokenizerFixtureTests: XCTestCase {
    private struct Case {
        let name, text: String
        let ids, idsWithSpecial: [Int32]
        let decoded, decodedWithSpecial, decodedSkipSpecial: String
    }

    private func load(_ name: String) throws -> (Tokenizer, [String: Any], [Case]) {
        let dir = try TokenizerFixtures.require(name, file: "expected.json")
        let tokenizer = try Tokenizer(directory: dir)
        let expected =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: dir.appendingPathComponent("expected.json"))) as! [String: Any]
        let cases = ((expected["tokenizer"] as! [String: Any])["cases"] as! [[String: Any]]).map { c in
            Case(
                name: c["name"] as! String, text: c["text"] as! String,
                ids: (c["ids"] as! [Int]).map(Int32.init),
                idsWithSpecial: (c["ids_with_special"] as! [Int]).map(Int32.init),
                decoded: c["decoded"] as! String, decodedWithSpecial: c["decoded_with_special"] as! String,
                decodedSkipSpecial: c["decoded_skip_special"] as! String)
        }
        XCTAssertGreaterThan(cases.count, 30)
        return (tokenizer, expected, cases)
    }

    private func checkCases(_ name: String) throws {
        let (tokenizer, _, cases) = try load(name)
        for c in cases {
            XCTAssertEqual(tokenizer.encode(c.text, addSpecialTokens: false), c.ids, "\(name) \(c.name)")
            XCTAssertEqual(tokenizer.encode(c.text), c.idsWithSpecial, "\(name) \(c.name) with special tokens")
            XCTAssertEqual(Array(tokenizer.decode(c.ids).utf8), Array(c.decoded.utf8), "\(name) \(c.name) decode")
            XCTAssertEqual(
                Array(tokenizer.decode(c.idsWithSpecial).utf8), Array(c.decodedWithSpecial.utf8),
                "\(name) \(c.name) decode with special")
            XCTAssertEqual(
                Array(tokenizer.decode(c.idsWithSpecial, skipSpecialTokens: true).utf8),
                Array(c.decodedSkipSpecial.utf8), "\(name) \(c.name) decode skipping special")
        }
    }

    func testLlama3FixtureEncodesAndDecodesAllCasesLikeTransformers() throws { try checkCases("tiny-llama") }

    func testQwen2FixtureEncodesAndDecodesAllCasesLikeTransformers() throws { try checkCases("tiny-qwen2") }

    func testStreamingDecodeOfEveryFixtureCaseConcatenatesToFullDecode() throws {
        for name in ["tiny-llama", "tiny-qwen2"] {
            let (tokenizer, _, cases) = try load(name)
            for c in cases {
                for skip in [false, true] {
                    var stream = tokenizer.streamingDecoder(skipSpecialTokens: skip)
                    var text = ""
                    for id in c.idsWithSpecial {
                        let piece = stream.next(id)
                        XCTAssertFalse(
                            piece.unicodeScalars.last == "\u{FFFD}", "\(name) \(c.name): emitted a partial character")
                        text += piece
                    }
                    text += stream.finish()
                    XCTAssertEqual(
                        Array(text.utf8), Array(tokenizer.decode(c.idsWithSpecial, skipSpecialTokens: skip).utf8),
                        "\(name) \(c.name) skip=\(skip)")
                }
            }
        }
    }

    func testChatTemplatesDetectedFromConfigRenderLikeTransformers() throws {
        for (name, family) in [("tiny-llama", ChatTemplate.Family.llama3), ("tiny-qwen2", .chatML)] {
            let (tokenizer, expected, _) = try load(name)
            let chat = expected["chat_template"] as! [String: Any]
            let messages = (chat["messages"] as! [[String: String]]).map {
                ChatMessage(role: $0["role"]!, content: $0["content"]!)
            }
            let template = try XCTUnwrap(tokenizer.chatTemplate, name)
            XCTAssertEqual(template.family, family)
            let text = template.render(messages: messages, addGenerationPrompt: chat["add_generation_prompt"] as! Bool)
            XCTAssertEqual(text, chat["text"] as! String, name)
            XCTAssertEqual(
                tokenizer.encode(text, addSpecialTokens: false), (chat["ids"] as! [Int]).map(Int32.init), name)
        }
    }

    func testSpecialIdsAndVocabularySizeComeFromTheConfigFiles() throws {
        let (llama, llamaExpected, _) = try load("tiny-llama")
        XCTAssertEqual(llama.bosTokenId, 1000)
        XCTAssertEqual(llama.eosTokenIds, [1001, 1004])  // generation_config list + tokenizer_config eos_token
        XCTAssertEqual(
            llama.vocabularySize, (llamaExpected["tokenizer"] as! [String: Any])["vocab_size_with_added_tokens"] as? Int
        )
        XCTAssertEqual(llama.id(forToken: "<|eot_id|>"), 1004)
        XCTAssertEqual(llama.token(forId: 1004), "<|eot_id|>")
        XCTAssertEqual(llama.token(forId: 220), "Ġ")
        XCTAssertNil(llama.token(forId: 5000))

        let (qwen, _, _) = try load("tiny-qwen2")
        XCTAssertEqual(qwen.bosTokenId, 1000)  // bos_token is null in tokenizer_config; generation_config says 1000
        XCTAssertEqual(qwen.eosTokenIds, [1000, 1002])
        XCTAssertEqual(qwen.chatTemplate?.defaultSystemPrompt, "You are a helpful assistant.")
    }
}
