#if canImport(Glibc)
    import Glibc
#else
    import Darwin
#endif

/// Adds up wall-clock time per part of a forward pass, for benchmark breakdowns. Each
/// measurement synchronises the backend before and after, so the parts are exact but the total
/// is slightly slower than an unmeasured run: benchmarks report the unmeasured median next to
/// the breakdown of a separate measured run. One timer per rank (not thread-safe).
public final class PartTimer: @unchecked Sendable {
    /// The four parts that make up a pass (`wholePass`), and three that lie inside `attention`
    /// (`insideAttention`, measured by the strategies), so a method's attention time can be split
    /// into its kernels, its selection and its exchanges. What is left of `attention` (cache
    /// writes, assembling the passing block) belongs to none of the three.
    public enum Part: String, CaseIterable, Codable, Sendable {
        /// Q/K/V/O projections and RoPE.
        case projections
        /// The strategy's attend: attention kernels, scoring, selection and communication.
        case attention
        /// Norms, the SwiGLU MLP and residual adds.
        case mlp
        /// Embedding lookup, final norm, LM head and sampling.
        case head
        /// Inside `attention`: the attention kernels and the log-sum-exp merges of partial results.
        case attentionCompute = "attention_compute"
        /// Inside `attention`: scoring and top-k selection of the entries a rank passes (APB's
        /// retaining heads or query-aware scores, Spava's query-aware selection).
        case selection
        /// Inside `attention`: packing messages, starting sends, receives and AllGathers, and
        /// waiting for them. A wait lasts until the slowest peer has sent, so it includes the time
        /// this rank spends waiting for the others.
        case communication

        /// The parts that add up to a pass (each measured once, none inside another).
        public static let wholePass: [Part] = [.projections, .attention, .mlp, .head]
        /// The parts measured inside `attention`; their sum is at most `attention`.
        public static let insideAttention: [Part] = [.attentionCompute, .selection, .communication]
    }

    public let backend: any Backend
    public private(set) var seconds: [Part: Double] = [:]
    /// Seconds per layer of the parts measured with a layer (attention and the parts inside it),
    /// for per-layer breakdowns (`BATON_TIMING_LAYERS`).
    public private(set) var layerSeconds: [Int: [Part: Double]] = [:]

    public init(backend: any Backend) { self.backend = backend }

    /// Runs `body`, adding its synchronised duration to `part` (and to `layer`'s, if given).
    public func measure<T>(_ part: Part, layer: Int? = nil, _ body: () throws -> T) throws -> T {
        try backend.synchronize()
        let start = MonotonicClock.now()
        let result = try body()
        try backend.synchronize()
        let elapsed = MonotonicClock.now() - start
        seconds[part, default: 0] += elapsed
        if let layer { layerSeconds[layer, default: [:]][part, default: 0] += elapsed }
        return result
    }

    /// The pass's time: the whole-pass parts (the parts inside attention are already in it).
    public var total: Double { Part.wholePass.reduce(0) { $0 + (seconds[$1] ?? 0) } }

    /// Seconds of `parts` by their names (the JSON keys of benchmark breakdowns); a part never
    /// measured (no selection in Ring) is 0, so every rank and method has the same keys.
    public func secondsByName(_ parts: [Part] = Part.allCases) -> [String: Double] {
        Dictionary(uniqueKeysWithValues: parts.map { ($0.rawValue, seconds[$0] ?? 0) })
    }

    public func reset() {
        seconds = [:]
        layerSeconds = [:]
    }
}

/// Wall-clock seconds from a monotonic source.
public enum MonotonicClock {
    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}

/// `body` measured under `part` (and `layer`) when a timer is given, else just run: an
/// unmeasured pass gains no synchronisation.
@inlinable
public func timed<T>(
    _ timer: PartTimer?, _ part: PartTimer.Part, layer: Int? = nil,
    _ body: () throws -> T
) throws -> T {
    guard let timer else { return try body() }
    return try timer.measure(part, layer: layer, body)
}
