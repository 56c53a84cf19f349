import BatonTensor
import Foundation

/// Float64 references for `baton selftest`, written plainly from the op definitions in
/// `Backend`'s doc comments, over exactly the (bf16-rounded) inputs the device saw.
enum Reference {
    /// A seeded generator (SplitMix64) of uniform values in [-1, 1).
    struct Random {
        var state: UInt64
        mutating func next() -> Double {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            return Double(z >> 11) / Double(1 << 53) * 2 - 1
        }
        mutating func values(_ n: Int, scale: Double = 1) -> [Float] { (0..<n).map { _ in Float(next() * scale) } }
        mutating func int(_ bound: Int) -> Int { Int((next() + 1) / 2 * Double(bound)) % bound }
    }

    /// `values` as `dtype` would store them (bf16/f16 rounded), back as Float.
    static func rounded(_ values: [Float], _ dtype: DType) -> [Float] {
        Tensor(values, shape: Shape([values.count]), dtype: dtype).floats()
    }

    /// ‖a − b‖ / ‖b‖ (absolute when ‖b‖ = 0); NaN in `a` gives NaN; mismatched infinities give +inf.
    static func relativeError(_ a: [Float], _ b: [Double]) -> Double {
        guard a.count == b.count else { return .infinity }
        var difference = 0.0, norm = 0.0
        for i in a.indices {
            let x = Double(a[i]), y = b[i]
            if x.isNaN { return .nan }
            if x.isInfinite || y.isInfinite {
                if x != y { return .infinity }
                continue
            }
            difference += (x - y) * (x - y)
            norm += y * y
        }
        return norm > 0 ? (difference / norm).squareRoot() : difference.squareRoot()
    }

    static func matmul(x: [Float], w: [Float], bias: [Float]?, M: Int, K: Int, N: Int) -> [Double] {
        var y = [Double](repeating: 0, count: M * N)
        for m in 0..<M {
            for n in 0..<N {
                var sum = bias.map { Double($0[n]) } ?? 0
                for k in 0..<K { sum += Double(x[m * K + k]) * Double(w[n * K + k]) }
                y[m * N + n] = sum
            }
        }
        return y
    }

    static func rmsNorm(x: [Float], w: [Float], M: Int, D: Int, epsilon: Double) -> [Double] {
        var y = [Double](repeating: 0, count: M * D)
        for m in 0..<M {
            let row = x[m * D..<(m + 1) * D].map(Double.init)
            let inverse = 1 / ((row.reduce(0) { $0 + $1 * $1 } / Double(D) + epsilon).squareRoot())
            for c in 0..<D {
                let normalised = Double(rounded([Float(row[c] * inverse)], .bf16)[0])  // Llama: cast before the weight
                y[m * D + c] = normalised * Double(w[c])
            }
        }
        return y
    }

    /// torch's LayerNorm of each row of x [M, D]: biased variance, (x - mean) / sqrt(var + eps) * w + b.
    static func layerNorm(x: [Float], w: [Float], b: [Float], M: Int, D: Int, epsilon: Double) -> [Double] {
        (0..<M).flatMap { m in
            let row = x[m * D..<(m + 1) * D].map(Double.init)
            let mean = row.reduce(0, +) / Double(D)
            let inverse = 1 / (row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(D) + epsilon).squareRoot()
            return (0..<D).map { (row[$0] - mean) * inverse * Double(w[$0]) + Double(b[$0]) }
        }
    }

    static func rotary(x: [Float], positions: [Int32], inverseFrequencies: [Float], T: Int, heads: Int, d: Int)
        -> [Double]
    {
        sectionedRotary(
            x: x, positions: positions, inverseFrequencies: inverseFrequencies, sections: [d / 2],
            T: T, heads: heads, d: d)
    }

    /// The sectioned rotary in float64 (angles are the fp32 products, as the op defines them).
    static func sectionedRotary(
        x: [Float], positions: [Int32], inverseFrequencies: [Float], sections: [Int],
        T: Int, heads: Int, d: Int
    ) -> [Double] {
        let rowOf = sections.enumerated().flatMap { row, size in [Int](repeating: row, count: size) }
        var y = [Double](repeating: 0, count: x.count)
        let half = d / 2
        for t in 0..<T {
            for h in 0..<heads {
                let base = (t * heads + h) * d
                for c in 0..<half {
                    let angle = Double(Float(positions[rowOf[c] * T + t]) * inverseFrequencies[c])
                    let (a, b) = (Double(x[base + c]), Double(x[base + c + half]))
                    y[base + c] = a * cos(angle) - b * sin(angle)
                    y[base + c + half] = b * cos(angle) + a * sin(angle)
                }
            }
        }
        return y
    }

    /// out [Sq, H, d] and lse [H, Sq] for q [Sq, H, d], k/v [Sk, Hkv, d].
    static func attention(
        q: [Float], k: [Float], v: [Float], Sq: Int, Sk: Int, H: Int, Hkv: Int, d: Int,
        mask: AttentionMask, scale: Double
    ) -> (out: [Double], lse: [Double]) {
        nonisolated(unsafe) let outBuffer = UnsafeMutableBufferPointer<Double>.allocate(capacity: Sq * H * d)
        nonisolated(unsafe) let lseBuffer = UnsafeMutableBufferPointer<Double>.allocate(capacity: H * Sq)
        outBuffer.initialize(repeating: 0)
        lseBuffer.initialize(repeating: -.infinity)
        let group = H / Hkv
        DispatchQueue.concurrentPerform(iterations: H) { h in
            let hk = h / group
            var scores = [Double](repeating: 0, count: Sk)
            var rowOut = [Double](repeating: 0, count: d)
            var results: [(Int, [Double], Double)] = []
            for row in 0..<Sq {
                let keys = mask.keyRange(row: row, queryCount: Sq, keyCount: Sk)
                if keys.isEmpty { continue }
                var maxScore = -Double.infinity
                for j in keys {
                    var dot = 0.0
                    for c in 0..<d { dot += Double(q[(row * H + h) * d + c]) * Double(k[(j * Hkv + hk) * d + c]) }
                    scores[j] = dot * scale
                    maxScore = max(maxScore, scores[j])
                }
                var sum = 0.0
                for c in 0..<d { rowOut[c] = 0 }
                for j in keys {
                    let p = exp(scores[j] - maxScore)
                    sum += p
                    for c in 0..<d { rowOut[c] += p * Double(v[(j * Hkv + hk) * d + c]) }
                }
                results.append((row, rowOut.map { $0 / sum }, maxScore + log(sum)))
            }
            // Each head writes its own disjoint elements.
            for (row, values, rowLse) in results {
                for c in 0..<d { outBuffer[(row * H + h) * d + c] = values[c] }
                lseBuffer[h * Sq + row] = rowLse
            }
        }
        defer { outBuffer.deallocate(); lseBuffer.deallocate() }
        return (Array(outBuffer), Array(lseBuffer))
    }
}
