import Foundation

extension ModelConfig {
    /// Rotary inverse frequencies `[headDim / 2]` in Float64, `theta^(-2i/d)`, with the config's
    /// rope scaling applied as transformers applies it. Stored as f32 on the device; computing
    /// them in Float64 first keeps long positions (angle = position * frequency) exact to f32.
    public func inverseFrequencies() -> [Double] {
        let base = (0..<headDim / 2).map { 1 / pow(ropeTheta, Double(2 * $0) / Double(headDim)) }
        switch ropeScaling {
        case nil:
            return base
        case .linear(let factor):
            return base.map { $0 / factor }
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
}
