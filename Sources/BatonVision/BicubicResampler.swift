/// Antialiased bicubic resizing of uint8 RGB frames, bit-exact with the two implementations Qwen's
/// pipeline runs: torch's uint8 kernel behind torchvision's `resize(..., BICUBIC, antialias=True)`
/// (videos, qwen-vl-utils `fetch_video`) and Pillow's `Image.resize(..., BICUBIC)` (images,
/// `fetch_image`). Both are Pillow's `ImagingResample`:
/// - separable: a horizontal pass, then a vertical one; a pass whose size does not change is skipped;
/// - output pixel i of a pass of scale s = in/out is centred at s·(i + 0.5); when shrinking (s > 1)
///   the cubic kernel (a = -0.5, support 2) is stretched by s, so every input pixel under it counts
///   (the antialiasing); weights are normalised to sum to 1;
/// - weights become fixed-point integers, each pass sums pixel·weight in integers with a rounding
///   half added, shifts back and clamps to 0...255, so the intermediate image is uint8 too.
/// They differ only in the fixed-point precision (`Precision`) and in how the kernel polynomial is
/// written (the last bit of a double weight). (Pillow 13's `Image.resize` sometimes runs the vertical
/// pass first, which moves a few values by a level or more; this follows Pillow's C source order.)
///
/// qwen-vl-utils calls torchvision's *v1* `transforms.functional.resize`, which casts uint8 to
/// float32 first: that is a third variant (`Precision.float32`), the same weights in float32, float
/// sums, no rounding between the passes, then clamp and round half to even once at the end.
public enum BicubicResampler {
    public enum Precision: Sendable {
        /// torch's uint8 kernel (transformers' fast processors, torchvision v2 on uint8): the most
        /// bits (< 22) that keep the largest weight within int16.
        case torchvision
        /// Pillow: 22 bits.
        case pillow
        /// torch's float32 kernel (torchvision v1 `resize` on a uint8 tensor, as qwen-vl-utils'
        /// `fetch_video` calls it).
        case float32
    }

    /// `frame` resized to `height` x `width`.
    public static func resize(_ frame: RGBFrame, height: Int, width: Int, precision: Precision = .torchvision)
        -> RGBFrame
    {
        precondition(height > 0 && width > 0, "resize to \(width)x\(height)")
        if frame.width == width && frame.height == height { return frame }
        if precision == .float32 { return FloatBicubic.resize(frame, height: height, width: width) }
        var current = frame
        if frame.width != width {
            let weights = AxisWeights(inputSize: frame.width, outputSize: width, precision: precision)
            current = horizontalPass(current, weights)
        }
        if frame.height != height {
            let weights = AxisWeights(inputSize: frame.height, outputSize: height, precision: precision)
            current = verticalPass(current, weights)
        }
        return current
    }

    /// Fixed-point weights of one axis: output i reads inputs `first[i] ..< first[i] + count[i]` with
    /// weights `taps[i * kernelSize ..< i * kernelSize + count[i]]`.
    struct AxisWeights {
        var first: [Int] = []
        var count: [Int] = []
        var taps: [Int32] = []
        var kernelSize = 0
        var shift = 0

        init(inputSize: Int, outputSize: Int, precision: Precision) {
            let scale = Double(inputSize) / Double(outputSize)
            let support = scale >= 1 ? 2 * scale : 2
            let inverseScale = scale >= 1 ? 1 / scale : 1
            kernelSize = Int(support.rounded(.up)) * 2 + 1
            var real = [Double](repeating: 0, count: outputSize * kernelSize)
            for i in 0..<outputSize {
                let center = scale * (Double(i) + 0.5)
                let lo = max(Int(center - support + 0.5), 0)
                let n = min(Int(center + support + 0.5), inputSize) - lo
                var total = 0.0
                for j in 0..<n {
                    let x = (Double(j + lo) - center + 0.5) * inverseScale
                    let w = precision == .pillow ? Self.pillowCubic(x) : Self.torchCubic(x)
                    real[i * kernelSize + j] = w
                    total += w
                }
                if total != 0 { for j in 0..<n { real[i * kernelSize + j] /= total } }
                first.append(lo)
                count.append(n)
            }
            switch precision {
            case .pillow:
                shift = 22
            case .torchvision, .float32:
                let largest = real.max() ?? 0
                shift = 0
                while shift < 22, Int(0.5 + largest * Double(1 << (shift + 1))) < (1 << 15) { shift += 1 }
            }
            let unit = Double(1 << shift)
            taps = real.map { w in
                Int32(w < 0 ? (-0.5 + w * unit).rounded(.towardZero) : (0.5 + w * unit).rounded(.towardZero))
            }
        }

        /// torch's `HelperInterpCubic::aa_filter`: Keys' cubic, a = -0.5, as torch writes it.
        static func torchCubic(_ value: Double) -> Double {
            let x = abs(value), a = -0.5
            if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
            if x < 2 { return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a }
            return 0
        }

        /// Pillow's `bicubic_filter`, the same polynomial in Pillow's order.
        static func pillowCubic(_ value: Double) -> Double {
            let x = abs(value), a = -0.5
            if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
            if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
            return 0
        }
    }

    /// One output value: the rounded fixed-point sum, clamped to a byte.
    @inline(__always)
    private static func toByte(_ sum: Int, shift: Int) -> UInt8 {
        UInt8(clamping: sum >> shift)
    }

    private static func horizontalPass(_ frame: RGBFrame, _ w: AxisWeights) -> RGBFrame {
        let outWidth = w.count.count, height = frame.height, inWidth = frame.width
        var out = [UInt8](repeating: 0, count: outWidth * height * 3)
        let half = 1 << (w.shift - 1)
        frame.pixels.withUnsafeBufferPointer { input in
            out.withUnsafeMutableBufferPointer { output in
                w.taps.withUnsafeBufferPointer { taps in
                    for y in 0..<height {
                        let row = y * inWidth * 3
                        for x in 0..<outWidth {
                            var r = half, g = half, b = half
                            let k = x * w.kernelSize
                            var p = row + w.first[x] * 3
                            for j in 0..<w.count[x] {
                                let t = Int(taps[k + j])
                                r += Int(input[p]) * t
                                g += Int(input[p + 1]) * t
                                b += Int(input[p + 2]) * t
                                p += 3
                            }
                            let o = (y * outWidth + x) * 3
                            output[o] = toByte(r, shift: w.shift)
                            output[o + 1] = toByte(g, shift: w.shift)
                            output[o + 2] = toByte(b, shift: w.shift)
                        }
                    }
                }
            }
        }
        return RGBFrame(width: outWidth, height: height, pixels: out)
    }

    private static func verticalPass(_ frame: RGBFrame, _ w: AxisWeights) -> RGBFrame {
        let outHeight = w.count.count, rowBytes = frame.width * 3
        var out = [UInt8](repeating: 0, count: outHeight * rowBytes)
        let half = 1 << (w.shift - 1)
        frame.pixels.withUnsafeBufferPointer { input in
            out.withUnsafeMutableBufferPointer { output in
                w.taps.withUnsafeBufferPointer { taps in
                    var sums = [Int](repeating: 0, count: rowBytes)
                    for y in 0..<outHeight {
                        for i in 0..<rowBytes { sums[i] = half }
                        let k = y * w.kernelSize
                        for j in 0..<w.count[y] {
                            let t = Int(taps[k + j])
                            let row = (w.first[y] + j) * rowBytes
                            for i in 0..<rowBytes { sums[i] += Int(input[row + i]) * t }
                        }
                        let o = y * rowBytes
                        for i in 0..<rowBytes { output[o + i] = toByte(sums[i], shift: w.shift) }
                    }
                }
            }
        }
        return RGBFrame(width: frame.width, height: outHeight, pixels: out)
    }
}
