// The softmax kernels inside attention: row maximum and exp-and-sum, written as plain loops
// over independent elements so LLVM vectorises them for the baseline target (Swift's generic
// SIMD comparisons and conversions compile to per-lane loops and were 4x slower).

/// Largest of `count` floats (-inf when `count` is 0; NaN elements are skipped).
@inline(__always)
func maximum(_ x: UnsafePointer<Float>, count: Int) -> Float {
    // Eight independent running maxima keep the loop free of a serial dependency.
    var m0 = -Float.infinity, m1 = m0, m2 = m0, m3 = m0, m4 = m0, m5 = m0, m6 = m0, m7 = m0
    var i = 0
    while i + 8 <= count {
        m0 = x[i] > m0 ? x[i] : m0
        m1 = x[i + 1] > m1 ? x[i + 1] : m1
        m2 = x[i + 2] > m2 ? x[i + 2] : m2
        m3 = x[i + 3] > m3 ? x[i + 3] : m3
        m4 = x[i + 4] > m4 ? x[i + 4] : m4
        m5 = x[i + 5] > m5 ? x[i + 5] : m5
        m6 = x[i + 6] > m6 ? x[i + 6] : m6
        m7 = x[i + 7] > m7 ? x[i + 7] : m7
        i += 8
    }
    while i < count {
        m0 = x[i] > m0 ? x[i] : m0
        i += 1
    }
    let a = m0 > m1 ? m0 : m1, b = m2 > m3 ? m2 : m3, c = m4 > m5 ? m4 : m5, e = m6 > m7 ? m6 : m7
    let ab = a > b ? a : b, ce = c > e ? c : e
    return ab > ce ? ab : ce
}

/// Replaces each of `count` floats `v` (all `<= shift`) by `exp(v - shift)` and returns their sum.
@inline(__always)
func exponentiateAndSum(_ x: UnsafeMutablePointer<Float>, count: Int, subtracting shift: Float) -> Float {
    for i in 0..<count { x[i] = exponential(x[i] - shift) }
    return sumOfElements(x, count: count)
}

/// e^x for x <= 0, within 2 ulp of the exact value: Cody-Waite reduction by ln 2 and a degree-6
/// polynomial on [-ln2/2, ln2/2] (the classic Cephes expf). Below -87.3 (where e^x leaves the
/// normal range) the result is 0.
@inline(__always)
func exponential(_ x: Float) -> Float {
    let lowest: Float = -87.336_54
    let clamped = x < lowest ? lowest : x
    // Adding 1.5 * 2^23 rounds x * log2(e) to the nearest integer n and leaves n in the low
    // mantissa bits, ready to become the exponent of 2^n.
    let magic: Float = 12_582_912
    let shifted = clamped * 1.442_695_04 + magic
    let n = shifted - magic
    var r = clamped - n * 0.693_359_375
    r = r - n * -2.121_944_4e-4
    var p: Float = 1.987_569_15e-4
    p = p * r + 1.398_199_95e-3
    p = p * r + 8.333_451_9e-3
    p = p * r + 4.166_579_59e-2
    p = p * r + 1.666_666_55e-1
    p = p * r + 5.000_000_12e-1
    p = p * (r * r) + r + 1
    let twoToN = Float(bitPattern: (shifted.bitPattern &- 0x4B40_0000 &+ 127) &<< 23)
    let result = p * twoToN
    return x < lowest ? 0 : result
}
