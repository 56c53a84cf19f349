/// What a decoder layer hands to the attention strategy: this rank's local rows after the
/// projections. RoPE has been applied with global positions.
public struct AttentionInput: @unchecked Sendable {
    public let layer: Int
    /// `[T, H, d]` post-RoPE queries.
    public let query: Tensor
    /// `[T, Hkv, d]` post-RoPE keys.
    public let key: Tensor
    /// `[T, Hkv, d]` values.
    public let value: Tensor
    /// The projections before RoPE, which APB's retaining heads read. Strategies that do not
    /// need them ignore them.
    public let preRotary: PreRotaryProjections?
    /// The pass's part timer when the pass is measured (benchmark breakdowns), nil otherwise:
    /// the strategy times its kernels, selection and communication with it (`timed`).
    public let timer: PartTimer?

    public init(
        layer: Int, query: Tensor, key: Tensor, value: Tensor, preRotary: PreRotaryProjections? = nil,
        timer: PartTimer? = nil
    ) {
        self.layer = layer
        self.query = query
        self.key = key
        self.value = value
        self.preRotary = preRotary
        self.timer = timer
    }

    /// Runs `body` as `part` of this layer's attention when the pass is measured; otherwise just
    /// runs it, without synchronising.
    public func timed<T>(_ part: PartTimer.Part, _ body: () throws -> T) throws -> T {
        try BatonTensor.timed(timer, part, layer: layer, body)
    }
}

/// A layer's q, k and v projections before RoPE, as the model computed them.
public enum PreRotaryProjections: @unchecked Sendable {
    /// `[T, H*d]`, `[T, Hkv*d]`, `[T, Hkv*d]`.
    case separate(query: Tensor, key: Tensor, value: Tensor)
    /// `[T, (H + 2 Hkv) d]`: the fused projection's output, columns `[q | k | v]`.
    case joined(Tensor)

    /// `[T, (H + 2 Hkv) d]`, columns `[q | k | v]`.
    public func joined(_ backend: any Backend) throws -> Tensor {
        switch self {
        case .joined(let qkv): return qkv
        case .separate(let query, let key, let value):
            let tokens = query.shape.rows
            return try backend.concatColumns(
                [query, key, value].map { $0.reshaped(tokens, $0.elementCount / max(tokens, 1)) })
        }
    }
}

/// Decides what each rank attends to and what it sends. The model calls `attend` once per
/// layer in place of attention; the strategy writes the KV rows this rank keeps into `cache`
/// and returns the attention output `[T, H, d]` for the local rows. Dense, Ring, ZigZag-Ring,
/// Star, APB and Spava are strategies (module BatonParallel).
public protocol AttentionStrategy: AnyObject {
    func attend(_ input: AttentionInput, cache: KVCache, backend: any Backend) throws -> Tensor
    /// Whether `attend` reads `input.preRotary`; the model keeps those projections alive (1.5x
    /// the query's memory) only then.
    var readsPreRotaryProjections: Bool { get }
}

extension AttentionStrategy {
    public var readsPreRotaryProjections: Bool { false }
}
