import BatonModels
import BatonTensor
import Foundation
import XCTest

final class SafetensorsTests: XCTestCase {
    private func write(_ data: Data, _ name: String = "model.safetensors", in directory: URL? = nil) throws -> String {
        let directory = try directory ?? makeTemporaryDirectory(self)
        let url = directory.appendingPathComponent(name)
        try data.write(to: url)
        return url.path
    }

    func testTensorsViewTheMappedBytesWithoutCopying() throws {
        let path = try write(
            SafetensorsFixture.bytes([
                SafetensorsFixture.f32("a", [2, 3], [1, 2, 3, 4, 5, 6]),
                .init(name: "b", dtype: "BF16", shape: [2], data: Data([0x80, 0x3F, 0x00, 0xC0])),  // 1, -2
                .init(name: "empty", dtype: "I64", shape: [0, 4], data: Data())
            ]))
        let file = try SafetensorsFile(path: path)
        XCTAssertEqual(file.names, ["a", "b", "empty"])
        let a = try XCTUnwrap(file.tensor(named: "a"))
        XCTAssertEqual(a.shape, [2, 3])
        XCTAssertEqual(a.floats(), [1, 2, 3, 4, 5, 6])
        let b = try XCTUnwrap(file.tensor(named: "b"))
        XCTAssertEqual(b.dtype, .bf16)
        XCTAssertEqual(b.floats(), [1, -2])
        // Both views share one storage: the mapping of the whole file.
        XCTAssertTrue(a.storage === b.storage)
        XCTAssertEqual(a.storage.byteCount, try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        XCTAssertEqual(file.tensor(named: "empty")?.shape, [0, 4])
        XCTAssertNil(file.tensor(named: "c"))
    }

    func testTruncatedFileIsRejected() throws {
        let path = try write(Data([1, 2, 3]))
        assertBatonError([path, "truncated"]) { _ = try SafetensorsFile(path: path) }
        let emptyPath = try write(Data(), "empty.safetensors")
        assertBatonError([emptyPath, "truncated"]) { _ = try SafetensorsFile(path: emptyPath) }
    }

    func testTruncatedDataRegionIsRejected() throws {
        var data = SafetensorsFixture.bytes([SafetensorsFixture.f32("w", [4], [1, 2, 3, 4])])
        data.removeLast(4)
        let path = try write(data)
        assertBatonError([path, "tensor w", "data_offsets [0, 16]", "12 bytes"]) { _ = try SafetensorsFile(path: path) }
    }

    func testHeaderLengthBeyondFileIsRejected() throws {
        let path = try write(SafetensorsFixture.raw(header: "{}", data: Data(), declaredLength: 1 << 40))
        assertBatonError([path, "header length 1099511627776 exceeds the file"]) { _ = try SafetensorsFile(path: path) }
    }

    func testHeaderThatIsNotAJSONObjectIsRejected() throws {
        let notJSON = try write(SafetensorsFixture.raw(header: "{\"a\": ", data: Data()))
        assertBatonError([notJSON, "not valid JSON"]) { _ = try SafetensorsFile(path: notJSON) }
        let list = try write(SafetensorsFixture.raw(header: "[1, 2]", data: Data()), "list.safetensors")
        assertBatonError([list, "not a JSON object"]) { _ = try SafetensorsFile(path: list) }
    }

    func testDTypeThatLiesAboutTheByteCountIsRejected() throws {
        // Says F32 [4] (16 bytes) but the data_offsets span 8 bytes of BF16 data.
        let header = "{\"w\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 8]}}"
        let path = try write(SafetensorsFixture.raw(header: header, data: Data(count: 8)))
        assertBatonError([path, "tensor w", "needs 16 bytes", "span 8"]) { _ = try SafetensorsFile(path: path) }
    }

    func testUnknownDTypeNamesTheTensor() throws {
        let header = "{\"scale\": {\"dtype\": \"F8_E4M3\", \"shape\": [4], \"data_offsets\": [0, 4]}}"
        let path = try write(SafetensorsFixture.raw(header: header, data: Data(count: 4)))
        assertBatonError([path, "tensor scale", "F8_E4M3"]) { _ = try SafetensorsFile(path: path) }
    }

    func testOverlappingOffsetsAreRejected() throws {
        let header = """
            {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
             "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}
            """
        let path = try write(SafetensorsFixture.raw(header: header, data: Data(count: 12)))
        assertBatonError([path, "tensors a and b overlap"]) { _ = try SafetensorsFile(path: path) }
    }

    func testOffsetsBeyondTheDataRegionAreRejected() throws {
        let header = "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 16]}}"
        let path = try write(SafetensorsFixture.raw(header: header, data: Data(count: 12)))
        assertBatonError([path, "tensor a", "outside the data region"]) { _ = try SafetensorsFile(path: path) }
    }

    func testShardedCheckpointResolvesTensorsThroughTheIndex() throws {
        let directory = try makeTemporaryDirectory(self)
        _ = try write(
            SafetensorsFixture.bytes([SafetensorsFixture.f32("x", [1], [3])]), "part-1.safetensors", in: directory)
        _ = try write(
            SafetensorsFixture.bytes([SafetensorsFixture.f32("y", [2], [4, 5])]), "part-2.safetensors", in: directory)
        let index =
            "{\"metadata\": {\"total_size\": 12}, \"weight_map\": {\"x\": \"part-1.safetensors\", \"y\": \"part-2.safetensors\"}}"
        _ = try write(Data(index.utf8), "model.safetensors.index.json", in: directory)
        let checkpoint = try SafetensorsCheckpoint(directory: directory)
        XCTAssertEqual(checkpoint.names, ["x", "y"])
        XCTAssertEqual(try checkpoint.require("y").floats(), [4, 5])
        XCTAssertEqual(checkpoint.dataByteCount, 12)
        assertBatonError(["tensor z", "model.safetensors.index.json"]) { _ = try checkpoint.require("z") }
    }

    func testMissingShardIsNamed() throws {
        let directory = try makeTemporaryDirectory(self)
        _ = try write(
            SafetensorsFixture.bytes([SafetensorsFixture.f32("x", [1], [3])]), "part-1.safetensors", in: directory)
        let index = "{\"weight_map\": {\"x\": \"part-1.safetensors\", \"y\": \"part-2.safetensors\"}}"
        _ = try write(Data(index.utf8), "model.safetensors.index.json", in: directory)
        assertBatonError(["part-2.safetensors", "missing"]) { _ = try SafetensorsCheckpoint(directory: directory) }
    }

    func testIndexEntryAbsentFromItsShardIsNamed() throws {
        let directory = try makeTemporaryDirectory(self)
        _ = try write(
            SafetensorsFixture.bytes([SafetensorsFixture.f32("x", [1], [3])]), "part-1.safetensors", in: directory)
        let index = "{\"weight_map\": {\"x\": \"part-1.safetensors\", \"y\": \"part-1.safetensors\"}}"
        _ = try write(Data(index.utf8), "model.safetensors.index.json", in: directory)
        assertBatonError(["part-1.safetensors", "tensor y"]) { _ = try SafetensorsCheckpoint(directory: directory) }
    }

    func testDirectoryWithoutSafetensorsIsReported() throws {
        let directory = try makeTemporaryDirectory(self)
        assertBatonError([directory.path, "no model.safetensors"]) {
            _ = try SafetensorsCheckpoint(directory: directory)
        }
    }

    func testUnalignedTensorIsCopiedToAlignedMemory() throws {
        let header = "{\"w\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 12]}} "
        XCTAssertNotEqual((8 + header.utf8.count) % 4, 0, "data starts off a 4-byte boundary")
        let values: [Float] = [1.5, -2, 3.25]
        let path = try write(
            SafetensorsFixture.raw(header: header, data: values.withUnsafeBytes { Data($0) }, pad: false))
        let tensor = try XCTUnwrap(try SafetensorsFile(path: path).tensor(named: "w"))
        XCTAssertEqual(tensor.address % 4, 0)
        XCTAssertEqual(tensor.floats(), values)
    }
}
