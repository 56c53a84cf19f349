/// torch's float32 antialiased bicubic (`separable_upsample_generic_Nd_kernel_impl` with
/// `HelperInterpCubic`), applied to a uint8 frame the way torchvision v1's `resize` does: cast to
/// float32, horizontal pass, vertical pass (float intermediate), clamp to 0...255, round half to
/// even, cast back. Every quantity is float32 where torch's is, double where torch mixes in a double
/// literal, so the sums match torch's up to the order a compiler may fuse multiply-adds in.
enum FloatBicubic {
    static func resize(_ frame: RGBFrame, height: Int, width: Int) -> RGBFrame {
        var values = frame.pixels.map(Float.init)
        var currentWidth = frame.width
        if width != currentWidth {
            values = horizontalPass(
                values, width: currentWidth, height: frame.height,
                AxisWeights(inputSize: currentWidth, outputSize: width))
            currentWidth = width
        }
        if height != frame.height {
            values = verticalPass(
                values, rowSize: currentWidth * 3, AxisWeights(inputSize: frame.height, outputSize: height))
        }
        let pixels = values.map { UInt8(min(max($0, 0), 255).rounded(.toNearestOrEven)) }
        return RGBFrame(width: currentWidth, height: height, pixels: pixels)
    }

    /// values: [height, width, 3] -> [height, outWidth, 3]; each sum starts from its first term and
    /// adds the others in tap order, as torch's `interpolate_aa_single_dim_zero_strides` does.
    private static func horizontalPass(_ values: [Float], width: Int, height: Int, _ w: AxisWeights) -> [Float] {
        let outWidth = w.count.count
        var out = [Float](repeating: 0, count: outWidth * height * 3)
        values.withUnsafeBufferPointer { input in
            out.withUnsafeMutableBufferPointer { output in
                w.taps.withUnsafeBufferPointer { taps in
                    for y in 0..<height {
                        for x in 0..<outWidth {
                            let k = x * w.kernelSize
                            var p = (y * width + w.first[x]) * 3
                            var r = input[p] * taps[k], g = input[p + 1] * taps[k], b = input[p + 2] * taps[k]
                            for j in 1..<max(w.count[x], 1) {
                                p += 3
                                let t = taps[k + j]
                                r += input[p] * t
                                g += input[p + 1] * t
                                b += input[p + 2] * t
                            }
                            let o = (y * outWidth + x) * 3
                            output[o] = r
                            output[o + 1] = g
                            output[o + 2] = b
                        }
                    }
                }
            }
        }
        return out
    }

    /// values: [inHeight, rowSize] -> [outHeight, rowSize], same summation order per value.
    private static func verticalPass(_ values: [Float], rowSize: Int, _ w: AxisWeights) -> [Float] {
        let outHeight = w.count.count
        var out = [Float](repeating: 0, count: outHeight * rowSize)
        values.withUnsafeBufferPointer { input in
            out.withUnsafeMutableBufferPointer { output in
                for y in 0..<outHeight {
                    let o = y * rowSize
                    for j in 0..<w.count[y] {
                        let t = w.taps[y * w.kernelSize + j]
                        let row = (w.first[y] + j) * rowSize
                        if j == 0 {
                            for i in 0..<rowSize { output[o + i] = input[row + i] * t }
                        } else {
                            for i in 0..<rowSize { output[o + i] += input[row + i] * t }
                        }
                    }
                }
            }
        }
        return out
    }

    /// `_compute_indices_weights_aa<float>`: scale, centre, support and weights in float32.
    struct AxisWeights {
        var first: [Int] = []
        var count: [Int] = []
        var taps: [Float] = []
        var kernelSize = 0

        init(inputSize: Int, outputSize: Int) {
            let scale = Float(inputSize) / Float(outputSize)
            let support = Float(scale >= 1 ? 2.0 * Double(scale) : 2.0)
            let inverseScale = scale >= 1 ? Float(1.0 / Double(scale)) : 1
            kernelSize = Int(support.rounded(.up)) * 2 + 1
            taps = [Float](repeating: 0, count: outputSize * kernelSize)
            for i in 0..<outputSize {
                let center = Float(Double(scale) * (Double(i) + 0.5))
                let lo = max(Int(Double(center - support) + 0.5), 0)
                let n = min(Int(Double(center + support) + 0.5), inputSize) - lo
                var total: Float = 0
                for j in 0..<n {
                    let x = Float((Double(Float(j + lo) - center) + 0.5) * Double(inverseScale))
                    let w = Self.cubic(x)
                    taps[i * kernelSize + j] = w
                    total += w
                }
                if total != 0 { for j in 0..<n { taps[i * kernelSize + j] /= total } }
                first.append(lo)
                count.append(n)
            }
        }

        static func cubic(_ value: Float) -> Float {
            let x = abs(value), a: Float = -0.5
            if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
            if x < 2 { return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a }
            return 0
        }
    }
}
