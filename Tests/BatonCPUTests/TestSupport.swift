import BatonTensor
import XCTest
@testable import BatonCPU

/// A deterministic generator (BatonTensor's SplitMix64), so every test sees the same inputs on every run.
struct SeededGenerator: RandomNumberGenerator {
    private var generator: SplitMix64

    init(seed: UInt64) { generator = SplitMix64(seed: seed) }

    mutating func next() -> UInt64 { generator.next() }

    /// Uniform in `range`.
    mutating func uniform(_ range: ClosedRange<Float>) -> Float {
        // 24 random bits -> [0, 1), then scaled (cheaper than Float.random in debug builds).
        let unit = Float(next() >> 40) * 0x1p-24
        return range.lowerBound + unit * (range.upperBound - range.lowerBound)
    }

    mutating func floats(_ count: Int, in range: ClosedRange<Float> = -1...1) -> [Float] {
        (0..<count).map { _ in uniform(range) }
    }

    /// A host tensor of uniform values in `range`, stored as `dtype` (rounded to nearest even).
    mutating func tensor(_ shape: Shape, dtype: DType = .f32, in range: ClosedRange<Float> = -1...1) -> Tensor {
        Tensor(floats(shape.elementCount, in: range), shape: shape, dtype: dtype)
    }
}

/// fp32 round-off allowance for a value built from `terms` products of magnitude `magnitude`:
/// a few units in the last place per term (the worst case of a straight fp32 sum).
func fp32Tolerance(terms: Int, magnitude: Double = 1) -> Double {
    4 * Double(Float.ulpOfOne) * Double(max(terms, 1)) * magnitude
}

/// Set BATON_TEST_VERBOSE=1 to print each check's measured error (quiet by default, so a passing
/// run shows only its summary).
let verboseTests = ProcessInfo.processInfo.environment["BATON_TEST_VERBOSE"] != nil

/// Asserts `actual` (fp32) is within `tolerance` of the fp64 reference everywhere, and prints the
/// largest error under BATON_TEST_VERBOSE. Equal infinities count as exact; NaN anywhere fails.
func assertClose(
    _ actual: [Float], _ expected: [Double], tolerance: Double, _ label: String,
    file: StaticString = #filePath, line: UInt = #line
) {
    XCTAssertEqual(actual.count, expected.count, "\(label): element count", file: file, line: line)
    var worst = 0.0, worstIndex = -1
    for i in 0..<min(actual.count, expected.count) {
        let a = Double(actual[i]), e = expected[i]
        if a.isNaN || e.isNaN {
            XCTFail("\(label): NaN at \(i) (actual \(a), expected \(e))", file: file, line: line)
            return
        }
        if a.isInfinite || e.isInfinite {
            XCTAssertEqual(a, e, "\(label): infinity mismatch at \(i)", file: file, line: line)
            continue
        }
        let error = abs(a - e)
        if error > worst { (worst, worstIndex) = (error, i) }
    }
    if verboseTests { print("\(label): max abs error \(worst) at \(worstIndex) (tolerance \(tolerance))") }
    XCTAssertLessThanOrEqual(
        worst, tolerance, "\(label): max abs error at element \(worstIndex)", file: file, line: line)
}

/// The fp32 values of a tensor as fp64, for references.
func doubles(_ x: Tensor) -> [Double] { x.floats().map(Double.init) }

/// Asserts `body` throws a `BatonError` whose message contains every one of `fragments`.
func assertThrowsBatonError(
    _ fragments: [String], file: StaticString = #filePath, line: UInt = #line,
    _ body: () throws -> Void
) {
    do {
        try body()
        XCTFail("expected a BatonError mentioning \(fragments)", file: file, line: line)
    } catch let error as BatonError {
        for fragment in fragments {
            XCTAssertTrue(
                error.message.contains(fragment), "\"\(error.message)\" does not mention \"\(fragment)\"",
                file: file, line: line)
        }
    } catch {
        XCTFail("expected a BatonError, got \(error)", file: file, line: line)
    }
}
