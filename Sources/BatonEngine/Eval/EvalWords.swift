/// Baton's own vocabulary for synthetic tasks (written for Baton; RULER draws the same kinds of
/// words from the `wonderwords` package): keys are adjective-noun pairs ("quiet-harbor"), the
/// essay-like haystack is built from sentence patterns over these words, and word-extraction
/// tasks that need thousands of distinct words extend them with pronounceable made-up words.
enum EvalWords {
    static let adjectives: [String] = """
        able ancient angry awake bitter blue bold brave bright broad busy calm careful cheap \
        clean clever cold cool crisp curious damp dark deep dry dusty eager early easy empty \
        fair faint famous fast fierce flat fond fragile free fresh full gentle giant glad golden \
        grand green grim happy hard harsh heavy hidden hollow honest huge humble icy idle jolly \
        keen kind large late lazy light little lively lonely long loud lucky mellow mild modern \
        narrow neat noble odd old pale patient plain polite proud quick quiet rapid rare red rich \
        rough round royal rusty sad safe sharp shiny short shy silent silver simple slow small \
        smooth soft solid sour spare steady steep stiff still strange strict strong sudden sunny \
        sweet swift tall tame tender thick thin tidy tiny tough vast warm weary wide wild wise \
        wooden young
        """.split(separator: " ").map(String.init)

    static let nouns: [String] = """
        anchor apple arrow attic badge bakery banner barn basket beacon bell blanket boat bottle \
        bridge brook bucket cabin camera candle canyon carpet castle cellar chair chimney cliff \
        clock cloud compass cottage crown curtain desert diary drum eagle engine falcon feather \
        fence ferry field forest fountain garden gate glacier guitar hammer harbor helmet hill \
        island jacket jungle kettle kitchen ladder lake lantern letter library lighthouse market \
        meadow mirror mountain needle ocean orchard oven painting palace parrot pebble pencil \
        piano pillow planet pocket pond puzzle quarry rabbit railway river rocket saddle sailor \
        school shelf shovel signal skyline sparrow spoon stable statue station storm stream \
        street summit table teapot temple theater thunder tiger tower tractor trumpet tunnel \
        umbrella valley village violin wagon wallet window wizard workshop
        """.split(separator: " ").map(String.init)

    static let verbs: [String] = """
        admire borrow build carry chase clean collect cook cover dance design discover draw \
        explore fix follow gather grow guard hide hold imagine invent join keep lift listen \
        measure mend move notice open paint plant polish protect pull push repair rescue return \
        sell share sketch study teach test trade travel visit wander wash watch weave whistle \
        write
        """.split(separator: " ").map(String.init)

    /// Every real word, deduplicated and sorted (the pool word-extraction tasks start from).
    static let realWords: [String] = Array(Set(adjectives + nouns + verbs)).sorted()

    private static let onsets = Array("bdfgklmnprstvz").map(String.init)
    private static let vowels = Array("aeiou").map(String.init)

    /// `count` distinct words: the real words first, then made-up three-syllable words
    /// ("bakelo", "tonivu"), in a fixed order, so the pool for a larger count extends the pool
    /// for a smaller one.
    static func pool(count: Int) -> [String] {
        var words = Array(realWords.prefix(count))
        var seen = Set(words)
        var index = 0
        let syllables = onsets.flatMap { onset in vowels.map { onset + $0 } }
        let n = syllables.count
        while words.count < count && index < n * n * n {
            // A fixed odd stride visits every three-syllable combination once, well mixed.
            let code = (index &* 7919) % (n * n * n)
            index += 1
            let word = syllables[code / (n * n)] + syllables[(code / n) % n] + syllables[code % n]
            if seen.insert(word).inserted { words.append(word) }
        }
        return words
    }

    /// A random key word in RULER's style: adjective-noun.
    static func key(_ random: inout EvalRandom) -> String {
        random.pick(adjectives) + "-" + random.pick(nouns)
    }

    private static let sentencePatterns: [String] = [
        "The {adj} {noun} stood beside the {noun} for most of the year.",
        "Most people who {verb} a {noun} never think about the {noun} behind it.",
        "In the end, every {noun} turns {adj}, and that is why we {verb} it with care.",
        "It is easy to {verb} a {adj} {noun} when the {noun} nearby is {adj}.",
        "When I was young, my uncle would {verb} every {noun} in the village.",
        "A {adj} {noun} is often worth more than a {adj} {noun}.",
        "Nobody expected the {noun} to become so {adj} so quickly.",
        "If you want to {verb} the {noun}, start with the {noun} and be patient.",
        "The best founders I know {verb} their {noun} long before anyone asks them to.",
        "What surprised me most was how {adj} the {noun} looked after the storm.",
        "There is a lesson here about the {noun}: keep it {adj} and it will last.",
        "Startups rarely fail because of the {noun}; they fail because nobody bothered to {verb} it.",
        "She spent the afternoon trying to {verb} the old {noun} near the {noun}.",
        "Few things are as {adj} as a {noun} on a {adj} morning.",
        "The trick is to {verb} the {noun} before it gets {adj}.",
        "Years later, the {noun} by the {noun} was still {adj}."
    ]

    /// One essay-like sentence (the stand-in for RULER's Paul Graham essays, which Baton does
    /// not download).
    static func essaySentence(_ random: inout EvalRandom) -> String {
        var sentence = ""
        var pattern = Substring(random.pick(sentencePatterns))
        while let open = pattern.firstIndex(of: "{"), let close = pattern.firstIndex(of: "}") {
            sentence += pattern[..<open]
            switch pattern[pattern.index(after: open)..<close] {
            case "adj": sentence += random.pick(adjectives)
            case "noun": sentence += random.pick(nouns)
            default: sentence += random.pick(verbs)
            }
            pattern = pattern[pattern.index(after: close)...]
        }
        return sentence + pattern
    }
}
