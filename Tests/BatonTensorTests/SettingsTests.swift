import XCTest

@testable import BatonTensor

/// `BatonSettings` (the `BATON_*` variables) and `Device.named`: defaults, every variable's
/// values, and one error naming the variable or option for a bad value.
final class SettingsTests: XCTestCase {
    func testUnsetAndEmptyVariablesGiveTheDefaults() throws {
        XCTAssertEqual(try BatonSettings(environment: [:]), BatonSettings())
        let empty = Dictionary(uniqueKeysWithValues: BatonSettings.variableNames.map { ($0, "") })
        XCTAssertEqual(try BatonSettings(environment: empty), BatonSettings())
        let defaults = BatonSettings()
        XCTAssertEqual(defaults.attention, .auto)
        XCTAssertTrue(defaults.fuseQKV && defaults.fuseGateUp)
        XCTAssertFalse(defaults.gemmAutotune || defaults.kernelVerbose)
        XCTAssertEqual(defaults.mlpRowBlock, 4096)
        XCTAssertEqual(defaults.python, "python3")
        XCTAssertNil(defaults.defaultModelDirectory)
        XCTAssertNil(defaults.blas)
        XCTAssertFalse(defaults.timingLayers)
    }

    func testEveryVariableIsRead() throws {
        let settings = try BatonSettings(environment: [
            "BATON_ATTENTION": "Flash", "BATON_FUSE_QKV": "0", "BATON_FUSE_GATE_UP": "off", "BATON_GEMM_AUTOTUNE": "1",
            "BATON_KERNEL_DEFINES": "HOPPER_EARLY_RESCALE=1  OTHER", "BATON_KERNEL_VERBOSE": "yes",
            "BATON_MLP_ROW_BLOCK": "16384",
            "BATON_PYTHON": "/opt/venv/bin/python", "BATON_DEFAULT_MODEL": "/models/smol", "BATON_BLAS": "builtin",
            "BATON_TIMING_LAYERS": "1"
        ])
        XCTAssertEqual(settings.attention, .flash)
        XCTAssertFalse(settings.fuseQKV)
        XCTAssertFalse(settings.fuseGateUp)
        XCTAssertTrue(settings.gemmAutotune)
        XCTAssertEqual(settings.kernelDefines, ["HOPPER_EARLY_RESCALE=1", "OTHER"])
        XCTAssertTrue(settings.kernelVerbose)
        XCTAssertEqual(settings.mlpRowBlock, 16384)
        XCTAssertEqual(settings.python, "/opt/venv/bin/python")
        XCTAssertEqual(settings.defaultModelDirectory, "/models/smol")
        XCTAssertEqual(settings.blas, "builtin")
        XCTAssertTrue(settings.timingLayers)
    }

    func testBadValuesAreOneErrorNamingTheVariable() {
        for (name, value) in [
            ("BATON_ATTENTION", "fast"), ("BATON_FUSE_QKV", "maybe"), ("BATON_GEMM_AUTOTUNE", "2"),
            ("BATON_MLP_ROW_BLOCK", "0"), ("BATON_MLP_ROW_BLOCK", "4k")
        ] {
            XCTAssertThrowsError(try BatonSettings(environment: [name: value]), "\(name)=\(value)") { error in
                let text = "\(error)"
                XCTAssertTrue(text.contains("\(name)=\(value)"), text)
                XCTAssertFalse(text.contains("\n"), text)
            }
        }
    }

    func testDeviceNamesIncludingTheGpuAlias() throws {
        XCTAssertEqual(try Device.named("cpu"), .cpu)
        XCTAssertEqual(try Device.named("CUDA"), .cuda(ordinal: 0))
        XCTAssertEqual(try Device.named("gpu"), .cuda(ordinal: 0))
        XCTAssertEqual(try Device.named("cuda:3"), .cuda(ordinal: 3))
        for bad in ["tpu", "cuda:", "cuda:-1", "cuda:x"] {
            XCTAssertThrowsError(try Device.named(bad)) { error in
                XCTAssertTrue(
                    "\(error)".contains("--device must be cpu, cuda (alias gpu) or cuda:N, got '\(bad)'"), "\(error)")
            }
        }
    }
}
