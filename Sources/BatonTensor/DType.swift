/// Element types Baton stores. Model math accumulates in fp32 whatever the storage type.
public enum DType: String, Sendable, CaseIterable, Codable {
    case bf16, f16, f32, i32, i64

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .bf16, .f16: 2
        case .f32, .i32: 4
        case .i64: 8
        }
    }

    public var isFloatingPoint: Bool { self == .bf16 || self == .f16 || self == .f32 }

    /// The safetensors header spelling of this type.
    public var safetensorsName: String {
        switch self {
        case .bf16: "BF16"
        case .f16: "F16"
        case .f32: "F32"
        case .i32: "I32"
        case .i64: "I64"
        }
    }

    public init?(safetensorsName: String) {
        guard let match = DType.allCases.first(where: { $0.safetensorsName == safetensorsName }) else { return nil }
        self = match
    }
}

/// Exact conversions between fp32 and the 16-bit float formats, rounding to nearest even,
/// NaN kept NaN (quiet), infinities and signed zeros kept.
public enum FloatBits {
    /// fp32 -> bfloat16 bits, round to nearest even.
    @inlinable
    public static func bf16(fromFloat value: Float) -> UInt16 {
        let bits = value.bitPattern
        if value.isNaN { return UInt16(truncatingIfNeeded: bits >> 16) | 0x0040 }
        let lsb = (bits >> 16) & 1
        let rounded = bits &+ 0x7FFF &+ lsb
        return UInt16(truncatingIfNeeded: rounded >> 16)
    }

    /// bfloat16 bits -> fp32 (exact).
    @inlinable
    public static func float(fromBF16 bits: UInt16) -> Float {
        Float(bitPattern: UInt32(bits) << 16)
    }

    /// fp32 -> IEEE half bits, round to nearest even (subnormals included).
    @inlinable
    public static func f16(fromFloat value: Float) -> UInt16 {
        let bits = value.bitPattern
        let sign = UInt16(truncatingIfNeeded: (bits >> 16) & 0x8000)
        let exponent = Int((bits >> 23) & 0xFF)
        var mantissa = bits & 0x7F_FFFF
        if exponent == 0xFF {  // inf or NaN
            return sign | 0x7C00 | (mantissa != 0 ? 0x0200 | UInt16(truncatingIfNeeded: mantissa >> 13) : 0)
        }
        let halfExponent = exponent - 127 + 15
        if halfExponent >= 0x1F { return sign | 0x7C00 }  // overflow -> inf
        if halfExponent <= 0 {
            // Subnormal half (or zero): shift the full mantissa (with hidden bit) right.
            if halfExponent < -10 { return sign }
            mantissa |= 0x80_0000
            let shift = UInt32(14 - halfExponent)
            let halfway = UInt32(1) << (shift - 1)
            let remainder = mantissa & ((UInt32(1) << shift) - 1)
            var result = mantissa >> shift
            if remainder > halfway || (remainder == halfway && (result & 1) == 1) { result += 1 }
            return sign | UInt16(truncatingIfNeeded: result)
        }
        var result = UInt32(halfExponent) << 10 | (mantissa >> 13)
        let remainder = mantissa & 0x1FFF
        // Round to nearest even; a carry into the exponent is correct.
        if remainder > 0x1000 || (remainder == 0x1000 && (result & 1) == 1) { result += 1 }
        return sign | UInt16(truncatingIfNeeded: result)
    }

    /// IEEE half bits -> fp32 (exact).
    @inlinable
    public static func float(fromF16 bits: UInt16) -> Float {
        let sign = UInt32(bits & 0x8000) << 16
        let exponent = UInt32((bits >> 10) & 0x1F)
        let mantissa = UInt32(bits & 0x3FF)
        if exponent == 0 {
            if mantissa == 0 { return Float(bitPattern: sign) }
            // Subnormal: value = mantissa * 2^-24.
            let magnitude = Float(mantissa) * Float(sign: .plus, exponent: -24, significand: 1)
            return sign != 0 ? -magnitude : magnitude
        }
        if exponent == 0x1F { return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13)) }
        return Float(bitPattern: sign | ((exponent + 112) << 23) | (mantissa << 13))
    }
}
