import BatonTensor

/// Token text as UTF-8 bytes, the key of vocabulary and cache lookups. Keyed by bytes, not
/// `String`: `String` equality is canonical equivalence (it would merge distinct tokens such as
/// "é" and "e\u{301}") and its hashing normalizes. The bytes are hashed in one call.
struct TokenBytes: Hashable, Sendable {
    let bytes: [UInt8]

    init(_ bytes: [UInt8]) { self.bytes = bytes }
    init(_ text: String) { bytes = Array(text.utf8) }

    func hash(into hasher: inout Hasher) {
        bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
    }
}

/// tokenizer.json's `model` of type BPE: a vocabulary, ranked merges, and the rules for
/// characters the vocabulary lacks (`byte_fallback` to `<0xNN>` tokens, or `unk_token`).
struct BPEModel: Sendable {
    /// Token text -> id.
    let vocab: [TokenBytes: Int32]
    /// id -> token text, for ids of the model vocabulary (nil for ids it skips).
    let tokens: [String?]
    /// (left id << 32 | right id) -> (rank << 32 | merged id).
    let merges: [UInt64: UInt64]
    /// Ids of one-scalar tokens, the starting symbols of most words.
    let scalarIds: [UInt32: Int32]
    let unknownId: Int32?
    let fuseUnknown: Bool
    let byteFallback: Bool
    let byteFallbackIds: [Int32?]
    /// Llama-3: a word that is itself a token is emitted whole, without merging.
    let ignoreMerges: Bool
    let continuingSubwordPrefix: [UInt8]?
    let endOfWordSuffix: [UInt8]?

    init(_ model: JSONField) throws {
        let file = model.file
        let type = try model["type"].optionalString() ?? "BPE"
        guard type == "BPE" else {
            throw model.unsupportedType(type, of: "model", supported: "BPE")
        }
        var vocab = [TokenBytes: Int32]()
        var tokens = [String?]()
        var scalarIds = [UInt32: Int32]()
        let members = try model["vocab"].members()
        vocab.reserveCapacity(members.count)
        tokens.reserveCapacity(members.count)
        for (token, field) in members {
            let id = try field.int()
            guard let id32 = Int32(exactly: id), id32 >= 0, id < 1 << 28 else {
                throw field.failure(expected: "a token id in 0..<2^28")
            }
            vocab[TokenBytes(token)] = id32
            if id >= tokens.count { tokens += repeatElement(nil, count: id + 1 - tokens.count) }
            tokens[id] = token
            var scalars = token.unicodeScalars.makeIterator()
            if let only = scalars.next(), scalars.next() == nil { scalarIds[only.value] = id32 }
        }
        self.vocab = vocab
        self.tokens = tokens
        self.scalarIds = scalarIds
        continuingSubwordPrefix = try model["continuing_subword_prefix"].optionalString().map { Array($0.utf8) }
        endOfWordSuffix = try model["end_of_word_suffix"].optionalString().map { Array($0.utf8) }

        var merges = [UInt64: UInt64]()
        let mergeFields = try model["merges"].array()
        merges.reserveCapacity(mergeFields.count)
        for (rank, field) in mergeFields.enumerated() {
            // "a b" (older files) or ["a", "b"] (newer files).
            let left: [UInt8], right: [UInt8]
            if let text = field.value as? String {
                let bytes = Array(text.utf8)
                guard let space = bytes.firstIndex(of: 0x20), !bytes[(space + 1)...].contains(0x20) else {
                    throw field.failure(expected: "a merge of two tokens")
                }
                left = Array(bytes[..<space])
                right = Array(bytes[(space + 1)...])
            } else {
                let pair = try field.array().map { try $0.string() }
                guard pair.count == 2 else { throw field.failure(expected: "a merge of two tokens") }
                left = Array(pair[0].utf8)
                right = Array(pair[1].utf8)
            }
            var joined = left
            let prefixLength = continuingSubwordPrefix.map { right.starts(with: $0) ? $0.count : 0 } ?? 0
            joined.append(contentsOf: right.dropFirst(prefixLength))
            guard let a = vocab[TokenBytes(left)], let b = vocab[TokenBytes(right)],
                let merged = vocab[TokenBytes(joined)]
            else {
                throw BatonError.invalidModel(
                    "\(file): merge `\(field.path)` (\(String(decoding: left, as: UTF8.self)) "
                        + "\(String(decoding: right, as: UTF8.self))) names a token missing from model.vocab")
            }
            merges[UInt64(UInt32(a)) << 32 | UInt64(UInt32(b))] = UInt64(rank) << 32 | UInt64(UInt32(merged))
        }
        self.merges = merges

        let unk = try model["unk_token"].optionalString()
        if let unk, vocab[TokenBytes(unk)] == nil {
            throw BatonError.invalidModel("\(file): model.unk_token \"\(unk)\" is not in model.vocab")
        }
        unknownId = unk.flatMap { vocab[TokenBytes($0)] }
        fuseUnknown = try model["fuse_unk"].bool(default: false)
        byteFallback = try model["byte_fallback"].bool(default: false)
        ignoreMerges = try model["ignore_merges"].bool(default: false)
        byteFallbackIds = (0..<256).map { b in
            let hex = String(b, radix: 16, uppercase: true)
            return vocab[TokenBytes("<0x\(hex.count == 1 ? "0" + hex : hex)>")]
        }
    }

    func id(of token: String) -> Int32? { vocab[TokenBytes(token)] }

    func token(for id: Int32) -> String? { id >= 0 && Int(id) < tokens.count ? tokens[Int(id)] : nil }

    /// The ids of one word (one pre-tokenized piece, already byte-level mapped when the
    /// tokenizer is byte-level), appended to `out`.
    func tokenize(_ word: [Unicode.Scalar], into out: inout [Int32]) {
        guard !word.isEmpty else { return }
        if ignoreMerges, let id = vocab[TokenBytes(Normalizer.string(word))] {
            out.append(id)
            return
        }
        var symbols = startingSymbols(word)
        if symbols.count > 64 {
            symbols = BPEHeapMerge.mergeAll(symbols, merges)
        } else {
            mergeShort(&symbols)
        }
        out.append(contentsOf: symbols)
    }

    /// One symbol per scalar (with the subword prefix / word suffix where configured); a
    /// scalar missing from the vocabulary becomes its `<0xNN>` byte tokens, or the unknown
    /// token (consecutive unknowns fused when `fuse_unk`), or is dropped when there is neither.
    func startingSymbols(_ word: [Unicode.Scalar]) -> [Int32] {
        var symbols = [Int32]()
        symbols.reserveCapacity(word.count)
        var pendingUnknown: Int32? = nil
        let plain = continuingSubwordPrefix == nil && endOfWordSuffix == nil
        for (k, scalar) in word.enumerated() {
            var id: Int32?
            var text: [UInt8] = []
            if plain {
                id = scalarIds[scalar.value]
                if id == nil { text = Array(String(scalar).utf8) }
            } else {
                if k > 0, let prefix = continuingSubwordPrefix { text += prefix }
                text += Array(String(scalar).utf8)
                if k == word.count - 1, let suffix = endOfWordSuffix { text += suffix }
                id = vocab[TokenBytes(text)]
            }
            if let id {
                if let u = pendingUnknown { symbols.append(u); pendingUnknown = nil }
                symbols.append(id)
                continue
            }
            if byteFallback {
                let bytes = text.map { byteFallbackIds[Int($0)] }
                if bytes.allSatisfy({ $0 != nil }) {
                    symbols.append(contentsOf: bytes.map { $0! })
                    continue
                }
            }
            if let unknownId {
                if let u = pendingUnknown, !fuseUnknown { symbols.append(u) }
                pendingUnknown = unknownId
            }
        }
        if let u = pendingUnknown { symbols.append(u) }
        return symbols
    }

    /// Merges the lowest-ranked adjacent pair (leftmost among equals) until none merges; the
    /// same order as the heap in `BPEHeapMerge`, quadratic but fastest for short words.
    func mergeShort(_ symbols: inout [Int32]) {
        while symbols.count > 1 {
            var best = UInt64.max
            var bestPosition = -1
            for p in 0..<(symbols.count - 1) {
                let key = UInt64(UInt32(symbols[p])) << 32 | UInt64(UInt32(symbols[p + 1]))
                if let merge = merges[key], merge < best {
                    best = merge
                    bestPosition = p
                }
            }
            if bestPosition < 0 { return }
            symbols[bestPosition] = Int32(truncatingIfNeeded: best & 0xFFFF_FFFF)
            symbols.remove(at: bestPosition + 1)
        }
    }
}
