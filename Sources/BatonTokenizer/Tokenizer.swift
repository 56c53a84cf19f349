import BatonTensor
import Foundation

/// A Hugging Face `tokenizer.json` tokenizer (byte-level BPE as in Llama-3 and Qwen2, or
/// SentencePiece-style BPE with byte fallback as in Llama-2, Mistral and Yi), encoding and
/// decoding exactly as the `tokenizers` library does.
///
/// Encoding: added tokens are cut out of the raw text first and never split; the text between
/// them is normalized, pre-tokenized into words, and each word is merged by BPE (words are
/// cached); the post-processor then adds special ids such as `<|begin_of_text|>`.
public final class Tokenizer: Sendable {
    /// One past the largest id of the vocabulary and added tokens.
    public let vocabularySize: Int
    /// The beginning-of-sequence id (tokenizer_config `bos_token`, else generation_config or
    /// config `bos_token_id`), if the model has one.
    public let bosTokenId: Int32?
    /// Ids that end generation: generation_config's (or config's) `eos_token_id`, an int or a
    /// list, together with tokenizer_config's `eos_token`.
    public let eosTokenIds: Set<Int32>
    /// The chat template read from tokenizer_config.json, if it names a family Baton renders.
    public let chatTemplate: ChatTemplate?

    let model: BPEModel
    let normalizer: Normalizer?
    let preTokenizer: PreTokenizer?
    let isByteLevel: Bool
    let postProcessor: PostProcessor?
    let decoder: TokenDecoder?
    let addedTokens: [Int32: AddedToken]
    let addedTokenIds: [String: Int32]
    /// An added token's text as decoding and `token(forId:)` give it: normalized tokens in
    /// their normalized form, as tokenizers stores them.
    let addedTokenTexts: [Int32: String]
    let rawAddedMatcher: AddedTokenMatcher
    let normalizedAddedMatcher: AddedTokenMatcher
    private let cache = WordCache()

    /// Reads `tokenizer.json` from a model directory, and when present `tokenizer_config.json`,
    /// `generation_config.json` and `config.json` for the special ids and the chat template.
    public convenience init(directory: URL) throws {
        func read(_ name: String) throws -> Data? {
            let url = directory.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: url.path) else { return nil }
            do { return try Data(contentsOf: url) } catch {
                throw BatonError(.io, "\(url.path): cannot read (\(error.localizedDescription))")
            }
        }
        guard let tokenizerJSON = try read("tokenizer.json") else {
            throw BatonError(.io, "\(directory.appendingPathComponent("tokenizer.json").path): file not found")
        }
        // Checkpoints saved by newer transformers keep the chat template in its own file.
        let templateFile = try read("chat_template.jinja").map { String(decoding: $0, as: UTF8.self) }
        try self.init(
            tokenizerJSON: tokenizerJSON, config: try read("tokenizer_config.json"),
            generationConfig: try read("generation_config.json"), modelConfig: try read("config.json"),
            chatTemplateFile: templateFile)
    }

    /// A tokenizer from the contents of tokenizer.json and, optionally, tokenizer_config.json.
    public convenience init(tokenizerJSON: Data, config: Data?) throws {
        try self.init(tokenizerJSON: tokenizerJSON, config: config, generationConfig: nil, modelConfig: nil)
    }

    /// A tokenizer from file contents; `generationConfig` and `modelConfig` contribute
    /// `bos_token_id` / `eos_token_id`; `chatTemplateFile` (chat_template.jinja) is the chat
    /// template when tokenizer_config.json has none.
    public init(
        tokenizerJSON: Data, config: Data?, generationConfig: Data?, modelConfig: Data?,
        chatTemplateFile: String? = nil
    ) throws {
        let root = try JSONField.parse(tokenizerJSON, file: "tokenizer.json")
        guard root.value is [String: Any] else { throw root.failure(expected: "an object") }
        model = try BPEModel(root["model"])
        normalizer = try Normalizer.parse(root["normalizer"])
        preTokenizer = try PreTokenizer.parse(root["pre_tokenizer"])
        isByteLevel = preTokenizer?.containsByteLevel ?? false
        postProcessor = try PostProcessor.parse(root["post_processor"])
        decoder = try TokenDecoder.parse(root["decoder"])

        let added = root["added_tokens"].isNull ? [] : try root["added_tokens"].array().map(AddedToken.init)
        addedTokens = Dictionary(added.map { ($0.id, $0) }, uniquingKeysWith: { _, last in last })
        addedTokenIds = Dictionary(added.map { ($0.content, $0.id) }, uniquingKeysWith: { _, last in last })
        let raw = added.filter { !$0.normalized }
        rawAddedMatcher = AddedTokenMatcher(raw, contents: raw.map { Array($0.content.unicodeScalars) })
        let normalizedTokens = added.filter { $0.normalized }
        let normalizer = self.normalizer
        func normalizedContent(_ token: AddedToken) -> [Unicode.Scalar] {
            let content = Array(token.content.unicodeScalars)
            return normalizer?.normalize(content) ?? content
        }
        normalizedAddedMatcher = AddedTokenMatcher(normalizedTokens, contents: normalizedTokens.map(normalizedContent))
        addedTokenTexts = Dictionary(
            added.map {
                ($0.id, $0.normalized ? Normalizer.string(normalizedContent($0)) : $0.content)
            }, uniquingKeysWith: { _, last in last })
        vocabularySize = max(model.tokens.count, Int(added.map(\.id).max() ?? -1) + 1)

        let special = try SpecialTokenConfig(
            tokenizerConfig: config, generationConfig: generationConfig, modelConfig: modelConfig)
        let model = self.model
        let addedIds = addedTokenIds
        func id(_ token: String?) -> Int32? {
            guard let token else { return nil }
            return addedIds[token] ?? model.id(of: token)
        }
        bosTokenId = id(special.bosToken) ?? special.bosTokenIds.first.flatMap { Int32(exactly: $0) }
        var eos = Set(special.eosTokenIds.compactMap { Int32(exactly: $0) })
        if let e = id(special.eosToken) { eos.insert(e) }
        eosTokenIds = eos
        chatTemplate = (special.chatTemplate ?? chatTemplateFile).flatMap {
            ChatTemplate(detectingFrom: $0, bosToken: special.bosToken ?? "")
        }
    }

    /// The id of a token (added tokens included), or nil.
    public func id(forToken token: String) -> Int32? {
        addedTokenIds[token] ?? model.id(of: token)
    }

    /// The text of a token as stored in the vocabulary (byte-level tokens in their `Ġ`
    /// spelling), or nil for an unknown id.
    public func token(forId id: Int32) -> String? {
        addedTokenTexts[id] ?? model.token(for: id)
    }

    /// Token ids of `text`; with `addSpecialTokens` the post-processor's ids (such as BOS) are
    /// added. Chat-template output already holds its special tokens as text: encode it with
    /// `addSpecialTokens: false`.
    public func encode(_ text: String, addSpecialTokens: Bool = true) -> [Int32] {
        encode(text, addSpecialTokens: addSpecialTokens, maxParts: ProcessInfo.processInfo.activeProcessorCount)
    }

    /// `encode` with long texts' words split over at most `maxParts` cores (tests compare 1 with many).
    func encode(_ text: String, addSpecialTokens: Bool, maxParts: Int) -> [Int32] {
        let scalars = Array(text.unicodeScalars)
        var ids = [Int32]()
        ids.reserveCapacity(scalars.count / 3 + 4)
        // Added tokens matched in the raw text first, then those matched after normalization.
        for segment in rawAddedMatcher.split(scalars[...], atOrigin: true) {
            switch segment {
            case .token(let id):
                ids.append(id)
            case .text(let piece, let atOrigin):
                let normalized = normalizer.map { $0.normalize(Array(piece))[...] } ?? piece
                for inner in normalizedAddedMatcher.split(normalized, atOrigin: atOrigin) {
                    switch inner {
                    case .token(let id): ids.append(id)
                    case .text(let text, let atOrigin):
                        encodeWords(text, atOrigin: atOrigin, maxParts: maxParts, into: &ids)
                    }
                }
            }
        }
        if addSpecialTokens, let postProcessor { ids = postProcessor.process(ids) }
        return ids
    }

    /// Pre-tokenizes normalized text and runs BPE on each word, through the word cache. A long
    /// text's words are split into consecutive parts encoded on several cores (each word's BPE is
    /// independent of the others, so the ids are the same): a 124K-token prompt otherwise spends
    /// about 0.1 s here on one core before its prefill starts.
    private func encodeWords(
        _ text: ArraySlice<Unicode.Scalar>, atOrigin: Bool, maxParts: Int, into ids: inout [Int32]
    ) {
        if text.isEmpty { return }
        let start = [PreSplit(scalars: text, atOrigin: atOrigin)]
        let words = preTokenizer?.apply(start) ?? start
        let parts = max(1, min(maxParts, words.count / Self.wordsPerParallelPart))
        guard parts > 1 else {
            ids += encodeBPE(words[...])
            return
        }
        let results = PartResults(count: parts)
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            let range = (words.count * part / parts)..<(words.count * (part + 1) / parts)
            results.store(encodeBPE(words[range]), at: part)
        }
        for part in 0..<parts { ids += results.ids(at: part) }
    }

    /// The fewest words a part of a parallel encode gets (shorter texts stay on one core).
    static let wordsPerParallelPart = 4096

    /// BPE of each word, through the shared word cache.
    private func encodeBPE(_ words: ArraySlice<PreSplit>) -> [Int32] {
        var ids = [Int32]()
        ids.reserveCapacity(words.count * 2)
        var key = [UInt8]()
        for word in words {
            key.removeAll(keepingCapacity: true)
            for scalar in word.scalars { key.append(contentsOf: UTF8.encode(scalar)!) }
            if let cached = cache.lookup(TokenBytes(key)) {
                ids.append(contentsOf: cached)
                continue
            }
            let symbols = isByteLevel ? key.map { ByteLevelAlphabet.characters[Int($0)] } : Array(word.scalars)
            var wordIds = [Int32]()
            model.tokenize(symbols, into: &wordIds)
            cache.store(TokenBytes(key), wordIds)
            ids.append(contentsOf: wordIds)
        }
        return ids
    }

    /// Token ids of a conversation rendered with the model's chat template (BOS, where the
    /// template has one, comes from the template text, so no post-processor ids are added).
    public func encodeChat(_ messages: [ChatMessage], addGenerationPrompt: Bool = true) throws -> [Int32] {
        guard let chatTemplate else {
            throw BatonError.unsupported(
                "tokenizer_config.json: no `chat_template` of a known family (Llama-3 or ChatML); "
                    + "pass a ChatTemplate explicitly or encode plain text")
        }
        return encode(
            chatTemplate.render(messages: messages, addGenerationPrompt: addGenerationPrompt),
            addSpecialTokens: false)
    }

    /// Text of `ids`, through tokenizer.json's decoder. Invalid UTF-8 becomes U+FFFD; unknown
    /// ids are skipped; with `skipSpecialTokens`, special added tokens are left out.
    public func decode(_ ids: [Int32], skipSpecialTokens: Bool = false) -> String {
        var tokens = [String]()
        tokens.reserveCapacity(ids.count)
        for id in ids {
            if let added = addedTokens[id] {
                if skipSpecialTokens && added.special { continue }
                tokens.append(addedTokenTexts[id] ?? added.content)
            } else if let token = model.token(for: id) {
                tokens.append(token)
            }
        }
        guard let decoder else { return tokens.joined(separator: " ") }
        return decoder.decodeChain(tokens).joined()
    }

    /// A decoder for generated ids that arrive one at a time.
    public func streamingDecoder(skipSpecialTokens: Bool = false) -> StreamingDecoder {
        StreamingDecoder(tokenizer: self, skipSpecialTokens: skipSpecialTokens)
    }
}

/// The ids of each part of a parallel encode, each slot written by one worker.
private final class PartResults: @unchecked Sendable {
    private var parts: [[Int32]]
    private let lock = NSLock()

    init(count: Int) { parts = Array(repeating: [], count: count) }

    func store(_ ids: [Int32], at part: Int) { lock.withLock { parts[part] = ids } }

    func ids(at part: Int) -> [Int32] { lock.withLock { parts[part] } }
}

/// BPE results per word, shared by all encodes (and by the parts of a parallel one). Bounded: once
/// full, new words are not stored (the first words of a text are the most common ones anyway).
/// Split into shards with a lock each, so that the cores of a parallel encode rarely wait for one
/// another (one lock made them spend more time in futex waits than in BPE).
final class WordCache: @unchecked Sendable {
    private final class Shard: @unchecked Sendable {
        var entries = [TokenBytes: [Int32]]()
        let lock = NSLock()
    }

    private static let shardCount = 64
    private let shards = (0..<WordCache.shardCount).map { _ in Shard() }
    private let capacityPerShard = 100_000 / WordCache.shardCount
    private let longestKey = 256

    /// A cheap spread over the shards (the dictionary inside hashes the whole key anyway).
    private func shard(_ key: TokenBytes) -> Shard {
        let bytes = key.bytes
        let mix =
            bytes.count &* 131 &+ Int(bytes.first ?? 0) &* 31 &+ Int(bytes.last ?? 0) &* 7
            &+ (bytes.count > 2 ? Int(bytes[bytes.count / 2]) : 0)
        return shards[mix & (Self.shardCount - 1)]
    }

    func lookup(_ key: TokenBytes) -> [Int32]? {
        let shard = shard(key)
        return shard.lock.withLock { shard.entries[key] }
    }

    func store(_ key: TokenBytes, _ ids: [Int32]) {
        guard key.bytes.count <= longestKey else { return }
        let shard = shard(key)
        shard.lock.withLock {
            if shard.entries.count < capacityPerShard { shard.entries[key] = ids }
        }
    }
}
