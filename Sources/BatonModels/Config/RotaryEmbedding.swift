import Foundation

extension ModelConfig {
    /// Rotary inverse frequencies `[headDim / 2]` in Float64, `theta^(-2i/d)`, with the config's
    /// rope scaling applied as transformers applies it. Stored as f32 on the device; computing
    /// them in Float64 first keeps long positions (angle = position * frequency) exact to f32.
    /// `ropeLength`: the request's length (largest position + 1) for dynamic NTK scaling, which
    /// raises the base once it passes max_position_embeddings; the other scalings ignore it.
    public func inverseFrequencies(ropeLength: Int? = nil) -> [Double] {
        let base = Self.inverseFrequencies(theta: ropeTheta, headDim: headDim)
        switch ropeScaling {
        case nil:
            return base
        case .linear(let factor):
            return base.map { $0 / factor }
        case .dynamic:
            guard let theta = dynamicRopeTheta(ropeLength: ropeLength) else { return base }
            return Self.inverseFrequencies(theta: theta, headDim: headDim)
        case .llama3(let factor, let low, let high, let original):
            // Llama 3.1: wavelengths longer than original/low are slowed by `factor`, shorter
            // than original/high are kept, and the band between is interpolated smoothly.
            let lowFrequencyWavelength = Double(original) / low
            let highFrequencyWavelength = Double(original) / high
            return base.map { frequency in
                let wavelength = 2 * Double.pi / frequency
                if wavelength < highFrequencyWavelength { return frequency }
                if wavelength > lowFrequencyWavelength { return frequency / factor }
                let smooth = (Double(original) / wavelength - low) / (high - low)
                return (1 - smooth) * frequency / factor + smooth * frequency
            }
        }
    }

    /// Under dynamic NTK scaling, the base of a request `ropeLength` positions long when that passes
    /// max_position_embeddings (transformers' `_compute_dynamic_ntk_parameters`); nil otherwise (the
    /// plain `ropeTheta` applies).
    public func dynamicRopeTheta(ropeLength: Int?) -> Double? {
        guard case .dynamic(let factor) = ropeScaling, let ropeLength, ropeLength > maxPositionEmbeddings else {
            return nil
        }
        let d = Double(headDim)
        let growth = factor * Double(ropeLength) / Double(maxPositionEmbeddings) - (factor - 1)
        return ropeTheta * pow(growth, d / (d - 2))
    }

    /// Whether the rotary frequencies depend on the request's length (dynamic NTK scaling): every
    /// pass must then carry `ForwardPass.ropeLength`.
    public var hasLengthDependentRope: Bool {
        if case .dynamic = ropeScaling { return true }
        return false
    }

    /// Positions a request may use: max_position_embeddings, times the factor under dynamic NTK
    /// scaling, whose purpose is to run past it (transformers sets no limit; without one the scaling
    /// would never apply).
    public var contextLength: Int {
        guard case .dynamic(let factor) = ropeScaling else { return maxPositionEmbeddings }
        return Int((Double(maxPositionEmbeddings) * factor).rounded(.down))
    }

    /// Where `contextLength` comes from, for messages: "max_position_embeddings (32768)", or with
    /// dynamic scaling "max_position_embeddings (32768) x dynamic rope factor 2.0 = 65536".
    public var contextLengthOrigin: String {
        guard case .dynamic(let factor) = ropeScaling else {
            return "max_position_embeddings (\(maxPositionEmbeddings))"
        }
        return "max_position_embeddings (\(maxPositionEmbeddings)) x dynamic rope factor \(factor) = \(contextLength)"
    }

    /// `theta^(-2i/d)` for `i` in `0..<d/2`.
    static func inverseFrequencies(theta: Double, headDim: Int) -> [Double] {
        (0..<headDim / 2).map { 1 / pow(theta, Double(2 * $0) / Double(headDim)) }
    }
}
