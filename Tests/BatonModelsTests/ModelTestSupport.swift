import BatonModels
import BatonTensor
import Foundation
import XCTest

/// Test-side safetensors writing: a header built from `(name, dtype, shape, data)` entries laid
/// out back to back, or raw header text for files that must be malformed.
enum SafetensorsFixture {
    struct Entry {
        let name: String
        let dtype: String
        let shape: [Int]
        let data: Data
    }

    /// An f32 entry holding `values`.
    static func f32(_ name: String, _ shape: [Int], _ values: [Float]) -> Entry {
        Entry(name: name, dtype: "F32", shape: shape, data: values.withUnsafeBytes { Data($0) })
    }

    /// A file with consistent offsets; `headerOverride` replaces the generated header text.
    static func bytes(_ entries: [Entry], headerOverride: String? = nil) -> Data {
        var offset = 0
        var fields: [String] = ["\"__metadata__\": {\"format\": \"pt\"}"]
        for entry in entries {
            let shape = entry.shape.map(String.init).joined(separator: ", ")
            fields.append(
                "\"\(entry.name)\": {\"dtype\": \"\(entry.dtype)\", \"shape\": [\(shape)], "
                    + "\"data_offsets\": [\(offset), \(offset + entry.data.count)]}")
            offset += entry.data.count
        }
        let header = headerOverride ?? "{" + fields.joined(separator: ", ") + "}"
        return raw(header: header, data: entries.reduce(Data()) { $0 + $1.data })
    }

    /// Length prefix + header (space-padded to 8 bytes unless `pad` is false) + data, with no checks.
    static func raw(header: String, data: Data, declaredLength: UInt64? = nil, pad: Bool = true) -> Data {
        var headerBytes = Data(header.utf8)
        while pad && headerBytes.count % 8 != 0 { headerBytes.append(UInt8(ascii: " ")) }
        var length = (declaredLength ?? UInt64(headerBytes.count)).littleEndian
        return Data(bytes: &length, count: 8) + headerBytes + data
    }
}

/// A fresh temporary directory removed at the end of the test.
func makeTemporaryDirectory(_ test: XCTestCase) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("baton-models-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    test.addTeardownBlock { try? FileManager.default.removeItem(at: url) }
    return url
}

/// Asserts `body` throws a `BatonError` whose description contains every one of `fragments`.
func assertBatonError(
    _ fragments: [String], file: StaticString = #filePath, line: UInt = #line,
    _ body: () throws -> Void
) {
    do {
        try body()
        XCTFail("expected a BatonError mentioning \(fragments)", file: file, line: line)
    } catch let error as BatonError {
        for fragment in fragments where !error.description.contains(fragment) {
            XCTFail("error \"\(error)\" does not mention \"\(fragment)\"", file: file, line: line)
        }
    } catch {
        XCTFail("expected a BatonError, got \(error)", file: file, line: line)
    }
}

/// A model directory under Tests/Fixtures and its `expected.json` (see Tests/Fixtures/README.md).
struct FixtureModel {
    let directory: URL
    let expected: [String: Any]

    init(_ name: String) throws {
        directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures").appendingPathComponent(name)
        let data = try Data(contentsOf: directory.appendingPathComponent("expected.json"))
        expected = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    var config: [String: Any] { expected["config"] as? [String: Any] ?? [:] }

    /// transformers' fp32 logits per prompt: input ids and `[T * V]` values.
    func logits() throws -> [(name: String, inputIds: [Int32], values: [Float])] {
        try XCTUnwrap(expected["logits"] as? [[String: Any]]).map { entry in
            let encoded = try XCTUnwrap(entry["data_b64"] as? String)
            let data = try XCTUnwrap(Data(base64Encoded: encoded))
            let values = data.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            let ids = try XCTUnwrap(entry["input_ids"] as? [Int]).map(Int32.init)
            return (try XCTUnwrap(entry["name"] as? String), ids, values)
        }
    }

    /// transformers' greedy continuations: prompt ids and the 32 new ids.
    func generations() throws -> [(name: String, promptIds: [Int32], newIds: [Int32])] {
        try XCTUnwrap(expected["generation"] as? [[String: Any]]).map { entry in
            (
                try XCTUnwrap(entry["name"] as? String),
                try XCTUnwrap(entry["prompt_ids"] as? [Int]).map(Int32.init),
                try XCTUnwrap(entry["new_ids"] as? [Int]).map(Int32.init)
            )
        }
    }
}
