/// The needle-in-a-haystack test of APB's example (`examples_apb/llama.py`): an instruction, a
/// filler repeated many times, the pass-key sentence at a depth fraction, more filler. The
/// context is the user turn (no generation prompt) and the query is appended raw, so the model
/// continues "The pass key is " with the digits.
public struct PassKeyNIAH: HaystackTask {
    public static let instruction =
        "There is a pass key hidden in the context. Find it and remember it. I will quiz you about it later. "
    /// APB's filler, verbatim from its example (one unit of haystack).
    public static let apbFiller = "The sky is blue. The tree is green. The flower is red. The sun is yellow. "
    public static let query = "Now, give me the exact number of the pass key. The pass key is "

    public let name = "niah"
    /// Where the needle goes: 0 = right after the instruction, 1 = after all the filler.
    public let depth: Double
    /// Digits of the pass key (APB's README shows 12).
    public let digits: Int
    public let filler: String
    /// APB's example generates 12 tokens; tokenizers that split numbers into single digits
    /// (Qwen2, SmolLM) need 12 for the digits alone, so Baton leaves room for a leading space and a period.
    public let maxNewTokens: Int

    public init(depth: Double, digits: Int = 12, filler: String = PassKeyNIAH.apbFiller, maxNewTokens: Int = 20) {
        self.depth = min(max(depth, 0), 1)
        self.digits = digits
        self.filler = filler
        self.maxNewTokens = maxNewTokens
    }

    public static func needle(_ passKey: String) -> String {
        "The pass key is \(passKey). Remember it. The pass key is \(passKey). "
    }

    /// Filler units before the needle when the haystack has `units` units.
    public func unitsBefore(_ units: Int) -> Int { Int((depth * Double(units)).rounded()) }

    public func make(units: Int, seed: UInt64) -> (prompt: EvalPrompt, references: [String]) {
        var random = EvalRandom(seed: seed, "pass key")
        let passKey = random.number(digits: digits)
        let before = unitsBefore(units)
        let context =
            Self.instruction
            + String(repeating: filler, count: before)
            + Self.needle(passKey)
            + String(repeating: filler, count: units - before)
        let prompt = EvalPrompt(
            user: context, continuation: Self.query,
            addGenerationPrompt: false, maxNewTokens: maxNewTokens)
        return (prompt, [passKey])
    }
}
