import BatonEngine
import Foundation

extension Selftest {
    /// `--model DIR`: the whole model on the GPU against the transformers reference stored with a
    /// fixture checkpoint. The reference computes in fp32; the GPU keeps weights and activations in
    /// bf16 (8 mantissa bits), so logits of these small models with large random weights differ by
    /// 1-3% in relative norm (1.4-2.2% measured on H100), against about 1e-6 for the fp32 CPU path.
    func checkModel(_ path: String) throws -> Int {
        let rows = try ReferenceCheck(directory: URL(fileURLWithPath: path), device: .cuda(ordinal: ordinal)).run()
        var failures = 0
        print("model check: \(path) on cuda:\(ordinal) vs transformers fp32")
        for row in rows {
            let pass = row.relativeNorm < 3e-2 && row.maxAbsDifference.isFinite
            if !pass { failures += 1 }
            print(String(format: "  %@ %@: logits max |diff| %.4f, relative norm %.2e; greedy %d/%d tokens equal before the first difference",
                         pass ? "PASS" : "FAIL", row.name, row.maxAbsDifference, row.relativeNorm, row.greedyMatches, row.greedyTotal))
        }
        return failures
    }
}
