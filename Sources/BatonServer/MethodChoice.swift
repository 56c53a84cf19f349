import BatonParallel
import BatonTensor
import Foundation

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

/// Picks the method for `auto` from prompt length: dense on one rank for short prompts, then the
/// fastest method over all ranks at each length, as measured.
public struct MethodPlanner: Sendable, Equatable {
    /// From `fromTokens` prompt tokens on (up to the next step), `auto` runs `method` over all ranks.
    public struct Step: Sendable, Equatable {
        public var fromTokens: Int
        public var method: Method

        public init(fromTokens: Int, method: Method) {
            self.fromTokens = fromTokens
            self.method = method
        }
    }

    /// Measured with `bench prefill` on 2 x H200, Llama-3.1-8B shape (bench/RESULTS.md, session 8):
    /// two GPUs already beat one at 4K tokens, where the exact ZigZag is the fastest (1.78x dense);
    /// Spava is the fastest from 8K on (1.89x at 8K, 3.06x at 64K). Below 4K nothing was measured and
    /// dense on one GPU stays: exact, and the other ranks stay idle for short requests.
    public static let measuredSteps = [
        Step(fromTokens: 4096, method: .zigzag),
        Step(fromTokens: 8192, method: .spava)
    ]

    /// Ranks available to a request: --gpus N; 1 means dense only.
    public var ranks: Int
    /// Ascending by `fromTokens`.
    public var steps: [Step]

    public init(ranks: Int, steps: [Step] = MethodPlanner.measuredSteps) {
        self.ranks = ranks
        self.steps = steps.sorted { $0.fromTokens < $1.fromTokens }
    }

    /// The method for a prompt of `promptTokens` tokens.
    public func method(for choice: MethodChoice, promptTokens: Int) -> Method {
        switch choice {
        case .fixed(let method): method
        case .auto:
            ranks > 1 ? (steps.last { promptTokens >= $0.fromTokens }?.method ?? .dense) : .dense
        }
    }

    /// `TOKENS:METHOD,...` (such as `4096:zigzag,8192:spava`), as `--auto-plan` takes it.
    public static func steps(parsing text: String, option: String) throws -> [Step] {
        try text.split(separator: ",").map { item in
            let parts = item.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2, let tokens = Int(parts[0].trimmingCharacters(in: .whitespaces)), tokens > 0
            else {
                throw BatonError.invalidArgument(
                    "\(option): '\(item)' is not TOKENS:METHOD (such as 4096:zigzag,8192:spava)")
            }
            let method = try Method.named(parts[1].trimmingCharacters(in: .whitespaces), option: option)
            return Step(fromTokens: tokens, method: method)
        }
    }

    /// The plan in `--auto-plan`'s syntax (for help text and the startup line).
    public var summary: String {
        steps.map { "\($0.fromTokens):\($0.method.rawValue)" }.joined(separator: ",")
    }
}
