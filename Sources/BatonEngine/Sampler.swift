import BatonTensor
import Foundation

/// How the next token is chosen from the last position's logits.
public struct SamplingOptions: Sendable, Equatable {
    /// 0 means greedy (argmax).
    public var temperature: Float
    /// Nucleus sampling: keep the smallest set of tokens whose probability reaches `topP`.
    public var topP: Float
    public var seed: UInt64

    public init(temperature: Float = 0, topP: Float = 1, seed: UInt64 = 0) {
        self.temperature = temperature
        self.topP = topP
        self.seed = seed
    }

    public static let greedy = SamplingOptions()
    public var isGreedy: Bool { temperature <= 0 }
}

/// Turns logits into token ids: greedy on the device, sampling on the host.
public struct Sampler: Sendable {
    public let options: SamplingOptions
    private var generator: SplitMix64

    public init(_ options: SamplingOptions) {
        self.options = options
        self.generator = SplitMix64(seed: options.seed)
    }

    /// Next token from `logits` `[1, V]` (the last position only).
    public mutating func next(logits: Tensor, backend: any Backend) throws -> Int32 {
        if options.isGreedy { return try backend.argmax(logits)[0] }
        return sample(try backend.floats(logits))
    }

    /// Temperature + top-p sampling over one row of logits, in Float64 for stable sums.
    public mutating func sample(_ logits: [Float]) -> Int32 {
        let scaled = logits.map { Double($0) / Double(options.temperature) }
        let maximum = scaled.max() ?? 0
        var probabilities = scaled.map { $0.isFinite ? exp($0 - maximum) : 0 }
        let total = probabilities.reduce(0, +)
        for i in probabilities.indices { probabilities[i] /= total }
        var order = Array(probabilities.indices)
        order.sort { probabilities[$0] != probabilities[$1] ? probabilities[$0] > probabilities[$1] : $0 < $1 }
        var kept: [Int] = []
        var mass = 0.0
        for index in order {
            kept.append(index)
            mass += probabilities[index]
            if mass >= Double(options.topP) { break }
        }
        let draw = Double(generator.next() >> 11) / Double(1 << 53) * mass
        var running = 0.0
        for index in kept {
            running += probabilities[index]
            if draw < running { return Int32(index) }
        }
        return Int32(kept.last ?? 0)
    }
}
