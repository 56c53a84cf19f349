/// The classes the known split patterns distinguish, per Unicode scalar: `\p{L}` (letter),
/// `\p{N}` (number), `\s` (Unicode White_Space, as Oniguruma's `\s`) and everything else.
enum ScalarClass: UInt8 {
    case letter, number, whitespace, other

    init(_ scalar: Unicode.Scalar) {
        let v = scalar.value
        if v < 128 {
            self = ScalarClass.ascii[Int(v)]
            return
        }
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            self = .letter
        case .decimalNumber, .letterNumber, .otherNumber:
            self = .number
        default:
            self = scalar.properties.isWhitespace ? .whitespace : .other
        }
    }

    private static let ascii: [ScalarClass] = (0..<128).map { v -> ScalarClass in
        switch v {
        case 0x41...0x5A, 0x61...0x7A: return .letter
        case 0x30...0x39: return .number
        case 0x09...0x0D, 0x20: return .whitespace
        default: return .other
        }
    }

    /// The classes of a run of scalars, computed once per pre-tokenized piece.
    static func classify<C: Collection>(_ scalars: C) -> [ScalarClass] where C.Element == Unicode.Scalar {
        var classes = [ScalarClass]()
        classes.reserveCapacity(scalars.count)
        for s in scalars { classes.append(ScalarClass(s)) }
        return classes
    }
}

extension Unicode.Scalar {
    /// `\r` or `\n`, the two characters the Llama-3 pattern treats apart from other whitespace.
    var isLineBreak: Bool { value == 0x0A || value == 0x0D }
}
