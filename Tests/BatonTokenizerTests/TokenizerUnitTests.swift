import BatonTensor
import Foundation
import XCTest

@testable import BatonTokenizer

/// The tokenizer's parts on their own: split matchers, BPE merge orders, byte alphabet,
/// streaming, errors and special-id parsing.
final class TokenizerUnitTests: XCTestCase {
    func testHandWrittenSplitMatchersAgreeWithICURegexOnGeneratedTexts() throws {
        let texts = TrickyTexts.generate(count: 600, specials: ["<|eot_id|>"], seed: 99) + TrickyTexts.pieces
        for source in [SplitPattern.llama3Source, SplitPattern.qwen2Source, SplitPattern.gpt2Source] {
            let fast = try SplitPattern(regex: source, field: "test")
            if case .regex = fast { XCTFail("known pattern not recognised: \(source)") }
            let icu = RegexBox(try NSRegularExpression(pattern: source))
            for text in texts {
                let scalars = Array(text.unicodeScalars)[...]
                XCTAssertEqual(
                    fast.matches(in: scalars), icu.matches(in: scalars),
                    "\(source.prefix(12)) on \(text.debugDescription)")
            }
        }
    }

    func testLlama3PatternSplitsKnownCornerCasesLikeOniguruma() throws {
        let pattern = try SplitPattern(regex: SplitPattern.llama3Source, field: "test")
        func pieces(_ text: String) -> [String] {
            let s = Array(text.unicodeScalars)
            return pattern.matches(in: s[...]).map { Normalizer.string(s[$0]) }
        }
        XCTAssertEqual(pieces("I'M here"), ["I", "'M", " here"])
        XCTAssertEqual(pieces("12345"), ["123", "45"])
        XCTAssertEqual(pieces("a   b"), ["a", "  ", " b"])
        XCTAssertEqual(pieces("x  \n\n y"), ["x", "  \n\n", " y"])
        XCTAssertEqual(pieces("end.\r\n"), ["end", ".\r\n"])
        XCTAssertEqual(pieces("trailing  "), ["trailing", "  "])
        XCTAssertEqual(pieces("👨\u{200D}👩 ok"), ["👨\u{200D}👩", " ok"])
    }

    func testHeapMergeEqualsQuadraticMergeOnLongWords() throws {
        let tokenizer = try Tokenizer(directory: TokenizerFixtures.require("tiny-llama"))
        var rng = SplitMix64(state: 3)
        let alphabet = Array("etaoin shrdlu'.,\n0123456789é🚀".unicodeScalars)
        for _ in 0..<200 {
            let word = (0..<(2 + rng.below(300))).map { _ in rng.pick(alphabet) }
            let bytes = word.flatMap { Array(String($0).utf8) }.map { ByteLevelAlphabet.characters[Int($0)] }
            var quadratic = tokenizer.model.startingSymbols(bytes)
            let heap = BPEHeapMerge.mergeAll(quadratic, tokenizer.model.merges)
            tokenizer.model.mergeShort(&quadratic)
            XCTAssertEqual(heap, quadratic)
        }
    }

    func testByteLevelAlphabetIsABijectionWithGPT2Spelling() {
        let characters = ByteLevelAlphabet.characters
        XCTAssertEqual(Set(characters).count, 256)
        XCTAssertEqual(characters[0x20], "\u{120}")  // space is Ġ
        XCTAssertEqual(characters[0x0A], "\u{10A}")  // newline is Ċ
        XCTAssertEqual(characters[0x41], "A")
        for b in 0..<256 { XCTAssertEqual(ByteLevelAlphabet.byte(for: characters[b]), UInt8(b)) }
        XCTAssertNil(ByteLevelAlphabet.byte(for: "€"))
    }

    func testStreamingDecoderHoldsBackIncompleteUTF8UntilTheCharacterCompletes() throws {
        let tokenizer = try Tokenizer(directory: TokenizerFixtures.require("tiny-llama"))
        let ids = tokenizer.encode("a🚀", addSpecialTokens: false)
        XCTAssertGreaterThan(ids.count, 2, "the emoji should need several byte tokens in the tiny vocabulary")
        var stream = tokenizer.streamingDecoder()
        let outputs = ids.map { stream.next($0) }
        XCTAssertEqual(outputs.first, "a")
        XCTAssertTrue(outputs.dropFirst().dropLast().allSatisfy { $0.isEmpty })
        XCTAssertEqual(outputs.last, "🚀")
        XCTAssertEqual(stream.finish(), "")
    }

    func testStreamingDecoderFinishFlushesATruncatedCharacterAsReplacement() throws {
        let tokenizer = try Tokenizer(directory: TokenizerFixtures.require("tiny-llama"))
        let ids = tokenizer.encode("🚀", addSpecialTokens: false)
        var stream = tokenizer.streamingDecoder()
        XCTAssertEqual(stream.next(ids[0]), "")
        XCTAssertEqual(stream.finish(), tokenizer.decode([ids[0]]))
        XCTAssertEqual(tokenizer.decode([ids[0]]).unicodeScalars.last, "\u{FFFD}")
    }

    func testStreamingDecodeMatchesFullDecodeForSentencePieceStyleTokenizers() throws {
        for name in ["tiny-spm", "tiny-spm-metaspace", "tiny-gpt2"] {
            let tokenizer = try Tokenizer(directory: TokenizerFixtures.require(name))
            for text in TrickyTexts.generate(count: 100, specials: ["<s>", "</s>"], seed: 5) {
                let ids = tokenizer.encode(text)
                for skip in [false, true] {
                    var stream = tokenizer.streamingDecoder(skipSpecialTokens: skip)
                    let streamed = ids.map { stream.next($0) }.joined() + stream.finish()
                    XCTAssertEqual(
                        Array(streamed.utf8), Array(tokenizer.decode(ids, skipSpecialTokens: skip).utf8),
                        "\(name) \(text.debugDescription)")
                }
            }
        }
    }

    func testConcurrentEncodesShareTheWordCacheAndAgreeWithSequentialOnes() throws {
        let tokenizer = try Tokenizer(directory: TokenizerFixtures.require("tiny-qwen2"))
        let texts = TrickyTexts.generate(count: 64, specials: ["<|im_start|>"], seed: 11)
        final class Results: @unchecked Sendable {
            var ids = [[Int32]](repeating: [], count: 64)
            let lock = NSLock()
        }
        let results = Results()
        DispatchQueue.concurrentPerform(iterations: texts.count) { k in
            let ids = tokenizer.encode(texts[k])
            results.lock.lock()
            results.ids[k] = ids
            results.lock.unlock()
        }
        let fresh = try Tokenizer(directory: TokenizerFixtures.require("tiny-qwen2"))
        XCTAssertEqual(results.ids, texts.map { fresh.encode($0) })
    }

    func testEncodeChatUsesTheConfigTemplateWithoutAddingASecondBOS() throws {
        let llama = try Tokenizer(directory: TokenizerFixtures.require("tiny-llama"))
        let ids = try llama.encodeChat([.user("Hi")])
        XCTAssertEqual(ids.filter { $0 == llama.bosTokenId }.count, 1)
        XCTAssertEqual(ids.first, llama.bosTokenId)
        XCTAssertEqual(
            Array(ids.suffix(2)),
            [llama.id(forToken: "<|end_header_id|>")!, llama.encode("\n\n", addSpecialTokens: false)[0]])
        let noTemplate = try Tokenizer(directory: TokenizerFixtures.require("tiny-spm"))
        XCTAssertThrowsError(try noTemplate.encodeChat([.user("Hi")]))
    }

    func testChatTemplateComesFromANamedListOrFromChatTemplateJinja() throws {
        let json = try tinyJSON { _ in }
        let named = Data(
            #"{"chat_template": [{"name": "tool_use", "template": "x"}, {"name": "default", "template": "<|im_start|>{{ m }}"}]}"#
                .utf8)
        XCTAssertEqual(try Tokenizer(tokenizerJSON: json, config: named).chatTemplate?.family, .chatML)

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("baton-chat-file-\(UUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try json.write(to: dir.appendingPathComponent("tokenizer.json"))
        XCTAssertNil(try Tokenizer(directory: dir).chatTemplate)
        try Data("{{ bos_token }}<|start_header_id|>".utf8).write(to: dir.appendingPathComponent("chat_template.jinja"))
        XCTAssertEqual(try Tokenizer(directory: dir).chatTemplate?.family, .llama3)
    }

    // MARK: errors

    private func tinyJSON(_ edit: (inout [String: Any]) -> Void) throws -> Data {
        let url = try TokenizerFixtures.require("tiny-spm").appendingPathComponent("tokenizer.json")
        var root = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        edit(&root)
        return try JSONSerialization.data(withJSONObject: root)
    }

    private func assertError(
        _ kind: BatonError.Kind, mentioning words: [String], _ body: () throws -> Void,
        line: UInt = #line
    ) {
        XCTAssertThrowsError(try body(), line: line) { error in
            guard let error = error as? BatonError else { return XCTFail("not a BatonError: \(error)", line: line) }
            XCTAssertEqual(error.kind, kind, "\(error)", line: line)
            for word in words { XCTAssertTrue(error.message.contains(word), "\(error) lacks \(word)", line: line) }
        }
    }

    func testMissingTokenizerFileIsAnIOErrorNamingTheFile() {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("baton-no-tokenizer-\(UUID())")
        assertError(.io, mentioning: ["tokenizer.json", "not found"]) { _ = try Tokenizer(directory: dir) }
    }

    func testMalformedJSONIsAnInvalidModelErrorNamingTheFile() {
        assertError(.invalidModel, mentioning: ["tokenizer.json", "malformed JSON"]) {
            _ = try Tokenizer(tokenizerJSON: Data("{\"model\": [".utf8), config: nil)
        }
        assertError(.invalidModel, mentioning: ["tokenizer_config.json", "malformed JSON"]) {
            _ = try Tokenizer(tokenizerJSON: try self.tinyJSON { _ in }, config: Data("nope".utf8))
        }
    }

    func testUnigramAndWordPieceModelsAreUnsupportedNamingTheField() {
        for type in ["Unigram", "WordPiece"] {
            assertError(.unsupported, mentioning: ["tokenizer.json", "model.type", type]) {
                _ = try Tokenizer(
                    tokenizerJSON: try self.tinyJSON { root in
                        var model = root["model"] as! [String: Any]
                        model["type"] = type
                        root["model"] = model
                    }, config: nil)
            }
        }
    }

    func testWrongFieldTypesNameTheFieldAndWhatWasFound() {
        assertError(.invalidModel, mentioning: ["model.byte_fallback", "true or false", "string"]) {
            _ = try Tokenizer(
                tokenizerJSON: try self.tinyJSON { root in
                    var model = root["model"] as! [String: Any]
                    model["byte_fallback"] = "yes"
                    root["model"] = model
                }, config: nil)
        }
        assertError(.unsupported, mentioning: ["pre_tokenizer", "BertPreTokenizer"]) {
            _ = try Tokenizer(
                tokenizerJSON: try self.tinyJSON { root in
                    root["pre_tokenizer"] = ["type": "BertPreTokenizer"]
                }, config: nil)
        }
        assertError(.invalidModel, mentioning: ["model.merges[0]", "missing from model.vocab"]) {
            _ = try Tokenizer(
                tokenizerJSON: try self.tinyJSON { root in
                    var model = root["model"] as! [String: Any]
                    model["merges"] = ["nosuch token"]
                    root["model"] = model
                }, config: nil)
        }
    }

    func testEosIdsAcceptAnIntOrAListAndUnionTheConfigEosToken() throws {
        let json = try tinyJSON { _ in }
        let config = Data(#"{"bos_token": {"content": "<s>"}, "eos_token": "</s>"}"#.utf8)
        let single = try Tokenizer(
            tokenizerJSON: json, config: config, generationConfig: Data(#"{"eos_token_id": 7}"#.utf8), modelConfig: nil)
        XCTAssertEqual(single.eosTokenIds, [7, 2])
        XCTAssertEqual(single.bosTokenId, 1)
        let list = try Tokenizer(
            tokenizerJSON: json, config: nil, generationConfig: Data(#"{"eos_token_id": [5, 6]}"#.utf8),
            modelConfig: Data(#"{"eos_token_id": 9, "bos_token_id": 1}"#.utf8))
        XCTAssertEqual(list.eosTokenIds, [5, 6, 9])
        XCTAssertEqual(list.bosTokenId, 1)
    }

    func testNormalizingOnlyTheWindowsAroundNonASCIIRunsEqualsNormalizingTheWholeText() {
        // Starters below the limits, precomposed and decomposable Latin, combining marks (alone, in
        // runs, out of canonical order), Hangul jamo that compose, CJK, compatibility forms, emoji.
        let pieces: [[UInt32]] = [
            [0x61], [0x20], [0x0A], [0x65, 0x301], [0xE9], [0xC0, 0x323], [0x41, 0x300, 0x323], [0x301],
            [0x323, 0x301], [0x2019], [0x1100, 0x1161], [0x1100], [0x1161, 0x11A8], [0x4E2D, 0x6587], [0xFB01],
            [0x2460], [0x1F600], [0x6F, 0x308, 0x304], [0xA0], [0xBD], [0x3A9], [0x2126], [0x1E0B, 0x323]
        ]
        let forms: [(String, UInt32, (NSString) -> String)] = [
            ("NFC", 0x300, { $0.precomposedStringWithCanonicalMapping }),
            ("NFD", 0xC0, { $0.decomposedStringWithCanonicalMapping }),
            ("NFKC", 0xA0, { $0.precomposedStringWithCompatibilityMapping }),
            ("NFKD", 0xA0, { $0.decomposedStringWithCompatibilityMapping })
        ]
        var random = SplitMix64(seed: 7)
        for trial in 0..<400 {
            let count = 1 + Int(random.next() % 40)
            let scalars = (0..<count).flatMap { _ in pieces[Int(random.next() % UInt64(pieces.count))] }
                .map { Unicode.Scalar($0)! }
            for (name, limit, f) in forms {
                let whole = Array(f(Normalizer.string(scalars) as NSString).unicodeScalars)
                let windowed = Normalizer.foundation(scalars, unchangedBelow: limit, f)
                XCTAssertEqual(
                    windowed.map(\.value), whole.map(\.value), "\(name), trial \(trial): \(scalars.map(\.value))")
            }
        }
    }

    func testLongTextsEncodedInParallelPartsGiveTheIdsOfOnePart() throws {
        let fixtures = [
            "tiny-gpt2", "tiny-llama", "tiny-qwen2", "tiny-regex", "tiny-spm", "tiny-spm-metaspace",
            "tiny-spm-metaspace-split"
        ]
        for name in fixtures {
            let tokenizer = try Tokenizer(directory: TokenizerFixtures.require(name))
            let specials = tokenizer.addedTokenTexts.values.sorted()
            let text = TrickyTexts.generate(count: 3000, specials: specials, seed: 11).joined(separator: " ")
            let one = tokenizer.encode(text, addSpecialTokens: true, maxParts: 1)
            let seven = tokenizer.encode(text, addSpecialTokens: true, maxParts: 7)
            XCTAssertGreaterThan(
                one.count, 4 * Tokenizer.wordsPerParallelPart, "\(name): long enough for several parts")
            XCTAssertEqual(seven, one, "\(name)")
        }
    }
}
