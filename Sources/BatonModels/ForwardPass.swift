import BatonTensor

/// The state one forward pass of a model carries through its layers: where the rows are
/// (positions, and the request's length for length-dependent RoPE), what attends to what (the
/// strategy) and where the kept keys and values go (the cache), on which backend, and an optional
/// part timer. A layer reads `layer(hidden, pass)`.
public struct ForwardPass {
    public let backend: any Backend
    /// Global positions of the rows, i32 on `backend`: `[T]` for 1-D RoPE, or `[3, T]` (temporal,
    /// height, width rows) for a model with multimodal rotary positions (M-RoPE).
    public let positions: Tensor
    public let strategy: any AttentionStrategy
    public let cache: KVCache
    /// When given, adds each part's synchronised time (benchmark breakdowns).
    public let timer: PartTimer?
    /// The whole request's length as RoPE sees it: its largest position + 1 (transformers'
    /// `max(position_ids) + 1`) over the full prompt in a prefill or query pass, whichever rows this
    /// rank holds, and the decoded token's position + 1 in a decoding step. Dynamic NTK scaling
    /// (`RopeScaling.dynamic`) derives the pass's frequencies from it, so it is required there (the
    /// model throws without it) and unused otherwise.
    public let ropeLength: Int?

    public init(
        backend: any Backend, positions: Tensor, strategy: any AttentionStrategy, cache: KVCache,
        timer: PartTimer? = nil, ropeLength: Int? = nil
    ) {
        self.backend = backend
        self.positions = positions
        self.strategy = strategy
        self.cache = cache
        self.timer = timer
        self.ropeLength = ropeLength
    }

    /// A pass over `rows` tokens at 1-D `positions` (host values, uploaded here).
    public init(
        backend: any Backend, positions: [Int32], strategy: any AttentionStrategy, cache: KVCache,
        timer: PartTimer? = nil, ropeLength: Int? = nil
    ) throws {
        self.init(
            backend: backend, positions: try backend.int32Tensor(positions), strategy: strategy, cache: cache,
            timer: timer, ropeLength: ropeLength)
    }

    /// Rows of this pass (the last dimension of `positions`).
    public var rowCount: Int { positions.shape[positions.shape.rank - 1] }

    /// Runs `body` as `part` of the timer's breakdown, also per `layer` if given (or just runs it
    /// without a timer).
    func timed<T>(_ part: PartTimer.Part, layer: Int? = nil, _ body: () throws -> T) throws -> T {
        try BatonTensor.timed(timer, part, layer: layer, body)
    }
}
