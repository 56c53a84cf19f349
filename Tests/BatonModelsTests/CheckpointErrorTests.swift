import BatonCPU
import BatonModels
import BatonTensor
import Foundation
import XCTest

/// A model directory with a valid config but a checkpoint that does not fit it.
final class CheckpointErrorTests: XCTestCase {
    private func modelDirectory(_ entries: [SafetensorsFixture.Entry]) throws -> URL {
        let directory = try makeTemporaryDirectory(self)
        let config = try FixtureModel("tiny-qwen2").directory.appendingPathComponent("config.json")
        try FileManager.default.copyItem(at: config, to: directory.appendingPathComponent("config.json"))
        try SafetensorsFixture.bytes(entries).write(to: directory.appendingPathComponent("model.safetensors"))
        return directory
    }

    private func embedding(rows: Int) -> SafetensorsFixture.Entry {
        SafetensorsFixture.f32("model.embed_tokens.weight", [rows, 64], [Float](repeating: 0.5, count: rows * 64))
    }

    func testMissingTensorIsNamedWithItsFile() throws {
        let directory = try modelDirectory([embedding(rows: 1024)])
        assertBatonError([
            "model.layers.0.input_layernorm.weight", "missing",
            directory.appendingPathComponent("model.safetensors").path
        ]) {
            _ = try LlamaModel.load(directory: directory, backend: CPUBackend())
        }
    }

    func testWrongShapeReportsExpectedAndFound() throws {
        let directory = try modelDirectory([embedding(rows: 1000)])
        assertBatonError(["model.embed_tokens.weight", "expected shape [1024, 64]", "found [1000, 64]"]) {
            _ = try LlamaModel.load(directory: directory, backend: CPUBackend())
        }
    }

    func testMissingModelDirectoryIsReported() {
        assertBatonError(["/nonexistent/model", "does not exist"]) {
            _ = try LlamaModel.load(directory: URL(fileURLWithPath: "/nonexistent/model"), backend: CPUBackend())
        }
    }
}
