import BatonEngine
import BatonParallel
import XCTest

/// What `baton generate --method M` says it does without `--ranks` or `--gpus`: on one rank,
/// every method but Spava (whose two virtual hosts still pass a compressed block) is dense attention.
extension ParallelGenerationTests {
    func testEveryMethodButSpavaOnOneRankGeneratesTheDenseGreedyTextWithDefaultLengths() throws {
        let dense = try generate(.dense, ranks: 1)
        for method in [Method.ring, .zigzag, .star, .apb] {
            XCTAssertEqual(try generate(method, ranks: 1), dense, "\(method) on 1 rank")
        }
    }
}
