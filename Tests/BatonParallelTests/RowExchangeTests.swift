import BatonCPU
import BatonComm
import BatonTensor
import XCTest
@testable import BatonParallel

/// `RowExchange`: rows held in contiguous ranges by the ranks reach exactly the ranks that need them.
final class RowExchangeTests: XCTestCase {
    /// Row r of the whole table holds [r, r + 0.5] (width 2), so every received row names itself.
    static func table(_ rows: Range<Int>) -> Tensor {
        Tensor(rows.flatMap { [Float($0), Float($0) + 0.5] }, shape: [rows.count, 2], dtype: .f32)
    }

    func testEveryRankGetsItsNeededRowsInOrderIncludingFromAndToARankHoldingNone() throws {
        // Rank 1 holds nothing (fewer temporal units than ranks); rank 2 needs nothing.
        let owned = [0..<3, 3..<3, 3..<7]
        let needs = [[1, 4, 6], [0, 1, 2, 3, 4, 5, 6], []]
        let exchange = try RowExchange(owned: owned, needs: needs)
        let backend = CPUBackend(threads: 1)
        let results = try runRanks(3) { rank, communicator in
            try exchange.run(
                local: Self.table(owned[rank]), width: 2, dtype: .f32, communicator: communicator,
                backend: backend
            ).floats()
        }
        for rank in 0..<3 {
            XCTAssertEqual(results[rank], needs[rank].flatMap { [Float($0), Float($0) + 0.5] }, "rank \(rank)")
        }
    }

    func testOnlyNeededRowsCrossTheWire() throws {
        // Ring-like needs on 2 ranks: rank 1 reads rows 2..<6, rank 0 rows 0..<2 of a 6-row table split 3/3.
        let exchange = try RowExchange(owned: [0..<3, 3..<6], needs: [[0, 1], [2, 3, 4, 5]])
        XCTAssertEqual(exchange.transfers, [[0, 1], [0, 0]])
        XCTAssertEqual(Array(exchange.rows(from: 1, to: 1)), [3, 4, 5])
    }

    func testOneRankReturnsItsOwnRowsWithoutCopying() throws {
        let exchange = try RowExchange(owned: [0..<4], needs: [[0, 1, 2, 3]])
        let local = Self.table(0..<4)
        let result = try runRanks(1) { _, communicator in
            try exchange.run(
                local: local, width: 2, dtype: .f32, communicator: communicator,
                backend: CPUBackend(threads: 1)
            ).address
        }
        XCTAssertEqual(result, [local.address])
    }

    func testUnsortedNeedsOrRangesWithGapsAreRejected() {
        XCTAssertThrowsError(try RowExchange(owned: [0..<2, 2..<4], needs: [[1, 0], []]))
        XCTAssertThrowsError(try RowExchange(owned: [0..<2, 3..<4], needs: [[], []]))
        XCTAssertThrowsError(try RowExchange(owned: [0..<2, 2..<4], needs: [[4], []]))
    }
}
