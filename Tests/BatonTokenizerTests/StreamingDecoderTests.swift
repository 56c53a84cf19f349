import BatonTensor
import Foundation
import XCTest

@testable import BatonTokenizer

/// Streamed text equals the full decode, whatever ids a model generates, including byte runs
/// that are not valid UTF-8.
final class StreamingDecoderTests: XCTestCase {
    func streamed(_ tokenizer: Tokenizer, _ ids: [Int32], skipSpecialTokens: Bool = false) -> [String] {
        var stream = tokenizer.streamingDecoder(skipSpecialTokens: skipSpecialTokens)
        return ids.map { stream.next($0) } + [stream.finish()]
    }

    func testByteFallbackRunThatTurnsInvalidNeverShowsItsFirstByte() throws {
        // HF tokenizers 0.23.3 on this file: decode([▁Num, <0x4C>]) = "NumL", but
        // decode([▁Num, <0x4C>, <0xE2>, ▁Num]) = "Num�� Num": the whole run becomes U+FFFDs.
        let tokenizer = try Tokenizer(directory: TokenizerFixtures.require("tiny-spm"))
        let word = try XCTUnwrap(tokenizer.id(forToken: "▁Num"))
        let letterL = try XCTUnwrap(tokenizer.id(forToken: "<0x4C>"))
        let leadByte = try XCTUnwrap(tokenizer.id(forToken: "<0xE2>"))
        let ids = [word, letterL, leadByte, word]
        XCTAssertEqual(tokenizer.decode(ids), "Num\u{FFFD}\u{FFFD} Num")
        let pieces = streamed(tokenizer, ids)
        XCTAssertFalse(pieces.contains { $0.contains("L") }, "streamed a byte the full decode replaces: \(pieces)")
        XCTAssertEqual(pieces.joined(), tokenizer.decode(ids))
    }

    func testByteFallbackRunIsEmittedWhenATokenEndsIt() throws {
        let tokenizer = try Tokenizer(directory: TokenizerFixtures.require("tiny-spm"))
        let word = try XCTUnwrap(tokenizer.id(forToken: "▁Num"))
        let euro = try ["<0xE2>", "<0x82>", "<0xAC>"].map { try XCTUnwrap(tokenizer.id(forToken: $0)) }
        let pieces = streamed(tokenizer, [word] + euro + [word])
        XCTAssertEqual(pieces, ["Num", "", "", "", "€ Num", ""])
    }

    func testStreamedTextEqualsFullDecodeForRandomIdSequences() throws {
        let names = [
            "tiny-spm", "tiny-spm-metaspace", "tiny-spm-metaspace-split", "tiny-gpt2", "tiny-llama", "tiny-qwen2"
        ]
        for name in names {
            let tokenizer = try Tokenizer(directory: TokenizerFixtures.require(name))
            // Half the ids from the byte tokens (where a vocabulary has them), so that runs of
            // bytes, valid or not, are common.
            let byteIds = (0..<256).compactMap { tokenizer.id(forToken: String(format: "<0x%02X>", $0)) }
            var rng = SplitMix64(state: 17)
            for _ in 0..<300 {
                let ids = (0..<(1 + rng.below(24))).map { _ -> Int32 in
                    !byteIds.isEmpty && rng.below(2) == 0
                        ? rng.pick(byteIds) : Int32(rng.below(tokenizer.vocabularySize))
                }
                for skip in [false, true] {
                    XCTAssertEqual(
                        Array(streamed(tokenizer, ids, skipSpecialTokens: skip).joined().utf8),
                        Array(tokenizer.decode(ids, skipSpecialTokens: skip).utf8), "\(name) skip \(skip) ids \(ids)")
                }
            }
        }
    }
}
