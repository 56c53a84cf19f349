import XCTest
@testable import BatonTensor

final class AttentionMaskTests: XCTestCase {
    func testKeyRangeMatchesAllowsForEveryMask() {
        let masks: [AttentionMask] = [
            .full, .causal, .anchor(anchorLength: 3, passingLength: 4), .anchor(anchorLength: 0, passingLength: 2)
        ]
        for mask in masks {
            for (sq, sk) in [(5, 5), (3, 9), (7, 11), (1, 4)] {
                for row in 0..<sq {
                    let range = mask.keyRange(row: row, queryCount: sq, keyCount: sk)
                    for key in 0..<sk {
                        XCTAssertEqual(
                            range.contains(key), mask.allows(row: row, key: key, queryCount: sq, keyCount: sk),
                            "\(mask) row \(row) key \(key) Sq \(sq) Sk \(sk)")
                    }
                }
            }
        }
    }

    func testCausalIsBottomRightAligned() {
        // 2 query rows over 5 keys: row 0 sees keys 0...3, row 1 sees 0...4.
        XCTAssertEqual(AttentionMask.causal.keyRange(row: 0, queryCount: 2, keyCount: 5), 0..<4)
        XCTAssertEqual(AttentionMask.causal.keyRange(row: 1, queryCount: 2, keyCount: 5), 0..<5)
    }

    func testAnchorRowsSkipPassingBlock() {
        // keys [passing 4 | anchor 2 | local 3], queries [anchor 2 | local 3].
        let mask = AttentionMask.anchor(anchorLength: 2, passingLength: 4)
        XCTAssertEqual(mask.keyRange(row: 0, queryCount: 5, keyCount: 9), 4..<5)
        XCTAssertEqual(mask.keyRange(row: 1, queryCount: 5, keyCount: 9), 4..<6)
        XCTAssertEqual(mask.keyRange(row: 2, queryCount: 5, keyCount: 9), 0..<7)
    }

    func testTensorRowViewsShareStorage() {
        let t = Tensor((0..<12).map(Float.init), shape: [4, 3])
        let view = t.rows(1..<3)
        XCTAssertEqual(view.floats(), [3, 4, 5, 6, 7, 8])
        XCTAssertEqual(view.reshaped(3, 2).shape, [3, 2])
    }
}
