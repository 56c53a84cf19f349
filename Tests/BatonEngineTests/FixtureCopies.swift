import Foundation

/// The tiny Qwen2.5-VL fixture with another max_position_embeddings, in a new temporary folder
/// (the other files linked), for limits that the fixture's 2048 positions would need huge inputs
/// to reach. The caller removes the folder.
func tinyQwen2VLCopy(maxPositionEmbeddings: Int) throws -> URL {
    let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tiny-qwen2-vl")
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("baton-vl-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    for name in try FileManager.default.contentsOfDirectory(atPath: fixture.path) where name != "config.json" {
        try FileManager.default.createSymbolicLink(
            at: folder.appendingPathComponent(name),
            withDestinationURL: fixture.appendingPathComponent(name))
    }
    let config = try String(contentsOf: fixture.appendingPathComponent("config.json"), encoding: .utf8)
    let changed = config.replacingOccurrences(
        of: "\"max_position_embeddings\": 2048",
        with: "\"max_position_embeddings\": \(maxPositionEmbeddings)")
    precondition(changed != config, "the fixture's config.json no longer says max_position_embeddings 2048")
    try changed.write(to: folder.appendingPathComponent("config.json"), atomically: true, encoding: .utf8)
    return folder
}
