/// One model answer, scored.
public struct EvalPrediction: Sendable, Codable, Equatable {
    public var method: String
    public var task: String
    public var length: Int
    public var depth: Double?
    public var index: Int
    public var promptTokens: Int
    public var references: [String]
    public var prediction: String
    /// RULER's `string_match_all` for this sample, in [0, 1].
    public var score: Double
}

/// Mean accuracy of one cell of the grid (method x task x length, and depth for NIAH).
public struct EvalCell: Sendable, Codable, Equatable {
    public var method: String
    public var task: String
    public var length: Int
    public var depth: Double?
    public var samples: Int
    /// Percent, 0 to 100.
    public var accuracy: Double
}

/// Runs samples through a model and scores them with RULER's rules.
public enum EvalRunner {
    /// Asks `generate` for every sample, in order, and scores each answer with
    /// `string_match_all` (the rule RULER uses for all NIAH, VT, CWE and FWE tasks).
    /// `progress` is called with the number of samples done, `beforeEach` before each sample.
    public static func run(
        _ samples: [EvalSample], method: String,
        generate: (EvalPrompt) throws -> String,
        progress: ((Int) -> Void)? = nil, beforeEach: ((EvalSample) -> Void)? = nil
    ) throws -> [EvalPrediction] {
        var predictions: [EvalPrediction] = []
        predictions.reserveCapacity(samples.count)
        for sample in samples {
            beforeEach?(sample)
            let answer = try generate(sample.prompt)
            predictions.append(
                EvalPrediction(
                    method: method, task: sample.task, length: sample.length, depth: sample.depth,
                    index: sample.index, promptTokens: sample.promptTokens, references: sample.references,
                    prediction: answer,
                    score: RulerScore.score(task: sample.task, prediction: answer, references: sample.references)))
            progress?(predictions.count)
        }
        return predictions
    }

    /// Predictions grouped into cells, in the order their cells first appear.
    public static func cells(_ predictions: [EvalPrediction]) -> [EvalCell] {
        struct Key: Hashable { let method: String, task: String, length: Int, depth: Double? }
        var order: [Key] = []
        var scores: [Key: [Double]] = [:]
        for p in predictions {
            let key = Key(method: p.method, task: p.task, length: p.length, depth: p.depth)
            if scores[key] == nil { order.append(key) }
            scores[key, default: []].append(p.score)
        }
        return order.map { key in
            let values = scores[key]!
            return EvalCell(
                method: key.method, task: key.task, length: key.length, depth: key.depth,
                samples: values.count, accuracy: 100 * values.reduce(0, +) / Double(values.count))
        }
    }
}
