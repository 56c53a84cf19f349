/// torch's float32 antialiased bicubic (`separable_upsample_generic_Nd_kernel_impl` with
/// `HelperInterpCubic`), applied to a uint8 frame the way torchvision v1's `resize` does: cast to
/// float32, horizontal pass, vertical pass (float intermediate), clamp to 0...255, round half to
/// even, cast back. Every quantity is float32 where torch's is, double where torch mixes in a double
/// literal, so the sums match torch's up to the order a compiler may fuse multiply-adds in.
enum FloatBicubic {
    static func resize(_ frame: RGBFrame, height: Int, width: Int) -> RGBFrame {
        var values = frame.pixels.map(Float.init)
        var currentWidth = frame.width, currentHeight = frame.height
        if width != currentWidth {
            let w = AxisWeights(inputSize: currentWidth, outputSize: width)
            var out = [Float](repeating: 0, count: width * currentHeight * 3)
            for y in 0..<currentHeight {
                for x in 0..<width {
                    for c in 0..<3 {
                        var sum: Float = 0
                        for j in 0..<w.count[x] {
                            let term = values[(y * currentWidth + w.first[x] + j) * 3 + c] * w.taps[x * w.kernelSize + j]
                            sum = j == 0 ? term : sum + term
                        }
                        out[(y * width + x) * 3 + c] = sum
                    }
                }
            }
            values = out
            currentWidth = width
        }
        if height != currentHeight {
            let w = AxisWeights(inputSize: currentHeight, outputSize: height)
            let rowSize = currentWidth * 3
            var out = [Float](repeating: 0, count: height * rowSize)
            for y in 0..<height {
                for i in 0..<rowSize {
                    var sum: Float = 0
                    for j in 0..<w.count[y] {
                        let term = values[(w.first[y] + j) * rowSize + i] * w.taps[y * w.kernelSize + j]
                        sum = j == 0 ? term : sum + term
                    }
                    out[y * rowSize + i] = sum
                }
            }
            values = out
            currentHeight = height
        }
        let pixels = values.map { UInt8(min(max($0, 0), 255).rounded(.toNearestOrEven)) }
        return RGBFrame(width: currentWidth, height: currentHeight, pixels: pixels)
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
