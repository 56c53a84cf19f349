import BatonTensor
import Foundation

/// How rotary frequencies are rescaled for long context (`rope_scaling` in transformers 4.x,
/// folded into `rope_parameters` in 5.x).
public enum RopeScaling: Sendable, Equatable {
    /// Llama 3.1's frequency-dependent scaling.
    case llama3(
        factor: Double, lowFrequencyFactor: Double, highFrequencyFactor: Double,
        originalMaxPositionEmbeddings: Int)
    /// Position interpolation: every frequency divided by `factor`.
    case linear(factor: Double)
    /// Dynamic NTK scaling (transformers' "dynamic"): a pass whose request is `L` positions long,
    /// `L` > max_position_embeddings, uses the base `theta * (factor L / max - (factor - 1))^(d / (d - 2))`;
    /// shorter requests keep `theta`. The frequencies so depend on the pass (`ForwardPass.ropeLength`).
    case dynamic(factor: Double)

    /// Throws unless the parameters make sense (`headDim`: the model's, which dynamic scaling raises to
    /// `d / (d - 2)`).
    func validate(headDim: Int) throws {
        func check(_ condition: Bool, _ message: String) throws {
            if !condition { throw BatonError.invalidModel(message) }
        }
        switch self {
        case .llama3(let factor, let low, let high, let original):
            try check(factor > 0, "rope_scaling.factor must be positive, found \(factor)")
            try check(
                low > 0 && high > low,
                "rope_scaling needs 0 < low_freq_factor < high_freq_factor, found \(low) and \(high)")
            try check(original > 0, "rope_scaling.original_max_position_embeddings must be positive, found \(original)")
        case .linear(let factor):
            try check(factor > 0, "rope_scaling.factor must be positive, found \(factor)")
        case .dynamic(let factor):
            // transformers warns below 1; Baton refuses, as the context would shrink.
            try check(factor >= 1, "rope_scaling.factor of dynamic scaling must be at least 1, found \(factor)")
            try check(headDim > 2, "dynamic rope scaling needs head_dim > 2, found \(headDim)")
        }
    }
}

extension RopeScaling: CustomStringConvertible {
    /// One line for `baton inspect`.
    public var description: String {
        switch self {
        case .llama3(let factor, let low, let high, let original):
            "llama3 (factor \(factor), low_freq_factor \(low), high_freq_factor \(high), "
                + "original_max_position_embeddings \(original))"
        case .linear(let factor):
            "linear (factor \(factor))"
        case .dynamic(let factor):
            "dynamic NTK (factor \(factor), base grows once a request passes max_position_embeddings)"
        }
    }
}

/// `rope_scaling` as transformers 4.x writes it.
struct RopeScalingEntry: Encodable {
    let scaling: RopeScaling
    init(_ scaling: RopeScaling) { self.scaling = scaling }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: RopeEntry.CodingKeys.self)
        switch scaling {
        case .linear(let factor):
            try c.encode("linear", forKey: .ropeType)
            try c.encode(factor, forKey: .factor)
        case .dynamic(let factor):
            try c.encode("dynamic", forKey: .ropeType)
            try c.encode(factor, forKey: .factor)
        case .llama3(let factor, let low, let high, let original):
            try c.encode("llama3", forKey: .ropeType)
            try c.encode(factor, forKey: .factor)
            try c.encode(low, forKey: .lowFrequencyFactor)
            try c.encode(high, forKey: .highFrequencyFactor)
            try c.encode(original, forKey: .originalMaxPositionEmbeddings)
        }
    }
}

/// One `rope_scaling` or `rope_parameters` object; unknown keys (e.g. YaRN's) are ignored until
/// the type itself is rejected.
struct RopeEntry: Decodable {
    var kind: String?
    var ropeTheta: Double?
    var factor: Double?
    var lowFrequencyFactor: Double?
    var highFrequencyFactor: Double?
    var originalMaxPositionEmbeddings: Int?

    enum CodingKeys: String, CodingKey {
        case type, ropeType = "rope_type", ropeTheta = "rope_theta", factor
        case lowFrequencyFactor = "low_freq_factor", highFrequencyFactor = "high_freq_factor"
        case originalMaxPositionEmbeddings = "original_max_position_embeddings"
    }

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        kind = try c.decodeIfPresent(String.self, forKey: .ropeType) ?? c.decodeIfPresent(String.self, forKey: .type)
        ropeTheta = try c.decodeIfPresent(Double.self, forKey: .ropeTheta)
        factor = try c.decodeIfPresent(Double.self, forKey: .factor)
        lowFrequencyFactor = try c.decodeIfPresent(Double.self, forKey: .lowFrequencyFactor)
        highFrequencyFactor = try c.decodeIfPresent(Double.self, forKey: .highFrequencyFactor)
        originalMaxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .originalMaxPositionEmbeddings)
    }

    func scaling(field: String) throws -> RopeScaling? {
        func required<T>(_ value: T?, _ key: String) throws -> T {
            guard let value else {
                throw BatonError.invalidModel("field `\(field).\(key)` is required for rope type \(kind ?? "?")")
            }
            return value
        }
        switch kind {
        case nil, "default":
            return nil
        case "llama3":
            return .llama3(
                factor: try required(factor, "factor"),
                lowFrequencyFactor: try required(lowFrequencyFactor, "low_freq_factor"),
                highFrequencyFactor: try required(highFrequencyFactor, "high_freq_factor"),
                originalMaxPositionEmbeddings: try required(
                    originalMaxPositionEmbeddings,
                    "original_max_position_embeddings"))
        case "linear":
            return .linear(factor: try required(factor, "factor"))
        case "dynamic":
            return .dynamic(factor: try required(factor, "factor"))
        case let other?:
            throw BatonError.unsupported(
                "field `\(field).rope_type` is \(other); supported: llama3, linear, dynamic, default")
        }
    }
}
