import BatonCUDA
import BatonEngine
import BatonModels
import BatonParallel
import BatonTensor
import Foundation

extension Selftest {
    /// `--model DIR` of a Qwen2.5-VL fixture (Tests/Fixtures/tiny-qwen2-vl): the vision tower and the
    /// prompts' logits on the GPU against transformers' fp32 numbers in expected.json. bf16 bars: the
    /// tower's output within 3e-2 relative norm and every merged token's cosine above 0.99 (VIDEO.md 9),
    /// logits within 3e-2 relative norm; greedy tokens through the KV cache are reported, not judged.
    func checkQwen2VLModel(_ directory: URL) throws -> Int {
        let file = directory.appendingPathComponent("expected.json").path
        guard let data = FileManager.default.contents(atPath: file),
            let expected = try JSONSerialization.jsonObject(with: data) as? [String: Any],
            let pixels = expected["pixels"] as? [String: [String: Any]],
            let vision = expected["vision"] as? [String: [String: Any]],
            let prompts = expected["prompts"] as? [[String: Any]]
        else { throw BatonError.invalidModel("\(file): not a Qwen2.5-VL fixture (needs pixels, vision, prompts)") }
        let backend = try CUDABackend(ordinal: ordinal)
        let model = try VisionLanguageModel.load(directory: directory, backend: backend)
        print("model check: \(directory.path) (Qwen2.5-VL) on cuda:\(ordinal) vs transformers fp32")
        var failures = 0
        var inputs: [String: VisualInput] = [:]
        for (name, hostInput) in try Qwen2VLFixtureInputs.visuals(pixels, file: file).sorted(by: { $0.key < $1.key }) {
            guard let reference = InternVLFixtureInputs.floats(vision[name]?["data_b64"]) else {
                throw BatonError.invalidModel("\(file): item \(name) lacks vision data")
            }
            let grid = hostInput.item.grid
            let input = VisualInput(item: hostInput.item, pixels: try backend.upload(hostInput.pixels))
            inputs[name] = input
            let out = try backend.floats(try model.vision(pixels: input.pixels, grids: [grid]))
            let width = model.config.text.hiddenSize
            let cosine =
                stride(from: 0, to: out.count, by: width).map { start in
                    Self.cosineSimilarity(Array(out[start..<start + width]), Array(reference[start..<start + width]))
                }.min() ?? 0
            let relative = Self.relativeNormError(out, reference)
            let pass = out.count == reference.count && relative < 3e-2 && cosine > 0.99
            failures += pass ? 0 : 1
            print(
                String(
                    format: "  %@ vision tower %@ grid %@: relative norm %.2e, min token cosine %.5f",
                    pass ? "PASS" : "FAIL", name, "\(grid)", relative, cosine))
        }
        for prompt in prompts {
            guard let name = prompt["name"] as? String, let ids = prompt["input_ids"] as? [Int],
                let items = prompt["items"] as? [String], let rows = prompt["logit_rows"] as? [Int],
                let reference = InternVLFixtureInputs.floats(prompt["logits_b64"]),
                let greedy = prompt["greedy_new_ids"] as? [Int]
            else {
                throw BatonError.invalidModel("\(file): a prompt lacks name, input_ids, items, logit_rows or logits")
            }
            let tokens = ids.map(Int32.init)
            let strategy = Dense(headDim: model.config.text.headDim)
            let cache = model.language.makeCache(backend: backend)
            let (hidden, ropeDelta) = try model.prefill(
                tokens: tokens,
                visuals: try items.map {
                    guard let input = inputs[$0] else {
                        throw BatonError.invalidModel("\(file): prompt \(name) names item \($0)")
                    }
                    return input
                }, strategy: strategy, cache: cache)
            let logits = try backend.floats(
                try model.language.logits(
                    try backend.concatRows(rows.map { hidden.rows($0..<$0 + 1) })))
            let relative = Self.relativeNormError(logits, reference)
            let pass = logits.count == reference.count && relative < 3e-2
            failures += pass ? 0 : 1
            let generated = try model.greedyTokens(
                after: hidden, promptLength: tokens.count, ropeDelta: ropeDelta, strategy: strategy, cache: cache,
                count: greedy.count)
            let matches = zip(generated, greedy).prefix { Int($0) == $1 }.count
            print(
                String(
                    format: "  %@ prompt %@: logits relative norm %.2e; greedy %d/%d tokens equal before the "
                        + "first difference", pass ? "PASS" : "FAIL", name, relative, matches, greedy.count))
            // The engine's generation loop (VisualPrefill) against the model called directly, same GPU.
            let engine = try Engine.load(
                EngineOptions(
                    modelDirectory: directory, device: .cuda(ordinal: ordinal),
                    showProgress: false))
            let visuals = try items.map { item in
                try VisualInput(
                    item: inputs[item]!.item,
                    pixels: engine.backend.upload(backend.download(inputs[item]!.pixels)))
            }
            let (looped, direct) = try engine.visualGreedyTwoWays(
                tokens: tokens, visuals: visuals,
                maxTokens: greedy.count)
            failures += looped == direct ? 0 : 1
            print(
                "  \(looped == direct ? "PASS" : "FAIL") prompt \(name): generate loop greedy \(looped) "
                    + "\(looped == direct ? "equals" : "differs from") the direct model calls \(direct)")
        }
        return failures
    }
}
