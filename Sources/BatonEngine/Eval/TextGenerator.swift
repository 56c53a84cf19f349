import BatonParallel
import BatonTensor
import BatonTokenizer

/// What `baton eval` needs from a loaded model: its tokenizer's counts, its chat template and
/// greedy completion of raw text. The engine provides it; tests can use any implementation.
public protocol TextGenerator: AnyObject {
    /// Tokens of `text` as plain text (no special tokens added).
    func countTokens(_ text: String) -> Int
    /// The model's chat template over one user turn.
    func renderChat(user: String, addGenerationPrompt: Bool) -> String
    /// Greedy continuation of `text` (already templated), at most `maxNewTokens` tokens,
    /// stopping at the model's end-of-sequence tokens; special tokens are not decoded.
    func complete(raw text: String, maxNewTokens: Int) throws -> String
}

extension TextGenerator {
    /// The model's answer to an eval prompt: template over the user turn, continuation appended raw.
    public func generate(_ prompt: EvalPrompt) throws -> String {
        let text = renderChat(user: prompt.user, addGenerationPrompt: prompt.addGenerationPrompt) + prompt.continuation
        return try complete(raw: text, maxNewTokens: prompt.maxNewTokens)
    }

    /// A counter for sizing prompts: the text's tokens plus the template's own tokens (measured
    /// once on an empty turn), so samples fit the target with the template included.
    public func promptTokenCounter() -> (String) -> Int {
        let overhead = countTokens(renderChat(user: "", addGenerationPrompt: true))
        return { [self] text in countTokens(text) + overhead }
    }
}

/// The engine as `baton eval`'s model: greedy, exact dense attention on one rank for now.
extension Engine: TextGenerator {
    public func countTokens(_ text: String) -> Int {
        tokenizer?.encode(text, addSpecialTokens: false).count ?? 0
    }

    /// The chat template over one user turn; models without one get the text as is (RULER's
    /// "base" template).
    public func renderChat(user: String, addGenerationPrompt: Bool) -> String {
        chatTemplate?.render(messages: [.user(user)], addGenerationPrompt: addGenerationPrompt) ?? user
    }

    public func complete(raw text: String, maxNewTokens: Int) throws -> String {
        try answer(raw: text, maxNewTokens: maxNewTokens) { ids, options in
            try generate(promptIds: ids, options: options)
        }
    }

    /// Greedy answer to `text` through `generate` (one rank or several), decoded without stop ids
    /// or special tokens.
    func answer(
        raw text: String, maxNewTokens: Int,
        generate: ([Int32], GenerationOptions) throws -> GenerationResult
    ) throws -> String {
        // A rendered template already spells its special tokens (BOS); plain text gets them added.
        let ids = try evalTokenizer().encode(text, addSpecialTokens: chatTemplate == nil)
        return try answer(ids: ids, maxNewTokens: maxNewTokens, generate: generate)
    }

    private func evalTokenizer() throws -> Tokenizer {
        guard let tokenizer else {
            throw BatonError.invalidArgument(
                "eval needs a model with a tokenizer (a preset with random weights has none)")
        }
        return tokenizer
    }

    /// Greedy answer to prompt `ids` through `generate`, decoded without stop ids or special tokens.
    func answer(
        ids: [Int32], maxNewTokens: Int, generate: ([Int32], GenerationOptions) throws -> GenerationResult
    ) throws -> String {
        let tokenizer = try evalTokenizer()
        let options = GenerationOptions(maxTokens: maxNewTokens)
        let result = try generate(ids, options)
        let stops = stopIds(options)
        return tokenizer.decode(result.tokens.filter { !stops.contains($0) }, skipSpecialTokens: true)
    }
}

/// The engine as `baton eval`'s model with a sequence-parallel method (CPU ranks, ranks sharing a
/// GPU, or one GPU per rank): the prompt's last tokens (the question and the answer prefix) are the
/// query, the rest the context.
public final class ParallelTextGenerator: TextGenerator {
    public let engine: Engine
    public let method: Method
    public let ranks: Int
    public let placement: RankPlacement
    /// Where the next prefills record their approximation report (`--report-approximation`), if set.
    public var approximation: ApproximationReport?
    /// APB/Spava's anchor and passing lengths (`--anchor-length`, `--passing-length`).
    public var plan = PlanOptions()

    public init(engine: Engine, method: Method, ranks: Int, placement: RankPlacement = .sharedDevice) {
        self.engine = engine
        self.method = method
        self.ranks = ranks
        self.placement = placement
    }

    public func countTokens(_ text: String) -> Int { engine.countTokens(text) }

    public func renderChat(user: String, addGenerationPrompt: Bool) -> String {
        engine.renderChat(user: user, addGenerationPrompt: addGenerationPrompt)
    }

    public func complete(raw text: String, maxNewTokens: Int) throws -> String {
        try engine.answer(raw: text, maxNewTokens: maxNewTokens) { ids, options in
            try engine.generateParallel(
                promptIds: ids, method: method, ranks: ranks, plan: plan, options: options, placement: placement,
                approximation: approximation)
        }
    }
}
