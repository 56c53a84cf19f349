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
    /// The projections before RoPE (`[T, H*d]`, `[T, Hkv*d]`, `[T, Hkv*d]`), which APB's
    /// retaining heads read. Strategies that do not need them ignore them.
    public let preRotary: (query: Tensor, key: Tensor, value: Tensor)?

    public init(layer: Int, query: Tensor, key: Tensor, value: Tensor,
                preRotary: (query: Tensor, key: Tensor, value: Tensor)? = nil) {
        self.layer = layer
        self.query = query
        self.key = key
        self.value = value
        self.preRotary = preRotary
    }
}

/// Decides what each rank attends to and what it sends. The model calls `attend` once per
/// layer in place of attention; the strategy writes the KV rows this rank keeps into `cache`
/// and returns the attention output `[T, H, d]` for the local rows. Dense, Ring, ZigZag-Ring,
/// Star, APB and Spava are strategies (module BatonParallel).
public protocol AttentionStrategy: AnyObject {
    func attend(_ input: AttentionInput, cache: KVCache, backend: any Backend) throws -> Tensor
}
