import BatonTensor
import Dispatch

/// Cuts frames into flattened square patches in merge-unit order, the layout both vision towers Baton
/// runs read: Qwen2-VL's processor emits it, and InternVL's tower takes it so that its pixel shuffle
/// is a plain reshape. The four patches of each `mergeSize` x `mergeSize` unit are consecutive rows
/// (top-left, top-right, bottom-left, bottom-right) and units run row-major, unit after unit.
enum MergeUnitPatchifier {
    /// Rows of `frames` (all one size, sides multiples of patch·merge), consecutive groups of
    /// `temporalPatchSize` frames forming one temporal unit: `[frames/tp · h/p · w/p, 3·tp·p·p]` f32,
    /// rows ordered (t, bh, bw, dy, dx), each row (c, tt, py, px); a byte `v` of channel `c` becomes
    /// `table[256·c + v]`.
    static func rows(
        _ frames: [RGBFrame], temporalPatchSize tp: Int, patchSize p: Int, mergeSize m: Int, table: [Float]
    ) -> (values: [Float], grid: VisionGrid) {
        precondition(!frames.isEmpty && frames.count % tp == 0, "\(frames.count) frames in units of \(tp)")
        precondition(table.count == 3 * 256, "a normalisation table holds 256 values per channel")
        let height = frames[0].height, width = frames[0].width
        precondition(frames.allSatisfy { $0.height == height && $0.width == width }, "frames differ in size")
        precondition(height % (p * m) == 0 && width % (p * m) == 0, "\(width)x\(height) is not a multiple of \(p * m)")
        let grid = VisionGrid(t: frames.count / tp, h: height / p, w: width / p)
        let rowSize = 3 * tp * p * p, unitRows = grid.h * grid.w
        let framePixels = frames.map(\.pixels)
        var values = [Float](repeating: 0, count: grid.patchCount * rowSize)
        values.withUnsafeMutableBufferPointer { buffer in
            nonisolated(unsafe) let out = buffer.baseAddress!
            // Temporal units write disjoint rows: one worker each (a 64-frame 720p video is 720 MB of rows).
            DispatchQueue.concurrentPerform(iterations: grid.t) { t in
                var row = t * unitRows
                for bh in 0..<(grid.h / m) {
                    for bw in 0..<(grid.w / m) {
                        for dy in 0..<m {
                            for dx in 0..<m {
                                var o = row * rowSize
                                let y0 = (bh * m + dy) * p, x0 = (bw * m + dx) * p
                                for c in 0..<3 {
                                    for tt in 0..<tp {
                                        framePixels[t * tp + tt].withUnsafeBufferPointer { pixels in
                                            for py in 0..<p {
                                                var i = ((y0 + py) * width + x0) * 3 + c
                                                for _ in 0..<p {
                                                    out[o] = table[256 * c + Int(pixels[i])]
                                                    o += 1
                                                    i += 3
                                                }
                                            }
                                        }
                                    }
                                }
                                row += 1
                            }
                        }
                    }
                }
            }
        }
        return (values, grid)
    }
}
