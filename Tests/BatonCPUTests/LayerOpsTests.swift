import BatonTensor
import XCTest
@testable import BatonCPU

final class LayerOpsTests: XCTestCase {
    let backend = CPUBackend()

    func testEmbeddingGathersRowsOfAnyFloatTable() throws {
        var rng = SeededGenerator(seed: 40)
        for dtype in [DType.bf16, .f16, .f32] {
            let table = rng.tensor([50, 24], dtype: dtype)
            let ids: [Int32] = [3, 0, 49, 3, 17]
            let out = try backend.embedding(table: table, ids: Tensor(int32: ids))
            XCTAssertEqual(out.shape, [5, 24])
            XCTAssertEqual(out.dtype, .f32)
            let rows = table.floats()
            XCTAssertEqual(out.floats(), ids.flatMap { rows[Int($0) * 24..<(Int($0) + 1) * 24] }, "\(dtype) table")
        }
    }

    func testEmbeddingRejectsOutOfRangeIdNamingIdAndVocabulary() {
        let table = Tensor.zeros([5, 4], dtype: .bf16)
        assertThrowsBatonError(["embedding", "7", "5 rows"]) {
            _ = try backend.embedding(table: table, ids: Tensor(int32: [1, 7]))
        }
        assertThrowsBatonError(["embedding", "-1"]) {
            _ = try backend.embedding(table: table, ids: Tensor(int32: [-1]))
        }
        assertThrowsBatonError(["embedding", "ids", "i32"]) {
            _ = try backend.embedding(table: table, ids: Tensor([1], shape: [1]))
        }
    }

    func testRMSNormMatchesFloat64Reference() throws {
        var rng = SeededGenerator(seed: 41)
        let (rows, width, epsilon) = (13, 300, Float(1e-5))
        let x = rng.tensor([rows, width], in: -3...3), weight = rng.tensor([width], dtype: .bf16, in: 0.5...1.5)
        let out = try backend.rmsNorm(x, weight: weight, epsilon: epsilon)
        let xs = doubles(x), ws = doubles(weight)
        var expected = [Double](repeating: 0, count: rows * width)
        for r in 0..<rows {
            let meanSquare = (0..<width).reduce(0.0) { $0 + xs[r * width + $1] * xs[r * width + $1] } / Double(width)
            let inverse = 1 / (meanSquare + Double(epsilon)).squareRoot()
            for i in 0..<width { expected[r * width + i] = xs[r * width + i] * inverse * ws[i] }
        }
        assertClose(out.floats(), expected, tolerance: fp32Tolerance(terms: width, magnitude: 4), "rmsNorm f32")

        // bf16 activations: the normalised row is rounded to bf16 before the weight (HF order),
        // so the result is within one bf16 rounding of the exact value.
        let xHalf = try backend.cast(x, to: .bf16)
        let halfOut = try backend.rmsNorm(xHalf, weight: weight, epsilon: epsilon).floats()
        let halfInputs = doubles(xHalf)
        for r in 0..<rows {
            let meanSquare =
                (0..<width).reduce(0.0) { $0 + halfInputs[r * width + $1] * halfInputs[r * width + $1] } / Double(width)
            let inverse = 1 / (meanSquare + Double(epsilon)).squareRoot()
            for i in 0..<width {
                let normalised = halfInputs[r * width + i] * inverse
                let rounded = Double(FloatBits.float(fromBF16: FloatBits.bf16(fromFloat: Float(normalised))))
                // fp32 vs fp64 normalisation may land on either side of a bf16 rounding boundary.
                XCTAssertLessThanOrEqual(
                    abs(Double(halfOut[r * width + i]) - rounded * ws[i]), abs(normalised) * ws[i] / 128 + 1e-6)
            }
        }
        assertThrowsBatonError(["rmsNorm", "weight", "[300]", "[299]"]) {
            _ = try backend.rmsNorm(x, weight: Tensor.zeros([299], dtype: .f32), epsilon: 1e-5)
        }
    }

    /// torch's LayerNorm in float64: biased variance, `(x - mean) / sqrt(var + eps) * w + b`.
    private func layerNormReference(_ x: Tensor, _ weight: Tensor, _ bias: Tensor, epsilon: Float) -> [Double] {
        let (rows, width) = (x.shape[0], x.shape[1])
        let xs = doubles(x), ws = doubles(weight), bs = doubles(bias)
        return (0..<rows).flatMap { r in
            let row = Array(xs[r * width..<(r + 1) * width])
            let mean = row.reduce(0, +) / Double(width)
            let variance = row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(width)
            let inverse = 1 / (variance + Double(epsilon)).squareRoot()
            return (0..<width).map { (row[$0] - mean) * inverse * ws[$0] + bs[$0] }
        }
    }

    func testLayerNormMatchesFloat64ReferenceAtAnyWidth() throws {
        var rng = SeededGenerator(seed: 46)
        // InternViT's patch width 1176 (a multiple of nothing useful), a wide row, and one row of 1.
        for (rows, width) in [(13, 1176), (3, 4100), (2, 1)] {
            let x = rng.tensor([rows, width], in: -3...3)
            let weight = rng.tensor([width], dtype: .bf16, in: 0.5...1.5)
            let bias = rng.tensor([width], dtype: .f16, in: -0.5...0.5)
            let out = try backend.layerNorm(x, weight: weight, bias: bias, epsilon: 1e-6)
            XCTAssertEqual(out.dtype, .f32)
            XCTAssertEqual(out.shape, x.shape)
            assertClose(
                out.floats(), layerNormReference(x, weight, bias, epsilon: 1e-6), tolerance: 5e-6,
                "layerNorm [\(rows), \(width)]")
        }
    }

    func testLayerNormKeepsAccuracyFarFromZeroMeanAndKeepsBF16() throws {
        var rng = SeededGenerator(seed: 47)
        let width = 1176
        let weight = rng.tensor([width], in: 0.5...1.5), bias = rng.tensor([width], in: -0.5...0.5)
        // Rows around 100 with spread 1: E[x^2] - mean^2 in fp32 would lose about 1% of the variance here.
        let offset = rng.tensor([4, width], in: 99...101)
        assertClose(
            try backend.layerNorm(offset, weight: weight, bias: bias, epsilon: 1e-5).floats(),
            layerNormReference(offset, weight, bias, epsilon: 1e-5), tolerance: 1e-4, "layerNorm offset rows")

        // bf16 activations come back as bf16, one rounding of the fp32 result.
        let x = rng.tensor([5, width], dtype: .bf16, in: -2...2)
        let out = try backend.layerNorm(x, weight: weight, bias: bias, epsilon: 1e-5)
        XCTAssertEqual(out.dtype, .bf16)
        for (value, expected) in zip(out.floats(), layerNormReference(x, weight, bias, epsilon: 1e-5)) {
            XCTAssertLessThanOrEqual(abs(Double(value) - expected), abs(expected) / 128 + 1e-5)
        }
    }

    func testLayerNormRejectsMismatchedShapes() {
        let x = Tensor.zeros([3, 8], dtype: .f32), parameters = Tensor.zeros([8], dtype: .f32)
        assertThrowsBatonError(["layerNorm", "bias", "[8]", "[7]"]) {
            _ = try backend.layerNorm(x, weight: parameters, bias: Tensor.zeros([7], dtype: .f32), epsilon: 1e-6)
        }
        assertThrowsBatonError(["layerNorm", "weight", "[8]", "[9]"]) {
            _ = try backend.layerNorm(x, weight: Tensor.zeros([9], dtype: .f32), bias: parameters, epsilon: 1e-6)
        }
        assertThrowsBatonError(["layerNorm", "x", "[N, C]"]) {
            _ = try backend.layerNorm(
                Tensor.zeros([3, 2, 4], dtype: .f32), weight: parameters, bias: parameters, epsilon: 1e-6)
        }
        assertThrowsBatonError(["layerNorm", "bias", "i32"]) {
            _ = try backend.layerNorm(
                x, weight: parameters, bias: Tensor(int32: Array(repeating: 0, count: 8)), epsilon: 1e-6)
        }
    }

    func testRotaryMatchesRotateHalfReference() throws {
        var rng = SeededGenerator(seed: 42)
        let (tokens, heads, dim) = (6, 3, 16)
        let x = rng.tensor([tokens, heads, dim], dtype: .bf16)
        let positions: [Int32] = [0, 1, 7, 1000, 65_537, 131_071]
        let inverseFrequencies = (0..<dim / 2).map { Float(pow(500_000.0, -Double(2 * $0) / Double(dim))) }
        let out = try backend.rotary(
            x, positions: Tensor(int32: positions), inverseFrequencies: Tensor(inverseFrequencies, shape: [dim / 2]))
        let xs = doubles(x)
        var expected = [Double](repeating: 0, count: xs.count)
        for t in 0..<tokens {
            for h in 0..<heads {
                let base = (t * heads + h) * dim
                for i in 0..<dim / 2 {
                    let angle = Double(Float(positions[t]) * inverseFrequencies[i])  // fp32 product, as HF
                    let (first, second) = (xs[base + i], xs[base + dim / 2 + i])
                    expected[base + i] = first * cos(angle) - second * sin(angle)
                    expected[base + dim / 2 + i] = second * cos(angle) + first * sin(angle)
                }
            }
        }
        assertClose(out.floats(), expected, tolerance: fp32Tolerance(terms: 4), "rotary")
        assertThrowsBatonError(["rotary", "inverseFrequencies", "[8]", "[7]"]) {
            _ = try backend.rotary(
                x, positions: Tensor(int32: positions), inverseFrequencies: Tensor.zeros([7], dtype: .f32))
        }
        assertThrowsBatonError(["rotary", "positions", "[6]", "[5]"]) {
            _ = try backend.rotary(
                x, positions: Tensor(int32: [1, 2, 3, 4, 5]), inverseFrequencies: Tensor(inverseFrequencies, shape: [8])
            )
        }
    }

    func testRotaryQKVSplitsColumnsAndRotatesQueryAndKey() throws {
        let (tokens, heads, kvHeads, dim) = (3, 2, 1, 8)
        let width = (heads + 2 * kvHeads) * dim
        let values = (0..<tokens * width).map { Float(($0 * 37) % 23) / 7 - 1.5 }
        let qkv = Tensor(values, shape: [tokens, width])
        let positions: [Int32] = [0, 5, 130_000]
        let inverseFrequencies = Tensor(
            (0..<dim / 2).map { Float(pow(10_000.0, -2.0 * Double($0) / Double(dim))) },
            shape: [dim / 2])
        func block(_ first: Int, _ count: Int, heads: Int) -> Tensor {
            Tensor(
                (0..<tokens).flatMap { values[$0 * width + first..<$0 * width + first + count] },
                shape: [tokens, heads, dim])
        }
        let (query, key, value) = try backend.rotaryQKV(
            qkv, heads: heads, kvHeads: kvHeads, positions: Tensor(int32: positions),
            inverseFrequencies: inverseFrequencies)
        let expectedQuery = try backend.rotary(
            block(0, heads * dim, heads: heads), positions: Tensor(int32: positions),
            inverseFrequencies: inverseFrequencies)
        let expectedKey = try backend.rotary(
            block(heads * dim, kvHeads * dim, heads: kvHeads), positions: Tensor(int32: positions),
            inverseFrequencies: inverseFrequencies)
        XCTAssertEqual(query.shape, [tokens, heads, dim])
        XCTAssertEqual(query.floats(), expectedQuery.floats())
        XCTAssertEqual(key.floats(), expectedKey.floats())
        XCTAssertEqual(value.floats(), block((heads + kvHeads) * dim, kvHeads * dim, heads: kvHeads).floats())
        XCTAssertNotEqual(
            key.floats(), block(heads * dim, kvHeads * dim, heads: kvHeads).floats(), "the key was rotated")
        assertThrowsBatonError(["rotaryQKV", "split"]) {
            _ = try backend.rotaryQKV(
                qkv, heads: 3, kvHeads: 1, positions: Tensor(int32: positions),
                inverseFrequencies: inverseFrequencies)
        }
    }

    func testSiluAndSiluMultiplyMatchReference() throws {
        var rng = SeededGenerator(seed: 43)
        let values = rng.floats(40_000, in: -8...8) + [-100, 100, 0, -0.0, 88.8, -88.8]
        let gate = Tensor(values, shape: [values.count]), up = rng.tensor([values.count], dtype: .bf16, in: -2...2)
        let silu = values.map { Double($0) / (1 + exp(-Double($0))) }
        assertClose(try backend.silu(gate).floats(), silu, tolerance: fp32Tolerance(terms: 4, magnitude: 100), "silu")
        let product = zip(silu, doubles(up)).map { $0 * $1 }
        assertClose(
            try backend.siluMultiply(gate: gate, up: up).floats(), product,
            tolerance: fp32Tolerance(terms: 4, magnitude: 200),
            "siluMultiply")
        assertThrowsBatonError(["siluMultiply", "gate", "up", "same shape"]) {
            _ = try backend.siluMultiply(gate: Tensor.zeros([2, 3], dtype: .f32), up: Tensor.zeros([3, 2], dtype: .f32))
        }
    }

    func testSiluMultiplyHalvesEqualsSiluMultiplyOfTheHalves() throws {
        var rng = SeededGenerator(seed: 45)
        let (rows, half) = (7, 33)
        for dtype in [DType.f32, .bf16] {
            let x = rng.tensor([rows, 2 * half], dtype: dtype, in: -8...8)
            let values = x.floats()
            var gate: [Float] = [], up: [Float] = []
            for r in 0..<rows {
                gate += values[r * 2 * half..<r * 2 * half + half]
                up += values[r * 2 * half + half..<(r + 1) * 2 * half]
            }
            let expected = try backend.siluMultiply(
                gate: Tensor(gate, shape: [rows, half]), up: Tensor(up, shape: [rows, half]))
            let out = try backend.siluMultiplyHalves(x)
            XCTAssertEqual(out.shape, [rows, half])
            XCTAssertEqual(out.floats(), expected.floats(), "siluMultiplyHalves \(dtype)")
        }
        assertThrowsBatonError(["siluMultiplyHalves", "even"]) {
            _ = try backend.siluMultiplyHalves(Tensor.zeros([2, 3], dtype: .f32))
        }
    }

    func testAddIsExactForMixedDtypes() throws {
        var rng = SeededGenerator(seed: 44)
        let a = rng.tensor([70, 1000]), b = rng.tensor([70, 1000], dtype: .bf16)
        let sum = try backend.add(a, b)
        XCTAssertEqual(sum.floats(), zip(a.floats(), b.floats()).map { $0 + $1 })
        assertThrowsBatonError(["add", "[70, 1000]", "[1000, 70]"]) { _ = try backend.add(a, a.reshaped(1000, 70)) }
    }

    func testConcatRowsAndColumnsKeepOrderAndDtype() throws {
        let a = Tensor([1, 2, 3, 4], shape: [2, 2], dtype: .bf16), b = Tensor([5, 6], shape: [1, 2], dtype: .bf16)
        let rows = try backend.concatRows([a, b])
        XCTAssertEqual(rows.shape, [3, 2])
        XCTAssertEqual(rows.dtype, .bf16)
        XCTAssertEqual(rows.floats(), [1, 2, 3, 4, 5, 6])
        let ids = try backend.concatRows([Tensor(int32: [1, 2]), Tensor(int32: []), Tensor(int32: [3])])
        XCTAssertEqual(ids.int32s(), [1, 2, 3])

        let c = Tensor([7, 8, 9, 10, 11, 12], shape: [2, 3], dtype: .bf16)
        let columns = try backend.concatColumns([a, c])
        XCTAssertEqual(columns.shape, [2, 5])
        XCTAssertEqual(columns.floats(), [1, 2, 7, 8, 9, 3, 4, 10, 11, 12])

        assertThrowsBatonError(["concatRows", "part 1", "[n, 2]"]) { _ = try backend.concatRows([a, c]) }
        assertThrowsBatonError(["concatRows", "part 1", "f32"]) {
            _ = try backend.concatRows([a, Tensor([1, 2], shape: [1, 2])])
        }
        assertThrowsBatonError(["concatColumns", "part 1", "1 rows"]) { _ = try backend.concatColumns([a, b]) }
    }
}
