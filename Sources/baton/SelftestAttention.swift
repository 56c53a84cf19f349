import BatonCUDA
import BatonTensor
import Foundation

/// Attention and merge checks: every kernel version on odd sizes, GQA, the three masks (aligned
/// and unaligned anchor/passing edges, rows that see no key) and decode rows over long keys.
extension OpChecks {
    func checkAttention() {
        let cases: [(Sq: Int, Sk: Int, H: Int, Hkv: Int, d: Int, mask: AttentionMask)] = [
            (200, 200, 4, 2, 64, .causal),
            (130, 300, 8, 2, 128, .causal),
            (77, 333, 4, 4, 128, .full),
            (64, 64, 2, 1, 64, .full),
            (300, 500, 4, 1, 128, .anchor(anchorLength: 150, passingLength: 170)),
            (256, 512, 2, 2, 128, .anchor(anchorLength: 128, passingLength: 128)),
            (100, 40, 2, 1, 64, .causal),  // rows 0..<60 see no key: out 0, lse -inf
            (1, 5000, 32, 8, 128, .causal),  // decode
            (2, 4099, 16, 4, 128, .causal),  // decode: 8 rows per KV head
            (1, 131, 8, 8, 64, .full),
            (2, 777, 8, 4, 64, .anchor(anchorLength: 1, passingLength: 300)),  // row 0 skips the passing keys
            (4, 3001, 8, 2, 64, .causal),
            (3, 77, 4, 2, 96, .causal),  // head dim 96: naive only
            // Head dim 128 edges of the Hopper kernel (128-row query tiles, 128-key tiles, two
            // 64-row warpgroups): rows that see no key, odd lengths, a warpgroup past Sq, GQA 4:1,
            // anchor edges inside a tile, many key tiles.
            (100, 40, 2, 1, 128, .causal),
            (129, 129, 4, 1, 128, .full),
            (1000, 1000, 2, 1, 128, .causal),
            (700, 2500, 2, 2, 128, .full),
            (1111, 1111, 4, 2, 128, .anchor(anchorLength: 500, passingLength: 600)),
            (64, 1500, 4, 1, 128, .causal),
            (1000, 1000, 2, 1, 64, .causal),
            (333, 777, 4, 2, 64, .anchor(anchorLength: 200, passingLength: 300))
        ]
        for c in cases {
            let label = "Sq \(c.Sq) Sk \(c.Sk) H \(c.H)/\(c.Hkv) d \(c.d) \(c.mask)"
            check("attention", label) {
                let (q, tq) = try input(Shape([c.Sq, c.H, c.d]), scale: 2)
                let (k, tk) = try input(Shape([c.Sk, c.Hkv, c.d]), scale: 2)
                let (v, tv) = try input(Shape([c.Sk, c.Hkv, c.d]))
                let scale = 1 / Double(c.d).squareRoot()
                let reference = Reference.attention(
                    q: q, k: k, v: v, Sq: c.Sq, Sk: c.Sk, H: c.H, Hkv: c.Hkv, d: c.d,
                    mask: c.mask, scale: scale)
                var kernels: [AttentionKernel] = [.naive]
                if c.d == 64 || c.d == 128 {
                    kernels += AttentionKernel.flashVersions.map { .flash($0) } + [.flashSplit(3)]
                }
                if (c.d == 64 || c.d == 128) && c.Sq * (c.H / c.Hkv) <= AttentionKernel.decodeMaxRows {
                    kernels.append(.decode)
                }
                if (c.d == 64 || c.d == 128) && backend.supportsHopperAttention { kernels.append(.hopper) }
                let chosen = backend.defaultKernel(query: tq, key: tk)
                if !kernels.contains(chosen) { kernels.append(chosen) }
                for kernel in kernels {
                    check("attention \(kernel)", label) {
                        let result = try backend.attention(
                            query: tq, key: tk, value: tv, mask: c.mask, scale: Float(scale), kernel: kernel)
                        record(
                            "attention \(kernel)", label,
                            Reference.relativeError(try backend.floats(result.out), reference.out),
                            Self.bf16Tolerance)
                        record(
                            "  lse", label,
                            Reference.relativeError(try backend.floats(result.logSumExp), reference.lse),
                            Self.f32Tolerance * 10)
                    }
                }
            }
        }
    }

    /// Causal attention over keys [0, Sk) equals the merge of part B (keys [201, 300), causal; row 0
    /// sees none of them, so its lse is -inf) and part A (keys [0, 201), all visible), in that order.
    func checkMerge() {
        let (Sq, Sk, H, Hkv, d, split) = (100, 300, 4, 2, 64, 201)
        let label = "B[201,300) causal + A[0,201) full"
        check("mergeAttention", label) {
            let (q, tq) = try input(Shape([Sq, H, d]), scale: 2)
            let (k, tk) = try input(Shape([Sk, Hkv, d]), scale: 2)
            let (v, tv) = try input(Shape([Sk, Hkv, d]))
            let scale = 1 / Double(d).squareRoot()
            let reference = Reference.attention(
                q: q, k: k, v: v, Sq: Sq, Sk: Sk, H: H, Hkv: Hkv, d: d, mask: .causal, scale: scale)
            let partA = try backend.attention(
                query: tq, key: tk.rows(0..<split), value: tv.rows(0..<split), mask: .full, scale: Float(scale))
            let partB = try backend.attention(
                query: tq, key: tk.rows(split..<Sk), value: tv.rows(split..<Sk), mask: .causal, scale: Float(scale))
            let merged = try backend.mergeAttention([partB, partA])
            record(
                "mergeAttention", label, Reference.relativeError(try backend.floats(merged.out), reference.out),
                Self.bf16Tolerance)
            record(
                "  lse", label, Reference.relativeError(try backend.floats(merged.logSumExp), reference.lse),
                Self.f32Tolerance * 10)
        }
    }
}
