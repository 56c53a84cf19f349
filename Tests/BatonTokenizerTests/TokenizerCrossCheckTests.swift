import BatonTensor
import Foundation
import XCTest

@testable import BatonTokenizer

/// Baton's tokenizer against Hugging Face `tokenizers` (Python) on hundreds of generated texts:
/// live when `python3 -c "import tokenizers"` works (CI installs it), else against the recorded
/// digest of tokenizers' answers (Tests/Fixtures/python-references.json). Extra tokenizer
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
        let cache =
            environment["XDG_CACHE_HOME"].map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache")
        let dir =
            environment["BATON_DEFAULT_MODEL"].map { URL(fileURLWithPath: $0) }
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

    /// Baton's tokenizer against Hugging Face `tokenizers` on generated texts and id sequences:
    /// live when the Python package is importable, else against the digest of its output recorded
    /// in Tests/Fixtures/python-references.json (scripts/record_python_references.sh).
    private func crossCheck(_ dir: URL, file: StaticString = #filePath, line: UInt = #line) throws {
        let tokenizer = try Tokenizer(directory: dir)
        let specials = tokenizer.addedTokens.values.map(\.content).sorted()
        var texts = TrickyTexts.generate(count: 400, specials: specials, seed: 20_240_726)
        texts += TrickyTexts.pieces + TrickyTexts.pieces.map { " " + $0 + " " }
        texts += [
            "a <mask> b [SEP]  c", "x  <mask>", "<mask><mask>  <mask>", "[SEP][SEP] \t y", "hello helloworld hello.",
            "say hello", "ｆｕｌｌ full fuller", "", " ", "\n", "a", String(repeating: "ab ", count: 300),
            String(repeating: "x", count: 500)
        ]

        // Decode both HF's ids of the texts and random id sequences (invalid UTF-8 included).
        var rng = SplitMix64(state: 7)
        let randomIds: [[Int32]] = (0..<200).map { _ in
            (0..<(1 + rng.below(8))).map { _ in Int32(rng.below(tokenizer.vocabularySize)) }
        }
        let name = dir.lastPathComponent
        let tokenizerDigest = try Transcript.digest(Data(contentsOf: dir.appendingPathComponent("tokenizer.json")))
        var inputs = Transcript()
        texts.forEach { inputs.line("t", [$0]) }
        randomIds.forEach { inputs.line("r", [$0.map(String.init).joined(separator: ",")]) }

        guard PythonReference.isAvailable("tokenizers") else {
            let recorded = try XCTUnwrap(
                RecordedReferences.load().tokenizers[name],
                "no recorded tokenizers output for \(name): run scripts/record_python_references.sh",
                file: file, line: line)
            XCTAssertEqual(
                recorded.tokenizer, tokenizerDigest, "\(name)/tokenizer.json changed since the recording", file: file,
                line: line)
            XCTAssertEqual(
                recorded.inputs, inputs.digest, "the test's texts changed since the recording", file: file, line: line)
            // Ids equal to HF's (checked by the digest) decode the same list HF decoded.
            var ours = baton(tokenizer, texts: texts, decode: texts.map { tokenizer.encode($0) } + randomIds)
            for k in recorded.streamNull { ours.stream[k] = nil }
            for k in recorded.streamSkipNull { ours.streamSkip[k] = nil }
            XCTAssertEqual(
                Transcript(ours, texts: texts).digest, recorded.transcript,
                "\(name): Baton's encodings, pieces or decodes differ from tokenizers \(recorded.version)'s "
                    + "(recorded digest); pip install tokenizers and rerun for the differing items", file: file,
                line: line)
            return
        }
        let hfFirst = try runHuggingFace(tokenizer: dir, texts: texts, decode: [])
        let toDecode = hfFirst.ids.map { $0.map(Int32.init) } + randomIds
        let hfDecoded = try runHuggingFace(tokenizer: dir, texts: [], decode: toDecode)
        let hf = Reference(
            version: hfFirst.version, ids: hfFirst.ids, plainIds: hfFirst.plainIds,
            decoded: hfDecoded.decoded, decodedSkip: hfDecoded.decodedSkip, pieces: hfFirst.pieces,
            stream: hfDecoded.stream, streamSkip: hfDecoded.streamSkip)
        var ours = baton(tokenizer, texts: texts, decode: toDecode)
        for k in toDecode.indices {  // DecodeStream raised on these: nothing to compare
            if hf.stream[k] == nil { ours.stream[k] = nil }
            if hf.streamSkip[k] == nil { ours.streamSkip[k] = nil }
        }
        compare(ours, hf, tokenizer: tokenizer, texts: texts, toDecode: toDecode, name: name, file: file, line: line)
        if RecordedReferences.recording {
            try RecordedReferences.update { references in
                references.tokenizers[name] = RecordedReferences.TokenizerRecord(
                    version: hf.version ?? "?", tokenizer: tokenizerDigest, inputs: inputs.digest,
                    transcript: Transcript(hf, texts: texts).digest,
                    streamNull: hf.stream.indices.filter { hf.stream[$0] == nil },
                    streamSkipNull: hf.streamSkip.indices.filter { hf.streamSkip[$0] == nil })
            }
        }
    }

    /// Baton's answers in the reference's shape: encodings and pre-tokenizer pieces of `texts`
    /// (pieces empty for empty text, which never reaches the pre-tokenizer), full and streamed
    /// decodes of `decode`.
    private func baton(_ tokenizer: Tokenizer, texts: [String], decode: [[Int32]]) -> Reference {
        let pieces: [[String]]? = tokenizer.preTokenizer.map { preTokenizer in
            texts.map { text in
                if text.isEmpty { return [] }
                let scalars = Array(text.unicodeScalars)
                return preTokenizer.apply([PreSplit(scalars: scalars[...], atOrigin: true)]).map { piece in
                    tokenizer.isByteLevel
                        ? Normalizer.string(
                            piece.scalars.flatMap { Array(String($0).utf8) }.map {
                                ByteLevelAlphabet.characters[Int($0)]
                            })
                        : Normalizer.string(piece.scalars)
                }
            }
        }
        func streamed(_ ids: [Int32], skip: Bool) -> [String?] {
            var stream = tokenizer.streamingDecoder(skipSpecialTokens: skip)
            return ids.map { stream.next($0) }
        }
        return Reference(
            version: nil,
            ids: texts.map { tokenizer.encode($0).map(Int.init) },
            plainIds: texts.map { tokenizer.encode($0, addSpecialTokens: false).map(Int.init) },
            decoded: decode.map { tokenizer.decode($0) },
            decodedSkip: decode.map { tokenizer.decode($0, skipSpecialTokens: true) },
            pieces: pieces,
            stream: decode.map { streamed($0, skip: false) },
            streamSkip: decode.map { streamed($0, skip: true) })
    }

    /// Item-by-item differences, the first few of each kind reported in full.
    private func compare(
        _ ours: Reference, _ hf: Reference, tokenizer: Tokenizer, texts: [String], toDecode: [[Int32]],
        name: String, file: StaticString, line: UInt
    ) {
        var failures = 0
        func fail(_ limit: Int, _ message: String) {
            failures += 1
            if failures <= limit { XCTFail("\(name): \(message)", file: file, line: line) }
        }
        for (k, text) in texts.enumerated() where ours.ids[k] != hf.ids[k] || ours.plainIds[k] != hf.plainIds[k] {
            fail(5, "encode \(text.debugDescription)\n ours \(ours.plainIds[k])\n hf   \(hf.plainIds[k])")
        }
        // The split regexes alone, piece by piece (BPE can hide a wrong split when the tiny
        // vocabularies lack the merges that would cross it).
        if let oursPieces = ours.pieces, let hfPieces = hf.pieces {
            for (k, text) in texts.enumerated()
            where !text.isEmpty
                && oursPieces[k].map({ Array($0.utf8) }) != hfPieces[k].map({ Array($0.utf8) })
            {
                fail(5, "pre-tokenize \(text.debugDescription)\n ours \(oursPieces[k])\n hf   \(hfPieces[k])")
            }
        }
        for (k, ids) in toDecode.enumerated()
        where Array(ours.decoded[k].utf8) != Array(hf.decoded[k].utf8)
            || Array(ours.decodedSkip[k].utf8) != Array(hf.decodedSkip[k].utf8)
        {
            fail(
                10,
                "decode \(ids)\n ours \(ours.decoded[k].debugDescription) / \(ours.decodedSkip[k].debugDescription)\n"
                    + " hf   \(hf.decoded[k].debugDescription) / \(hf.decodedSkip[k].debugDescription)")
        }
        // Streaming, step by step, against tokenizers' DecodeStream (nil there is "" here): the text
        // so far must agree after every step, and all of it must equal the full decode. Baton holds
        // a run of ByteFallback `<0xNN>` tokens back until a token ends it, since a later byte can
        // turn the whole run into U+FFFDs; DecodeStream emits such bytes early (its text then
        // differs from tokenizers' own full decode), so steps inside a run, and steps after
        // DecodeStream has left the full decode, are not compared.
        for (k, ids) in toDecode.enumerated() {
            for (skip, oursStream, reference, full) in [
                (false, ours.stream[k], hf.stream[k], hf.decoded[k]),
                (true, ours.streamSkip[k], hf.streamSkip[k], hf.decodedSkip[k])
            ] {
                guard let reference, let oursStream else { continue }
                let fullBytes = Array(full.utf8)
                var oursSoFar: [UInt8] = [], hfSoFar: [UInt8] = [], agree = true
                for step in ids.indices {
                    oursSoFar += Array((oursStream[step] ?? "").utf8)
                    hfSoFar += Array((reference[step] ?? "").utf8)
                    let runOpen = tokenizer.endsInByteFallbackRun(Array(ids[...step]), skipSpecialTokens: skip)
                    if !runOpen && fullBytes.starts(with: hfSoFar) && oursSoFar != hfSoFar { agree = false }
                }
                var stream = tokenizer.streamingDecoder(skipSpecialTokens: skip)
                ids.forEach { _ = stream.next($0) }
                if oursSoFar + Array(stream.finish().utf8) != fullBytes { agree = false }
                if !agree { fail(10, "stream skip=\(skip) \(ids)\n ours \(oursStream)\n hf   \(reference)") }
            }
        }
        XCTAssertEqual(failures, 0, "\(name): \(failures) mismatches", file: file, line: line)
    }

    struct Reference: Decodable {
        var version: String?
        var ids: [[Int]]
        var plainIds: [[Int]]
        var decoded: [String]
        var decodedSkip: [String]
        var pieces: [[String]]?
        var stream: [[String?]?]
        var streamSkip: [[String?]?]
        enum CodingKeys: String, CodingKey {
            case version, ids, decoded, pieces, stream
            case streamSkip = "stream_skip"
            case plainIds = "plain_ids"
            case decodedSkip = "decoded_skip"
        }
    }

    private func runHuggingFace(tokenizer dir: URL, texts: [String], decode: [[Int32]]) throws -> Reference {
        let request: [String: Any] = [
            "tokenizer": dir.appendingPathComponent("tokenizer.json").path, "texts": texts,
            "decode": decode.map { $0.map(Int.init) }
        ]
        let data = try PythonReference.run(script: "hf_tokenize.py", module: "tokenizers", request: request)
        return try JSONDecoder().decode(Reference.self, from: data)
    }
}

extension Transcript {
    /// Every answer of a cross-check but the streams in one byte stream (pieces of empty texts left
    /// out, as the comparison leaves them out).
    init(_ reference: TokenizerCrossCheckTests.Reference, texts: [String]) {
        self.init()
        for k in texts.indices {
            line("e", [reference.ids[k], reference.plainIds[k]].map { $0.map(String.init).joined(separator: ",") })
        }
        if let pieces = reference.pieces {
            for k in texts.indices where !texts[k].isEmpty { line("p", pieces[k]) }
        }
        for k in reference.decoded.indices { line("d", [reference.decoded[k], reference.decodedSkip[k]]) }
        // Streams are left out: Baton holds byte-fallback runs back where DecodeStream emits
        // them early, so only the live comparison (above) can judge a stream step by step.
    }
}
