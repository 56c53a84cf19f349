/// RULER's multi-hop tracing task `vt` (`scripts/data/synthetic/variable_tracking.py`): chains
/// of assignments "VAR ABCDE = 12345", "VAR FGHIJ = VAR ABCDE ", ... scattered through repeated
/// noise; the model lists every variable that ends up holding the first chain's value. As in
/// RULER, one solved example (three-letter names, short noise) comes before the task.
public struct VariableTracking: HaystackTask {
    public let name = "vt"
    public let chainCount: Int
    public let hopCount: Int
    public let maxNewTokens = 30
    /// Noise lines of the solved example. RULER sizes the example to 500 tokens with the model's
    /// tokenizer (`exampleNoiseLines(count:)`); 18 is about that for Llama-style tokenizers.
    public let exampleNoiseLines: Int

    public init(chainCount: Int = 1, hopCount: Int = 4, exampleNoiseLines: Int = 18) {
        self.chainCount = max(chainCount, 1)
        self.hopCount = max(hopCount, 1)
        self.exampleNoiseLines = max(exampleNoiseLines, hopCount + 1)
    }

    /// RULER's sizing of the solved example: noise grows in steps of 5 lines while the example
    /// with its answer, plus the 30 answer tokens, stays within 500 tokens (at least 5 lines).
    public static func exampleNoiseLines(chainCount: Int = 1, hopCount: Int = 4, count: (String) -> Int) -> Int {
        let probe = VariableTracking(chainCount: chainCount, hopCount: hopCount)
        var lines = 5
        while lines < 500 {
            var random = EvalRandom(seed: 0, "example")
            let example = probe.instance(noiseLines: lines + 5, nameLength: 3, random: &random)
            let text = example.user + example.prefix + example.answer.joined(separator: " ")
            if count(text) + probe.maxNewTokens > 500 { break }
            lines += 5
        }
        return lines
    }

    public var minimumUnits: Int { hopCount + 1 }

    static let noise = RulerNIAH.noiseLine + "\n"

    static func question(context: String, value: String) -> String {
        "Memorize and track the chain(s) of variable assignment hidden in the following text.\n\n"
            + "\(context)\nQuestion: Find all variables that are assigned the value \(value) in the text above."
    }

    /// RULER's answer prefix, with its spelling ("assgined") kept so prompts match RULER's.
    static func answerPrefix(variables: Int, value: String) -> String {
        " Answer: According to the chain(s) of variable assignment in the text above, \(variables) variables are assgined the value \(value), they are: "
    }

    /// The chains' statements, the names of each chain's variables, and the first chain's value.
    func chains(nameLength: Int, _ random: inout EvalRandom) -> (statements: [[String]], names: [[String]]) {
        var used = Set<String>()
        var names: [[String]] = []
        var statements: [[String]] = []
        for _ in 0..<chainCount {
            var chain: [String] = []
            while chain.count < hopCount + 1 {
                let name = random.letters(nameLength, from: EvalRandom.uppercase)
                if used.insert(name).inserted { chain.append(name) }
            }
            var lines = ["VAR \(chain[0]) = \(random.int(in: 10000...99998))"]
            for hop in 0..<hopCount { lines.append("VAR \(chain[hop + 1]) = VAR \(chain[hop]) ") }
            names.append(chain)
            statements.append(lines)
        }
        return (statements, names)
    }

    /// Noise lines with every chain's statements inserted in order at random places; returns
    /// the question, the answer prefix and the first chain's variables.
    func instance(noiseLines: Int, nameLength: Int, random: inout EvalRandom) -> (
        user: String, prefix: String, answer: [String]
    ) {
        let (statements, names) = chains(nameLength: nameLength, &random)
        var sentences = Array(repeating: Self.noise, count: noiseLines)
        for chain in statements {
            let positions = random.sample(chain.count, from: sentences.count).sorted()
            for (j, position) in positions.enumerated() { sentences.insert(chain[j], at: position + j) }
        }
        let context = sentences.joined(separator: " ").replacingAll(". \n", with: ".\n")
        let value = String(statements[0][0].split(separator: "=").last!).trimmingWhitespace()
        return (
            Self.question(context: context, value: value),
            Self.answerPrefix(variables: hopCount + 1, value: value), names[0]
        )
    }

    public func make(units: Int, seed: UInt64) -> (prompt: EvalPrompt, references: [String]) {
        var exampleRandom = EvalRandom(seed: seed, "example")
        let example = instance(noiseLines: exampleNoiseLines, nameLength: 3, random: &exampleRandom)
        var random = EvalRandom(seed: seed, "task")
        let task = instance(noiseLines: units, nameLength: 5, random: &random)
        let user = example.user + example.prefix + example.answer.joined(separator: " ") + "\n\n" + task.user
        let prompt = EvalPrompt(
            user: user, continuation: task.prefix, addGenerationPrompt: true,
            maxNewTokens: maxNewTokens)
        return (prompt, task.answer)
    }
}

extension String {
    /// Every occurrence of `target` replaced by `replacement` (no Foundation needed).
    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        return split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
