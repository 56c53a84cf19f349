import XCTest
@testable import BatonCPU

final class VectorMathTests: XCTestCase {
    func testExponentialIsWithinTwoUlpOfExactOnTheSoftmaxRange() {
        var rng = SeededGenerator(seed: 60)
        var worstUlps = 0.0
        let samples =
            (0..<100_000).map { _ in rng.uniform(-87.3...0) } + [0, -0.0, -1e-8, -0.5, -0.693_147_2, -87.33, -20]
        for x in samples {
            let exact = Foundation.exp(Double(x))
            let ulp = Double(Float(exact).ulp)
            worstUlps = max(worstUlps, abs(Double(exponential(x)) - exact) / ulp)
        }
        if verboseTests { print("exponential: worst error \(worstUlps) ulp") }
        XCTAssertLessThanOrEqual(worstUlps, 2)
        XCTAssertEqual(exponential(0), 1)
        XCTAssertEqual(exponential(-100), 0)
        XCTAssertEqual(exponential(-.infinity), 0)
        XCTAssertTrue(exponential(.nan).isNaN)
    }

    func testMaximumAndExponentiateAndSumOverRaggedLengths() {
        var rng = SeededGenerator(seed: 61)
        for count in [0, 1, 7, 8, 9, 33] {
            let values = rng.floats(count, in: -5...5)
            let buffer = UnsafeMutablePointer<Float>.allocate(capacity: max(count, 1))
            defer { buffer.deallocate() }
            buffer.update(from: values, count: count)
            let top = maximum(buffer, count: count)
            XCTAssertEqual(top, values.max() ?? -.infinity, "count \(count)")
            let sum = exponentiateAndSum(buffer, count: count, subtracting: top)
            let exactSum = values.reduce(0.0) { $0 + Foundation.exp(Double($1 - top)) }
            XCTAssertEqual(Double(sum), exactSum, accuracy: 1e-6 * max(exactSum, 1), "count \(count)")
            for i in 0..<count {
                XCTAssertEqual(Double(buffer[i]), Foundation.exp(Double(values[i] - top)), accuracy: 1e-6)
            }
        }
    }
}
