import BatonTensor
import XCTest
@testable import BatonCPU

/// The two ways `BLAS` computes a product: the built-in GEMM against a float64 reference over
/// ragged shapes, and a CBLAS found on this machine against the built-in GEMM.
final class BLASTests: XCTestCase {
    /// One product's inputs, with leading dimensions wider than the matrices (as attention's
    /// strided key/value views are), and C prefilled so beta's effect shows.
    private struct Problem {
        let m: Int, n: Int, k: Int, transposeB: Bool, alpha: Float, beta: Float
        let lda: Int, ldb: Int, ldc: Int
        let a: [Float], b: [Float], c: [Float]

        init(
            _ m: Int, _ n: Int, _ k: Int, transposeB: Bool, alpha: Float = 1, beta: Float = 0,
            padding: Int = 0, rng: inout SeededGenerator
        ) {
            (self.m, self.n, self.k, self.transposeB, self.alpha, self.beta) = (m, n, k, transposeB, alpha, beta)
            (lda, ldb, ldc) = (k + padding, (transposeB ? k : n) + padding, n + padding)
            a = rng.floats(max(m * lda, 1))
            b = rng.floats(max((transposeB ? n : k) * ldb, 1))
            // beta == 0 must not read C: NaN there would leak into the result if it did.
            c = beta == 0 ? [Float](repeating: .nan, count: max(m * ldc, 1)) : rng.floats(max(m * ldc, 1))
        }

        var label: String { "\(m)x\(n)x\(k) transB \(transposeB) alpha \(alpha) beta \(beta) ld \(lda)/\(ldb)/\(ldc)" }

        /// C's m x n entries from `blas`.
        func run(_ blas: BLAS) -> [Float] {
            var out = c
            a.withUnsafeBufferPointer { a in
                b.withUnsafeBufferPointer { b in
                    out.withUnsafeMutableBufferPointer { c in
                        blas.gemm(
                            transposeB: transposeB, m: m, n: n, k: k, alpha: alpha, a: a.baseAddress!, lda: lda,
                            b: b.baseAddress!, ldb: ldb, beta: beta, c: c.baseAddress!, ldc: ldc)
                    }
                }
            }
            return (0..<m).flatMap { i in out[(i * ldc)..<(i * ldc + n)] }
        }

        /// alpha A op(B) + beta C in float64.
        func reference() -> [Double] {
            var result = [Double]()
            for i in 0..<m {
                for j in 0..<n {
                    var sum = 0.0
                    for p in 0..<k {
                        let bValue = transposeB ? b[j * ldb + p] : b[p * ldb + j]
                        sum += Double(a[i * lda + p]) * Double(bValue)
                    }
                    result.append(Double(alpha) * sum + (beta == 0 ? 0 : Double(beta) * Double(c[i * ldc + j])))
                }
            }
            return result
        }
    }

    /// Ragged shapes around the built-in GEMM's 6 x 8 tile, 96-row and 256-deep blocks, plus
    /// m = 1, k = 0 and k = 1.
    private func problems() -> [Problem] {
        var rng = SeededGenerator(seed: 11)
        var list = [Problem]()
        let shapes = [
            (1, 1, 1), (1, 37, 19), (5, 7, 3), (6, 8, 256), (7, 9, 257), (13, 17, 0), (97, 33, 300),
            (3, 200, 1), (100, 9, 513), (40, 129, 64)
        ]
        for (index, (m, n, k)) in shapes.enumerated() {
            for transposeB in [true, false] {
                let (alpha, beta): (Float, Float) = [(1, 0), (0.5, 1), (-2, 0.25)][index % 3]
                list.append(
                    Problem(
                        m, n, k, transposeB: transposeB, alpha: alpha, beta: beta,
                        padding: index % 2 == 0 ? 0 : 3, rng: &rng))
            }
        }
        return list
    }

    func testBuiltinGEMMMatchesFloat64ReferenceOverRaggedShapes() {
        for problem in problems() {
            let tolerance = fp32Tolerance(terms: problem.k + 1, magnitude: 2)
            assertClose(
                problem.run(.builtin), problem.reference(), tolerance: tolerance, "builtin gemm \(problem.label)")
        }
    }

    func testBuiltinGEMVMatchesFloat64ReferenceWithStridedOutputAndBeta() {
        var rng = SeededGenerator(seed: 12)
        for (m, n, incY, beta) in [(1, 1, 1, Float(0)), (3, 7, 2, 0.5), (37, 300, 1, 0), (9, 16, 4, 1), (5, 0, 1, 0.5)]
        {
            let lda = n + 1
            let a = rng.floats(m * lda), x = rng.floats(max(n, 1))
            let start = beta == 0 ? [Float](repeating: .nan, count: m * incY) : rng.floats(m * incY)
            var y = start
            a.withUnsafeBufferPointer { a in
                x.withUnsafeBufferPointer { x in
                    y.withUnsafeMutableBufferPointer { y in
                        BLAS.builtin.gemv(
                            m: m, n: n, alpha: 1.5, a: a.baseAddress!, lda: lda, x: x.baseAddress!,
                            beta: beta, y: y.baseAddress!, incY: incY)
                    }
                }
            }
            let expected = (0..<m).map { i in
                1.5 * (0..<n).reduce(0.0) { $0 + Double(a[i * lda + $1]) * Double(x[$1]) }
                    + (beta == 0 ? 0 : Double(beta) * Double(start[i * incY]))
            }
            let actual = (0..<m).map { y[$0 * incY] }
            assertClose(
                actual, expected, tolerance: fp32Tolerance(terms: n + 1, magnitude: 2),
                "builtin gemv \(m)x\(n) incY \(incY)")
            for i in 0..<m * incY where i % incY != 0 {
                XCTAssertEqual(y[i].bitPattern, start[i].bitPattern, "gemv wrote between strided outputs at \(i)")
            }
        }
    }

    func testInstalledCBLASEqualsBuiltinGEMM() throws {
        let found = BLAS.searchOrder.lazy.compactMap { try? BLAS.load($0).get() }.first
        guard let library = found else {
            throw XCTSkip("no CBLAS library installed (the built-in GEMM is all there is)")
        }
        for problem in problems() {
            let tolerance = fp32Tolerance(terms: problem.k + 1, magnitude: 2)
            assertClose(
                problem.run(library), problem.run(.builtin).map(Double.init), tolerance: tolerance,
                "\(library.name) vs builtin \(problem.label)")
        }
    }

    func testBatonBLASBuiltinAndBadPathChooseTheBuiltinGEMMAndSaySo() {
        XCTAssertTrue(BLAS.choose(override: "builtin").blas.isBuiltin)
        let bad = BLAS.choose(override: "/nonexistent/libcblas.so")
        XCTAssertTrue(bad.blas.isBuiltin)
        XCTAssertTrue(bad.announcement.contains("BATON_BLAS=/nonexistent/libcblas.so did not load"), bad.announcement)
    }
}
