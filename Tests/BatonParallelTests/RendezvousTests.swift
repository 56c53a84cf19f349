import BatonComm
import BatonTensor
import Dispatch
import Foundation
import XCTest

/// The torchrun-style rendezvous over real TCP on loopback: rank 0 hands every rank the same
/// payload (the NCCL unique id), and bad groups fail with messages that name the rank.
final class RendezvousTests: XCTestCase {
    /// Runs rank 0 on port 0 (the system picks a free one), then ranks `others` against it.
    /// Returns each rank's payload or error, indexed by position in `[0] + others`.
    /// Values the rank threads write, behind a lock.
    final class Shared<Value>: @unchecked Sendable {
        private let lock = NSLock()
        private var value: Value
        init(_ value: Value) { self.value = value }
        func update(_ body: (inout Value) -> Void) { lock.lock(); body(&value); lock.unlock() }
        var current: Value { lock.lock(); defer { lock.unlock() }; return value }
    }

    func runGroup(worldSize: Int, others: [(rank: Int, worldSize: Int)], timeout: Double = 10) -> [Result<
        [UInt8], any Error
    >] {
        let payload: [UInt8] = (0..<128).map { UInt8($0 * 7 % 251) }
        let ready = DispatchSemaphore(value: 0)
        let port = Shared(0)
        let results = Shared(
            [Result<[UInt8], any Error>](
                repeating: .failure(BatonError.invalidArgument("not run")), count: others.count + 1))
        let group = DispatchGroup()
        DispatchQueue.global().async(group: group) {
            let config = ProcessGroupConfig(
                rank: 0, worldSize: worldSize, localRank: 0, masterAddress: "127.0.0.1", masterPort: 0)
            let result = Result {
                try Rendezvous.exchange(config, payload: payload, timeout: timeout) { bound in
                    port.update { $0 = bound }
                    ready.signal()
                }
            }
            results.update { $0[0] = result }
            if case .failure = result { ready.signal() }  // never listened: don't leave the test waiting
        }
        if ready.wait(timeout: .now() + timeout) == .timedOut { return results.current }
        let bound = port.current
        for (index, member) in others.enumerated() {
            DispatchQueue.global().async(group: group) {
                let config = ProcessGroupConfig(
                    rank: member.rank, worldSize: member.worldSize, localRank: member.rank,
                    masterAddress: "127.0.0.1", masterPort: bound)
                let result = Result { try Rendezvous.exchange(config, payload: nil, timeout: timeout) }
                results.update { $0[index + 1] = result }
            }
        }
        group.wait()
        return results.current
    }

    func testEveryRankReceivesRankZerosPayloadOverLoopback() throws {
        let results = runGroup(worldSize: 4, others: [(1, 4), (2, 4), (3, 4)])
        let expected = try results[0].get()
        XCTAssertEqual(expected.count, 128)
        for result in results { XCTAssertEqual(try result.get(), expected) }
    }

    func testMismatchedWorldSizeIsRejectedNamingTheRank() {
        let results = runGroup(worldSize: 2, others: [(1, 3)], timeout: 3)
        XCTAssertThrowsError(try results[0].get()) { error in
            XCTAssertTrue("\(error)".contains("rank 1 says WORLD_SIZE 3"), "\(error)")
        }
        XCTAssertThrowsError(try results[1].get())
    }

    func testMissingRankTimesOutNamingIt() {
        let results = runGroup(worldSize: 3, others: [(1, 3)], timeout: 1)
        XCTAssertThrowsError(try results[0].get()) { error in
            XCTAssertEqual((error as? BatonError)?.kind, .timeout)
            XCTAssertTrue("\(error)".contains("ranks [2] did not connect"), "\(error)")
        }
    }

    func testConfigFromTorchrunEnvironment() throws {
        let config = try ProcessGroupConfig.fromEnvironment([
            "RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "3",
            "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500"
        ])
        XCTAssertEqual(
            config,
            ProcessGroupConfig(rank: 3, worldSize: 8, localRank: 3, masterAddress: "10.0.0.1", masterPort: 29500))
        XCTAssertThrowsError(try ProcessGroupConfig.fromEnvironment(["WORLD_SIZE": "2", "MASTER_PORT": "1"])) {
            XCTAssertTrue("\($0)".contains("RANK is not set"), "\($0)")
        }
        XCTAssertThrowsError(
            try ProcessGroupConfig.fromEnvironment(["RANK": "2", "WORLD_SIZE": "2", "MASTER_PORT": "1"])
        ) {
            XCTAssertTrue("\($0)".contains("RANK 2 is outside 0..<WORLD_SIZE (2)"), "\($0)")
        }
        XCTAssertThrowsError(
            try ProcessGroupConfig.fromEnvironment(["RANK": "0", "WORLD_SIZE": "x", "MASTER_PORT": "1"])
        ) {
            XCTAssertTrue("\($0)".contains("WORLD_SIZE='x'"), "\($0)")
        }
    }
}
