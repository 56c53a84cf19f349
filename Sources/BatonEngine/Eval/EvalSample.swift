/// What the engine is asked to do for one eval sample. The engine wraps `user` in the model's
/// chat template (a user turn, with the assistant header when `addGenerationPrompt`), appends
/// `continuation` raw, and generates up to `maxNewTokens` greedy tokens.
///
/// The two shapes of prompt in use:
/// - APB's NIAH example: the context is the user turn without a generation prompt, and the query
///   ("Now, give me the exact number of the pass key. The pass key is ") is appended raw.
/// - RULER: the task is the user turn with the generation prompt, and the task's answer prefix
///   (" The special magic number for ... is") is appended raw, as RULER appends it to the prompt.
public struct EvalPrompt: Sendable, Codable, Equatable {
    public var user: String
    public var continuation: String
    public var addGenerationPrompt: Bool
    public var maxNewTokens: Int

    public init(user: String, continuation: String, addGenerationPrompt: Bool, maxNewTokens: Int) {
        self.user = user
        self.continuation = continuation
        self.addGenerationPrompt = addGenerationPrompt
        self.maxNewTokens = maxNewTokens
    }

    /// The text whose tokens are budgeted against the target length (template tokens excluded;
    /// a `count` closure that wants them adds its template's overhead).
    public var countedText: String { user + continuation }
}

/// One generated test item: the prompt, the strings a correct answer contains, and where it sits
/// in the grid (`depth` is the needle's depth fraction for NIAH, nil for RULER tasks).
public struct EvalSample: Sendable, Codable, Equatable {
    public var task: String
    /// Target length in tokens (prompt plus `maxNewTokens`).
    public var length: Int
    public var depth: Double?
    public var index: Int
    public var prompt: EvalPrompt
    public var references: [String]
    /// Tokens of `prompt.countedText` as counted when the sample was sized.
    public var promptTokens: Int

    public init(
        task: String, length: Int, depth: Double?, index: Int, prompt: EvalPrompt,
        references: [String], promptTokens: Int
    ) {
        self.task = task
        self.length = length
        self.depth = depth
        self.index = index
        self.prompt = prompt
        self.references = references
        self.promptTokens = promptTokens
    }
}

/// RULER's scoring rules (`scripts/eval/synthetic/constants.py`), per sample in [0, 1].
public enum RulerScore {
    /// RULER's `postprocess_pred`: trim, turn control characters into newlines, trim again.
    public static func postprocess(_ prediction: String) -> String {
        let scalars = prediction.unicodeScalars.map { $0.value < 0x20 ? "\n" : Character($0) }
        return String(scalars).trimmingWhitespace()
    }

    /// `string_match_all`: the fraction of references found in the prediction as substrings,
    /// ignoring case. Used for every NIAH, VT, CWE and FWE task.
    public static func stringMatchAll(prediction: String, references: [String]) -> Double {
        guard !references.isEmpty else { return 0 }
        let text = postprocess(prediction).lowercased()
        let found = references.filter { text.contains($0.lowercased()) }.count
        return Double(found) / Double(references.count)
    }

    /// RULER's metric of `task`: string_match_part for QA (qa_1, qa_2), string_match_all otherwise.
    public static func score(task: String, prediction: String, references: [String]) -> Double {
        task.hasPrefix("qa")
            ? stringMatchPart(prediction: prediction, references: references)
            : stringMatchAll(prediction: prediction, references: references)
    }

    /// `string_match_part`: 1 if any reference is found (QA tasks, where any gold answer counts).
    public static func stringMatchPart(prediction: String, references: [String]) -> Double {
        let text = postprocess(prediction).lowercased()
        return references.contains { text.contains($0.lowercased()) } ? 1 : 0
    }
}

extension String {
    /// Leading and trailing spaces, tabs and newlines removed (Python's `str.strip()` for ASCII).
    func trimmingWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }),
            let last = lastIndex(where: { !isSpace($0) })
        else { return "" }
        return String(self[first...last])
    }
}
