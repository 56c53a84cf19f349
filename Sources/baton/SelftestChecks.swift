import BatonCUDA
import BatonTensor
import Foundation

/// The op-by-op checks of `baton selftest`. Each row: op, case, ‖device − reference‖ / ‖reference‖,
/// tolerance (0 for exact ops, 1e-2 for bf16 outputs, 1e-4 for fp32 outputs and lse).
final class OpChecks {
    struct Row { let op: String; let label: String; let error: Double; let tolerance: Double; let note: String }

    let backend: CUDABackend
    var random: Reference.Random
    var rows: [Row] = []
    var failures: Int { rows.filter { !Self.passes($0) }.count }
    static let bf16Tolerance = 1e-2, f32Tolerance = 1e-4

    init(backend: CUDABackend, seed: UInt64) {
        self.backend = backend
        self.random = Reference.Random(state: seed)
        backend.poisonAllocations = true
        backend.synchronizeAfterLaunch = true
    }

    static func passes(_ row: Row) -> Bool { !row.error.isNaN && row.error <= row.tolerance }

    func record(_ op: String, _ label: String, _ error: Double, _ tolerance: Double, note: String = "") {
        rows.append(Row(op: op, label: label, error: error, tolerance: tolerance, note: note))
    }

    /// Runs `body`; a thrown error is a failed row, and the remaining checks still run.
    func check(_ op: String, _ label: String, _ body: () throws -> Void) {
        do { try body() } catch { record(op, label, .nan, 0, note: "\(error)") }
    }

    /// Random values (uniform in ±scale around `offset`) rounded to `dtype`, and the same values uploaded.
    func input(_ shape: Shape, _ dtype: DType = .bf16, scale: Double = 1, offset: Double = 0) throws -> (
        [Float], Tensor
    ) {
        let values = Reference.rounded(
            random.values(shape.elementCount, scale: scale).map { $0 + Float(offset) }, dtype)
        return (values, try backend.upload(Tensor(values, shape: shape, dtype: dtype)))
    }

    func printTable() {
        print("op                   case                                             rel.error   tolerance  result")
        for row in rows {
            let result = Self.passes(row) ? "pass" : "FAIL"
            let op = row.op.padding(toLength: 20, withPad: " ", startingAt: 0)
            let label = row.label.padding(toLength: 48, withPad: " ", startingAt: 0)
            print(
                String(format: "%@ %@ %10.3e %10.1e  %@", op, label, row.error, row.tolerance, result)
                    + (row.note.isEmpty ? "" : "  \(row.note)"))
        }
    }

    func runAll() {
        checkMemoryAndCasts()
        checkElementwise()
        checkMatmul()
        checkNormAndRotary()
        checkSelection()
        checkAttention()
        checkMerge()
        checkVision()
    }

    func checkMemoryAndCasts() {
        check("zeros", "[37, 5] f32") {
            let z = try backend.floats(try backend.zeros(Shape([37, 5]), dtype: .f32))
            record("zeros", "[37, 5] f32", Reference.relativeError(z, Array(repeating: 0, count: 185)), 0)
        }
        for (from, to) in [(DType.f32, DType.bf16), (.bf16, .f32), (.f32, .f16), (.f16, .f32)] {
            check("cast", "\(from) -> \(to)") {
                let (x, t) = try input(Shape([1001]), from, scale: 10)
                let y = try backend.floats(try backend.cast(t, to: to))
                record(
                    "cast", "[1001] \(from) -> \(to)",
                    Reference.relativeError(y, Reference.rounded(x, to).map(Double.init)), 0)
            }
        }
        check("copy", "into a row view") {
            let (x, t) = try input(Shape([3, 4, 8]))
            let destination = try backend.zeros(Shape([10, 4, 8]), dtype: .bf16)
            try backend.copy(t, into: destination.rows(5..<8))
            let y = try backend.floats(destination)
            var expected = [Double](repeating: 0, count: 320)
            for i in 0..<96 { expected[160 + i] = Double(x[i]) }
            record("copy", "[3,4,8] into rows 5..<8 of [10,4,8]", Reference.relativeError(y, expected), 0)
        }
        check("concatRows", "3 parts") {
            let parts = try [3, 1, 6].map { try input(Shape([$0, 2, 5])) }
            let y = try backend.floats(try backend.concatRows(parts.map(\.1)))
            record(
                "concatRows", "[3|1|6, 2, 5]", Reference.relativeError(y, parts.flatMap { $0.0 }.map(Double.init)), 0)
        }
        check("concatColumns", "3 parts") {
            let widths = [3, 7, 1]
            let parts = try widths.map { try input(Shape([5, $0])) }
            let y = try backend.floats(try backend.concatColumns(parts.map(\.1)))
            var expected: [Double] = []
            for t in 0..<5 {
                for (p, w) in widths.enumerated() { expected += parts[p].0[t * w..<(t + 1) * w].map(Double.init) }
            }
            record("concatColumns", "[5, 3|7|1]", Reference.relativeError(y, expected), 0)
        }
    }

    func checkElementwise() {
        check("add", "[33, 65]") {
            let (a, ta) = try input(Shape([33, 65])), (b, tb) = try input(Shape([33, 65]))
            let y = try backend.floats(try backend.add(ta, tb))
            record(
                "add", "[33, 65] bf16", Reference.relativeError(y, zip(a, b).map { Double($0) + Double($1) }),
                Self.bf16Tolerance)
        }
        func silu(_ x: Float) -> Double { Double(x) / (1 + exp(-Double(x))) }
        check("silu", "[1000]") {
            let (x, t) = try input(Shape([1000]), scale: 6)
            let y = try backend.floats(try backend.silu(t))
            record("silu", "[1000] bf16", Reference.relativeError(y, x.map(silu)), Self.bf16Tolerance)
        }
        check("siluMultiply", "[17, 301]") {
            let (g, tg) = try input(Shape([17, 301]), scale: 6), (u, tu) = try input(Shape([17, 301]))
            let y = try backend.floats(try backend.siluMultiply(gate: tg, up: tu))
            record(
                "siluMultiply", "[17, 301] bf16", Reference.relativeError(y, zip(g, u).map { silu($0) * Double($1) }),
                Self.bf16Tolerance)
        }
        // [17, 2x301]: the scalar kernel; [9, 2x64] bf16: 8 per thread; f32 input: the scalar kernel.
        for (M, F, dtype) in [(17, 301, DType.bf16), (9, 64, .bf16), (6, 40, .f32)] {
            let label = "[\(M), 2x\(F)] \(dtype)"
            check("siluMultiplyHalves", label) {
                let (x, tx) = try input(Shape([M, 2 * F]), dtype, scale: 6)
                let y = try backend.floats(try backend.siluMultiplyHalves(tx))
                var expected: [Double] = []
                for r in 0..<M {
                    for c in 0..<F { expected.append(silu(x[r * 2 * F + c]) * Double(x[r * 2 * F + F + c])) }
                }
                record("siluMultiplyHalves", label, Reference.relativeError(y, expected), Self.bf16Tolerance)
            }
        }
        for dtype in [DType.f32, .bf16] {
            check("embedding", "\(dtype) table") {
                let (table, tt) = try input(Shape([50, 24]), dtype)
                let ids: [Int32] = [0, 49, 7, 7, 23, 1, 48]
                let y = try backend.floats(try backend.embedding(table: tt, ids: try backend.int32Tensor(ids)))
                let expected = ids.flatMap { table[Int($0) * 24..<(Int($0) + 1) * 24] }.map(Double.init)
                record(
                    "embedding", "table [50, 24] \(dtype), 7 ids", Reference.relativeError(y, expected),
                    Self.bf16Tolerance)
            }
        }
        check("argmax", "[4, 3001]") {
            var (values, _) = try input(Shape([4, 3001]), .f32)
            let planted = [0, 3000, 1234, 77]
            for (r, c) in planted.enumerated() { values[r * 3001 + c] = 5 }
            values[3 * 3001 + 2000] = 5  // a tie: the lower index wins
            let ids = try backend.argmax(try backend.upload(Tensor(values, shape: Shape([4, 3001]))))
            record(
                "argmax", "[4, 3001] f32 (planted, tie)", ids.map(Int.init) == planted ? 0 : 1, 0,
                note: ids.map(Int.init) == planted ? "" : "got \(ids)")
        }
    }

    func checkMatmul() {
        for (M, K, N, wType, bias) in [
            (1, 64, 32, DType.bf16, false), (37, 96, 130, .f32, true), (256, 512, 384, .bf16, true),
            (5, 2048, 4096, .bf16, false)
        ] {
            // A bias of the weight's type: bf16 rides in cuBLASLt's epilogue, f32 takes the bias kernel.
            let label = "M \(M) K \(K) N \(N) W \(wType)\(bias ? " +bias" : "")"
            check("matmul", label) {
                let (x, tx) = try input(Shape([M, K]))
                let (w, tw) = try input(Shape([N, K]), wType, scale: 0.1)
                let b = bias ? try input(Shape([N]), wType) : nil
                let y = try backend.floats(try backend.matmul(tx, weight: tw, bias: b?.1))
                let wUsed = Reference.rounded(w, .bf16)  // the GEMM runs in bf16
                record(
                    "matmul", label,
                    Reference.relativeError(y, Reference.matmul(x: x, w: wUsed, bias: b?.0, M: M, K: K, N: N)),
                    Self.bf16Tolerance)
            }
        }
        // The residual is cuBLASLt's C (beta 1), a bf16 bias its epilogue; the larger shapes go through autotuning.
        for (M, K, N, bias) in [
            (3, 64, 32, false), (37, 96, 130, true), (300, 512, 384, false), (1024, 1024, 768, false)
        ] {
            let label = "M \(M) K \(K) N \(N)\(bias ? " +bias" : "") +residual"
            check("matmulAdd", label) {
                let (x, tx) = try input(Shape([M, K]))
                let (w, tw) = try input(Shape([N, K]), .bf16, scale: 0.1)
                let (r, tr) = try input(Shape([M, N]))
                let b = bias ? try input(Shape([N])) : nil
                let y = try backend.floats(try backend.matmulAdd(tx, weight: tw, bias: b?.1, residual: tr))
                let product = Reference.matmul(x: x, w: w, bias: b?.0, M: M, K: K, N: N)
                record(
                    "matmulAdd", label, Reference.relativeError(y, zip(product, r).map { $0 + Double($1) }),
                    Self.bf16Tolerance)
            }
            // In place (C = D) into rows 1..<M+1 of a taller stream: the rows around it must stay as they were.
            check("matmulAccumulate", label) {
                let (x, tx) = try input(Shape([M, K]))
                let (w, tw) = try input(Shape([N, K]), .bf16, scale: 0.1)
                let (stream, tStream) = try input(Shape([M + 2, N]), backend.activationDType)
                let b = bias ? try input(Shape([N]), .f32) : nil
                try backend.matmulAccumulate(tx, weight: tw, bias: b?.1, into: tStream.rows(1..<(M + 1)))
                let y = try backend.floats(tStream)
                let product = Reference.matmul(x: x, w: w, bias: b?.0, M: M, K: K, N: N)
                let expected =
                    stream.prefix(N).map(Double.init) + zip(product, stream[N..<((M + 1) * N)]).map { $0 + Double($1) }
                    + stream.suffix(N).map(Double.init)
                record("matmulAccumulate", label, Reference.relativeError(y, expected), Self.bf16Tolerance)
            }
        }
    }

    func checkNormAndRotary() {
        for (M, D, wType) in [(5, 96, DType.f32), (33, 2048, .bf16)] {
            check("rmsNorm", "[\(M), \(D)]") {
                let (x, tx) = try input(Shape([M, D]), scale: 3)
                let (w, tw) = try input(Shape([D]), wType)
                let y = try backend.floats(try backend.rmsNorm(tx, weight: tw, epsilon: 1e-5))
                record(
                    "rmsNorm", "[\(M), \(D)] weight \(wType)",
                    Reference.relativeError(y, Reference.rmsNorm(x: x, w: w, M: M, D: D, epsilon: 1e-5)),
                    Self.bf16Tolerance)
            }
        }
        // InternViT's widths (1024, its 1176-wide patch rows, 4096 in the projector), one of no
        // useful factors, a row of 1; f32 rows far from zero mean (the variance must not cancel).
        for (M, D, xType, offset) in [
            (9, 1176, DType.bf16, 0.0), (33, 4096, .bf16, 0.0), (5, 1024, .f32, 0.0), (3, 4099, .f32, 100.0),
            (4, 1, .bf16, 0.0)
        ] {
            let label = "[\(M), \(D)] \(xType)" + (offset == 0 ? "" : " around \(Int(offset))")
            check("layerNorm", label) {
                let (x, tx) = try input(Shape([M, D]), xType, scale: 3, offset: offset)
                let (w, tw) = try input(Shape([D]), .bf16)
                let (b, tb) = try input(Shape([D]), .f32)
                let y = try backend.layerNorm(tx, weight: tw, bias: tb, epsilon: 1e-6)
                try require(y.dtype == xType, "layerNorm: output is \(y.dtype), x is \(xType)")
                record(
                    "layerNorm", label,
                    Reference.relativeError(
                        try backend.floats(y), Reference.layerNorm(x: x, w: w, b: b, M: M, D: D, epsilon: 1e-6)),
                    xType == .f32 ? Self.f32Tolerance : Self.bf16Tolerance)
            }
        }
        for (T, heads, d) in [(17, 3, 64), (9, 8, 128)] {
            check("rotary", "[\(T), \(heads), \(d)]") {
                let (x, tx) = try input(Shape([T, heads, d]))
                let positions = (0..<T).map { Int32($0 == T - 1 ? 131_000 : random.int(5000)) }
                let inverse = (0..<d / 2).map { Float(pow(500_000.0, -2.0 * Double($0) / Double(d))) }
                let y = try backend.floats(
                    try backend.rotary(
                        tx, positions: try backend.int32Tensor(positions),
                        inverseFrequencies: try backend.tensor(inverse, shape: Shape([d / 2]), dtype: .f32)))
                record(
                    "rotary", "[\(T), \(heads), \(d)] pos up to 131000",
                    Reference.relativeError(
                        y,
                        Reference.rotary(
                            x: x, positions: positions, inverseFrequencies: inverse,
                            T: T, heads: heads, d: d)), Self.bf16Tolerance)
            }
        }
        // The fused q/k/v split: each output against the reference on its column block.
        for (T, H, Hkv, d) in [(13, 4, 2, 64), (9, 8, 2, 128)] {
            let label = "[\(T), (\(H) + 2x\(Hkv)) x \(d)]"
            check("rotaryQKV", label) {
                let width = (H + 2 * Hkv) * d
                let (x, tx) = try input(Shape([T, width]))
                let positions = (0..<T).map { Int32($0 == T - 1 ? 131_000 : random.int(5000)) }
                let inverse = (0..<d / 2).map { Float(pow(500_000.0, -2.0 * Double($0) / Double(d))) }
                let (q, k, v) = try backend.rotaryQKV(
                    tx, heads: H, kvHeads: Hkv, positions: try backend.int32Tensor(positions),
                    inverseFrequencies: try backend.tensor(inverse, shape: Shape([d / 2]), dtype: .f32))
                func block(_ first: Int, _ count: Int) -> [Float] {
                    (0..<T).flatMap { t in x[t * width + first..<t * width + first + count] }
                }
                record(
                    "rotaryQKV", label + " q",
                    Reference.relativeError(
                        try backend.floats(q),
                        Reference.rotary(
                            x: block(0, H * d), positions: positions, inverseFrequencies: inverse, T: T, heads: H, d: d)
                    ),
                    Self.bf16Tolerance)
                record(
                    "rotaryQKV", label + " k",
                    Reference.relativeError(
                        try backend.floats(k),
                        Reference.rotary(
                            x: block(H * d, Hkv * d), positions: positions, inverseFrequencies: inverse, T: T,
                            heads: Hkv, d: d)), Self.bf16Tolerance)
                record(
                    "rotaryQKV", label + " v",
                    Reference.relativeError(
                        try backend.floats(v),
                        block((H + Hkv) * d, Hkv * d).map(Double.init)), Self.bf16Tolerance)
            }
        }
    }

    func checkSelection() {
        check("queryAwareScores", "q [6, 8, 64] k [40, 2, 64]") {
            let (q, tq) = try input(Shape([6, 8, 64])), (k, tk) = try input(Shape([40, 2, 64]))
            let y = try backend.floats(try backend.queryAwareScores(query: tq, key: tk))
            var expected = [Double](repeating: 0, count: 80)
            for j in 0..<40 {
                for h in 0..<2 {
                    var sum = 0.0
                    for t in 0..<6 {
                        for g in 0..<4 {
                            for c in 0..<64 {
                                sum += Double(q[(t * 8 + h * 4 + g) * 64 + c]) * Double(k[(j * 2 + h) * 64 + c])
                            }
                        }
                    }
                    expected[j * 2 + h] = sum / 24
                }
            }
            record(
                "queryAwareScores", "q [6, 8, 64] k [40, 2, 64] GQA 4", Reference.relativeError(y, expected),
                Self.f32Tolerance)
        }
        check("maxPool1D", "[50, 3] window 5") {
            let (s, ts) = try input(Shape([50, 3]), .f32)
            let y = try backend.floats(try backend.maxPool1D(ts, window: 5))
            var expected = [Double](repeating: 0, count: 150)
            for i in 0..<50 {
                for c in 0..<3 {
                    expected[i * 3 + c] = Double((max(0, i - 2)...min(49, i + 2)).map { s[$0 * 3 + c] }.max()!)
                }
            }
            record("maxPool1D", "[50, 3] f32 window 5", Reference.relativeError(y, expected), 0)
        }
        check("topKPerHead", "[50, 3] k 7 rows 5..<45") {
            let (s, ts) = try input(Shape([50, 3]), .f32)
            let y = try backend.download(try backend.topKPerHead(ts, k: 7, rows: 5..<45)).int32s()
            let expected = (0..<3).flatMap { c in
                (5..<45).sorted { s[$0 * 3 + c] > s[$1 * 3 + c] }.prefix(7).sorted().map { Int32($0) }
            }
            record("topKPerHead", "[50, 3] f32 k 7 rows 5..<45", y == expected ? 0 : 1, 0)
        }
        // Many ties (scores on a 1/8 grid), NaN, -0 and +0; k cutting through a run of equal scores.
        for (S, C, k, rows) in [(5000, 8, 300, 100..<4900), (70000, 4, 2048, 0..<70000), (33, 2, 33, 0..<33)] {
            let label = "[\(S), \(C)] ties NaN ±0 k \(k) rows \(rows)"
            check("topKPerHead", label) {
                var s = random.values(S * C, scale: 4).map { Float(($0 * 8).rounded() / 8) }
                for i in stride(from: 7, to: S * C, by: 97) { s[i] = .nan }
                for i in stride(from: 11, to: S * C, by: 89) { s[i] = i % 2 == 0 ? -0.0 : 0.0 }
                let y = try backend.download(
                    try backend.topKPerHead(
                        backend.upload(Tensor(s, shape: Shape([S, C]), dtype: .f32)),
                        k: k, rows: rows)
                ).int32s()
                let expected = (0..<C).flatMap { c in
                    rows.sorted { a, b in
                        let (x, z) = (s[a * C + c], s[b * C + c])
                        if x.isNaN || z.isNaN { return x.isNaN == z.isNaN ? a < b : z.isNaN }
                        return x != z ? x > z : a < b
                    }.prefix(k).sorted().map { Int32($0) }
                }
                record("topKPerHead", label, y == expected ? 0 : 1, 0)
            }
        }
        check("gatherRowsPerHead", "x [20, 3, 16]") {
            let (x, tx) = try input(Shape([20, 3, 16]))
            let indices: [Int32] = [0, 4, 19, 2, 2, 7, 8, 9, 10, 11, 19, 18, 0, 1, 5]
            let y = try backend.floats(
                try backend.gatherRowsPerHead(
                    tx, indices: try backend.upload(Tensor(int32: indices, shape: Shape([3, 5])))))
            var expected: [Double] = []
            for i in 0..<5 {
                for c in 0..<3 {
                    expected += x[(Int(indices[c * 5 + i]) * 3 + c) * 16..<(Int(indices[c * 5 + i]) * 3 + c + 1) * 16]
                        .map(Double.init)
                }
            }
            record("gatherRowsPerHead", "x [20, 3, 16] bf16, indices [3, 5]", Reference.relativeError(y, expected), 0)
        }
    }
}
