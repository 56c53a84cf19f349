import BatonTensor
import Foundation
import XCTest

@testable import BatonTokenizer

/// Where the test fixtures live: Tests/Fixtures, found from this file's path.
enum TokenizerFixtures {
    static let testsFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    static let root = testsFolder.appendingPathComponent("Fixtures")
    static let scripts = testsFolder.deletingLastPathComponent().appendingPathComponent("scripts")

    static func directory(_ name: String) -> URL { root.appendingPathComponent(name) }

    /// The fixture directory, or an XCTSkip naming what is missing.
    static func require(_ name: String, file: String = "tokenizer.json") throws -> URL {
        let dir = directory(name)
        guard FileManager.default.fileExists(atPath: dir.appendingPathComponent(file).path) else {
            throw XCTSkip("fixture \(name)/\(file) not present")
        }
        return dir
    }
}

/// BatonTensor's SplitMix64, so generated test texts are the same everywhere.
extension SplitMix64 {
    init(state: UInt64) { self.init(seed: state) }
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }
}

/// Texts that probe every corner of pre-tokenization: scripts, emoji sequences, digit and
/// whitespace runs, contractions in every case, code, and the tokenizer's own special tokens.
enum TrickyTexts {
    static let pieces: [String] = [
        "hello", "Hello", "HELLO", "world", "The", "quick", "fox", "I'M", "I'm", "don't", "DON'T", "we'd've",
        "it'S", "you'RE", "they'LL", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'x", "''s", "'ſ", "'ST",
        "café", "cafe\u{301}", "naïve", "Straße", "ÜBER", "Привет", "мир", "Καλημέρα", "你好", "世界",
        "東京は日本", "こんにちは", "안녕하세요", "مرحبا", "بالعالم", "नमस्ते", "สวัสดี", "עברית",
        "🍎", "🚀", "😀😃", "👍🏽", "👨\u{200D}👩\u{200D}👧\u{200D}👦", "👩🏻\u{200D}💻", "🏳️\u{200D}🌈", "🇫🇷🇯🇵",
        "❤️", "✨", "𝔘𝔫𝔦", "①②③", "Ⅻ", "½", "٣٤٥", "१२३", "0", "7", "42", "123", "1234", "12345678901",
        "3.14159", "1,234.56", "2024-06-30", "$99", "(x)", "[[y]]", "{{z}}", "...", "?!?!", "--->", "***",
        "<<<>>>", "@#%", "`code`", "x += 1", "def f(x):", "return x * 2", "a_b", "snake_case", "CamelCase",
        "https://example.org/a?b=c", "mail@example.com", "\"quoted\"", "«guillemets»", "—", "–", "…",
        " ", "  ", "   ", "\t", "\t\t", "\n", "\n\n", "\r\n", "\r\n\r\n", " \n", "\n ", " \t ", "\u{A0}",
        "\u{2003}", "\u{3000}", "\u{85}", "\u{180E}", "\u{200B}", "\u{FEFF}", "\u{2028}", "\u{1C}", "\u{7F}",
        "\u{0}", "e\u{301}\u{302}", "\u{301}", "ﬁ", "Å", "Ω", "ǅ", "ʰ", "々", "〇"
    ]
    static let separators = ["", " ", " ", " ", "  ", "\n", "\t", "\r\n", ". ", ", ", "   ", "\n\n"]

    /// `count` generated texts mixing `pieces`, the `specials` and separators.
    static func generate(count: Int, specials: [String], seed: UInt64) -> [String] {
        var rng = SplitMix64(state: seed)
        let pool = pieces + specials + specials
        return (0..<count).map { _ in
            var text = ""
            for _ in 0..<(1 + rng.below(12)) {
                text += rng.pick(pool)
                text += rng.pick(separators)
            }
            if rng.below(4) == 0 { text += rng.pick(["  ", "\n", " \n ", "\t", "   "]) }
            if rng.below(5) == 0 { text = rng.pick([" ", "  ", "\n", "\t"]) + text }
            return text
        }
    }
}

/// Runs one of the reference scripts in scripts/ with a JSON request; skips the test when
/// python3 or the module the script needs is missing.
enum PythonReference {
    /// Whether `python3 -c "import module"` succeeds.
    static func isAvailable(_ module: String) -> Bool {
        let check = Process()
        check.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        check.arguments = ["python3", "-c", "import \(module)"]
        check.standardOutput = FileHandle.nullDevice
        check.standardError = FileHandle.nullDevice
        do { try check.run() } catch { return false }
        check.waitUntilExit()
        return check.terminationStatus == 0
    }

    static func run(script: String, module: String, request: [String: Any]) throws -> Data {
        if !isAvailable(module) { throw XCTSkip("python3 with module \(module) not available") }

        let work = FileManager.default.temporaryDirectory.appendingPathComponent("baton-ref-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }
        let requestURL = work.appendingPathComponent("request.json")
        let responseURL = work.appendingPathComponent("response.json")
        try JSONSerialization.data(withJSONObject: request).write(to: requestURL)
        _ = FileManager.default.createFile(atPath: responseURL.path, contents: nil)
        let run = Process()
        run.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        run.arguments = ["python3", TokenizerFixtures.scripts.appendingPathComponent(script).path, requestURL.path]
        run.standardOutput = try FileHandle(forWritingTo: responseURL)
        try run.run()
        run.waitUntilExit()
        XCTAssertEqual(run.terminationStatus, 0, "\(script) failed")
        return try Data(contentsOf: responseURL)
    }
}

/// What the Python references answered, recorded for machines without the Python packages
/// (Tests/Fixtures/python-references.json, written by scripts/record_python_references.sh, which
/// runs the cross-checks live with BATON_RECORD_PYTHON_REFERENCES=1). Chat renders are stored
/// whole; a tokenizer cross-check, hundreds of kilobytes of answers, as the digest of its
/// transcript.
struct RecordedReferences: Codable {
    struct TokenizerRecord: Codable {
        /// tokenizers' version, the digests of tokenizer.json and of the test's inputs, and of
        /// the answers' transcript (see `Transcript`).
        var version: String
        var tokenizer: String
        var inputs: String
        var transcript: String
        /// Indices of the decode lists on which DecodeStream raised (nothing to compare there).
        var streamNull: [Int]
        var streamSkipNull: [Int]
    }
    var tokenizers: [String: TokenizerRecord] = [:]
    /// Digest of (template, bos token, conversations) -> jinja2's renders.
    var chats: [String: [String]] = [:]

    static let url = TokenizerFixtures.root.appendingPathComponent("python-references.json")

    static func load() throws -> RecordedReferences {
        guard let data = try? Data(contentsOf: url) else { return RecordedReferences() }
        return try JSONDecoder().decode(RecordedReferences.self, from: data)
    }

    static func update(_ change: (inout RecordedReferences) -> Void) throws {
        var references = try load()
        change(&references)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try encoder.encode(references).write(to: url)
    }

    static var recording: Bool { ProcessInfo.processInfo.environment["BATON_RECORD_PYTHON_REFERENCES"] != nil }
}

/// A byte stream of tagged lines of length-prefixed fields, and its 64-bit FNV-1a digest: two
/// runs' answers are equal exactly when their transcripts are (up to a 2^-64 collision).
struct Transcript {
    private(set) var bytes: [UInt8] = []

    mutating func line(_ tag: String, _ fields: [String]) {
        bytes += Array(tag.utf8)
        for field in fields {
            let utf8 = Array(field.utf8)
            bytes += Array("\(utf8.count):".utf8) + utf8
        }
        bytes.append(0x0A)
    }

    var digest: String { Transcript.digest(bytes) }

    static func digest<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        return String(hash, radix: 16)
    }
}
