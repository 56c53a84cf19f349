import Foundation

/// RULER's aggregation task `cwe` (`common_words_extraction.py`): a numbered list of words in
/// which ten words appear `commonRepeats` times and the rest `uncommonRepeats` times; the model
/// names the ten most common. A solved example (40 words) comes first, as in RULER.
public struct CommonWordsExtraction: HaystackTask {
    public let name = "cwe"
    public let maxNewTokens = 120
    public let commonCount = 10
    public let commonRepeats: Int
    public let uncommonRepeats: Int
    let exampleRepeats: (common: Int, uncommon: Int, words: Int)

    /// RULER's settings: 30 and 3 repeats at 4K tokens and above, 6 and 1 below (short lists
    /// cannot hold 30 copies of ten words), with a smaller example below 4K.
    public init(length: Int) {
        if length < 4096 {
            (commonRepeats, uncommonRepeats, exampleRepeats) = (6, 1, (3, 1, 20))
        } else {
            (commonRepeats, uncommonRepeats, exampleRepeats) = (30, 3, (10, 3, 40))
        }
    }

    /// Units are distinct words in the list (ten common plus the uncommon ones).
    public var minimumUnits: Int { commonCount + 1 }
    public var maximumUnits: Int? { Self.words.count }

    /// Real words first, then made-up ones: enough for about 600K tokens of list.
    static let words = EvalWords.pool(count: 60_000)

    static let question = "Question: What are the 10 most common words in the above list?"
    static let answerPrefix = " Answer: The top 10 words that appear most often in the list are:"

    static func numbered(_ words: [String]) -> String {
        words.enumerated().map { "\($0.offset + 1). \($0.element)" }.joined(separator: " ")
    }

    /// A shuffled list of `distinct` words and its ten common words (RULER's `get_example`).
    func list(distinct: Int, common: Int, uncommon: Int, random: inout EvalRandom) -> (
        context: String, answer: [String]
    ) {
        let chosen = random.sample(distinct, from: Self.words.count).map { Self.words[$0] }
        let commonWords = Array(chosen.prefix(commonCount))
        var list: [String] = []
        list.reserveCapacity(commonCount * common + (distinct - commonCount) * uncommon)
        for _ in 0..<common { list += commonWords }
        for _ in 0..<uncommon { list += chosen.dropFirst(commonCount) }
        random.shuffle(&list)
        return (Self.numbered(list), commonWords)
    }

    static func listPrompt(_ context: String) -> String {
        "Below is a numbered list of words. In these words, some appear more often than others. "
            + "Memorize the ones that appear most often.\n\(context)\n\(question)"
    }

    public func make(units: Int, seed: UInt64) -> (prompt: EvalPrompt, references: [String]) {
        var exampleRandom = EvalRandom(seed: seed, "example")
        let example = list(
            distinct: exampleRepeats.words, common: exampleRepeats.common,
            uncommon: exampleRepeats.uncommon, random: &exampleRandom)
        var random = EvalRandom(seed: seed, "task")
        let task = list(distinct: units, common: commonRepeats, uncommon: uncommonRepeats, random: &random)
        let user =
            Self.listPrompt(example.context) + Self.answerPrefix + " " + Self.numbered(example.answer)
            + "\n" + Self.listPrompt(task.context)
        return (
            EvalPrompt(
                user: user, continuation: Self.answerPrefix, addGenerationPrompt: true,
                maxNewTokens: maxNewTokens), task.answer
        )
    }
}

/// RULER's aggregation task `fwe` (`freq_words_extraction.py`): "coded text" of random
/// six-letter words whose counts follow a Zipf law, count(rank k) = floor(N k^-alpha / zeta(alpha));
/// the top-ranked word is replaced by "..." (noise), and the model names ranks 2 to 4.
public struct FrequentWordsExtraction: HaystackTask {
    public let name = "fwe"
    public let maxNewTokens = 50
    public let alpha: Double
    public let vocabularySize: Int
    public let codedWordLength = 6
    let zetaOfAlpha: Double

    /// RULER: alpha 2, a vocabulary of length / 50 coded words.
    public init(length: Int, alpha: Double = 2) {
        self.alpha = alpha
        self.vocabularySize = max(length / 50, 8)
        self.zetaOfAlpha = Self.zeta(alpha)
    }

    /// Units are N, the Zipf sample size; 100 keeps the counts of ranks 2 to 5 distinct.
    public var minimumUnits: Int { 100 }

    /// Riemann zeta by direct summation plus the Euler-Maclaurin tail (exact to ~1e-12 for alpha > 1).
    static func zeta(_ s: Double) -> Double {
        let n = 1000
        var sum = 0.0
        for k in 1..<n { sum += pow(Double(k), -s) }
        let tail = pow(Double(n), 1 - s) / (s - 1) + 0.5 * pow(Double(n), -s) + s / 12 * pow(Double(n), -s - 1)
        return sum + tail
    }

    /// How many times the word of rank `k` (1-based) appears among `units` sampled words.
    public func count(rank k: Int, units: Int) -> Int {
        Int(Double(units) * pow(Double(k), -alpha) / zetaOfAlpha)
    }

    public func make(units: Int, seed: UInt64) -> (prompt: EvalPrompt, references: [String]) {
        var random = EvalRandom(seed: seed, "vocabulary")
        var vocabulary = Set<String>()
        while vocabulary.count < vocabularySize {
            vocabulary.insert(random.letters(codedWordLength, from: EvalRandom.lowercase))
        }
        var ranked = vocabulary.sorted()
        random.shuffle(&ranked)
        ranked[0] = "..."
        var text: [String] = []
        for (index, word) in ranked.enumerated() {
            text += repeatElement(word, count: count(rank: index + 1, units: units))
        }
        var shuffle = EvalRandom(seed: seed, "order")
        shuffle.shuffle(&text)
        let user =
            "Read the following coded text and track the frequency of each coded word. "
            + "Find the three most frequently appeared coded words. \(text.joined(separator: " "))\n"
            + "Question: Do not provide any explanation. Please ignore the dots '....'. "
            + "What are the three most frequently appeared words in the above coded text?"
        let prefix = " Answer: According to the coded text above, the three most frequently appeared words are:"
        return (
            EvalPrompt(user: user, continuation: prefix, addGenerationPrompt: true, maxNewTokens: maxNewTokens),
            Array(ranked[1...3])
        )
    }
}
