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
    public enum Part: String, CaseIterable, Codable, Sendable {
        /// Q/K/V/O projections and RoPE.
        case projections
        /// The strategy's attend: attention kernels, scoring, selection and communication.
        case attention
        /// Norms, the SwiGLU MLP and residual adds.
        case mlp
        /// Embedding lookup, final norm, LM head and sampling.
        case head
    }

    public let backend: any Backend
    public private(set) var seconds: [Part: Double] = [:]

    public init(backend: any Backend) { self.backend = backend }

    /// Runs `body`, adding its synchronised duration to `part`.
    public func measure<T>(_ part: Part, _ body: () throws -> T) throws -> T {
        try backend.synchronize()
        let start = MonotonicClock.now()
        let result = try body()
        try backend.synchronize()
        seconds[part, default: 0] += MonotonicClock.now() - start
        return result
    }

    public var total: Double { seconds.values.reduce(0, +) }

    public func reset() { seconds = [:] }
}

/// Wall-clock seconds from a monotonic source.
public enum MonotonicClock {
    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}

/// `body` measured under `part` when a timer is given, else just run.
@inlinable
public func timed<T>(_ timer: PartTimer?, _ part: PartTimer.Part, _ body: () throws -> T) throws -> T {
    guard let timer else { return try body() }
    return try timer.measure(part, body)
}
