import BatonParallel

/// `--method` and a request's `"baton": {"method": ...}`: a named method or `auto`.
public enum MethodChoice: Sendable, Equatable, CustomStringConvertible {
    case auto
    case fixed(Method)

    /// `auto` or one of `Method`'s names; `option` names the option or field in the error.
    public static func named(_ name: String, option: String) throws -> MethodChoice {
        if name.lowercased() == "auto" { return .auto }
        return .fixed(try Method.named(name, option: option))
    }

    public var description: String {
        switch self {
        case .auto: "auto"
        case .fixed(let method): method.rawValue
        }
    }
}

/// Picks the method for `auto`: dense on one rank for short prompts, the fastest parallel
/// method over all ranks for long ones.
public struct MethodPlanner: Sendable {
    /// Prompt length (tokens) from which `auto` spreads a request over the ranks. 32K is where
    /// the APB paper's length scan starts showing sequence parallelism ahead of one-GPU
    /// FlashAttention (shared/docs/METHODS.md). A placeholder: it should come from Baton's own
    /// measured crossover on the serving machine (bench/RESULTS.md) once those runs exist.
    public static let defaultCrossoverTokens = 32_768

    /// The parallel method `auto` uses above the crossover: APB, the fastest of the published
    /// methods (up to 1.6x Star and 4.2x Ring in its paper). Also to be replaced by measurements.
    public static let fastestParallelMethod = Method.apb

    /// Ranks available to a request: --gpus N or --ranks N; 1 means dense only.
    public var ranks: Int
    public var crossoverTokens: Int

    public init(ranks: Int, crossoverTokens: Int = MethodPlanner.defaultCrossoverTokens) {
        self.ranks = ranks
        self.crossoverTokens = crossoverTokens
    }

    /// The method for a prompt of `promptTokens` tokens.
    public func method(for choice: MethodChoice, promptTokens: Int) -> Method {
        switch choice {
        case .fixed(let method): method
        case .auto: ranks > 1 && promptTokens >= crossoverTokens ? Self.fastestParallelMethod : .dense
        }
    }
}
