import BatonModels
import BatonTensor
import Foundation

/// The images, videos and prompts of an InternVL fixture (`Tests/Fixtures/tiny-internvl`,
/// scripts/make_internvl_fixture.py): expected.json stores each item's `pixel_values`
/// `[tiles, 3, S, S]` as transformers takes them; here they become the patch rows the tower reads
/// (merge-unit order, each row (c, y, x) of one patch). `baton selftest` and the tests read them.
public enum InternVLFixtureInputs {
    /// One prompt of the fixture: its token ids, items in order and transformers' numbers.
    public struct Prompt {
        public let name: String
        public let tokens: [Int32]
        public let visuals: [VisualInput]
        /// Rows of the prompt whose logits are stored, and those logits `[rows, vocab]` flattened.
        public let logitRows: [Int]
        public let logits: [Float]
        /// Greedy tokens of transformers' `generate` with its KV cache (each step's dynamic-NTK
        /// frequencies from that step's length).
        public let greedy: [Int32]
    }

    /// expected.json of `directory` (the original-format copy points at its sibling's).
    public static func expected(directory: URL) throws -> (object: [String: Any], file: String) {
        var file = directory.appendingPathComponent("expected.json").path
        var object = try read(file)
        if object["prompts"] == nil, let pointer = object["expected"] as? String ?? object["see"] as? String {
            file = directory.appendingPathComponent(pointer).standardizedFileURL.path
            object = try read(file)
        }
        return (object, file)
    }

    private static func read(_ file: String) throws -> [String: Any] {
        guard let data = FileManager.default.contents(atPath: file),
            let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { throw BatonError.invalidModel("\(file): not readable JSON") }
        return object
    }

    /// The items of expected.json's `pixels.items` by name ("image", "video"), rows on the host.
    public static func visuals(_ expected: [String: Any], file: String) throws -> [String: VisualInput] {
        guard let pixels = expected["pixels"] as? [String: Any], let size = pixels["image_size"] as? Int,
            let items = pixels["items"] as? [String: [String: Any]]
        else { throw BatonError.invalidModel("\(file): not an InternVL fixture (needs pixels.items, image_size)") }
        return try items.reduce(into: [:]) { inputs, entry in
            let (name, item) = entry
            guard let tiles = item["tiles"] as? Int, let values = item["pixel_values"] as? [NSNumber],
                values.count == tiles * 3 * size * size
            else { throw BatonError.invalidModel("\(file): item \(name) lacks tiles or pixel_values") }
            let side = size / 14
            let grid = VisionGrid(t: tiles, h: side, w: side)
            inputs[name] = VisualInput(
                item: VisualItem(kind: name == "video" ? .video : .image, grid: grid),
                pixels: Tensor(
                    patchRows(values.map(\.floatValue), tiles: tiles, size: size), shape: [grid.patchCount, 588]))
        }
    }

    /// `[tiles, 3, S, S]` pixel values -> patch rows `[tiles·(S/14)², 588]` in merge-unit order
    /// (tile, bh, bw, dy, dx), each row (c, ky, kx): the order `InternVisionTower` reads.
    static func patchRows(_ values: [Float], tiles: Int, size: Int) -> [Float] {
        let side = size / 14
        var rows: [Float] = []
        rows.reserveCapacity(values.count)
        for tile in 0..<tiles {
            for bh in 0..<side / 2 {
                for bw in 0..<side / 2 {
                    for dy in 0..<2 {
                        for dx in 0..<2 {
                            let (py, px) = (2 * bh + dy, 2 * bw + dx)
                            for c in 0..<3 {
                                for ky in 0..<14 {
                                    let start = ((tile * 3 + c) * size + py * 14 + ky) * size + px * 14
                                    rows.append(contentsOf: values[start..<start + 14])
                                }
                            }
                        }
                    }
                }
            }
        }
        return rows
    }

    /// expected.json's `vision.<name>` features `[tiles·S²/784, D]`, flattened.
    public static func features(_ expected: [String: Any], name: String) -> [Float]? {
        floats((expected["vision"] as? [String: [String: Any]])?[name]?["data_b64"])
    }

    /// Every prompt of the fixture with its items (pixel rows on the host).
    public static func prompts(directory: URL) throws -> [Prompt] {
        let (expected, file) = try self.expected(directory: directory)
        let inputs = try visuals(expected, file: file)
        guard let prompts = expected["prompts"] as? [[String: Any]] else {
            throw BatonError.invalidModel("\(file): no prompts")
        }
        return try prompts.map { prompt in
            guard let name = prompt["name"] as? String, let ids = prompt["input_ids"] as? [Int],
                let items = prompt["items"] as? [String], let rows = prompt["logit_rows"] as? [Int],
                let logits = floats(prompt["logits_b64"]), let greedy = prompt["generate_new_ids"] as? [Int]
            else { throw BatonError.invalidModel("\(file): a prompt lacks name, input_ids, items, logits or tokens") }
            let visuals = try items.map { item in
                guard let input = inputs[item] else {
                    throw BatonError.invalidModel("\(file): prompt \(name) names \(item)")
                }
                return input
            }
            return Prompt(
                name: name, tokens: ids.map(Int32.init), visuals: visuals, logitRows: rows, logits: logits,
                greedy: greedy.map(Int32.init))
        }
    }

    /// Little-endian f32 values of a base64 string.
    public static func floats(_ base64: Any?) -> [Float]? {
        guard let text = base64 as? String, let data = Data(base64Encoded: text) else { return nil }
        return data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }
}
