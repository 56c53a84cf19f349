import BatonComm
import BatonTensor

/// A sequence-parallel method, defined in one file of `Methods/`: how it splits a request over
/// ranks (with its own defaults for the anchor and passing lengths) and the strategy one rank runs.
/// `Method.definition` registers it under its command-line name.
public protocol ParallelMethod {
    /// Whether the method reproduces single-GPU attention exactly (up to rounding).
    static var isExact: Bool { get }
    /// Every rank's local input and what it keeps; throws when the request cannot be split.
    static func layout(_ request: PlanRequest) throws -> MethodLayout
    /// The strategy of the rank of `context`. `scorer` selects passing entries (APB's retaining
    /// heads); methods that pass nothing ignore it.
    static func strategy(_ context: RankContext, scorer: (any PassingScorer)?) -> any ParallelStrategy
}

extension ParallelMethod {
    public static var isExact: Bool { false }
}

/// An attention strategy of one rank of a sequence-parallel group. The worker sets `phase`
/// before each pass (prefill, then the query pass if the plan needs one, then decode).
public protocol ParallelStrategy: AttentionStrategy {
    var phase: Phase { get set }
}

/// What the methods with several ranks share: the phase switch (prefill is the method's own,
/// query and decode are `DistributedDecode`), the prefill row check, and caching the plan's rows.
/// A method overrides `prefill`.
public class SequenceParallelMethod: ParallelStrategy {
    public var phase: Phase = .prefill
    public var plan: Plan { context.plan }
    public var rank: Int { context.rank }
    let context: RankContext
    /// Set for `--report-approximation`: measures sampled prefill rows against exact attention.
    var approximationProbe: ApproximationProbe?

    init(_ context: RankContext) { self.context = context }

    /// A class member (not only the protocol's default) so a method can override it.
    public var readsPreRotaryProjections: Bool { false }

    public func attend(_ input: AttentionInput, cache: KVCache, backend: any Backend) throws -> Tensor {
        guard phase == .prefill else { return try context.decode.attend(input, cache: cache, backend: backend) }
        try context.requirePrefillRows(input)
        try context.cacheKeptRows(input, cache: cache)
        let result = try prefill(input, cache: cache, backend: backend)
        try approximationProbe?.measure(input, result: result, backend: backend)
        return result.out
    }

    /// The context prefill of this rank (the plan's rows are already cached) -> out `[T, H, d]`
    /// and the rows' log-sum-exps.
    func prefill(_ input: AttentionInput, cache: KVCache, backend: any Backend) throws -> PrefillAttention {
        throw BatonError.unsupported("\(type(of: self)) does not implement prefill")
    }
}

/// What every method's rank holds: its plan, layout, communicator and softmax scale.
public struct RankContext: @unchecked Sendable {
    public let plan: Plan
    public let rank: Int
    public let communicator: any Communicator
    public let scale: Float

    public init(plan: Plan, communicator: any Communicator, headDim: Int) throws {
        guard communicator.worldSize == plan.worldSize else {
            throw BatonError.invalidArgument(
                "strategy: communicator has \(communicator.worldSize) ranks but the \(plan.method.rawValue) plan has \(plan.worldSize)"
            )
        }
        self.plan = plan
        self.rank = communicator.rank
        self.communicator = communicator
        self.scale = 1 / Float(headDim).squareRoot()
    }

    public var layout: RankLayout { plan.ranks[rank] }
    public var worldSize: Int { plan.worldSize }

    /// The exact query/decode attention shared by every method.
    public var decode: DistributedDecode {
        DistributedDecode(rank: rank, owner: plan.owner, communicator: communicator, scale: scale)
    }

    /// Appends the plan's cached rows of this layer's keys and values.
    func cacheKeptRows(_ input: AttentionInput, cache: KVCache) throws {
        for rows in layout.cacheRows where !rows.isEmpty {
            try cache.append(layer: input.layer, key: input.key.rows(rows), value: input.value.rows(rows))
        }
    }

    /// Checks that the prefill input has the plan's row count.
    func requirePrefillRows(_ input: AttentionInput) throws {
        try require(
            input.query.shape[0] == layout.rowCount && input.key.shape[0] == layout.rowCount,
            "\(plan.method.rawValue) prefill on rank \(rank), layer \(input.layer): expected \(layout.rowCount) local rows (plan), got q \(input.query.shape), k \(input.key.shape)"
        )
    }
}

/// The strategy of `plan.method` for the rank of `communicator`. `scorer` selects APB's passing
/// entries (retaining heads); `nil` means query-aware scores. With `approximation`, every prefill
/// layer also measures sampled rows against exact attention and records them there (methods on
/// several ranks; dense on one rank is exact and records nothing).
public func makeStrategy(
    plan: Plan, communicator: any Communicator, headDim: Int,
    scorer: (any PassingScorer)? = nil, approximation: ApproximationReport? = nil
) throws -> any ParallelStrategy {
    let context = try RankContext(plan: plan, communicator: communicator, headDim: headDim)
    let strategy = plan.method.definition.strategy(context, scorer: scorer)
    if let approximation, let method = strategy as? SequenceParallelMethod {
        method.approximationProbe = ApproximationProbe(context: context, report: approximation)
    }
    return strategy
}
