import XCTest
@testable import BatonTensor

final class DTypeTests: XCTestCase {
    /// Reference rounding: the nearest representable value by exhaustive comparison of neighbours.
    func testBF16RoundsToNearestEvenAgainstNeighbours() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let bits = UInt32.random(in: 0...UInt32.max, using: &generator)
            let value = Float(bitPattern: bits)
            if !value.isFinite { continue }
            let rounded = FloatBits.bf16(fromFloat: value)
            let lower = UInt16(truncatingIfNeeded: bits >> 16)
            let candidates = [lower, lower &+ 1]
            let back = Double(FloatBits.float(fromBF16: rounded))
            let best = candidates.map { Double(FloatBits.float(fromBF16: $0)) }
                .filter { $0.isFinite }
                .map { abs($0 - Double(value)) }.min()!
            if back.isFinite {
                XCTAssertEqual(abs(back - Double(value)), best, "bf16 rounding of \(value)")
            }
            if abs(Double(FloatBits.float(fromBF16: lower)) - Double(value))
                == abs(Double(FloatBits.float(fromBF16: lower &+ 1)) - Double(value))
            {
                XCTAssertEqual(rounded & 1, 0, "tie of \(value) must round to even")
            }
        }
    }

    func testBF16SpecialValues() {
        XCTAssertEqual(FloatBits.bf16(fromFloat: 1.0), 0x3F80)
        XCTAssertEqual(FloatBits.bf16(fromFloat: -0.0), 0x8000)
        XCTAssertEqual(FloatBits.bf16(fromFloat: .infinity), 0x7F80)
        XCTAssertTrue(FloatBits.float(fromBF16: FloatBits.bf16(fromFloat: .nan)).isNaN)
        // 1 + 2^-8 is exactly halfway between 1 and 1 + 2^-7: ties to even (1.0).
        XCTAssertEqual(FloatBits.bf16(fromFloat: 1.0 + 0.00390625), 0x3F80)
        XCTAssertEqual(FloatBits.bf16(fromFloat: 1.0 + 3 * 0.00390625), 0x3F82)
    }

    func testF16RoundTripsEveryHalfValue() {
        for bits in UInt16.min...UInt16.max {
            let value = FloatBits.float(fromF16: bits)
            if value.isNaN {
                XCTAssertTrue(FloatBits.float(fromF16: FloatBits.f16(fromFloat: value)).isNaN)
                continue
            }
            XCTAssertEqual(FloatBits.f16(fromFloat: value), bits, "half \(String(bits, radix: 16))")
        }
    }

    func testF16RoundsToNearestEvenIncludingSubnormals() {
        for _ in 0..<20_000 {
            let value = Float.random(in: -70_000...70_000) * (Bool.random() ? 1 : 1e-6)
            let rounded = FloatBits.f16(fromFloat: value)
            let back = FloatBits.float(fromF16: rounded)
            if !back.isFinite { XCTAssertGreaterThan(abs(value), 65504); continue }
            // Neighbours of the result must not be strictly closer.
            for neighbour in [rounded &- 1, rounded &+ 1] where (neighbour & 0x7C00) != 0x7C00 {
                let other = FloatBits.float(fromF16: neighbour)
                if (neighbour & 0x8000) != (rounded & 0x8000) { continue }
                XCTAssertLessThanOrEqual(
                    abs(Double(back) - Double(value)), abs(Double(other) - Double(value)), "\(value)")
            }
        }
    }
}
