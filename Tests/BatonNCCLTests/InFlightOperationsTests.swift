import BatonTensor
import Foundation
import XCTest

@testable import BatonNCCL

/// The host-side bookkeeping of `NCCLCommunicator` (buffers kept alive until their operation is
/// done, the watchdog's timeout, device and asynchronous errors, the polled host wait), with plain
/// flags for CUDA events and a hand-driven clock: no GPU needed.
final class InFlightOperationsTests: XCTestCase {
    /// A completion marker the test flips (a CUDA event in the communicator).
    final class Flag: @unchecked Sendable {
        private let lock = NSLock()
        private var value = false
        var error: (any Error)?
        func set() { lock.withLock { value = true } }
        var isSet: Bool { lock.withLock { value } }
    }

    /// A clock the test advances.
    final class Clock: @unchecked Sendable {
        private let lock = NSLock()
        private var seconds = 100.0
        func advance(_ by: Double) { lock.withLock { seconds += by } }
        var now: Double { lock.withLock { seconds } }
    }

    /// An object whose release the test observes (a tensor's storage in the communicator).
    final class Buffer {}

    final class Failures: @unchecked Sendable {
        private let lock = NSLock()
        private var errors: [BatonError] = []
        func append(_ error: BatonError) { lock.withLock { errors.append(error) } }
        var all: [BatonError] { lock.withLock { errors } }
    }

    func makeTracker(rank: Int = 3, timeout: Double = 10, clock: Clock = Clock(), failures: Failures = Failures())
        -> InFlightOperations<Flag>
    {
        InFlightOperations<Flag>(
            rank: rank, timeout: timeout, now: { clock.now },
            isComplete: { flag in
                if let error = flag.error { throw error }
                return flag.isSet
            }, onFailure: { failures.append($0) })
    }

    func testBuffersStayAliveUntilTheirOperationCompletes() {
        let tracker = makeTracker()
        let flag = Flag()
        weak var released: Buffer?
        do {
            let buffer = Buffer()
            released = buffer
            XCTAssertNoThrow(try tracker.add(op: "allGather #0", marker: flag, keepAlive: [buffer]))
        }
        XCTAssertNil(tracker.poll())
        XCTAssertNotNil(released, "the caller dropped the buffer, but the stream still uses it")
        XCTAssertEqual(tracker.pendingOperations, ["allGather #0"])
        flag.set()
        XCTAssertNil(tracker.poll())
        XCTAssertNil(released, "a completed operation's buffers go back to the allocator")
        XCTAssertEqual(tracker.count, 0)
    }

    func testCompletedOperationsAreDroppedInAnyOrder() throws {
        let tracker = makeTracker()
        let flags = (0..<3).map { _ in Flag() }
        for (i, flag) in flags.enumerated() { try tracker.add(op: "op \(i)", marker: flag, keepAlive: []) }
        flags[1].set()
        tracker.poll()
        XCTAssertEqual(tracker.pendingOperations, ["op 0", "op 2"])
    }

    func testAnOperationOlderThanTheTimeoutFailsTheRankOnceNamingRankAndOp() throws {
        let clock = Clock(), failures = Failures()
        let tracker = makeTracker(rank: 3, timeout: 5, clock: clock, failures: failures)
        try tracker.add(op: "receive #4 bf16 [8, 2, 64] from rank 2", marker: Flag(), keepAlive: [])
        clock.advance(4)
        XCTAssertNil(tracker.poll())
        clock.advance(2)
        let error = try XCTUnwrap(tracker.poll())
        XCTAssertEqual(error.kind, .timeout)
        XCTAssertTrue(error.message.contains("rank 3"), error.message)
        XCTAssertTrue(error.message.contains("receive #4 bf16 [8, 2, 64] from rank 2"), error.message)
        XCTAssertTrue(error.message.contains("within 5 s"), error.message)
        XCTAssertNil(tracker.poll(), "the failure is reported once")
        XCTAssertEqual(failures.all.count, 1, "the communicator is aborted once")
        XCTAssertThrowsError(try tracker.add(op: "next", marker: Flag(), keepAlive: [])) {
            XCTAssertEqual($0 as? BatonError, error, "every later operation throws the first failure")
        }
        XCTAssertThrowsError(try tracker.checkHealthy())
    }

    func testADeviceErrorOnAMarkerFailsTheRankNamingTheOperation() throws {
        let tracker = makeTracker(rank: 1)
        let flag = Flag()
        flag.error = BatonError(.cuda, "cuEventQuery failed: CUDA_ERROR_ILLEGAL_ADDRESS")
        try tracker.add(op: "allReduceSum #7 f32 [4]", marker: flag, keepAlive: [])
        let error = try XCTUnwrap(tracker.poll())
        XCTAssertTrue(error.message.contains("rank 1: allReduceSum #7 f32 [4] failed on the device"), error.message)
        XCTAssertTrue(error.message.contains("ILLEGAL_ADDRESS"), error.message)
    }

    func testAnAsynchronousErrorFailsTheRank() throws {
        let failures = Failures()
        let tracker = makeTracker(failures: failures)
        try tracker.add(op: "allGather #1", marker: Flag(), keepAlive: [])
        let reported = BatonError(.nccl, "rank 3: NCCL reported remote process exited or there was a network error")
        XCTAssertEqual(tracker.poll(asyncError: reported), reported)
        XCTAssertEqual(tracker.failed, reported)
        XCTAssertEqual(failures.all, [reported])
    }

    func testFirstFailureWins() {
        let failures = Failures()
        let tracker = makeTracker(failures: failures)
        XCTAssertTrue(tracker.fail(BatonError(.communication, "first")))
        XCTAssertFalse(tracker.fail(BatonError(.communication, "second")))
        XCTAssertEqual(tracker.failed?.message, "first")
        XCTAssertEqual(failures.all.map(\.message), ["first"])
    }

    func testHostWaitReturnsWhenTheMarkerCompletes() throws {
        let tracker = InFlightOperations<Flag>(rank: 0, timeout: 10, isComplete: { $0.isSet })
        let flag = Flag()
        let id = try tracker.add(op: "broadcast #2", marker: flag, keepAlive: [])
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.05) { flag.set() }
        let start = Date()
        XCTAssertNoThrow(try tracker.waitForCompletion(of: id, op: "broadcast #2"))
        XCTAssertLessThan(Date().timeIntervalSince(start), 5)
    }

    func testHostWaitOnADeadPeerEndsInATimeoutNamingRankAndOp() throws {
        let failures = Failures()
        let tracker = InFlightOperations<Flag>(
            rank: 2, timeout: 0.2, isComplete: { $0.isSet }, onFailure: { failures.append($0) })
        let id = try tracker.add(op: "broadcast #9 i32 [1] from rank 0", marker: Flag(), keepAlive: [])
        let start = Date()
        XCTAssertThrowsError(try tracker.waitForCompletion(of: id, op: "broadcast #9 i32 [1] from rank 0")) { error in
            let error = error as? BatonError
            XCTAssertEqual(error?.kind, .timeout)
            XCTAssertTrue(
                error?.message.contains("rank 2: broadcast #9 i32 [1] from rank 0 did not complete within 0.20 s")
                    ?? false,
                "\(String(describing: error))")
        }
        XCTAssertLessThan(Date().timeIntervalSince(start), 5)
        XCTAssertEqual(failures.all.count, 1)
    }

    func testHostWaitStopsOnAnAsynchronousError() throws {
        let tracker = makeTracker(rank: 5)
        let id = try tracker.add(op: "broadcast #0", marker: Flag(), keepAlive: [])
        let reported = BatonError(.nccl, "rank 5: NCCL reported remote error")
        XCTAssertThrowsError(try tracker.waitForCompletion(of: id, op: "broadcast #0", asyncError: { reported })) {
            XCTAssertEqual($0 as? BatonError, reported)
        }
    }

    func testHostWaitThrowsAFailureRecordedElsewhere() throws {
        let tracker = makeTracker()
        let id = try tracker.add(op: "broadcast #0", marker: Flag(), keepAlive: [])
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.05) {
            tracker.fail(BatonError(.communication, "rank 3 gave up: model error"))
        }
        XCTAssertThrowsError(try tracker.waitForCompletion(of: id, op: "broadcast #0")) {
            XCTAssertTrue("\($0)".contains("gave up"), "\($0)")
        }
    }
}
