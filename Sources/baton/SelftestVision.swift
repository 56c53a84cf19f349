import BatonCUDA
import BatonTensor
import Foundation

/// Vision-language op checks (Kernels/vision.cu) against float64 references: exact GELU, the
/// sectioned rotary as M-RoPE and as the vision 2-D rotary, and segment attention over windows
/// (ragged, with empty segments) and whole frames, for every head dim with a kernel.
extension OpChecks {
    func checkVision() {
        check("gelu", "[1000]") {
            let (x, t) = try input(Shape([1000]), scale: 6)
            let y = try backend.floats(try backend.gelu(t))
            let expected = x.map { Double($0) * 0.5 * (1 + erf(Double($0) / 2.0.squareRoot())) }
            record("gelu", "[1000] bf16", Reference.relativeError(y, expected), Self.bf16Tolerance)
        }
        // M-RoPE (rows t, h, w; sections 16/24/24 of head dim 128) and the vision rotary (rows h, w of head dim 80).
        for (T, heads, d, sections) in [(37, 4, 128, [16, 24, 24]), (50, 3, 80, [20, 20]), (9, 2, 16, [2, 3, 3])] {
            let label = "[\(T), \(heads), \(d)] sections \(sections)"
            check("sectionedRotary", label) {
                let (x, tx) = try input(Shape([T, heads, d]))
                let positions = (0..<sections.count * T).map { _ in Int32(random.int(40_000)) }
                let inverse = (0..<d / 2).map { Float(pow(1_000_000.0, -2.0 * Double($0) / Double(d))) }
                let y = try backend.floats(
                    try backend.sectionedRotary(
                        tx, positions: try backend.upload(Tensor(int32: positions, shape: [sections.count, T])),
                        inverseFrequencies: try backend.tensor(inverse, shape: Shape([d / 2]), dtype: .f32),
                        sections: sections))
                record(
                    "sectionedRotary", label,
                    Reference.relativeError(
                        y,
                        Reference.sectionedRotary(
                            x: x, positions: positions, inverseFrequencies: inverse, sections: sections, T: T,
                            heads: heads, d: d)),
                    Self.bf16Tolerance)
            }
        }
        // Windows of Qwen2.5-VL (64, 48, 16 patches; empty segments repeat an offset), whole frames
        // longer than a block, and segments that straddle the kernel's blocks: 64-row blocks, and
        // 128-row ones where the mean segment is 256 rows or more ([700, 700], [300, 600], [1000, 24]).
        let cases: [(lengths: [Int], H: Int, d: Int)] = [
            ([64, 64, 48, 16, 0, 64, 32, 4], 4, 80),
            ([700, 700], 2, 80),
            ([5, 100, 0, 1, 77, 3], 3, 16),
            ([33, 31, 130], 2, 32),
            ([200, 57], 2, 64),
            ([90, 70], 2, 128),
            ([300, 600], 2, 128),
            ([1000, 24], 1, 16)
        ]
        for (lengths, H, d) in cases {
            let label =
                "\(lengths.count) segments of \(lengths.prefix(4).map(String.init).joined(separator: ","))"
                + (lengths.count > 4 ? ",..." : "") + " H \(H) d \(d)"
            check("attentionSegments", label) {
                let N = lengths.reduce(0, +)
                let (q, tq) = try input(Shape([N, H, d])), (k, tk) = try input(Shape([N, H, d]))
                let (v, tv) = try input(Shape([N, H, d]))
                let offsets = lengths.reduce(into: [Int32(0)]) { $0.append($0.last! + Int32($1)) }
                let scale = 1 / Double(d).squareRoot()
                let y = try backend.floats(
                    try backend.attentionSegments(
                        query: tq, key: tk, value: tv, segments: try backend.int32Tensor(offsets), scale: Float(scale)))
                var expected = [Double](repeating: 0, count: N * H * d)
                for (start, end) in zip(offsets, offsets.dropFirst()) where start < end {
                    let range = Int(start) * H * d..<Int(end) * H * d
                    let n = Int(end - start)
                    let part = Reference.attention(
                        q: Array(q[range]), k: Array(k[range]), v: Array(v[range]), Sq: n, Sk: n,
                        H: H, Hkv: H, d: d, mask: .full, scale: scale)
                    expected.replaceSubrange(range, with: part.out)
                }
                record("attentionSegments", label, Reference.relativeError(y, expected), Self.bf16Tolerance)
            }
        }
    }
}
