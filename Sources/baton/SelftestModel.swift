import BatonEngine
import BatonModels
import Foundation

extension Selftest {
    /// `--model DIR`: the whole model on the GPU against the transformers reference stored with a
    /// fixture checkpoint. The reference computes in fp32; the GPU keeps weights and activations in
    /// bf16 (8 mantissa bits), so logits of these small models with large random weights differ by
    /// 1-3% in relative norm (1.4-2.2% measured on H100), against about 1e-6 for the fp32 CPU path.
    func checkModel(_ path: String) throws -> Int {
        let directory = URL(fileURLWithPath: path)
        switch try VisionLanguageConfig.load(directory: directory) {
        case .qwen2VL?: return try checkQwen2VLModel(directory)
        case .internVL?: return try checkInternVLModel(directory)
        case nil: break
        }
        let rows = try ReferenceCheck(directory: URL(fileURLWithPath: path), device: .cuda(ordinal: ordinal)).run()
        var failures = 0
        print("model check: \(path) on cuda:\(ordinal) vs transformers fp32")
        for row in rows {
            let pass = row.relativeNorm < 3e-2 && row.maxAbsDifference.isFinite
            if !pass { failures += 1 }
            print(
                String(
                    format:
                        "  %@ %@: logits max |diff| %.4f, relative norm %.2e; greedy %d/%d tokens equal before the first difference",
                    pass ? "PASS" : "FAIL", row.name, row.maxAbsDifference, row.relativeNorm, row.greedyMatches,
                    row.greedyTotal))
        }
        try checkDecodeBatch(directory)
        return failures
    }

    /// The server's decode batch on the GPU (`Engine.startDecoding` + `decodeStep`): prompts of
    /// different lengths decoding together against each alone, by greedy tokens; reported, not
    /// judged (a GEMM over N rows may round bf16 differently from one row and flip a near-tie; the
    /// CPU tests hold the batch to exact equality).
    func checkDecodeBatch(_ directory: URL) throws {
        let engine = try Engine.load(
            EngineOptions(modelDirectory: directory, device: .cuda(ordinal: ordinal), showProgress: false))
        let lengths = [5, 23, 2, 40, 11, 17]
        let prompts = lengths.map { length in
            (0..<length).map { Int32(($0 * 37 + length) % min(engine.config.vocabSize, 500)) }
        }
        let options = GenerationOptions(maxTokens: 12)
        let alone = try prompts.map {
            try engine.generate(promptIds: $0, options: options, ignoringModelStopIds: true).tokens
        }
        let batch = try prompts.map {
            try engine.startDecoding(promptIds: $0, options: options, ignoringModelStopIds: true)
        }
        while batch.contains(where: { !$0.isFinished }) { try engine.decodeStep(batch) }
        let equal = zip(batch, alone).filter { $0.tokens == $1 }.count
        print(
            "decode batch check: \(prompts.count) requests decoding together on cuda:\(ordinal), "
                + "\(equal)/\(prompts.count) with every greedy token equal to the request alone (reported, not judged)")
    }

    /// `--model DIR --ranks N`: every method on N GPU ranks (sharing this GPU) against its CPU twin
    /// and against GPU dense, by greedy tokens; reported, not judged (bf16 flips near-ties).
    func checkMethods(_ path: String, ranks: Int) throws {
        let directory = URL(fileURLWithPath: path)
        let engine = try Engine.load(EngineOptions(modelDirectory: directory, showProgress: false))
        // 12 repetitions each side (about 640 tokens), fewer for a fixture with a short context.
        func prompt(_ count: Int) throws -> [Int32] {
            let text =
                String(repeating: "The sky is blue. The tree is green. The sun is yellow. ", count: count)
                + "The pass key is 4721. Remember it. "
                + String(repeating: "Here we go. There and back again. ", count: count)
                + "What is the pass key? The pass key is"
            return try engine.encode(prompt: text, chat: false)
        }
        var ids = try prompt(12)
        for count in stride(from: 11, through: 1, by: -1) where ids.count + 16 > engine.config.contextLength {
            ids = try prompt(count)
        }
        let rows = try MethodAgreementCheck(directory: directory, device: .cuda(ordinal: ordinal), ranks: ranks)
            .run(promptIds: ids, maxTokens: max(1, min(16, engine.config.contextLength - ids.count)))
        print(
            "method check: \(path), \(ids.count) prompt tokens, \(ranks) GPU ranks on cuda:\(ordinal) (sharing it) vs \(ranks) CPU ranks"
        )
        printMethodRows(rows)
        if engine.visionLanguage != nil { try checkVisualMethods(directory, ranks: ranks) }
    }

    func printMethodRows(_ rows: [MethodAgreementCheck.Row]) {
        for row in rows {
            print(
                "  \(row.method.rawValue.padding(toLength: 7, withPad: " ", startingAt: 0)) greedy tokens equal to CPU ranks: \(row.matchesCPU)/\(row.total); to GPU dense: \(row.matchesDense)/\(row.total)"
            )
        }
    }

    /// A vision-language fixture's prompt with the most images and videos through every method
    /// (frame-parallel encoding, embeddings exchanged between the ranks, M-RoPE per rank): ring and
    /// zigzag should give GPU dense's tokens, and each method its CPU twin's.
    func checkVisualMethods(_ directory: URL, ranks: Int) throws {
        let prompt: (name: String, tokens: [Int32], visuals: [VisualInput])
        if case .internVL? = try VisionLanguageConfig.load(directory: directory) {
            let richest = try InternVLFixtureInputs.prompts(directory: directory).max {
                $0.visuals.count < $1.visuals.count
            }!
            prompt = (richest.name, richest.tokens, richest.visuals)
        } else {
            prompt = try Qwen2VLFixtureInputs.richestPrompt(directory: directory)
        }
        let rows = try MethodAgreementCheck(directory: directory, device: .cuda(ordinal: ordinal), ranks: ranks)
            .run(promptIds: prompt.tokens, maxTokens: 8, visuals: prompt.visuals)
        print(
            "video method check: prompt \(prompt.name) (\(prompt.tokens.count) tokens), \(ranks) GPU ranks on "
                + "cuda:\(ordinal) (sharing it) vs \(ranks) CPU ranks")
        printMethodRows(rows)
    }
}
