import BatonTensor
import XCTest
@testable import BatonCPU

final class MatmulTests: XCTestCase {
    let backend = CPUBackend()

    /// y[m, n] = sum_k x[m, k] w[n, k] + bias[n], in fp64.
    private func reference(_ x: Tensor, _ w: Tensor, _ bias: Tensor?) -> [Double] {
        let (m, k, n) = (x.shape[0], x.shape[1], w.shape[0])
        let xs = doubles(x), ws = doubles(w), bs = bias.map(doubles)
        var y = [Double](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var sum = bs?[j] ?? 0
                for p in 0..<k { sum += xs[i * k + p] * ws[j * k + p] }
                y[i * n + j] = sum
            }
        }
        return y
    }

    func testMatmulMatchesFloat64ReferenceAcrossSplits() throws {
        var rng = SeededGenerator(seed: 2)
        // Shapes: one sgemm; split over output columns; split over rows; a ragged tiny one.
        for (m, n, k) in [(1, 300, 200), (33, 257, 129), (300, 20, 64), (3, 1, 1)] {
            let x = rng.tensor([m, k]), w = rng.tensor([n, k])
            let y = try backend.matmul(x, weight: w, bias: nil)
            XCTAssertEqual(y.shape, [m, n])
            XCTAssertEqual(y.dtype, .f32)
            assertClose(
                y.floats(), reference(x, w, nil), tolerance: fp32Tolerance(terms: k), "matmul \(m)x\(k) @ \(n)x\(k)")
        }
    }

    func testMatmulAddIsAddOfResidualAndMatmulExactly() throws {
        var rng = SeededGenerator(seed: 5)
        let x = rng.tensor([9, 40]), w = rng.tensor([13, 40]), bias = rng.tensor([13]), residual = rng.tensor([9, 13])
        let fused = try backend.matmulAdd(x, weight: w, bias: bias, residual: residual)
        let separate = try backend.add(residual, backend.matmul(x, weight: w, bias: bias))
        XCTAssertEqual(fused.shape, [9, 13])
        XCTAssertEqual(fused.floats(), separate.floats())
    }

    func testMatmulAccumulateAddsIntoARowBlockInPlace() throws {
        var rng = SeededGenerator(seed: 6)
        let x = rng.tensor([4, 40]), w = rng.tensor([13, 40]), bias = rng.tensor([13]), stream = rng.tensor([9, 13])
        let before = stream.floats()
        let expected = try backend.matmulAdd(x, weight: w, bias: bias, residual: stream.rows(3..<7)).floats()
        try backend.matmulAccumulate(x, weight: w, bias: bias, into: stream.rows(3..<7))
        let after = stream.floats()
        XCTAssertEqual(Array(after[(3 * 13)..<(7 * 13)]), expected)
        XCTAssertEqual(Array(after[..<(3 * 13)]), Array(before[..<(3 * 13)]), "rows before the block changed")
        XCTAssertEqual(Array(after[(7 * 13)...]), Array(before[(7 * 13)...]), "rows after the block changed")
    }

    func testMatmulWithBiasAddsBiasPerColumn() throws {
        var rng = SeededGenerator(seed: 3)
        for (m, n, k) in [(4, 7, 5), (40, 300, 64)] {
            let x = rng.tensor([m, k]), w = rng.tensor([n, k]), bias = rng.tensor([n], dtype: .bf16)
            let y = try backend.matmul(x, weight: w, bias: bias)
            assertClose(
                y.floats(), reference(x, w, bias), tolerance: fp32Tolerance(terms: k + 1), "matmul+bias \(m)x\(n)")
        }
        // K = 0: the product is empty, the result is the bias.
        let y = try backend.matmul(
            Tensor.zeros([2, 0], dtype: .f32), weight: Tensor.zeros([3, 0], dtype: .f32),
            bias: Tensor([1, 2, 3], shape: [3]))
        XCTAssertEqual(y.floats(), [1, 2, 3, 1, 2, 3])
    }

    func testBF16AndF16WeightsEqualConvertingFirst() throws {
        var rng = SeededGenerator(seed: 4)
        let x = rng.tensor([5, 96])
        for dtype in [DType.bf16, .f16] {
            let w = rng.tensor([130, 96], dtype: dtype)
            let direct = try backend.matmul(x, weight: w, bias: nil)
            let converted = try backend.matmul(x, weight: backend.cast(w, to: .f32), bias: nil)
            XCTAssertEqual(direct.floats(), converted.floats(), "\(dtype) weight")
            // bf16 activations are accepted too and mean their exact values.
            let xHalf = try backend.cast(x, to: dtype)
            let fromHalf = try backend.matmul(xHalf, weight: w, bias: nil)
            let fromWidened = try backend.matmul(backend.cast(xHalf, to: .f32), weight: w, bias: nil)
            XCTAssertEqual(fromHalf.floats(), fromWidened.floats(), "\(dtype) activations")
        }
    }

    func testBF16WeightIsConvertedOnceAndReusedAcrossDecodeSteps() throws {
        var rng = SeededGenerator(seed: 5)
        let backend = CPUBackend(weightCacheBytes: 64 << 20)  // a private cache: counts only this test's weights
        let x = rng.tensor([1, 512]), w = rng.tensor([2048, 512], dtype: .bf16)
        let first = try backend.matmul(x, weight: w, bias: nil)
        XCTAssertEqual(backend.weightConversionCount, 1)
        let second = try backend.matmul(x, weight: w, bias: nil)
        XCTAssertEqual(backend.weightConversionCount, 1, "the second call must reuse the converted weight")
        XCTAssertEqual(first.floats(), second.floats())
        XCTAssertEqual(backend.weightCacheBytesHeld, 2048 * 512 * 4)

        // A different view of the same storage is a different weight.
        _ = try backend.matmul(x, weight: w.rows(0..<1024), bias: nil)
        XCTAssertEqual(backend.weightConversionCount, 2)

        // Writing into the weight through the backend drops its cached copy.
        let replacement = try backend.cast(backend.add(w, w), to: .bf16)  // 2w: exact in bf16
        try backend.copy(replacement, into: w)
        let updated = try backend.matmul(x, weight: w, bias: nil)
        XCTAssertEqual(backend.weightConversionCount, 3)
        XCTAssertEqual(
            updated.floats(), try backend.matmul(x, weight: backend.cast(replacement, to: .f32), bias: nil).floats())
    }

    func testBackendsWithDefaultCacheShareConvertedWeights() throws {
        var rng = SeededGenerator(seed: 7)
        let x = rng.tensor([1, 64]), w = rng.tensor([64, 64], dtype: .bf16)
        let rank0 = CPUBackend(), rank1 = CPUBackend()
        XCTAssertTrue(rank0.weightCache === rank1.weightCache)
        _ = try rank0.matmul(x, weight: w, bias: nil)
        let before = rank1.weightConversionCount
        _ = try rank1.matmul(x, weight: w, bias: nil)
        XCTAssertEqual(rank1.weightConversionCount, before, "rank 1 reuses rank 0's conversion")
    }

    func testFullWeightCacheKeepsItsWeightsAndConvertsOthersBlockByBlock() throws {
        var rng = SeededGenerator(seed: 6)
        let backend = CPUBackend(weightCacheBytes: 6 * 1024)
        let x = rng.tensor([2, 32])
        let weights = (0..<3).map { _ in rng.tensor([32, 32], dtype: .bf16) }  // 4 KiB each as fp32
        for w in weights { _ = try backend.matmul(x, weight: w, bias: nil) }
        XCTAssertEqual(
            backend.weightCacheBytesHeld, 4 * 1024, "only the first weight fits; live copies are never evicted")
        XCTAssertEqual(backend.weightConversionCount, 1)
        _ = try backend.matmul(x, weight: weights[0], bias: nil)
        XCTAssertEqual(backend.weightConversionCount, 1, "the cached weight is reused")

        // Uncached weights give the same products as converting first, for one row and many,
        // also when a core's rows span several conversion blocks (16 rows a block for one row of x
        // at K = 4096, 128 rows for several rows at K = 8192).
        let uncached = CPUBackend(weightCacheBytes: 0)
        for (m, n, k) in [(1, 100, 4096), (3, 300, 8192), (5, 33, 32)] {
            let x = rng.tensor([m, k]), w = rng.tensor([n, k], dtype: .bf16), bias = rng.tensor([n])
            let streamed = try uncached.matmul(x, weight: w, bias: bias)
            let converted = try uncached.matmul(x, weight: uncached.cast(w, to: .f32), bias: bias)
            // Blocks change how BLAS tiles the product, not the sums: equal to fp32 round-off.
            assertClose(
                streamed.floats(), doubles(converted), tolerance: fp32Tolerance(terms: k),
                "block-converted \(m)x\(k) @ \(n)x\(k)")
        }
        XCTAssertEqual(uncached.weightCacheBytesHeld, 0)
        XCTAssertEqual(uncached.weightConversionCount, 0)

        // A dropped weight's copy is stale and makes room for the next one.
        let roomy = CPUBackend(weightCacheBytes: 4 * 1024)
        do {
            let temporary = rng.tensor([32, 32], dtype: .bf16)
            _ = try roomy.matmul(x, weight: temporary, bias: nil)
        }
        _ = try roomy.matmul(x, weight: weights[1], bias: nil)
        XCTAssertEqual(roomy.weightConversionCount, 2)
        XCTAssertEqual(roomy.weightCacheBytesHeld, 4 * 1024)
        _ = try roomy.matmul(x, weight: weights[1], bias: nil)
        XCTAssertEqual(roomy.weightConversionCount, 2, "the new weight took the dropped one's room")
    }

    func testMatmulRejectsBadShapesAndDtypes() {
        let x = Tensor.zeros([2, 4], dtype: .f32)
        assertThrowsBatonError(["matmul", "weight", "[N, 4]", "[3, 5]"]) {
            _ = try backend.matmul(x, weight: Tensor.zeros([3, 5], dtype: .f32), bias: nil)
        }
        assertThrowsBatonError(["matmul", "bias", "[3]", "[4]"]) {
            _ = try backend.matmul(x, weight: Tensor.zeros([3, 4], dtype: .f32), bias: Tensor.zeros([4], dtype: .f32))
        }
        assertThrowsBatonError(["matmul", "x", "[M, K]", "[2, 2, 2]"]) {
            _ = try backend.matmul(
                Tensor.zeros([2, 2, 2], dtype: .f32), weight: Tensor.zeros([3, 2], dtype: .f32), bias: nil)
        }
        assertThrowsBatonError(["matmul", "x", "i32"]) {
            _ = try backend.matmul(
                Tensor.zeros([2, 4], dtype: .i32), weight: Tensor.zeros([3, 4], dtype: .f32), bias: nil)
        }
    }
}
