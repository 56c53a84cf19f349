import BatonTensor
import Foundation
import XCTest

@testable import BatonTokenizer

/// Baton's tokenizer against Hugging Face `tokenizers` (Python) on hundreds of generated texts.
/// Skipped when `python3 -c "import tokenizers"` fails; CI installs it. Extra tokenizer
/// directories (e.g. a real checkpoint) can be added with BATON_TOKENIZER_DIRS=dir1:dir2.
final class TokenizerCrossCheckTests: XCTestCase {
    func testByteLevelLlama3StyleMatchesHuggingFace() throws {
        try crossCheck(TokenizerFixtures.require("tiny-llama"))
    }

    func testByteLevelQwen2StyleWithNFCMatchesHuggingFace() throws {
        try crossCheck(TokenizerFixtures.require("tiny-qwen2"))
    }

    func testByteFallbackSentencePieceStyleMatchesHuggingFace() throws {
        try crossCheck(TokenizerFixtures.require("tiny-spm"))
    }

    func testMetaspacePreTokenizerStyleMatchesHuggingFace() throws {
        try crossCheck(TokenizerFixtures.require("tiny-spm-metaspace"))
    }

    func testMetaspaceAlwaysPrependedAndSplitMatchesHuggingFace() throws {
        try crossCheck(TokenizerFixtures.require("tiny-spm-metaspace-split"))
    }

    func testGPT2RegexDigitsNFKCAndAddedTokenRulesMatchHuggingFace() throws {
        try crossCheck(TokenizerFixtures.require("tiny-gpt2"))
    }

    func testGeneralRegexSplitsMatchOnigurumaThroughICU() throws {
        try crossCheck(TokenizerFixtures.require("tiny-regex"))
    }

    /// The default model (SmolLM2, GPT-2 regex with individual digits), where CI fetches it:
    /// $BATON_DEFAULT_MODEL, else $XDG_CACHE_HOME/baton/models/SmolLM2-135M-Instruct.
    func testDefaultModelTokenizerMatchesHuggingFace() throws {
        let environment = ProcessInfo.processInfo.environment
        let cache = environment["XDG_CACHE_HOME"].map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache")
        let dir = environment["BATON_DEFAULT_MODEL"].map { URL(fileURLWithPath: $0) }
            ?? cache.appendingPathComponent("baton/models/SmolLM2-135M-Instruct")
        guard FileManager.default.fileExists(atPath: dir.appendingPathComponent("tokenizer.json").path) else {
            throw XCTSkip("default model not fetched at \(dir.path)")
        }
        XCTAssertEqual(try Tokenizer(directory: dir).chatTemplate?.family, .chatML)
        try crossCheck(dir)
    }

    func testExtraTokenizerDirectoriesMatchHuggingFace() throws {
        let dirs = (ProcessInfo.processInfo.environment["BATON_TOKENIZER_DIRS"] ?? "")
            .split(separator: ":").map { URL(fileURLWithPath: String($0)) }
        if dirs.isEmpty { throw XCTSkip("BATON_TOKENIZER_DIRS not set") }
        for dir in dirs { try crossCheck(dir) }
    }

    private func crossCheck(_ dir: URL, file: StaticString = #filePath, line: UInt = #line) throws {
        let tokenizer = try Tokenizer(directory: dir)
        let specials = tokenizer.addedTokens.values.map(\.content).sorted()
        var texts = TrickyTexts.generate(count: 400, specials: specials, seed: 20_240_726)
        texts += TrickyTexts.pieces + TrickyTexts.pieces.map { " " + $0 + " " }
        texts += ["a <mask> b [SEP]  c", "x  <mask>", "<mask><mask>  <mask>", "[SEP][SEP] \t y", "hello helloworld hello.",
                  "say hello", "ｆｕｌｌ full fuller", "", " ", "\n", "a", String(repeating: "ab ", count: 300), String(repeating: "x", count: 500)]

        // Decode both HF's ids of the texts and random id sequences (invalid UTF-8 included).
        var rng = SplitMix64(state: 7)
        let randomIds: [[Int32]] = (0..<200).map { _ in
            (0..<(1 + rng.below(8))).map { _ in Int32(rng.below(tokenizer.vocabularySize)) }
        }
        let hfFirst = try runHuggingFace(tokenizer: dir, texts: texts, decode: [])
        let toDecode = hfFirst.ids.map { $0.map(Int32.init) } + randomIds
        let hf = try runHuggingFace(tokenizer: dir, texts: [], decode: toDecode)

        var failures = 0
        for (k, text) in texts.enumerated() {
            let ours = tokenizer.encode(text)
            let plain = tokenizer.encode(text, addSpecialTokens: false)
            if ours != hfFirst.ids[k].map(Int32.init) || plain != hfFirst.plainIds[k].map(Int32.init) {
                failures += 1
                if failures <= 5 {
                    XCTFail("\(dir.lastPathComponent): encode \(text.debugDescription)\n ours \(plain)\n hf   \(hfFirst.plainIds[k])",
                            file: file, line: line)
                }
            }
        }
        // The split regexes alone, piece by piece (BPE can hide a wrong split when the tiny
        // vocabularies lack the merges that would cross it).
        if let preTokenizer = tokenizer.preTokenizer, let hfPieces = hfFirst.pieces {
            // Empty text never reaches the pre-tokenizer when encoding.
            for (k, text) in texts.enumerated() where !text.isEmpty {
                let scalars = Array(text.unicodeScalars)
                let pieces = preTokenizer.apply([PreSplit(scalars: scalars[...], atOrigin: true)]).map { piece in
                    tokenizer.isByteLevel
                        ? Normalizer.string(piece.scalars.flatMap { Array(String($0).utf8) }.map { ByteLevelAlphabet.characters[Int($0)] })
                        : Normalizer.string(piece.scalars)
                }
                if pieces.map({ Array($0.utf8) }) != hfPieces[k].map({ Array($0.utf8) }) {
                    failures += 1
                    if failures <= 5 {
                        XCTFail("\(dir.lastPathComponent): pre-tokenize \(text.debugDescription)\n ours \(pieces)\n hf   \(hfPieces[k])",
                                file: file, line: line)
                    }
                }
            }
        }
        for (k, ids) in toDecode.enumerated() {
            let ours = tokenizer.decode(ids), oursSkip = tokenizer.decode(ids, skipSpecialTokens: true)
            if Array(ours.utf8) != Array(hf.decoded[k].utf8) || Array(oursSkip.utf8) != Array(hf.decodedSkip[k].utf8) {
                failures += 1
                if failures <= 10 {
                    XCTFail("\(dir.lastPathComponent): decode \(ids)\n ours \(ours.debugDescription) / \(oursSkip.debugDescription)\n hf   \(hf.decoded[k].debugDescription) / \(hf.decodedSkip[k].debugDescription)",
                            file: file, line: line)
                }
            }
        }
        // Streaming, step by step, against tokenizers' DecodeStream (nil there is "" here): the text
        // so far must agree after every step, and all of it must equal the full decode. Baton holds
        // a run of ByteFallback `<0xNN>` tokens back until a token ends it, since a later byte can
        // turn the whole run into U+FFFDs; DecodeStream emits such bytes early (its text then
        // differs from tokenizers' own full decode), so steps inside a run, and steps after
        // DecodeStream has left the full decode, are not compared.
        for (k, ids) in toDecode.enumerated() {
            for (skip, reference, full) in [(false, hf.stream[k], hf.decoded[k]), (true, hf.streamSkip[k], hf.decodedSkip[k])] {
                guard let reference else { continue }
                var stream = tokenizer.streamingDecoder(skipSpecialTokens: skip)
                let ours = ids.map { stream.next($0) }
                let fullBytes = Array(full.utf8)
                var oursSoFar: [UInt8] = [], hfSoFar: [UInt8] = [], agree = true
                for step in ids.indices {
                    oursSoFar += Array(ours[step].utf8)
                    hfSoFar += Array((reference[step] ?? "").utf8)
                    let runOpen = tokenizer.endsInByteFallbackRun(Array(ids[...step]), skipSpecialTokens: skip)
                    if !runOpen && fullBytes.starts(with: hfSoFar) && oursSoFar != hfSoFar { agree = false }
                }
                if oursSoFar + Array(stream.finish().utf8) != fullBytes { agree = false }
                if !agree {
                    failures += 1
                    if failures <= 10 {
                        XCTFail("\(dir.lastPathComponent): stream skip=\(skip) \(ids)\n ours \(ours)\n hf   \(reference)",
                                file: file, line: line)
                    }
                }
            }
        }
        XCTAssertEqual(failures, 0, "\(dir.lastPathComponent): \(failures) mismatches", file: file, line: line)
    }

    private struct Reference: Decodable {
        let ids: [[Int]]
        let plainIds: [[Int]]
        let decoded: [String]
        let decodedSkip: [String]
        let pieces: [[String]]?
        let stream: [[String?]?]
        let streamSkip: [[String?]?]
        enum CodingKeys: String, CodingKey {
            case ids, decoded, pieces, stream
            case streamSkip = "stream_skip"
            case plainIds = "plain_ids"
            case decodedSkip = "decoded_skip"
        }
    }

    private func runHuggingFace(tokenizer dir: URL, texts: [String], decode: [[Int32]]) throws -> Reference {
        let request: [String: Any] = [
            "tokenizer": dir.appendingPathComponent("tokenizer.json").path, "texts": texts,
            "decode": decode.map { $0.map(Int.init) },
        ]
        let data = try PythonReference.run(script: "hf_tokenize.py", module: "tokenizers", request: request)
        return try JSONDecoder().decode(Reference.self, from: data)
    }
}
