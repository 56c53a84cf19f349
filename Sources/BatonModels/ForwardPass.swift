import BatonTensor

/// The state one forward pass of a model carries through its layers: where the rows are
/// (positions), what attends to what (the strategy) and where the kept keys and values go (the
/// cache), on which backend, and an optional part timer. A layer reads `layer(hidden, pass)`.
public struct ForwardPass {
    public let backend: any Backend
    /// Global positions of the rows, i32 on `backend`: `[T]` for 1-D RoPE, or `[3, T]` (temporal,
    /// height, width rows) for a model with multimodal rotary positions (M-RoPE).
    public let positions: Tensor
    public let strategy: any AttentionStrategy
    public let cache: KVCache
    /// When given, adds each part's synchronised time (benchmark breakdowns).
    public let timer: PartTimer?

    public init(
        backend: any Backend, positions: Tensor, strategy: any AttentionStrategy, cache: KVCache,
        timer: PartTimer? = nil
    ) {
        self.backend = backend
        self.positions = positions
        self.strategy = strategy
        self.cache = cache
        self.timer = timer
    }

    /// A pass over `rows` tokens at 1-D `positions` (host values, uploaded here).
    public init(
        backend: any Backend, positions: [Int32], strategy: any AttentionStrategy, cache: KVCache,
        timer: PartTimer? = nil
    ) throws {
        self.init(
            backend: backend, positions: try backend.int32Tensor(positions), strategy: strategy, cache: cache,
            timer: timer)
    }

    /// Rows of this pass (the last dimension of `positions`).
    public var rowCount: Int { positions.shape[positions.shape.rank - 1] }

    /// Runs `body` as `part` of the timer's breakdown, also per `layer` if given (or just runs it
    /// without a timer).
    func timed<T>(_ part: PartTimer.Part, layer: Int? = nil, _ body: () throws -> T) throws -> T {
        try BatonTensor.timed(timer, part, layer: layer, body)
    }
}
