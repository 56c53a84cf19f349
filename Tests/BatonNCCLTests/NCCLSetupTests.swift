import BatonCUDA
import BatonTensor
import CCUDA
import XCTest

@testable import BatonNCCL

/// What can be checked of the NCCL communicator without a GPU: clear errors when NCCL or CUDA is
/// missing, group validation, the unique id's bytes and NCCL's version code.
final class NCCLSetupTests: XCTestCase {
    func testMissingNCCLIsAClearError() throws {
        try XCTSkipIf(NCCLLibrary.isAvailable, "NCCL is installed here")
        XCTAssertThrowsError(try NCCLLibrary.version()) { error in
            let error = error as? BatonError
            XCTAssertEqual(error?.kind, .notAvailable)
            XCTAssertTrue(error?.message.contains("NCCL (libnccl) not found") ?? false, "\(String(describing: error))")
            XCTAssertTrue(error?.message.contains("libnccl.so.2") ?? false, "\(String(describing: error))")
        }
    }

    func testMissingCUDAIsAClearErrorWhenCountingDevices() throws {
        try XCTSkipIf(baton_cuda_driver_present() != 0, "a CUDA driver is installed here")
        XCTAssertThrowsError(try CUDABackend.visibleDeviceCount()) { error in
            XCTAssertEqual((error as? BatonError)?.kind, .notAvailable)
            XCTAssertTrue("\(error)".contains("libcuda"), "\(error)")
        }
    }

    func testAnEmptyGroupIsRejectedBeforeTouchingNCCL() {
        XCTAssertThrowsError(try NCCLCommunicator.group(backends: [])) { error in
            XCTAssertEqual((error as? BatonError)?.kind, .invalidArgument)
        }
    }

    func testTwoRanksOnOneGPUAreRejectedNamingBothAndTheSharedGPUMode() {
        XCTAssertNoThrow(try NCCLCommunicator.validateGroup(ordinals: [0, 1, 2], timeout: 1))
        XCTAssertThrowsError(try NCCLCommunicator.validateGroup(ordinals: [0, 1, 1], timeout: 1)) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("ranks 1 and 2 are both on cuda:1"), text)
            XCTAssertTrue(text.contains("--ranks N --device cuda"), text)
        }
        XCTAssertThrowsError(try NCCLCommunicator.validateGroup(ordinals: [0], timeout: 0))
    }

    func testUniqueIdTravelsAsItsBytes() throws {
        let bytes = (0..<UniqueID.byteCount).map { UInt8(($0 * 31 + 7) % 256) }
        XCTAssertEqual(UniqueID.byteCount, 128)
        XCTAssertEqual(UniqueID.bytes(try UniqueID.id(bytes, rank: 1)), bytes)
        XCTAssertThrowsError(try UniqueID.id([1, 2, 3], rank: 4)) { error in
            XCTAssertTrue("\(error)".contains("rank 4: the rendezvous delivered 3 bytes"), "\(error)")
        }
    }

    func testVersionCodes() {
        XCTAssertEqual(NCCLLibrary.versionString(22803), "2.28.3")
        XCTAssertEqual(NCCLLibrary.versionString(21305), "2.13.5")
        XCTAssertEqual(NCCLLibrary.versionString(2708), "2.7.8")
    }
}
