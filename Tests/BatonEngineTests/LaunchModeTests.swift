import BatonComm
import BatonEngine
import BatonTensor
import XCTest

/// `--ranks`, `--gpus` and the torchrun environment into a launch mode, and the visible-GPU check:
/// pure logic, so CI (no GPU, no NCCL) checks every error message.
final class LaunchModeTests: XCTestCase {
    let torchrun = [
        "RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500"
    ]

    func testWithoutTorchrunGpusSelectsOneThreadPerGPU() throws {
        XCTAssertEqual(try LaunchMode.resolve(gpus: nil, ranks: 3, environment: [:]), .sharedDevice(ranks: 3))
        XCTAssertEqual(try LaunchMode.resolve(gpus: 4, ranks: 1, environment: [:]), .gpuThreads(gpus: 4))
        XCTAssertEqual(try LaunchMode.resolve(gpus: 1, ranks: 1, environment: [:]).worldSize, 1)
    }

    func testUnderTorchrunEachProcessRunsOneRankOnItsLocalGPU() throws {
        let mode = try LaunchMode.resolve(gpus: 2, ranks: 1, environment: torchrun)
        XCTAssertEqual(
            mode,
            .process(
                ProcessGroupConfig(rank: 1, worldSize: 2, localRank: 1, masterAddress: "10.0.0.1", masterPort: 29500)))
        XCTAssertEqual(mode.device(requested: .cpu), .cuda(ordinal: 1))
        XCTAssertFalse(mode.printsOutput, "only rank 0 prints the text")
        XCTAssertTrue(
            try LaunchMode.resolve(
                gpus: 2, ranks: 1, environment: torchrun.merging(["RANK": "0", "LOCAL_RANK": "0"]) { $1 }
            ).printsOutput)
    }

    func testGpusMustAgreeWithWorldSize() {
        XCTAssertThrowsError(try LaunchMode.resolve(gpus: 4, ranks: 1, environment: torchrun)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("--gpus 4 does not match WORLD_SIZE=2"), text)
        }
        XCTAssertThrowsError(try LaunchMode.resolve(gpus: nil, ranks: 1, environment: torchrun)) { error in
            XCTAssertTrue("\(error)".contains("pass --gpus 2"), "\(error)")
        }
        // A job of one process needs no --gpus.
        XCTAssertEqual(
            try LaunchMode.resolve(
                gpus: nil, ranks: 2, environment: ["RANK": "0", "WORLD_SIZE": "1", "MASTER_PORT": "1"]),
            .sharedDevice(ranks: 2))
    }

    func testMalformedTorchrunEnvironmentNamesTheVariable() {
        XCTAssertThrowsError(
            try LaunchMode.resolve(gpus: 2, ranks: 1, environment: ["WORLD_SIZE": "2", "MASTER_PORT": "1"])
        ) {
            XCTAssertTrue("\($0)".contains("RANK is not set"), "\($0)")
        }
        XCTAssertThrowsError(
            try LaunchMode.resolve(gpus: 2, ranks: 1, environment: torchrun.merging(["MASTER_PORT": "x"]) { $1 })
        ) {
            XCTAssertTrue("\($0)".contains("MASTER_PORT='x'"), "\($0)")
        }
        XCTAssertThrowsError(
            try LaunchMode.resolve(gpus: 2, ranks: 1, environment: torchrun.merging(["RANK": "2"]) { $1 })
        ) {
            XCTAssertTrue("\($0)".contains("RANK 2 is outside 0..<WORLD_SIZE (2)"), "\($0)")
        }
    }

    func testGpusAndRanksExcludeEachOtherAndMustBePositive() {
        XCTAssertThrowsError(try LaunchMode.resolve(gpus: 2, ranks: 2, environment: [:])) {
            XCTAssertTrue("\($0)".contains("exclude each other"), "\($0)")
        }
        XCTAssertThrowsError(try LaunchMode.resolve(gpus: 0, ranks: 1, environment: [:]))
        XCTAssertThrowsError(try LaunchMode.resolve(gpus: nil, ranks: 0, environment: [:]))
    }

    func testAskingForMoreGPUsThanVisibleNamesHowManyAre() {
        XCTAssertNoThrow(try LaunchMode.gpuThreads(gpus: 2).requireVisibleGPUs(visible: 2, environment: [:]))
        XCTAssertNoThrow(try LaunchMode.sharedDevice(ranks: 8).requireVisibleGPUs(visible: 0, environment: [:]))
        XCTAssertThrowsError(try LaunchMode.gpuThreads(gpus: 4).requireVisibleGPUs(visible: 1, environment: [:])) {
            error in
            XCTAssertEqual((error as? BatonError)?.kind, .notAvailable)
            XCTAssertTrue("\(error)".contains("--gpus 4 needs 4 GPUs, but 1 CUDA device is visible"), "\(error)")
        }
        XCTAssertThrowsError(
            try LaunchMode.gpuThreads(gpus: 3).requireVisibleGPUs(
                visible: 2, environment: ["CUDA_VISIBLE_DEVICES": "0,1"])
        ) {
            XCTAssertTrue("\($0)".contains("2 CUDA devices are visible (CUDA_VISIBLE_DEVICES=0,1)"), "\($0)")
        }
        let process = LaunchMode.process(
            ProcessGroupConfig(rank: 3, worldSize: 4, localRank: 3, masterAddress: "h", masterPort: 1))
        XCTAssertThrowsError(try process.requireVisibleGPUs(visible: 2, environment: [:])) {
            XCTAssertTrue("\($0)".contains("LOCAL_RANK 3 runs on cuda:3, but 2 CUDA devices are visible"), "\($0)")
        }
        XCTAssertThrowsError(try LaunchMode.requireVisibleGPUs(first: 1, count: 2, visible: 2, environment: [:])) {
            XCTAssertTrue("\($0)".contains("cuda:1...cuda:2"), "\($0)")
        }
    }
}
