/// Baton's own single-threaded SGEMM/SGEMV, used when no CBLAS library is installed (see `BLAS`).
///
/// The Goto/BLIS scheme: a `kc x nc` block of op(B) is packed into `nr`-wide column panels (it
/// stays in L2), an `mc x kc` block of A into `mr`-tall row panels, and a register tile of
/// `mr x nr` accumulators runs over `kc`, one rank-1 update per step. Packing pads the edges with
/// zeros, so the inner kernel always computes a full tile and only the store is ragged.
/// SIMD through `SIMD8<Float>`, which the baseline x86-64 target compiles to SSE pairs (no FMA:
/// a separate multiply and add, so no libm `fmaf` call on machines without it).
enum BuiltinGEMM {
    /// 6 x 8 accumulators = 12 of the 16 SSE registers; the B row and the A broadcast take 3 more.
    static let mr = 6, nr = 8
    static let kc = 256, mc = 96, nc = 2048

    /// C[m, n] = alpha A[m, k] op(B) + beta C, row-major; op(B) = B[n, k]^T when `transposeB`,
    /// else B[k, n]. beta == 0 never reads C (C may be uninitialised).
    static func gemm(
        transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        if m <= 0 || n <= 0 { return }
        if k <= 0 || alpha == 0 {
            for i in 0..<m { scale(c + i * ldc, count: n, by: beta) }
            return
        }
        let panelColumns = (min(nc, n) + nr - 1) / nr * nr
        let panelRows = (min(mc, m) + mr - 1) / mr * mr
        let packedB = UnsafeMutablePointer<Float>.allocate(capacity: kc * panelColumns)
        let packedA = UnsafeMutablePointer<Float>.allocate(capacity: kc * panelRows)
        defer { packedB.deallocate(); packedA.deallocate() }

        for jc in stride(from: 0, to: n, by: nc) {
            let nb = min(nc, n - jc)
            for pc in stride(from: 0, to: k, by: kc) {
                let kb = min(kc, k - pc)
                // Later k blocks add to what the first one wrote.
                let blockBeta: Float = pc == 0 ? beta : 1
                packB(transposeB, b, ldb, rows: pc, count: kb, columns: jc, width: nb, into: packedB)
                for ic in stride(from: 0, to: m, by: mc) {
                    let mb = min(mc, m - ic)
                    packA(a + ic * lda + pc, lda, rows: mb, depth: kb, into: packedA)
                    for jr in stride(from: 0, to: nb, by: nr) {
                        for ir in stride(from: 0, to: mb, by: mr) {
                            tile(
                                depth: kb, packedA + ir * kb, packedB + jr * kb,
                                c + (ic + ir) * ldc + jc + jr, ldc,
                                rows: min(mr, mb - ir), columns: min(nr, nb - jr), alpha: alpha, beta: blockBeta)
                        }
                    }
                }
            }
        }
    }

    /// y[m] (stride incY) = alpha A[m, n] x[n] + beta y, A row-major. beta == 0 never reads y.
    static func gemv(
        m: Int, n: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
        x: UnsafePointer<Float>, beta: Float, y: UnsafeMutablePointer<Float>, incY: Int
    ) {
        let vectorEnd = n / 8 * 8
        func finish(_ i: Int, _ dot: Float) {
            let target = y + i * incY
            target.pointee = beta == 0 ? alpha * dot : alpha * dot + beta * target.pointee
        }
        var i = 0
        // Four rows at a time: four independent accumulators hide the add latency, and each
        // 8-wide slice of x is loaded once for the four.
        while i + 4 <= m {
            let r0 = a + i * lda, r1 = r0 + lda, r2 = r1 + lda, r3 = r2 + lda
            var s0 = SIMD8<Float>(), s1 = SIMD8<Float>(), s2 = SIMD8<Float>(), s3 = SIMD8<Float>()
            var j = 0
            while j < vectorEnd {
                let v = load8(x + j)
                s0 += load8(r0 + j) * v
                s1 += load8(r1 + j) * v
                s2 += load8(r2 + j) * v
                s3 += load8(r3 + j) * v
                j += 8
            }
            var d0 = s0.sum(), d1 = s1.sum(), d2 = s2.sum(), d3 = s3.sum()
            while j < n {
                d0 += r0[j] * x[j]; d1 += r1[j] * x[j]; d2 += r2[j] * x[j]; d3 += r3[j] * x[j]
                j += 1
            }
            finish(i, d0); finish(i + 1, d1); finish(i + 2, d2); finish(i + 3, d3)
            i += 4
        }
        while i < m {
            let row = a + i * lda
            var s = SIMD8<Float>()
            var j = 0
            while j < vectorEnd { s += load8(row + j) * load8(x + j); j += 8 }
            var dot = s.sum()
            while j < n { dot += row[j] * x[j]; j += 1 }
            finish(i, dot)
            i += 1
        }
    }

    // MARK: packing

    /// Packs op(B)'s rows `rows..<rows+count` (the k range) and columns `columns..<columns+width`
    /// into `nr`-wide panels: panel j holds, for each k, the nr values of columns j*nr... in a row.
    private static func packB(
        _ transposeB: Bool, _ b: UnsafePointer<Float>, _ ldb: Int, rows: Int, count: Int,
        columns: Int, width: Int, into packed: UnsafeMutablePointer<Float>
    ) {
        for panelStart in stride(from: 0, to: width, by: nr) {
            let panel = packed + panelStart * count
            let live = min(nr, width - panelStart)
            if transposeB {  // B is [n, k]: column j of op(B) is row j of B, contiguous in k
                for j in 0..<nr {
                    if j < live {
                        let source = b + (columns + panelStart + j) * ldb + rows
                        for p in 0..<count { panel[p * nr + j] = source[p] }
                    } else {
                        for p in 0..<count { panel[p * nr + j] = 0 }
                    }
                }
            } else {  // B is [k, n]: each k row holds the panel's columns contiguously
                for p in 0..<count {
                    let source = b + (rows + p) * ldb + columns + panelStart
                    let target = panel + p * nr
                    if live == nr {
                        store8(load8(source), target)
                    } else {
                        for j in 0..<nr { target[j] = j < live ? source[j] : 0 }
                    }
                }
            }
        }
    }

    /// Packs A's `rows x depth` block into `mr`-tall panels: panel i holds, for each k, the mr
    /// values of rows i*mr... in a row.
    private static func packA(
        _ a: UnsafePointer<Float>, _ lda: Int, rows: Int, depth: Int,
        into packed: UnsafeMutablePointer<Float>
    ) {
        for panelStart in stride(from: 0, to: rows, by: mr) {
            let panel = packed + panelStart * depth
            for r in 0..<mr {
                if panelStart + r < rows {
                    let source = a + (panelStart + r) * lda
                    for p in 0..<depth { panel[p * mr + r] = source[p] }
                } else {
                    for p in 0..<depth { panel[p * mr + r] = 0 }
                }
            }
        }
    }

    // MARK: the register tile

    /// C tile[rows, columns] = alpha (packed A panel x packed B panel) + beta C tile.
    @inline(__always)
    private static func tile(
        depth: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
        _ c: UnsafeMutablePointer<Float>, _ ldc: Int, rows: Int, columns: Int,
        alpha: Float, beta: Float
    ) {
        var c0 = SIMD8<Float>(), c1 = SIMD8<Float>(), c2 = SIMD8<Float>()
        var c3 = SIMD8<Float>(), c4 = SIMD8<Float>(), c5 = SIMD8<Float>()
        var pa = a, pb = b
        for _ in 0..<depth {
            let bRow = load8(pb)
            c0 += pa[0] * bRow
            c1 += pa[1] * bRow
            c2 += pa[2] * bRow
            c3 += pa[3] * bRow
            c4 += pa[4] * bRow
            c5 += pa[5] * bRow
            pa += mr
            pb += nr
        }
        func store(_ accumulator: SIMD8<Float>, row r: Int) {
            if r >= rows { return }
            let target = c + r * ldc
            if columns == nr {
                store8(beta == 0 ? alpha * accumulator : alpha * accumulator + beta * load8(target), target)
            } else {
                for j in 0..<columns {
                    target[j] = beta == 0 ? alpha * accumulator[j] : alpha * accumulator[j] + beta * target[j]
                }
            }
        }
        store(c0, row: 0); store(c1, row: 1); store(c2, row: 2)
        store(c3, row: 3); store(c4, row: 4); store(c5, row: 5)
    }

    @inline(__always)
    private static func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }

    @inline(__always)
    private static func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
    }

    private static func scale(_ row: UnsafeMutablePointer<Float>, count: Int, by beta: Float) {
        if beta == 0 {
            row.update(repeating: 0, count: count)
        } else if beta != 1 {
            for j in 0..<count { row[j] *= beta }
        }
    }
}
