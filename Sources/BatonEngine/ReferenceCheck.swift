import BatonModels
import BatonParallel
import BatonTensor
import Foundation

/// Compares a model run on any device with the transformers reference stored next to a fixture
/// checkpoint (`expected.json`, written by scripts/make_fixtures.py): logits of each prompt
/// (max abs difference and relative norm) and the 32-token greedy continuation.
public struct ReferenceCheck {
    public struct Row: Sendable {
        public var name: String
        public var maxAbsDifference: Double
        public var relativeNorm: Double
        public var greedyMatches: Int
        public var greedyTotal: Int
    }

    public let directory: URL
    public let device: Device

    public init(directory: URL, device: Device) {
        self.directory = directory
        self.device = device
    }

    /// Runs every stored prompt and generation; throws if the reference is missing or malformed.
    public func run() throws -> [Row] {
        let file = directory.appendingPathComponent("expected.json")
        guard let data = FileManager.default.contents(atPath: file.path),
            let expected = try JSONSerialization.jsonObject(with: data) as? [String: Any],
            let logits = expected["logits"] as? [[String: Any]],
            let generations = expected["generation"] as? [[String: Any]]
        else {
            throw BatonError(
                .io, "\(file.path): missing or not a Baton fixture reference (needs 'logits' and 'generation')")
        }
        let engine = try Engine.load(EngineOptions(modelDirectory: directory, device: device, showProgress: false))
        var rows: [Row] = []
        for (index, item) in logits.enumerated() {
            guard let ids = item["input_ids"] as? [Int], let encoded = item["data_b64"] as? String,
                let raw = Data(base64Encoded: encoded)
            else {
                throw BatonError(.io, "\(file.path): logits[\(index)] lacks input_ids or data_b64")
            }
            let reference = raw.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            let got = try logitsOfEveryPosition(engine: engine, ids: ids.map(Int32.init))
            guard got.count == reference.count else {
                throw BatonError.shapeMismatch(
                    "\(file.path): logits[\(index)] has \(reference.count) values, the model gave \(got.count)")
            }
            var maxAbs = 0.0, difference = 0.0, norm = 0.0
            for i in got.indices {
                let d = Double(got[i]) - Double(reference[i])
                maxAbs = max(maxAbs, abs(d))
                difference += d * d
                norm += Double(reference[i]) * Double(reference[i])
            }
            let generation = generations[min(index, generations.count - 1)]
            let prompt = (generation["prompt_ids"] as? [Int] ?? []).map(Int32.init)
            let newIds = (generation["new_ids"] as? [Int] ?? []).map(Int32.init)
            let result = try engine.generate(
                promptIds: prompt, options: GenerationOptions(maxTokens: newIds.count), ignoringModelStopIds: true)
            let matches = zip(result.tokens, newIds).prefix { $0 == $1 }.count
            rows.append(
                Row(
                    name: item["name"] as? String ?? "prompt \(index)", maxAbsDifference: maxAbs,
                    relativeNorm: (difference / max(norm, 1e-30)).squareRoot(), greedyMatches: matches,
                    greedyTotal: newIds.count))
        }
        return rows
    }

    /// Logits `[T * V]` f32 of every position of `ids` (one prefill through a fresh cache).
    func logitsOfEveryPosition(engine: Engine, ids: [Int32]) throws -> [Float] {
        let model = engine.model, backend = engine.backend
        let pass = try ForwardPass(
            backend: backend, positions: (0..<ids.count).map { Int32($0) },
            strategy: Dense(headDim: model.config.headDim), cache: model.makeCache(backend: backend),
            ropeLength: ids.count)
        let hidden = try model.forward(tokens: backend.int32Tensor(ids), pass)
        return try backend.floats(model.logits(hidden))
    }
}
