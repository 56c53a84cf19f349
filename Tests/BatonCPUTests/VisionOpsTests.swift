import BatonTensor
import Foundation
import XCTest
@testable import BatonCPU

/// The vision-language ops (sectioned rotary, segment attention, exact GELU) against float64
/// references written from their definitions.
final class VisionOpsTests: XCTestCase {
    let backend = CPUBackend()

    /// float64 rotate-half with frequency `i` turning by positions[row(i), t] * invFreq[i] (fp32 product).
    func sectionedRotaryReference(
        _ x: [Double], positions: [Int32], inverse: [Float], sections: [Int],
        tokens: Int, heads: Int, dim: Int
    ) -> [Double] {
        let rowOf = sections.enumerated().flatMap { row, size in [Int](repeating: row, count: size) }
        var y = x
        let half = dim / 2
        for t in 0..<tokens {
            for h in 0..<heads {
                let base = (t * heads + h) * dim
                for i in 0..<half {
                    let angle = Double(Float(positions[rowOf[i] * tokens + t]) * inverse[i])
                    y[base + i] = x[base + i] * cos(angle) - x[base + half + i] * sin(angle)
                    y[base + half + i] = x[base + half + i] * cos(angle) + x[base + i] * sin(angle)
                }
            }
        }
        return y
    }

    func testSectionedRotaryMatchesFloat64ReferenceForMRoPESections() throws {
        var rng = SeededGenerator(seed: 90)
        let (tokens, heads, dim, sections) = (23, 3, 32, [4, 6, 6])
        let x = rng.tensor([tokens, heads, dim], dtype: .bf16)
        let positions = (0..<3 * tokens).map { _ in Int32.random(in: 0..<60_000, using: &rng) }
        let inverse = (0..<dim / 2).map { Float(pow(1_000_000.0, -2.0 * Double($0) / Double(dim))) }
        let out = try backend.sectionedRotary(
            x, positions: Tensor(int32: positions, shape: [3, tokens]),
            inverseFrequencies: Tensor(inverse, shape: [dim / 2]), sections: sections)
        assertClose(
            out.floats(),
            sectionedRotaryReference(
                doubles(x), positions: positions, inverse: inverse,
                sections: sections, tokens: tokens, heads: heads, dim: dim),
            tolerance: 1e-5, "M-RoPE sections [4, 6, 6]")
    }

    func testSectionedRotaryWithEqualRowsIsPlainRotaryExactly() throws {
        var rng = SeededGenerator(seed: 91)
        let (tokens, heads, dim) = (17, 4, 16)
        let x = rng.tensor([tokens, heads, dim])
        let row = (0..<tokens).map { Int32($0 * 37 % 101) }
        let inverse = Tensor(
            (0..<dim / 2).map { Float(pow(10_000.0, -2.0 * Double($0) / Double(dim))) }, shape: [dim / 2])
        let sectioned = try backend.sectionedRotary(
            x, positions: Tensor(int32: row + row + row, shape: [3, tokens]),
            inverseFrequencies: inverse, sections: [2, 3, 3])
        let plain = try backend.rotary(x, positions: Tensor(int32: row), inverseFrequencies: inverse)
        XCTAssertEqual(sectioned.floats(), plain.floats(), "text-only M-RoPE must be 1-D RoPE bit for bit")
    }

    func testSectionedRotaryRejectsSectionsNotSummingToHalfHeadDim() {
        let x = Tensor.zeros([2, 1, 8], dtype: .f32)
        assertThrowsBatonError(["sectionedRotary", "sections", "d/2 = 4"]) {
            _ = try backend.sectionedRotary(
                x, positions: Tensor(int32: [0, 0, 0, 0], shape: [2, 2]),
                inverseFrequencies: Tensor([1, 1, 1, 1], shape: [4]), sections: [1, 2])
        }
        assertThrowsBatonError(["sectionedRotary", "positions", "[2, 2]"]) {
            _ = try backend.sectionedRotary(
                x, positions: Tensor(int32: [0, 0, 0], shape: [3, 1]),
                inverseFrequencies: Tensor([1, 1, 1, 1], shape: [4]), sections: [2, 2])
        }
    }

    func testAttentionSegmentsEqualsSeparateFullAttentionPerSegment() throws {
        var rng = SeededGenerator(seed: 92)
        // Empty segments (repeated offsets) as transformers' unique_consecutive leaves none, and one
        // segment longer than a 128-row work item.
        let lengths = [16, 16, 12, 0, 4, 300, 1, 9]
        let (rows, heads, dim) = (lengths.reduce(0, +), 3, 16)
        let q = rng.tensor([rows, heads, dim], in: -2...2), k = rng.tensor([rows, heads, dim], in: -2...2)
        let v = rng.tensor([rows, heads, dim])
        let offsets = lengths.reduce(into: [Int32(0)]) { $0.append($0.last! + Int32($1)) }
        let scale = 1 / Float(dim).squareRoot()
        let out = try backend.attentionSegments(
            query: q, key: k, value: v, segments: Tensor(int32: offsets), scale: scale)
        let (qs, ks, vs) = (doubles(q), doubles(k), doubles(v))
        var expected = [Double](repeating: 0, count: rows * heads * dim)
        for (start, end) in zip(offsets, offsets.dropFirst()) {
            for row in Int(start)..<Int(end) {
                for h in 0..<heads {
                    let scores = (Int(start)..<Int(end)).map { key in
                        (0..<dim).reduce(0.0) {
                            $0 + qs[(row * heads + h) * dim + $1] * ks[(key * heads + h) * dim + $1]
                        }
                            * Double(scale)
                    }
                    let largest = scores.max()!
                    let weights = scores.map { exp($0 - largest) }
                    let total = weights.reduce(0, +)
                    for c in 0..<dim {
                        expected[(row * heads + h) * dim + c] =
                            zip(weights, Int(start)..<Int(end)).reduce(0.0) {
                                $0 + $1.0 * vs[($1.1 * heads + h) * dim + c]
                            } / total
                    }
                }
            }
        }
        assertClose(out.floats(), expected, tolerance: 1e-5, "segments \(lengths)")
    }

    func testAttentionSegmentsRejectsOffsetsThatDoNotCoverTheRows() {
        let x = Tensor.zeros([10, 1, 4], dtype: .f32)
        assertThrowsBatonError(["attentionSegments", "segments", "N = 10"]) {
            _ = try backend.attentionSegments(query: x, key: x, value: x, segments: Tensor(int32: [0, 4, 9]), scale: 1)
        }
        assertThrowsBatonError(["attentionSegments", "segments", "N = 10"]) {
            _ = try backend.attentionSegments(
                query: x, key: x, value: x, segments: Tensor(int32: [0, 6, 4, 10]), scale: 1)
        }
    }

    func testGELUIsTheExactErfForm() throws {
        let values: [Float] = [-6, -3, -1.5, -0.5, -1e-3, 0, 1e-3, 0.5, 1, 2.5, 7]
        let out = try backend.gelu(Tensor(values, shape: [values.count]))
        assertClose(
            out.floats(), values.map { Double($0) * 0.5 * (1 + erf(Double($0) / 2.0.squareRoot())) },
            tolerance: 1e-6, "gelu")
        // The tanh approximation differs by ~1e-4 near |x| = 1.5: this tolerance tells the two apart.
        let tanhForm = values.map { x -> Double in
            let x = Double(x)
            return 0.5 * x * (1 + tanh((2 / Double.pi).squareRoot() * (x + 0.044715 * x * x * x)))
        }
        XCTAssertGreaterThan(zip(out.floats(), tanhForm).map { abs(Double($0) - $1) }.max()!, 1e-5)
    }
}
