import Foundation

/// The folder of a fixture model under Tests/Fixtures.
func fixtureDirectory(_ name: String) -> URL {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures").appendingPathComponent(name)
}

/// Fixture model `name` in a new temporary folder: its files linked, and config.json the text
/// `editConfig` makes of the fixture's. The caller removes the folder.
func fixtureCopy(_ name: String, editConfig: (String) throws -> String) throws -> URL {
    let fixture = fixtureDirectory(name)
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("baton-\(name)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    for file in try FileManager.default.contentsOfDirectory(atPath: fixture.path) where file != "config.json" {
        try FileManager.default.createSymbolicLink(
            at: folder.appendingPathComponent(file),
            withDestinationURL: fixture.appendingPathComponent(file))
    }
    let config = try String(contentsOf: fixture.appendingPathComponent("config.json"), encoding: .utf8)
    try editConfig(config).write(to: folder.appendingPathComponent("config.json"), atomically: true, encoding: .utf8)
    return folder
}

/// The tiny Qwen2.5-VL fixture with another max_position_embeddings, for limits that the fixture's
/// 2048 positions would need huge inputs to reach. The caller removes the folder.
func tinyQwen2VLCopy(maxPositionEmbeddings: Int) throws -> URL {
    try fixtureCopy("tiny-qwen2-vl") { config in
        let changed = config.replacingOccurrences(
            of: "\"max_position_embeddings\": 2048",
            with: "\"max_position_embeddings\": \(maxPositionEmbeddings)")
        precondition(changed != config, "the fixture's config.json no longer says max_position_embeddings 2048")
        return changed
    }
}

/// tiny-qwen2 with the changes of Tests/Fixtures/dynamic-rope/expected.json (max_position_embeddings
/// and dynamic rope scaling, written into `rope_parameters` as transformers 5 does). The caller
/// removes the folder.
func tinyQwen2DynamicRopeCopy() throws -> URL {
    let expected = try Data(contentsOf: fixtureDirectory("dynamic-rope").appendingPathComponent("expected.json"))
    let overrides = try JSONSerialization.jsonObject(with: expected) as? [String: Any]
    guard let overrides = overrides?["config_overrides"] as? [String: Any],
        let scaling = overrides["rope_scaling"] as? [String: Any]
    else { throw CocoaError(.fileReadCorruptFile) }
    return try fixtureCopy("tiny-qwen2") { text in
        var config = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] ?? [:]
        config["max_position_embeddings"] = overrides["max_position_embeddings"]
        let parameters = (config["rope_parameters"] as? [String: Any] ?? [:]).merging(scaling) { $1 }
        config["rope_parameters"] = parameters
        let data = try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }
}
