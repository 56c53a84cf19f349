import BatonCUDA
import BatonEngine
import BatonModels
import BatonParallel
import BatonTensor
import Foundation

extension Selftest {
    /// `--model DIR` of an InternVL fixture (Tests/Fixtures/tiny-internvl, or -original): the vision
    /// features and the prompts' logits on the GPU against transformers' fp32 numbers, with the bars
    /// of `checkQwen2VLModel` (bf16: 3e-2 relative norm, token cosine above 0.99); greedy tokens
    /// through the KV cache (dynamic NTK beyond the fixture's 48 positions) are reported.
    func checkInternVLModel(_ directory: URL) throws -> Int {
        let (expected, file) = try InternVLFixtureInputs.expected(directory: directory)
        let backend = try CUDABackend(ordinal: ordinal)
        let model = try VisionLanguageModel.load(directory: directory, backend: backend)
        print("model check: \(directory.path) (InternVL) on cuda:\(ordinal) vs transformers fp32")
        var failures = 0
        let width = model.config.text.hiddenSize
        for (name, host) in try InternVLFixtureInputs.visuals(expected, file: file).sorted(by: { $0.key < $1.key }) {
            guard let reference = InternVLFixtureInputs.features(expected, name: name) else {
                throw BatonError.invalidModel("\(file): item \(name) lacks vision data")
            }
            let out = try backend.floats(
                try model.vision(pixels: backend.upload(host.pixels), grids: [host.item.grid]))
            let cosines = stride(from: 0, to: min(out.count, reference.count), by: width).map { start in
                Self.cosineSimilarity(Array(out[start..<start + width]), Array(reference[start..<start + width]))
            }
            let relative = Self.relativeNormError(out, reference), cosine = cosines.min() ?? 0
            let pass = out.count == reference.count && relative < 3e-2 && cosine > 0.99
            failures += pass ? 0 : 1
            print(
                String(
                    format: "  %@ vision features %@ (%d tiles): relative norm %.2e, min token cosine %.5f",
                    pass ? "PASS" : "FAIL", name, host.item.grid.t, relative, cosine))
        }
        for prompt in try InternVLFixtureInputs.prompts(directory: directory) {
            let visuals = try prompt.visuals.map { VisualInput(item: $0.item, pixels: try backend.upload($0.pixels)) }
            let strategy = Dense(headDim: model.config.text.headDim)
            let cache = model.language.makeCache(backend: backend)
            let (hidden, ropeDelta) = try model.prefill(
                tokens: prompt.tokens, visuals: visuals, strategy: strategy, cache: cache)
            let logits = try backend.floats(
                try model.language.logits(try backend.concatRows(prompt.logitRows.map { hidden.rows($0..<$0 + 1) })))
            let relative = Self.relativeNormError(logits, prompt.logits)
            let pass = logits.count == prompt.logits.count && relative < 3e-2
            failures += pass ? 0 : 1
            let greedy = try model.greedyTokens(
                after: hidden, promptLength: prompt.tokens.count, ropeDelta: ropeDelta, strategy: strategy,
                cache: cache, count: prompt.greedy.count)
            let matches = zip(greedy, prompt.greedy).prefix { $0 == $1 }.count
            print(
                String(
                    format: "  %@ prompt %@ (%d tokens): logits relative norm %.2e; greedy %d/%d tokens equal "
                        + "before the first difference", pass ? "PASS" : "FAIL", prompt.name, prompt.tokens.count,
                    relative, matches, prompt.greedy.count))
        }
        return failures
    }

    static func relativeNormError(_ a: [Float], _ b: [Float]) -> Double {
        let error = zip(a, b).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
        let norm = b.reduce(0.0) { $0 + Double($1) * Double($1) }
        return (error / max(norm, 1e-30)).squareRoot()
    }

    static func cosineSimilarity(_ a: [Float], _ b: [Float]) -> Double {
        let dot = zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        let na = a.reduce(0.0) { $0 + Double($1) * Double($1) }, nb = b.reduce(0.0) { $0 + Double($1) * Double($1) }
        return dot / max((na * nb).squareRoot(), 1e-30)
    }
}
