import BatonCPU
import BatonComm
import BatonTensor
import Foundation
import XCTest

final class CommunicatorTests: XCTestCase {
    func testAllGatherReturnsEveryRanksTensorInRankOrder() throws {
        let gathered = try runRanks(3) { rank, comm in
            try comm.allGather(Tensor([Float(rank), Float(10 * rank)], shape: [2])).map { $0.floats() }
        }
        for result in gathered { XCTAssertEqual(result, [[0, 0], [1, 10], [2, 20]]) }
    }

    func testAllReduceSumAndBroadcastAgreeOnEveryRank() throws {
        let results = try runRanks(4) { rank, comm in
            let sum = try comm.allReduceSum(Tensor([Float(rank), 1], shape: [2])).floats()
            let fromTwo = try comm.broadcast(Tensor([Float(rank)], shape: [1]), root: 2).floats()
            let ids = try comm.broadcast([Int32(rank), 7], root: 3)
            return (sum, fromTwo, ids)
        }
        for (sum, fromTwo, ids) in results {
            XCTAssertEqual(sum, [6, 4])
            XCTAssertEqual(fromTwo, [2])
            XCTAssertEqual(ids, [3, 7])
        }
    }

    func testSendReceiveKeepsPerPairOrderAcrossARing() throws {
        let received = try runRanks(4) { rank, comm in
            let next = (rank + 1) % 4, previous = (rank + 3) % 4
            let sends = try (0..<3).map { i in try comm.sendAsync(Tensor([Float(100 * rank + i)], shape: [1]), to: next)
            }
            let values = try (0..<3).map { _ in try comm.receive(from: previous, shape: [1], dtype: .f32).floats()[0] }
            for send in sends { try send.wait() }
            return values
        }
        for rank in 0..<4 {
            let previous = Float((rank + 3) % 4)
            XCTAssertEqual(received[rank], [100 * previous, 100 * previous + 1, 100 * previous + 2])
        }
    }

    func testAsyncAllGatherCompletesWhileTheCallerComputes() throws {
        // Rank 1 joins late; rank 0's async call must return at once and complete later.
        let results = try runRanks(2) { rank, comm in
            if rank == 1 { Thread.sleep(forTimeInterval: 0.05) }
            let handle = try comm.allGatherAsync(Tensor([Float(rank)], shape: [1]))
            return try handle.wait().map { $0.floats()[0] }
        }
        XCTAssertEqual(results, [[0, 1], [0, 1]])
    }

    func testMismatchedAllGatherSizesThrowOnEveryRank() throws {
        XCTAssertThrowsError(
            try runRanks(2) { rank, comm in
                _ = try comm.allGather(Tensor.zeros([rank + 1], dtype: .f32))
            }
        ) { error in
            let error = error as? BatonError
            XCTAssertEqual(error?.kind, .communication)
            XCTAssertTrue(error?.message.contains("rank 1 passed [2]") ?? false, "\(String(describing: error))")
        }
    }

    func testMissingPeerTimesOutNamingRankAndOperation() throws {
        XCTAssertThrowsError(
            try runRanks(2, timeout: 0.2) { rank, comm in
                if rank == 0 { _ = try comm.receive(from: 1, shape: [1], dtype: .f32) }
            }
        ) { error in
            let error = error as? BatonError
            XCTAssertEqual(error?.kind, .timeout)
            XCTAssertTrue(error?.message.contains("rank 0") ?? false)
            XCTAssertTrue(error?.message.contains("receive #0 from 1") ?? false, "\(String(describing: error))")
        }
    }

    func testAFailingRankAbortsTheOthersInsteadOfHanging() throws {
        struct Boom: Error {}
        let start = Date()
        XCTAssertThrowsError(
            try runRanks(3, timeout: 60) { rank, comm in
                if rank == 2 { throw Boom() }
                _ = try comm.allGather(Tensor.zeros([1], dtype: .f32))
            }
        ) { error in XCTAssertTrue(error is Boom, "first error should be the failing rank's, got \(error)") }
        XCTAssertLessThan(Date().timeIntervalSince(start), 30, "ranks waited for the timeout instead of aborting")
    }

    func testBadPeerAndBadTimeoutAreInvalidArguments() throws {
        XCTAssertThrowsError(try LocalCommunicator.group(worldSize: 2, timeout: 0))
        let comms = try LocalCommunicator.group(worldSize: 2)
        XCTAssertThrowsError(try comms[0].send(Tensor.zeros([1], dtype: .f32), to: 5)) { error in
            XCTAssertEqual((error as? BatonError)?.kind, .invalidArgument)
        }
    }
}

extension CommunicatorTests {
    func testDeviceTensorsWithoutAStagingBackendAreRejectedNamingTheDevice() throws {
        let comms = try LocalCommunicator.group(worldSize: 1)
        // A tensor that claims to live on a GPU (never dereferenced).
        let onDevice = Tensor(
            storage: Storage(device: .cuda(ordinal: 0), address: 0x1000, byteCount: 16), shape: [4], dtype: .f32)
        XCTAssertThrowsError(try comms[0].allGather(onDevice)) { error in
            XCTAssertEqual((error as? BatonError)?.kind, .unsupported)
            XCTAssertTrue("\(error)".contains("cuda:0"), "\(error)")
        }
        XCTAssertThrowsError(try LocalCommunicator.group(worldSize: 2, backends: [CPUBackend(threads: 1)]))
    }

    func testHostTensorsPassThroughACPUStagingBackend() throws {
        let backends: [any Backend] = [CPUBackend(threads: 1), CPUBackend(threads: 1)]
        let comms = try LocalCommunicator.group(worldSize: 2, backends: backends)
        let results = try runRanks(on: comms) { rank, comm in
            try comm.allGather(Tensor([Float(rank + 1)], shape: [1])).map { $0.floats()[0] }
        }
        XCTAssertEqual(results, [[1, 2], [1, 2]])
    }
}
