import BatonTensor
import Foundation

/// RULER's question answering (`data/synthetic/qa.py`): one question, its gold documents among
/// distractor documents ("Document i:\n..."), as many as fit; scored with string_match_part.
public struct RulerQA: HaystackTask {
    /// One question: its accepted answers and the indices of its gold documents in `documents`
    /// (`more`: SQuAD's other paragraphs of the same article, RULER's first distractors).
    public struct Question: Sendable, Equatable {
        public var query: String
        public var answers: [String]
        public var gold: [Int]
        public var more: [Int]
    }

    /// A QA set as RULER reads it: distinct documents, sorted, and the questions over them.
    public struct DataSet: Sendable {
        public var documents: [String]
        public var questions: [Question]
    }

    public static let template =
        "Answer the question based on the given documents. Only give me the answer and do not output any other words.\n\nThe following are given documents.\n\n{context}\n\nAnswer the question based on the given documents. Only give me the answer and do not output any other words.\n\nQuestion: {query}"
    public static let answerPrefix = " Answer:"

    public let name: String
    public let data: DataSet
    public let maxNewTokens = 32

    public init(name: String, data: DataSet) {
        self.name = name
        self.data = data
    }

    public var minimumUnits: Int { data.questions.map(\.gold.count).max() ?? 1 }
    public var maximumUnits: Int? { data.documents.count }

    /// `units` documents: the question's gold ones, then its article's others, then random ones,
    /// shuffled (as RULER's `generate_input_output`).
    public func make(units: Int, seed: UInt64) -> (prompt: EvalPrompt, references: [String]) {
        var random = EvalRandom(seed: seed, "qa")
        let question = data.questions[random.below(data.questions.count)]
        var chosen = question.gold
        let wanted = max(units, question.gold.count)
        if wanted - chosen.count <= question.more.count {
            chosen += random.sample(wanted - chosen.count, from: question.more.count).map { question.more[$0] }
        } else {
            chosen += question.more
            let taken = Set(chosen)
            var others: [Int] = []
            while chosen.count + others.count < min(wanted, data.documents.count) {
                let index = random.below(data.documents.count)
                if !taken.contains(index), !others.contains(index) { others.append(index) }
            }
            chosen += others
        }
        random.shuffle(&chosen)
        let context = chosen.enumerated().map { "Document \($0.offset + 1):\n\(data.documents[$0.element])" }
            .joined(separator: "\n\n")
        let user = Self.template.replacingOccurrences(of: "{context}", with: context)
            .replacingOccurrences(of: "{query}", with: question.query)
        return (
            EvalPrompt(
                user: user, continuation: Self.answerPrefix, addGenerationPrompt: true,
                maxNewTokens: maxNewTokens), question.answers
        )
    }
}

extension RulerQA.DataSet {
    /// SQuAD v2 (`squad.json`) as RULER's `read_squad`: answerable questions only.
    public static func squad(file: URL) throws -> Self {
        struct Answer: Decodable { var text: String }
        struct QA: Decodable { var question: String; var answers: [Answer]; var is_impossible: Bool }
        struct Paragraph: Decodable { var context: String; var qas: [QA] }
        struct Article: Decodable { var paragraphs: [Paragraph] }
        struct File: Decodable { var data: [Article] }
        let articles = try EvalCorpus.decode(File.self, file).data
        let documents = Array(Set(articles.flatMap { $0.paragraphs.map(\.context) })).sorted(by: pythonOrder)
        let index = Dictionary(uniqueKeysWithValues: documents.enumerated().map { ($0.element, $0.offset) })
        var questions: [RulerQA.Question] = []
        for article in articles {
            let articleDocuments = article.paragraphs.map { index[$0.context]! }
            for paragraph in article.paragraphs {
                let own = index[paragraph.context]!
                for qa in paragraph.qas where !qa.is_impossible {
                    questions.append(
                        .init(
                            query: qa.question, answers: qa.answers.map(\.text), gold: [own],
                            more: articleDocuments.filter { $0 != own }))
                }
            }
        }
        return .init(documents: documents, questions: questions)
    }

    /// HotpotQA dev (`hotpotqa.json`) as RULER's `read_hotpotqa`: documents "title\nsentences".
    public static func hotpotQA(file: URL) throws -> Self {
        struct Item: Decodable {
            var question: String
            var answer: String
            var context: [[Context]]
        }
        enum Context: Decodable {
            case title(String), sentences([String])
            init(from decoder: Decoder) throws {
                let container = try decoder.singleValueContainer()
                if let title = try? container.decode(String.self) {
                    self = .title(title)
                } else {
                    self = .sentences(try container.decode([String].self))
                }
            }
        }
        let items = try EvalCorpus.decode([Item].self, file)
        func document(_ pair: [Context]) -> String {
            guard pair.count == 2, case .title(let title) = pair[0], case .sentences(let sentences) = pair[1] else {
                return ""
            }
            return title + "\n" + sentences.joined()
        }
        let perItem = items.map { $0.context.map(document) }
        let documents = Array(Set(perItem.flatMap { $0 })).sorted(by: pythonOrder)
        let index = Dictionary(uniqueKeysWithValues: documents.enumerated().map { ($0.element, $0.offset) })
        let questions = zip(items, perItem).map { item, docs in
            RulerQA.Question(query: item.question, answers: [item.answer], gold: docs.map { index[$0]! }, more: [])
        }
        return .init(documents: documents, questions: questions)
    }
}

/// Python's string order (by code point), so document indices match RULER's `sorted(set(...))`.
func pythonOrder(_ a: String, _ b: String) -> Bool {
    a.unicodeScalars.lexicographicallyPrecedes(b.unicodeScalars)
}
