import BatonModels
import BatonTensor
import Foundation

/// The images, videos and prompts of a Qwen2.5-VL fixture (`Tests/Fixtures/tiny-qwen2-vl`): its
/// expected.json lists each item's grid and seed, and the pixel rows follow the fixture's exact rule
/// (scripts/make_qwen2vl_fixture.py), so no pixels are stored. `baton selftest` and the tests read them.
public enum Qwen2VLFixtureInputs {
    /// The items of expected.json's `pixels` by name ("image", "video"), pixel rows on the host.
    public static func visuals(_ pixels: [String: [String: Any]], file: String) throws -> [String: VisualInput] {
        try pixels.reduce(into: [:]) { inputs, entry in
            let (name, item) = entry
            guard let g = item["grid_thw"] as? [Int], g.count == 3, let seed = item["seed"] as? Int else {
                throw BatonError.invalidModel("\(file): item \(name) lacks grid_thw or seed")
            }
            let grid = VisionGrid(t: g[0], h: g[1], w: g[2])
            let rows = (0..<grid.patchCount * 1176).map { k in
                Float(((k / 1176) * 7919 + (k % 1176) * 104_729 + 31_337 * seed) % 4001 - 2000) / 1024
            }
            let kind: VisualItem.Kind = name == "image" ? .image : .video
            inputs[name] = VisualInput(
                item: VisualItem(kind: kind, grid: grid, secondsPerGrid: 1),
                pixels: Tensor(rows, shape: [grid.patchCount, 1176]))
        }
    }

    /// The fixture's prompt with the most images and videos: its name, token ids and items in order.
    public static func richestPrompt(directory: URL) throws -> (name: String, tokens: [Int32], visuals: [VisualInput]) {
        let file = directory.appendingPathComponent("expected.json").path
        guard let data = FileManager.default.contents(atPath: file),
            let expected = try JSONSerialization.jsonObject(with: data) as? [String: Any],
            let pixels = expected["pixels"] as? [String: [String: Any]],
            let prompt = (expected["prompts"] as? [[String: Any]])?.max(by: {
                ($0["items"] as? [String] ?? []).count < ($1["items"] as? [String] ?? []).count
            }),
            let name = prompt["name"] as? String, let ids = prompt["input_ids"] as? [Int],
            let items = prompt["items"] as? [String]
        else { throw BatonError.invalidModel("\(file): not a Qwen2.5-VL fixture (needs pixels and prompts)") }
        let inputs = try visuals(pixels, file: file)
        let visuals = try items.map { item in
            guard let input = inputs[item] else {
                throw BatonError.invalidModel("\(file): prompt \(name) names item \(item)")
            }
            return input
        }
        return (name, ids.map(Int32.init), visuals)
    }
}
