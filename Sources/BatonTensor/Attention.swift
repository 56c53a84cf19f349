/// Which keys each query row may see. Rows and keys are counted from 0 within one call;
/// `Sq` query rows, `Sk` key rows.
public enum AttentionMask: Hashable, Sendable, CustomStringConvertible {
    /// Every row sees every key.
    case full
    /// Bottom-right aligned causal: row `i` sees key `j` iff `j <= i + (Sk - Sq)`.
    case causal
    /// APB's anchor rule on keys ordered `[passing | anchor | local]`: bottom-right causal,
    /// and rows `< anchorLength` (the anchor) also skip the first `passingLength` keys.
    case anchor(anchorLength: Int, passingLength: Int)

    /// Whether query row `row` may attend to key `key` (the one rule is `keyRange`).
    @inlinable
    public func allows(row: Int, key: Int, queryCount: Int, keyCount: Int) -> Bool {
        keyRange(row: row, queryCount: queryCount, keyCount: keyCount).contains(key)
    }

    /// Keys `[lo, hi)` that row `row` may see (the allowed set is always one range). The CUDA
    /// kernels' twin of this rule is `attention_allowed` in Kernels/attention_mask.cuh.
    @inlinable
    public func keyRange(row: Int, queryCount: Int, keyCount: Int) -> Range<Int> {
        switch self {
        case .full:
            return 0..<keyCount
        case .causal:
            return 0..<max(0, min(keyCount, row + (keyCount - queryCount) + 1))
        case .anchor(let anchorLength, let passingLength):
            let hi = max(0, min(keyCount, row + (keyCount - queryCount) + 1))
            let lo = row < anchorLength ? min(passingLength, hi) : 0
            return lo..<hi
        }
    }

    public var description: String {
        switch self {
        case .full: "full"
        case .causal: "causal"
        case .anchor(let a, let p): "anchor(anchor: \(a), passing: \(p))"
        }
    }
}

/// A partial or complete attention result: `out [Sq, H, d]` in the activation dtype and the
/// natural log-sum-exp of the scaled scores `lse [H, Sq]` in fp32. A row that sees no key
/// has `out = 0` and `lse = -inf`, so it drops out of every merge.
public struct AttentionOutput: Sendable {
    public var out: Tensor
    public var logSumExp: Tensor

    public init(out: Tensor, logSumExp: Tensor) {
        self.out = out
        self.logSumExp = logSumExp
    }
}
